//! The one error type of this crate.

use core::fmt;

/// Why a container (or a piece of one) was rejected.
///
/// Structural problems get a precise variant; every cryptographic failure (signature, chunk tag,
/// hash-chain link, key unwrap, image digest) is the single opaque [`Error::Authentication`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Error {
    /// The input ended before the structure it declares was complete.
    Truncated,
    /// The first eight bytes are not the sbsfu magic.
    BadMagic,
    /// The format version is not one this parser implements.
    UnsupportedVersion(u16),
    /// The declared header length is zero or above [`crate::header::MAX_HEADER_LEN`].
    HeaderLength(u16),
    /// The header bytes do not decode as a header.
    MalformedHeader,
    /// The header decodes, but is not in its one canonical encoding (e.g. an overlong varint).
    NonCanonicalHeader,
    /// The header is followed by bytes that its declared length covers but it does not use.
    TrailingHeaderBytes,
    /// A target or region name is empty, too long, or uses characters outside `[a-z0-9._-]`.
    InvalidName,
    /// The declared image is larger than [`crate::header::MAX_IMAGE_LEN`].
    ImageTooLarge(u32),
    /// The declared chunk size is not a power of two within the allowed range.
    InvalidChunkSize(u32),
    /// The load address plus the image length runs past the 32-bit address space.
    AddressOverflow,
    /// Bytes follow the last chunk of the payload.
    TrailingBytes,
    /// An output buffer given to an encoder is too small.
    BufferTooSmall,
    /// A signature, tag, link, wrapped key or digest did not verify.
    Authentication,
    /// The first eight bytes are not the key-set magic.
    NotAKeySet,
    /// A key-set file does not decode: bad length, non-canonical body or trailing bytes.
    MalformedKeySet,
    /// A key set lists no key, too many, a repeated, invalid or weak key, or its own root key.
    InvalidKeySet,
    /// An HPKE container names no recipient, more than four, or one key twice (sealing).
    InvalidRecipients,
    /// The device record's region is erased: no record was ever written.
    BlankRecord,
    /// The bytes are not a device record (another magic).
    NotARecord,
    /// A device record's declared length is out of bounds, or bytes follow it.
    RecordLength,
    /// A device record's checksum does not match: its write stopped half-way, or it was damaged.
    TornRecord,
    /// A device record field is out of its bounds (or a record to encode is).
    InvalidRecord,
}

impl Error {
    /// A short, fixed description, for devices that log without `core::fmt` (it costs flash).
    pub const fn as_str(&self) -> &'static str {
        match self {
            Error::Truncated => "container is truncated",
            Error::BadMagic => "not an sbsfu container (bad magic)",
            Error::UnsupportedVersion(_) => "unsupported format version",
            Error::HeaderLength(_) => "header length out of range",
            Error::MalformedHeader => "header is malformed",
            Error::NonCanonicalHeader => "header is not canonically encoded",
            Error::TrailingHeaderBytes => "header has trailing bytes",
            Error::InvalidName => "invalid target or region name",
            Error::ImageTooLarge(_) => "image length exceeds the maximum",
            Error::InvalidChunkSize(_) => "chunk size out of range",
            Error::AddressOverflow => "load address plus image length overflows",
            Error::TrailingBytes => "container has trailing bytes after the payload",
            Error::BufferTooSmall => "output buffer too small",
            Error::Authentication => "authentication failed",
            Error::NotAKeySet => "not an sbsfu key set (bad magic)",
            Error::MalformedKeySet => "key set is malformed",
            Error::InvalidKeySet => "key set lists no, too many, repeated, weak or root keys",
            Error::InvalidRecipients => "give 1 to 4 distinct recipient public keys",
            Error::BlankRecord => "device record is blank (erased flash)",
            Error::NotARecord => "not a device record (bad magic)",
            Error::RecordLength => "device record length out of range or trailing bytes",
            Error::TornRecord => "device record checksum mismatch (torn or damaged)",
            Error::InvalidRecord => "device record field out of bounds",
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::UnsupportedVersion(v) => write!(f, "unsupported format version {v}"),
            Error::HeaderLength(n) => write!(
                f,
                "header length {n} is outside 1..={}",
                crate::header::MAX_HEADER_LEN
            ),
            Error::ImageTooLarge(n) => write!(
                f,
                "image length {n} exceeds the maximum of {} bytes",
                crate::header::MAX_IMAGE_LEN
            ),
            Error::InvalidChunkSize(n) => write!(
                f,
                "chunk size {n} is not a power of two in {}..={}",
                crate::header::MIN_CHUNK_SIZE,
                crate::header::MAX_CHUNK_SIZE
            ),
            // The variants without a value read as their fixed text.
            _ => f.write_str(self.as_str()),
        }
    }
}

impl core::error::Error for Error {}
