//! Flash regions: named windows onto a `NorFlash`, with the sector map `NorFlash` cannot express.
//!
//! embedded-storage's `NorFlash` has a single `ERASE_SIZE`, but the STM32F4 erases in uneven
//! sectors (4 x 16K, 64K, 7 x 128K). A [`SectorMap`] supplies the real sector boundaries; a
//! [`FlashRegion`] checks at construction that the region starts and ends on them, so erasing
//! the sector under any offset of the region never touches anything outside it.

use core::cell::RefCell;

use embedded_storage::nor_flash::{
    ErrorType, NorFlash, NorFlashError, NorFlashErrorKind, ReadNorFlash,
};

use crate::Error;

#[cfg(feature = "std")]
mod mem;
mod read;
mod sectors;
#[cfg(feature = "std")]
mod sink;
mod write;

#[cfg(feature = "std")]
pub use mem::{MemError, MemFlash};
pub(crate) use read::{is_blank, read_pieces};
pub use sectors::{STM32F405_SECTORS, SectorMap, Sectors, Uniform};
#[cfg(feature = "std")]
pub use sink::{SinkError, SinkFlash};
pub(crate) use write::{SequentialWriter, erase_dirty_after};

/// The largest write granularity a region may have (a QSPI page); the installer pads the final
/// write in a stack buffer of this size.
pub const MAX_WRITE_SIZE: usize = 256;

/// A named destination the installer can program. Object-safe, so one installer can serve
/// regions on different flashes (internal flash, external QSPI, ...).
pub trait Region {
    /// The region's name, as headers refer to it.
    fn name(&self) -> &str;
    /// The address at which offset 0 of the region is seen by the CPU (a header's load address).
    fn address(&self) -> u32;
    /// Size in bytes.
    fn capacity(&self) -> u32;
    /// Program granularity in bytes.
    fn write_size(&self) -> u32;
    /// Erases the sector containing `offset` (region-relative) and returns the offset where it
    /// ends.
    fn erase_sector_at(&mut self, offset: u32) -> Result<u32, Error>;
    /// The sector containing `offset` (region-relative), or `None` past the region's end.
    fn sector(&self, offset: u32) -> Option<core::ops::Range<u32>>;
    /// Programs `bytes` at `offset`; both multiples of [`Region::write_size`].
    fn write(&mut self, offset: u32, bytes: &[u8]) -> Result<(), Error>;
    /// Reads `bytes.len()` bytes at `offset`.
    fn read(&mut self, offset: u32, bytes: &mut [u8]) -> Result<(), Error>;
}

/// A window `[start, start + len)` of a `NorFlash` with a sector map.
pub struct FlashRegion<'n, F, M> {
    /// The flash and its sectors.
    flash: F,
    map: M,
    /// The window, by flash offset.
    start: u32,
    len: u32,
    /// How headers name it, and where the CPU sees it.
    name: &'n str,
    address: u32,
}

impl<'n, F: NorFlash, M: SectorMap> FlashRegion<'n, F, M> {
    /// A region named `name`, seen by the CPU at `address`, covering flash offsets
    /// `start..start + len`. Both ends must be sector boundaries inside the flash.
    pub fn new(
        name: &'n str,
        flash: F,
        map: M,
        address: u32,
        start: u32,
        len: u32,
    ) -> Result<Self, Error> {
        let end = start.checked_add(len).ok_or(Error::InvalidRegion)?;
        let capacity = u32::try_from(flash.capacity()).unwrap_or(u32::MAX);
        let starts_on_sector = map.sector(start).is_some_and(|s| s.start == start);
        let last_ok = end
            .checked_sub(1)
            .and_then(|l| map.sector(l))
            .is_some_and(|s| s.end == end);
        let write_ok = F::WRITE_SIZE > 0 && F::WRITE_SIZE <= MAX_WRITE_SIZE;
        if len == 0 || end > capacity || !starts_on_sector || !last_ok || !write_ok {
            return Err(Error::InvalidRegion);
        }
        address.checked_add(len).ok_or(Error::InvalidRegion)?;
        Ok(Self {
            flash,
            map,
            start,
            len,
            name,
            address,
        })
    }

    /// The underlying flash, mutably.
    pub fn flash_mut(&mut self) -> &mut F {
        &mut self.flash
    }

    fn absolute(&self, offset: u32, len: usize) -> Result<u32, Error> {
        let len = u32::try_from(len).map_err(|_| Error::Flash(NorFlashErrorKind::OutOfBounds))?;
        let end = offset
            .checked_add(len)
            .ok_or(Error::Flash(NorFlashErrorKind::OutOfBounds))?;
        if end > self.len {
            return Err(Error::Flash(NorFlashErrorKind::OutOfBounds));
        }
        self.start
            .checked_add(offset)
            .ok_or(Error::Flash(NorFlashErrorKind::OutOfBounds))
    }
}

fn flash_err<E: NorFlashError>(e: E) -> Error {
    Error::Flash(e.kind())
}

