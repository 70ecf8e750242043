//! A checked cursor writing into a byte slice: the counterpart of [`crate::Reader`].

use crate::Error;

/// Writes at `at` in `out`, every write bounded by the slice: a write that does not fit is
/// [`Error::BufferTooSmall`] and leaves the cursor where it was.
pub(crate) struct Writer<'o> {
    pub(crate) out: &'o mut [u8],
    pub(crate) at: usize,
}

impl<'o> Writer<'o> {
    /// A cursor at `at` in `out` (bytes before `at` are kept).
    pub(crate) fn at(out: &'o mut [u8], at: usize) -> Self {
        Self { out, at }
    }

    /// Appends `bytes`.
    pub(crate) fn put(&mut self, bytes: &[u8]) -> Result<(), Error> {
        let end = self
            .at
            .checked_add(bytes.len())
            .ok_or(Error::BufferTooSmall)?;
        self.out
            .get_mut(self.at..end)
            .ok_or(Error::BufferTooSmall)?
            .copy_from_slice(bytes);
        self.at = end;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_write_that_does_not_fit_is_refused_and_moves_nothing() {
        let mut buf = [0u8; 4];
        let mut w = Writer::at(&mut buf, 1);
        w.put(&[1, 2]).unwrap();
        assert_eq!(w.put(&[3, 4]), Err(Error::BufferTooSmall));
        assert_eq!(w.at, 3);
        w.put(&[3]).unwrap();
        assert_eq!(buf, [0, 1, 2, 3]);
    }
}
