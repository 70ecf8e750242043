//! [`MemFlash`]: a plain NOR flash in memory (feature `std`), for host tools that run the device
//! code on a whole flash image (`sbsfu provision`). Unlike the `sim` feature's `SimFlash` it
//! has no fault model, log or counters.

use std::vec;
use std::vec::Vec;

use embedded_storage::nor_flash::{
    ErrorType, NorFlash, NorFlashError, NorFlashErrorKind, ReadNorFlash,
};

use super::{SectorMap, Sectors};

/// Why a [`MemFlash`] operation failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MemError {
    /// An erase not on sector boundaries, or a write not on write-size boundaries.
    NotAligned,
    /// Past the end of the flash.
    OutOfBounds,
    /// Programming a byte that is not erased (NOR flash only clears bits).
    NotErased {
        /// Offset of the first such byte.
        offset: u32,
    },
}

impl NorFlashError for MemError {
    fn kind(&self) -> NorFlashErrorKind {
        match self {
            MemError::NotAligned => NorFlashErrorKind::NotAligned,
            MemError::OutOfBounds => NorFlashErrorKind::OutOfBounds,
            MemError::NotErased { .. } => NorFlashErrorKind::Other,
        }
    }
}

/// An erased-to-`0xFF` NOR flash of the given sector sizes, written in `W`-byte units; `E` is
/// the erase unit the `NorFlash` trait declares (each sector a multiple of it).
pub struct MemFlash<const W: usize = 4, const E: usize = 1024> {
    data: Vec<u8>,
    sectors: Vec<u32>,
}

impl<const W: usize, const E: usize> MemFlash<W, E> {
    /// An erased flash with these sector sizes, or `None` if one is empty or not a multiple of
    /// `E`, or they add up to more than 4 GiB.
    pub fn new(sector_sizes: &[u32]) -> Option<Self> {
        if sector_sizes
            .iter()
            .any(|s| *s == 0 || !(*s as usize).is_multiple_of(E))
        {
            return None;
        }
        let total = sector_sizes
            .iter()
            .try_fold(0u32, |sum, s| sum.checked_add(*s))?;
        Some(Self {
            data: vec![0xFF; total as usize],
            sectors: sector_sizes.to_vec(),
        })
    }

    /// The whole content.
    pub fn data(&self) -> &[u8] {
        &self.data
    }

    /// The whole content, to place what a programmer writes directly (a bootloader).
    pub fn data_mut(&mut self) -> &mut [u8] {
        &mut self.data
    }

    fn bytes_mut(&mut self, offset: u32, len: usize) -> Result<&mut [u8], MemError> {
        let start = offset as usize;
        let end = start.checked_add(len).ok_or(MemError::OutOfBounds)?;
        self.data.get_mut(start..end).ok_or(MemError::OutOfBounds)
    }
}

impl<const W: usize, const E: usize> ErrorType for MemFlash<W, E> {
    type Error = MemError;
}

impl<const W: usize, const E: usize> ReadNorFlash for MemFlash<W, E> {
    const READ_SIZE: usize = 1;

    fn read(&mut self, offset: u32, bytes: &mut [u8]) -> Result<(), MemError> {
        let len = bytes.len();
        bytes.copy_from_slice(self.bytes_mut(offset, len)?);
        Ok(())
    }

    fn capacity(&self) -> usize {
        self.data.len()
    }
}

impl<const W: usize, const E: usize> NorFlash for MemFlash<W, E> {
    const WRITE_SIZE: usize = W;
    const ERASE_SIZE: usize = E;

    fn erase(&mut self, from: u32, to: u32) -> Result<(), MemError> {
        let len = to.checked_sub(from).ok_or(MemError::NotAligned)?;
        let map = Sectors(&self.sectors);
        let starts_sector = |o: u32| map.sector(o).is_some_and(|s| s.start == o);
        let aligned = starts_sector(from) && (to as usize == self.data.len() || starts_sector(to));
        let bytes = self.bytes_mut(from, len as usize)?;
        if !aligned {
            return Err(MemError::NotAligned);
        }
        bytes.fill(0xFF);
        Ok(())
    }

    fn write(&mut self, offset: u32, bytes: &[u8]) -> Result<(), MemError> {
        if !(offset as usize).is_multiple_of(W) || !bytes.len().is_multiple_of(W) {
            return Err(MemError::NotAligned);
        }
        let target = self.bytes_mut(offset, bytes.len())?;
        if let Some(i) = target.iter().position(|b| *b != 0xFF) {
            return Err(MemError::NotErased {
                offset: offset.saturating_add(i as u32),
            });
        }
        target.copy_from_slice(bytes);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nor_semantics_on_uneven_sectors() {
        let mut f = MemFlash::<4, 1024>::new(&[1024, 2048]).unwrap();
        assert!(f.data().iter().all(|b| *b == 0xFF));
        f.write(1024, &[1, 2, 3, 4]).unwrap();
        assert_eq!(
            f.write(1024, &[0, 0, 0, 0]),
            Err(MemError::NotErased { offset: 1024 })
        );
        assert_eq!(f.write(2, &[0; 4]), Err(MemError::NotAligned));
        assert_eq!(f.write(3072, &[0; 4]), Err(MemError::OutOfBounds));
        // Erases go from sector start to sector end: 1024..2048 is inside the second sector.
        assert_eq!(f.erase(1024, 2048), Err(MemError::NotAligned));
        f.erase(1024, 3072).unwrap();
        let mut back = [0u8; 4];
        f.read(1024, &mut back).unwrap();
        assert_eq!(back, [0xFF; 4]);
        assert!(MemFlash::<4, 1024>::new(&[1000]).is_none());
    }
}
