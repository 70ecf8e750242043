//! The one error type of this crate.

use core::fmt;

use embedded_storage::nor_flash::NorFlashErrorKind;
use sbsfu_format::KeyId;

/// Why an install (or a boot-time verification) failed. Every variant means: nothing was reported
/// valid.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Error {
    /// The container is structurally invalid (bad magic, unknown version, malformed header, ...).
    /// Never `Truncated`, `TrailingBytes` nor `Authentication`: those have their own variants.
    Format(sbsfu_format::Error),
    /// The header names a signing key this device does not trust.
    UnknownSigner(KeyId),
    /// A signature, chunk tag, hash-chain link, key unwrap or image digest did not verify.
    /// Deliberately opaque.
    Authentication,
    /// The image is for another device class.
    WrongTarget,
    /// The image's security counter is below the device's minimum (a downgrade).
    Rollback {
        /// Counter in the image.
        counter: u32,
        /// The device's minimum.
        minimum: u32,
    },
    /// The device requires encrypted images and this one is signed only.
    EncryptionRequired,
    /// The content key is wrapped under a device key this device does not have.
    UnknownDeviceKey(KeyId),
    /// The content key is encrypted (HPKE) to public keys none of which is this device's: a
    /// container made for other devices.
    NotARecipient,
    /// The container's chunks are larger than this installer's buffer.
    ChunkTooLarge {
        /// Chunk size in the header.
        chunk_size: u32,
        /// The installer's buffer.
        capacity: u32,
    },
    /// The header names a region this device does not have.
    UnknownRegion,
    /// The header's load address is not where the region is.
    WrongLoadAddress {
        /// The region's address.
        expected: u32,
        /// The header's load address.
        found: u32,
    },
    /// The image does not fit the region.
    RegionTooSmall {
        /// Image length (padded to the write size).
        image_len: u32,
        /// Region capacity.
        capacity: u32,
    },
    /// The chunk size is not a multiple of the region's write size.
    ChunkMisaligned {
        /// Chunk size in the header.
        chunk_size: u32,
        /// The region's write size.
        write_size: u32,
    },
    /// The container ended before its last chunk.
    Truncated,
    /// Bytes followed the last chunk.
    TrailingBytes,
    /// The flash driver failed.
    Flash(NorFlashErrorKind),
    /// A trusted key is not a valid Ed25519 public key (or is a weak, small-order one).
    InvalidKey,
    /// A region does not start and end on sector boundaries, overlaps the flash end, or has a
    /// write size above [`crate::flash::MAX_WRITE_SIZE`].
    InvalidRegion,
    /// The byte source of the pull helper failed.
    Source,
    /// A boot layout has misaligned, overlapping or too small areas.
    InvalidLayout,
    /// A state record could not be written (the flash keeps failing) or does not decode.
    CorruptState,
    /// No image can be booted: nothing installed, and no valid container to install.
    NoImage,
    /// An update is in progress (pending, installing or on trial): confirm or reset first.
    Busy,
    /// A key-set update is not newer than the set in force (a lower epoch, or the same epoch
    /// with other keys); or the newest stored set is older than the device's epoch counter.
    StaleKeySet {
        /// Epoch of the update (or of the newest stored set).
        epoch: u32,
        /// Epoch of the set in force (or the epoch counter).
        current: u32,
    },
    /// The monotonic counter has no advance left (its OTP words are all used): nothing was
    /// written.
    CounterExhausted,
    /// The image's vector table does not make it bootable: shorter than 8 bytes, an initial
    /// stack pointer outside the configured RAM, or a reset vector without the Thumb bit or
    /// outside the verified image.
    InvalidVectorTable,
}

impl From<sbsfu_format::Error> for Error {
    // Out of line: one copy for every `?` on a format error (flash, on a bootloader).
    #[inline(never)]
    fn from(e: sbsfu_format::Error) -> Self {
        match e {
            // One variant each for what both crates can say.
            sbsfu_format::Error::Authentication => Error::Authentication,
            sbsfu_format::Error::TrailingBytes => Error::TrailingBytes,
            sbsfu_format::Error::Truncated => Error::Truncated,
            other => Error::Format(other),
        }
    }
}

