//! A checked cursor over a byte slice, in the style of rustls' `Reader`.

use crate::Error;

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
