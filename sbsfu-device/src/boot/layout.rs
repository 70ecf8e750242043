//! Where the boot manager keeps things: the active slot, the container slots, the state log.

use sbsfu_format::signed::MAX_HEAD_LEN;

use crate::Error;
use crate::flash::{Region, SectorMap};
use crate::store::record_log::RECORD_SIZE;

/// A range of the CPU's address space.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Area {
    /// First address.
    pub address: u32,
    /// Length in bytes.
    pub len: u32,
}

impl Area {
    /// The area `address..address + len`.
    pub const fn new(address: u32, len: u32) -> Self {
        Self { address, len }
    }

    fn end(&self) -> u64 {
        u64::from(self.address).saturating_add(u64::from(self.len))
    }

    fn overlaps(&self, other: &Area) -> bool {
        u64::from(self.address) < other.end() && u64::from(other.address) < self.end()
    }

    /// Whether `region` is this area.
    pub fn is(&self, region: &dyn Region) -> bool {
        region.address() == self.address && region.capacity() == self.len
    }
}

/// A flash device as the CPU sees it, for checking a [`BootLayout`]. External flash that is
/// not memory-mapped gets an address range of its own choosing (say `0x9000_0000`).
pub struct FlashMap<'a> {
    /// Address of its first byte.
    pub address: u32,
    /// Size in bytes.
    pub size: u32,
    /// Its sectors, by offset from `address`.
    pub sectors: &'a dyn SectorMap,
}

/// Where the boot manager keeps things: a plain value, built from constants or linker symbols.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BootLayout {
    /// Where images run from.
    pub active: Area,
    /// The two container slots.
    pub slots: [Area; 2],
    /// The two banks of the boot state log.
    pub meta: [Area; 2],
}

impl BootLayout {
    /// Checks that every area lies in one flash and starts and ends on its sector boundaries,
    /// that no two areas overlap, that each state bank holds at least two records and each slot
    /// at least a container head.
    pub fn check(&self, flashes: &[FlashMap<'_>]) -> Result<(), Error> {
        let areas = [
            self.active,
            self.slots[0],
            self.slots[1],
            self.meta[0],
            self.meta[1],
        ];
        for (i, a) in areas.iter().enumerate() {
            if a.len == 0 || !flashes.iter().any(|f| on_sectors(f, a)) {
                return Err(Error::InvalidLayout);
            }
            if areas
                .iter()
                .skip(i.saturating_add(1))
                .any(|b| a.overlaps(b))
            {
                return Err(Error::InvalidLayout);
            }
        }
        let records = u32::try_from(2 * RECORD_SIZE).unwrap_or(u32::MAX);
        let head = u32::try_from(MAX_HEAD_LEN).unwrap_or(u32::MAX);
        if self.meta.iter().any(|m| m.len < records) || self.slots.iter().any(|s| s.len < head) {
            return Err(Error::InvalidLayout);
        }
        Ok(())
    }
}

fn on_sectors(flash: &FlashMap<'_>, a: &Area) -> bool {
    let (Some(start), Some(end)) = (
        a.address.checked_sub(flash.address),
        a.address
            .checked_add(a.len)
            .and_then(|e| e.checked_sub(flash.address)),
    ) else {
        return false;
    };
    end <= flash.size
        && flash
            .sectors
            .sector(start)
            .is_some_and(|s| s.start == start)
        && end
            .checked_sub(1)
            .and_then(|l| flash.sectors.sector(l))
            .is_some_and(|s| s.end == end)
}