impl<F: NorFlash, M: SectorMap> Region for FlashRegion<'_, F, M> {
    fn name(&self) -> &str {
        self.name
    }

    fn address(&self) -> u32 {
        self.address
    }

    fn capacity(&self) -> u32 {
        self.len
    }

    fn write_size(&self) -> u32 {
        u32::try_from(F::WRITE_SIZE).unwrap_or(u32::MAX)
    }

    fn erase_sector_at(&mut self, offset: u32) -> Result<u32, Error> {
        let abs = self.absolute(offset, 1)?;
        let sector = self
            .map
            .sector(abs)
            .ok_or(Error::Flash(NorFlashErrorKind::OutOfBounds))?;
        self.flash
            .erase(sector.start, sector.end)
            .map_err(flash_err)?;
        // Construction guarantees the sector lies inside the region.
        sector
            .end
            .checked_sub(self.start)
            .ok_or(Error::InvalidRegion)
    }

    fn sector(&self, offset: u32) -> Option<core::ops::Range<u32>> {
        let abs = self.absolute(offset, 1).ok()?;
        let s = self.map.sector(abs)?;
        Some(s.start.checked_sub(self.start)?..s.end.checked_sub(self.start)?)
    }

    fn write(&mut self, offset: u32, bytes: &[u8]) -> Result<(), Error> {
        let abs = self.absolute(offset, bytes.len())?;
        self.flash.write(abs, bytes).map_err(flash_err)
    }

    fn read(&mut self, offset: u32, bytes: &mut [u8]) -> Result<(), Error> {
        let abs = self.absolute(offset, bytes.len())?;
        self.flash.read(abs, bytes).map_err(flash_err)
    }
}

/// Shares one `NorFlash` between several regions (say `app` and `data` on the internal flash):
/// each region gets a `Shared` over the same `RefCell`, borrowed only for one operation at a time.
pub struct Shared<'a, F>(pub &'a RefCell<F>);

/// Error of a [`Shared`] flash: the inner error, or the cell being borrowed already.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SharedError(pub NorFlashErrorKind);

impl NorFlashError for SharedError {
    fn kind(&self) -> NorFlashErrorKind {
        self.0
    }
}

impl<F: NorFlash> ErrorType for Shared<'_, F> {
    type Error = SharedError;
}

impl<F: NorFlash> Shared<'_, F> {
    fn with<T>(&self, f: impl FnOnce(&mut F) -> Result<T, F::Error>) -> Result<T, SharedError> {
        let mut inner = self
            .0
            .try_borrow_mut()
            .map_err(|_| SharedError(NorFlashErrorKind::Other))?;
        f(&mut inner).map_err(|e| SharedError(e.kind()))
    }
}

impl<F: NorFlash> ReadNorFlash for Shared<'_, F> {
    const READ_SIZE: usize = F::READ_SIZE;

    fn read(&mut self, offset: u32, bytes: &mut [u8]) -> Result<(), Self::Error> {
        self.with(|f| f.read(offset, bytes))
    }

    fn capacity(&self) -> usize {
        self.0.try_borrow().map(|f| f.capacity()).unwrap_or(0)
    }
}

impl<F: NorFlash> NorFlash for Shared<'_, F> {
    const WRITE_SIZE: usize = F::WRITE_SIZE;
    const ERASE_SIZE: usize = F::ERASE_SIZE;

    fn erase(&mut self, from: u32, to: u32) -> Result<(), Self::Error> {
        self.with(|f| f.erase(from, to))
    }

    fn write(&mut self, offset: u32, bytes: &[u8]) -> Result<(), Self::Error> {
        self.with(|f| f.write(offset, bytes))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sim::SimFlash;

    #[test]
    fn regions_must_follow_sector_boundaries() {
        let mut f = SimFlash::stm32f405();
        let map = Sectors(&STM32F405_SECTORS);
        assert!(FlashRegion::new("app", &mut f, map, 0x0802_0000, 0x20000, 0xE0000).is_ok());
        for (start, len) in [
            (0x1000, 0x3000),
            (0, 0x5000),
            (0x10000, 0x20000),
            (0xE0000, 0x40000),
            (0, 0),
        ] {
            assert_eq!(
                FlashRegion::new("x", &mut f, map, 0, start, len).err(),
                Some(Error::InvalidRegion),
                "{start:#x}+{len:#x}"
            );
        }
    }

    #[test]
    fn erase_stays_inside_the_region_and_reports_the_sector_end() {
        let mut f = SimFlash::stm32f405();
        let map = Sectors(&STM32F405_SECTORS);
        let mut r = FlashRegion::new("app", &mut f, map, 0x0801_0000, 0x10000, 0x30000).unwrap();
        assert_eq!(r.erase_sector_at(0), Ok(0x10000));
        assert_eq!(r.erase_sector_at(0x10000), Ok(0x30000));
        assert_eq!(
            r.erase_sector_at(0x30000),
            Err(Error::Flash(NorFlashErrorKind::OutOfBounds))
        );
        assert_eq!(
            r.write(0x2FFFC, &[0; 8]),
            Err(Error::Flash(NorFlashErrorKind::OutOfBounds))
        );
    }

    #[test]
    fn shared_flash_serves_two_regions() {
        let cell = RefCell::new(SimFlash::stm32f405());
        let map = Sectors(&STM32F405_SECTORS);
        let mut a = FlashRegion::new("a", Shared(&cell), map, 0, 0, 0x4000).unwrap();
        let mut b = FlashRegion::new("b", Shared(&cell), map, 0x4000, 0x4000, 0x4000).unwrap();
        a.erase_sector_at(0).unwrap();
        b.erase_sector_at(0).unwrap();
        a.write(0, &[1, 2, 3, 4]).unwrap();
        b.write(0, &[5, 6, 7, 8]).unwrap();
        let f = cell.borrow();
        assert_eq!(&f.data()[..4], &[1, 2, 3, 4]);
        assert_eq!(&f.data()[0x4000..0x4004], &[5, 6, 7, 8]);
    }
}