impl From<NorFlashErrorKind> for Error {
    fn from(e: NorFlashErrorKind) -> Self {
        Error::Flash(e)
    }
}

impl Error {
    /// A short, fixed description, for devices that log without `core::fmt` (it costs flash).
    /// [`Error::Format`] gives the format error's own description.
    pub const fn as_str(&self) -> &'static str {
        match self {
            Error::Format(e) => e.as_str(),
            Error::UnknownSigner(_) => "signed by an untrusted key",
            Error::Authentication => "authentication failed (signature, chunk or digest)",
            Error::WrongTarget => "image is for another target",
            Error::Rollback { .. } => "security counter below the device minimum (downgrade)",
            Error::EncryptionRequired => "device accepts only encrypted images",
            Error::UnknownDeviceKey(_) => "content key wrapped for an unknown device key",
            Error::NotARecipient => "encrypted to other devices' keys, none of this device's",
            Error::ChunkTooLarge { .. } => "chunk size exceeds the installer buffer",
            Error::UnknownRegion => "image targets a region this device does not have",
            Error::WrongLoadAddress { .. } => "load address does not match the region",
            Error::RegionTooSmall { .. } => "image does not fit the region",
            Error::ChunkMisaligned { .. } => "chunk size not a multiple of the write size",
            Error::Truncated => "container is truncated",
            Error::TrailingBytes => "container has trailing bytes after the payload",
            Error::Flash(_) => "flash error",
            Error::InvalidKey => "invalid trusted key",
            Error::InvalidRegion => "invalid flash region layout",
            Error::Source => "reading the container failed",
            Error::InvalidLayout => "invalid boot layout",
            Error::CorruptState => "boot state cannot be read or written",
            Error::NoImage => "no bootable image",
            Error::Busy => "an update is already in progress",
            Error::StaleKeySet { .. } => "key set is not newer than the one in force",
            Error::CounterExhausted => "monotonic counter exhausted",
            Error::InvalidVectorTable => "image vector table points outside RAM or the image",
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Format(
                e @ (sbsfu_format::Error::NotAKeySet
                | sbsfu_format::Error::MalformedKeySet
                | sbsfu_format::Error::InvalidKeySet),
            ) => write!(f, "{e}"),
            Error::Format(e) => write!(f, "invalid container: {e}"),
            Error::UnknownSigner(id) => write!(f, "signed by untrusted key {id}"),
            Error::Authentication => f.write_str("authentication failed"),
            Error::Rollback { counter, minimum } => write!(
                f,
                "security counter {counter} is below the device minimum {minimum} (downgrade)"
            ),
            Error::UnknownDeviceKey(id) => {
                write!(f, "content key wrapped for unknown device key {id}")
            }
            Error::ChunkTooLarge {
                chunk_size,
                capacity,
            } => write!(
                f,
                "chunk size {chunk_size} exceeds the installer buffer of {capacity}"
            ),
            Error::WrongLoadAddress { expected, found } => write!(
                f,
                "load address {found:#010x} does not match the region at {expected:#010x}"
            ),
            Error::RegionTooSmall {
                image_len,
                capacity,
            } => write!(
                f,
                "image of {image_len} bytes does not fit the region of {capacity}"
            ),
            Error::ChunkMisaligned {
                chunk_size,
                write_size,
            } => write!(
                f,
                "chunk size {chunk_size} is not a multiple of the write size {write_size}"
            ),
            Error::Flash(k) => write!(f, "flash error: {k:?}"),
            Error::StaleKeySet { epoch, current } => write!(
                f,
                "key set epoch {epoch} is not newer than the epoch {current} in force"
            ),
            // The variants without a value read as their fixed text.
            _ => f.write_str(self.as_str()),
        }
    }
}

impl core::error::Error for Error {}
