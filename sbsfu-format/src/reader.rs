//! A checked cursor over a byte slice, in the style of rustls' `Reader`.

use serde::Deserialize;

use crate::Error;

/// Fails with `bad_magic` as soon as an available byte of `bytes` differs from `magic` (a
/// stream still arriving is judged on what is there).
pub(crate) fn check_magic(bytes: &[u8], magic: &[u8; 8], bad_magic: Error) -> Result<(), Error> {
    if bytes.iter().zip(magic.iter()).any(|(a, b)| a != b) {
        return Err(bad_magic);
    }
    Ok(())
}

/// A reader over a versioned file: checks `magic` (else `bad_magic`), then takes it and the
/// big-endian format version, which must be `version`; the reader is left after them.
pub(crate) fn versioned<'a>(
    bytes: &'a [u8],
    magic: &[u8; 8],
    version: u16,
    bad_magic: Error,
) -> Result<Reader<'a>, Error> {
    check_magic(bytes, magic, bad_magic)?;
    let mut r = Reader::new(bytes);
    r.take(magic.len())?;
    let found = r.take_u16_be()?;
    if found != version {
        return Err(Error::UnsupportedVersion(found));
    }
    Ok(r)
}

/// Decodes exactly `bytes` as postcard: a value that ends early is [`Error::Truncated`], one
/// that does not decode `malformed`, bytes left after it `trailing` (`postcard::from_bytes`
/// would ignore them).
pub(crate) fn postcard_exact<'a, T: Deserialize<'a>>(
    bytes: &'a [u8],
    malformed: Error,
    trailing: Error,
) -> Result<T, Error> {
    let (value, rest) = postcard::take_from_bytes::<T>(bytes).map_err(|e| match e {
        postcard::Error::DeserializeUnexpectedEnd => Error::Truncated,
        _ => malformed,
    })?;
    if !rest.is_empty() {
        return Err(trailing);
    }
    Ok(value)
}

/// Reads fixed-size pieces from a byte slice; every read is bounds-checked.
#[derive(Debug, Clone)]
pub struct Reader<'a> {
    rest: &'a [u8],
}

impl<'a> Reader<'a> {
    /// A reader over `bytes`.
    pub fn new(bytes: &'a [u8]) -> Self {
        Self { rest: bytes }
    }

    /// Takes the next `n` bytes, or fails with [`Error::Truncated`].
    pub fn take(&mut self, n: usize) -> Result<&'a [u8], Error> {
        if n > self.rest.len() {
            return Err(Error::Truncated);
        }
        let (head, tail) = self.rest.split_at(n);
        self.rest = tail;
        Ok(head)
    }

    /// Takes the next `N` bytes as an array.
    pub fn take_array<const N: usize>(&mut self) -> Result<[u8; N], Error> {
        let bytes = self.take(N)?;
        let mut out = [0u8; N];
        out.copy_from_slice(bytes);
        Ok(out)
    }

    /// Takes a big-endian `u16`.
    pub fn take_u16_be(&mut self) -> Result<u16, Error> {
        Ok(u16::from_be_bytes(self.take_array()?))
    }

    /// The unread bytes.
    pub fn rest(&self) -> &'a [u8] {
        self.rest
    }

    /// Succeeds only if every byte was read.
    pub fn expect_end(&self, err: Error) -> Result<(), Error> {
        if self.rest.is_empty() {
            Ok(())
        } else {
            Err(err)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn take_past_end_is_truncated_and_consumes_nothing() {
        let mut r = Reader::new(&[1, 2, 3]);
        assert_eq!(r.take(4), Err(Error::Truncated));
        assert_eq!(r.take(2), Ok(&[1u8, 2][..]));
        assert_eq!(r.take_u16_be(), Err(Error::Truncated));
        assert_eq!(r.take_array::<1>(), Ok([3]));
        assert!(r.expect_end(Error::TrailingBytes).is_ok());
    }

    #[test]
    fn expect_end_reports_leftovers() {
        let r = Reader::new(&[0]);
        assert_eq!(
            r.expect_end(Error::TrailingBytes),
            Err(Error::TrailingBytes)
        );
    }
}
