//! A NOR flash in RAM, for QEMU (whose STM32F405 flash is ROM) and for measuring the install
//! path without flash wait states: erase sets whole sectors to `0xFF`, programming may only
//! write erased bytes, operations must be aligned. It also counts operations.

use embedded_storage::nor_flash::{
    ErrorType, NorFlash, NorFlashError, NorFlashErrorKind, ReadNorFlash,
};
use sbsfu_device::{SectorMap, Sectors};

/// Why an operation failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RamFlashError {
    /// Misaligned offset or length, or an erase not on sector boundaries.
    NotAligned,
    /// Past the end.
    OutOfBounds,
    /// Programming a byte that is not erased.
    NotErased,
}

impl NorFlashError for RamFlashError {
    fn kind(&self) -> NorFlashErrorKind {
        match self {
            RamFlashError::NotAligned => NorFlashErrorKind::NotAligned,
            RamFlashError::OutOfBounds => NorFlashErrorKind::OutOfBounds,
            RamFlashError::NotErased => NorFlashErrorKind::Other,
        }
    }
}

/// `N` bytes of NOR flash in sectors of the given sizes, programmed in 32-bit words.
pub struct RamFlash<'s, const N: usize> {
    data: [u8; N],
    sectors: Sectors<'s>,
    erases: u32,
    writes: u32,
}

impl<'s, const N: usize> RamFlash<'s, N> {
    /// A flash of `N` bytes, erased, whose sectors have the sizes in `sectors` (summing to `N`).
    pub const fn new(sectors: &'s [u32]) -> Self {
        Self {
            data: [0xFF; N],
            sectors: Sectors(sectors),
            erases: 0,
            writes: 0,
        }
    }

    /// The content.
    pub fn data(&self) -> &[u8] {
        &self.data
    }

    /// Erase and program operations so far.
    pub fn operations(&self) -> (u32, u32) {
        (self.erases, self.writes)
    }

    /// The sector map.
    pub fn sectors(&self) -> Sectors<'s> {
        self.sectors
    }

    fn range(&self, offset: u32, len: usize) -> Result<core::ops::Range<usize>, RamFlashError> {
        let start = usize::try_from(offset).map_err(|_| RamFlashError::OutOfBounds)?;
        let end = start.checked_add(len).ok_or(RamFlashError::OutOfBounds)?;
        if end > N {
            return Err(RamFlashError::OutOfBounds);
        }
        Ok(start..end)
    }
}

impl<const N: usize> ErrorType for RamFlash<'_, N> {
    type Error = RamFlashError;
}

impl<const N: usize> ReadNorFlash for RamFlash<'_, N> {
    const READ_SIZE: usize = 1;

    fn read(&mut self, offset: u32, bytes: &mut [u8]) -> Result<(), RamFlashError> {
        let r = self.range(offset, bytes.len())?;
        bytes.copy_from_slice(self.data.get(r).ok_or(RamFlashError::OutOfBounds)?);
        Ok(())
    }

    fn capacity(&self) -> usize {
        N
    }
}

impl<const N: usize> NorFlash for RamFlash<'_, N> {
    const WRITE_SIZE: usize = 4;
    const ERASE_SIZE: usize = 4;

    fn erase(&mut self, from: u32, to: u32) -> Result<(), RamFlashError> {
        let first = self
            .sectors
            .sector(from)
            .ok_or(RamFlashError::OutOfBounds)?;
        let last_ok = to
            .checked_sub(1)
            .and_then(|l| self.sectors.sector(l))
            .is_some_and(|s| s.end == to);
        if first.start != from || !last_ok {
            return Err(RamFlashError::NotAligned);
        }
        let r = self.range(from, usize::try_from(to - from).unwrap_or(usize::MAX))?;
        self.data
            .get_mut(r)
            .ok_or(RamFlashError::OutOfBounds)?
            .fill(0xFF);
        self.erases = self.erases.saturating_add(1);
        Ok(())
    }

    fn write(&mut self, offset: u32, bytes: &[u8]) -> Result<(), RamFlashError> {
        if !offset.is_multiple_of(4) || !bytes.len().is_multiple_of(4) {
            return Err(RamFlashError::NotAligned);
        }
        let r = self.range(offset, bytes.len())?;
        let dst = self.data.get_mut(r).ok_or(RamFlashError::OutOfBounds)?;
        if dst.iter().any(|b| *b != 0xFF) {
            return Err(RamFlashError::NotErased);
        }
        dst.copy_from_slice(bytes);
        self.writes = self.writes.saturating_add(1);
        Ok(())
    }
}

/// Counts the erase and program operations that reach a `NorFlash` (to check that nothing was
/// touched before a container's head was accepted), whatever the flash.
pub struct Counting<F> {
    inner: F,
    erases: u32,
    writes: u32,
}

impl<F> Counting<F> {
    /// Wraps `inner`.
    pub const fn new(inner: F) -> Self {
        Self {
            inner,
            erases: 0,
            writes: 0,
        }
    }

    /// Erase and program operations so far.
    pub fn operations(&self) -> (u32, u32) {
        (self.erases, self.writes)
    }

    /// Starts counting again.
    pub fn reset(&mut self) {
        self.erases = 0;
        self.writes = 0;
    }

    /// The wrapped flash.
    pub fn inner_mut(&mut self) -> &mut F {
        &mut self.inner
    }
}

impl<F: ErrorType> ErrorType for Counting<F> {
    type Error = F::Error;
}

impl<F: ReadNorFlash> ReadNorFlash for Counting<F> {
    const READ_SIZE: usize = F::READ_SIZE;

    fn read(&mut self, offset: u32, bytes: &mut [u8]) -> Result<(), Self::Error> {
        self.inner.read(offset, bytes)
    }

    fn capacity(&self) -> usize {
        self.inner.capacity()
    }
}

impl<F: NorFlash> NorFlash for Counting<F> {
    const WRITE_SIZE: usize = F::WRITE_SIZE;
    const ERASE_SIZE: usize = F::ERASE_SIZE;

    fn erase(&mut self, from: u32, to: u32) -> Result<(), Self::Error> {
        self.erases = self.erases.saturating_add(1);
        self.inner.erase(from, to)
    }

    fn write(&mut self, offset: u32, bytes: &[u8]) -> Result<(), Self::Error> {
        self.writes = self.writes.saturating_add(1);
        self.inner.write(offset, bytes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nor_semantics_with_uneven_sectors() {
        let mut f = RamFlash::<0x14000>::new(&[0x4000, 0x10000]);
        f.write(0, &[1, 2, 3, 4]).unwrap();
        assert_eq!(f.write(0, &[0; 4]), Err(RamFlashError::NotErased));
        assert_eq!(f.write(1, &[0; 4]), Err(RamFlashError::NotAligned));
        assert_eq!(f.erase(0, 0x2000), Err(RamFlashError::NotAligned));
        assert_eq!(f.erase(0x4000, 0x8000), Err(RamFlashError::NotAligned));
        f.erase(0, 0x4000).unwrap();
        f.erase(0x4000, 0x14000).unwrap();
        f.write(0x13FFC, &[9; 4]).unwrap();
        assert_eq!(f.write(0x14000, &[0; 4]), Err(RamFlashError::OutOfBounds));
        assert_eq!(f.operations(), (2, 2));
    }
}
