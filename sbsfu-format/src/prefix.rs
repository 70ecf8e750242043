//! The fixed 12-byte prefix: magic, format version, header length.

use crate::Error;
use crate::header::MAX_HEADER_LEN;
use crate::reader::{check_magic, versioned};

/// The magic: PNG's trick, so that 7-bit channels, line-ending conversion and text-mode transfers
/// all corrupt it visibly (`\x89`, `\r\n`, `\x1a`, `\n`).
pub const MAGIC: [u8; 8] = *b"\x89SFU\r\n\x1a\n";

/// The only format version this crate reads and writes.
pub const FORMAT_VERSION: u16 = 1;

/// Length of the encoded prefix.
pub const PREFIX_LEN: usize = 12;

/// The parsed prefix.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Prefix {
    /// Length of the postcard-encoded header that follows, `1..=MAX_HEADER_LEN`.
    pub header_len: u16,
}

impl Prefix {
    /// Parses the prefix. The magic is checked first, then the version, then the header length.
    ///
    /// `bytes` may be shorter than [`PREFIX_LEN`] while a stream is still arriving: a wrong magic
    /// byte is reported as soon as it is seen, before the rest is needed.
    pub fn parse(bytes: &[u8]) -> Result<Self, Error> {
        let mut r = versioned(bytes, &MAGIC, FORMAT_VERSION, Error::BadMagic)?;
        let header_len = r.take_u16_be()?;
        if header_len == 0 || usize::from(header_len) > MAX_HEADER_LEN {
            return Err(Error::HeaderLength(header_len));
        }
        Ok(Self { header_len })
    }

    /// Encodes the prefix.
    pub fn encode(&self) -> [u8; PREFIX_LEN] {
        let mut out = [0u8; PREFIX_LEN];
        let (magic, rest) = out.split_at_mut(MAGIC.len());
        magic.copy_from_slice(&MAGIC);
        let (version, len) = rest.split_at_mut(2);
        version.copy_from_slice(&FORMAT_VERSION.to_be_bytes());
        len.copy_from_slice(&self.header_len.to_be_bytes());
        out
    }
}

/// Fails with [`Error::BadMagic`] as soon as any available byte differs from the magic.
pub fn check_magic_prefix(bytes: &[u8]) -> Result<(), Error> {
    check_magic(bytes, &MAGIC, Error::BadMagic)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Known-answer encoding: magic, version 1, header length 0x00C4.
    const PREFIX_196: [u8; 12] = hex_literal::hex!("89 53 46 55 0d 0a 1a 0a 0001 00c4");

    #[test]
    fn encodes_known_answer() {
        assert_eq!(Prefix { header_len: 196 }.encode(), PREFIX_196);
        assert_eq!(Prefix::parse(&PREFIX_196), Ok(Prefix { header_len: 196 }));
    }

    #[test]
    fn bad_magic_is_reported_on_the_first_wrong_byte() {
        assert_eq!(Prefix::parse(b"X"), Err(Error::BadMagic));
        assert_eq!(Prefix::parse(b"\x89SFU\n"), Err(Error::BadMagic));
        assert_eq!(Prefix::parse(b"\x89SF"), Err(Error::Truncated));
    }

    #[test]
    fn version_is_checked_before_length() {
        let mut p = PREFIX_196;
        p[9] = 2;
        p[11] = 0;
        assert_eq!(Prefix::parse(&p), Err(Error::UnsupportedVersion(2)));
    }

    #[test]
    fn header_length_is_bounded() {
        for bad in [0u16, MAX_HEADER_LEN as u16 + 1, u16::MAX] {
            let p = Prefix { header_len: bad }.encode();
            assert_eq!(Prefix::parse(&p), Err(Error::HeaderLength(bad)));
        }
        let p = Prefix {
            header_len: MAX_HEADER_LEN as u16,
        }
        .encode();
        assert!(Prefix::parse(&p).is_ok());
    }
}
