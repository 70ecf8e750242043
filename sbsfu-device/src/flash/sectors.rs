//! Where the erase sectors of a flash are: `NorFlash` has a single `ERASE_SIZE`, the STM32F4 has
//! uneven sectors.

use core::ops::Range;

/// Sector sizes of the STM32F405/407 main flash, in order from 0x0800_0000.
pub const STM32F405_SECTORS: [u32; 12] = [
    16 * 1024,
    16 * 1024,
    16 * 1024,
    16 * 1024,
    64 * 1024,
    128 * 1024,
    128 * 1024,
    128 * 1024,
    128 * 1024,
    128 * 1024,
    128 * 1024,
    128 * 1024,
];

/// Where the erase sectors of a flash are.
pub trait SectorMap {
    /// The sector containing flash offset `offset`, or `None` past the end.
    fn sector(&self, offset: u32) -> Option<Range<u32>>;
}

/// Equal sectors of `size` bytes over `capacity` bytes.
#[derive(Debug, Clone, Copy)]
pub struct Uniform {
    /// Sector size.
    pub size: u32,
    /// Flash size.
    pub capacity: u32,
}

impl SectorMap for Uniform {
    fn sector(&self, offset: u32) -> Option<Range<u32>> {
        if offset >= self.capacity || self.size == 0 {
            return None;
        }
        let start = offset.checked_sub(offset.checked_rem(self.size)?)?;
        Some(start..start.checked_add(self.size)?.min(self.capacity))
    }
}

/// Sectors of the listed sizes, back to back from offset 0.
#[derive(Debug, Clone, Copy)]
pub struct Sectors<'a>(pub &'a [u32]);

impl SectorMap for Sectors<'_> {
    fn sector(&self, offset: u32) -> Option<Range<u32>> {
        let mut start = 0u32;
        for size in self.0 {
            let end = start.checked_add(*size)?;
            if offset < end {
                return Some(start..end);
            }
            start = end;
        }
        None
    }
}

impl<M: SectorMap + ?Sized> SectorMap for &M {
    fn sector(&self, offset: u32) -> Option<Range<u32>> {
        (**self).sector(offset)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stm32f405_map() {
        let m = Sectors(&STM32F405_SECTORS);
        assert_eq!(m.sector(0), Some(0..0x4000));
        assert_eq!(m.sector(0xFFFF), Some(0xC000..0x10000));
        assert_eq!(m.sector(0x10000), Some(0x10000..0x20000));
        assert_eq!(m.sector(0x20000), Some(0x20000..0x40000));
        assert_eq!(m.sector(0xFFFFF), Some(0xE0000..0x100000));
        assert_eq!(m.sector(0x100000), None);
        assert_eq!(STM32F405_SECTORS.iter().sum::<u32>(), 1024 * 1024);
    }

    #[test]
    fn uniform_map() {
        let m = Uniform {
            size: 4096,
            capacity: 10000,
        };
        assert_eq!(m.sector(4095), Some(0..4096));
        assert_eq!(m.sector(9000), Some(8192..10000));
        assert_eq!(m.sector(10000), None);
    }
}
