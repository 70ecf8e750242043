//! Where the boot manager keeps things (the active slot, the container slots, the state log),
//! and the regions that builds on the flash: the one place a board's set-up happens.

use core::cell::RefCell;

use embedded_storage::nor_flash::NorFlash;
use sbsfu_format::MAX_HEAD_LEN;

use super::state::StateLog;
use crate::Error;
use crate::flash::{FlashRegion, Region, STM32F405_SECTORS, SectorMap, Sectors, Shared};
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

    fn overlaps(&self, other: &Area) -> bool {
        // Both areas are non-empty and end within the address space (regions check that).
        let (a, b) = (self.address, other.address);
        a < b.saturating_add(other.len) && b < a.saturating_add(self.len)
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
    /// The two banks of the state log.
    pub state_log: [Area; 2],
}

/// The example layout: an STM32F405 with 1 MiB (`STM32F405_SECTORS` from `0x0800_0000`) and a
/// bootloader of up to 64 KiB in sectors 0-3; the state log in sectors 4 (64K) and 11 (128K),
/// the active slot in 5-6, the container slots in 7-8 and 9-10 (docs/BOOT.md explains the
/// choice). The example bootloader, the QEMU tests and the host tests all use it.
pub const STM32F405_LAYOUT: BootLayout = BootLayout {
    active: Area::new(0x0802_0000, 0x4_0000),
    slots: [
        Area::new(0x0806_0000, 0x4_0000),
        Area::new(0x080A_0000, 0x4_0000),
    ],
    state_log: [
        Area::new(0x0801_0000, 0x1_0000),
        Area::new(0x080E_0000, 0x2_0000),
    ],
};

/// Where the example layout keeps the factory's device record (`sbsfu provision`): the last
/// 1 KiB of sector 3, which the bootloader must leave free. Nothing in the field
/// erases it: updates, reverts and state-log compaction erase only the active slot, the
/// container slots and the state log's banks, and the bootloader's sectors are never erased
/// (docs/BOOT.md, "Layout").
pub const STM32F405_RECORD: Area = Area::new(0x0800_FC00, 0x400);

/// Where the STM32F405's main flash is seen by the CPU, for [`STM32F405_LAYOUT`].
pub const STM32F405_FLASH: u32 = 0x0800_0000;

/// The name of the active slot's region: the region images name (`sbsfu sign --region`, `app`
/// by default).
pub const ACTIVE_REGION: &str = "app";

/// A flash the layout's areas lie on: a `NorFlash` behind a `RefCell` (its regions take turns,
/// one operation at a time), its sector map, and the address the CPU sees its first byte at.
/// External flash that is not memory-mapped gets an address range of its own choosing (say
/// `0x9000_0000`).
pub struct BootFlash<'c, F, M> {
    /// The flash.
    pub flash: &'c RefCell<F>,
    /// Its sectors, by offset from its first byte.
    pub sectors: M,
    /// The address of its first byte.
    pub address: u32,
}

/// A region of a [`BootFlash`].
pub type BootRegion<'c, F, M> = FlashRegion<'static, Shared<'c, F>, M>;

/// The regions of a layout whose container slots are on another flash.
pub type SplitRegions<'c, 'd, F, M, G, K> = BootRegions<BootRegion<'c, F, M>, BootRegion<'d, G, K>>;

impl<'c, F: NorFlash> BootFlash<'c, F, Sectors<'static>> {
    /// The STM32F405's main flash, seen at [`STM32F405_FLASH`].
    pub fn stm32f405(flash: &'c RefCell<F>) -> Self {
        Self {
            flash,
            sectors: Sectors(&STM32F405_SECTORS),
            address: STM32F405_FLASH,
        }
    }
}

impl<'c, F: NorFlash, M: SectorMap + Clone> BootFlash<'c, F, M> {
    /// The region `name` over `area` of this flash (sector boundaries checked).
    pub fn region(&self, name: &'static str, area: Area) -> Result<BootRegion<'c, F, M>, Error> {
        let start = area
            .address
            .checked_sub(self.address)
            .ok_or(Error::InvalidLayout)?;
        FlashRegion::new(
            name,
            Shared(self.flash),
            self.sectors.clone(),
            area.address,
            start,
            area.len,
        )
    }
}

/// The regions of a [`BootLayout`], built from it ([`BootLayout::regions`]): the bootloader's
/// [`BootManager`](super::BootManager) takes them all, the application's
/// [`Stager`](super::Stager) the container slots and the state log. The container slots may be
/// on another flash (`S`) than the active slot and the state log (`A`).
pub struct BootRegions<A, S = A> {
    pub(super) active: A,
    pub(super) slots: [S; 2],
    pub(super) state_log: [A; 2],
}

/// The regions as the boot side uses them: the active slot, the container slots, the state log
/// (mounted).
pub(super) type Opened<'r> = (&'r mut dyn Region, [&'r mut dyn Region; 2], StateLog<'r>);

impl<A: Region, S: Region> BootRegions<A, S> {
    /// The state log, mounted: what [`confirm`](super::confirm) takes.
    pub fn state_log(&mut self) -> Result<StateLog<'_>, Error> {
        let [a, b] = &mut self.state_log;
        StateLog::mount([a, b])
    }

    /// The active slot, the container slots and the state log, mounted.
    pub(super) fn open(&mut self) -> Result<Opened<'_>, Error> {
        let Self {
            active,
            slots: [s0, s1],
            state_log: [l0, l1],
        } = self;
        Ok((active, [s0, s1], StateLog::mount([l0, l1])?))
    }
}

impl BootLayout {
    /// Checks that every area lies in one flash and starts and ends on its sector boundaries,
    /// that no two areas overlap, that each state bank holds at least two records and each slot
    /// at least a container head.
    pub fn check(&self, flashes: &[FlashMap<'_>]) -> Result<(), Error> {
        let on_a_flash = self
            .areas()
            .iter()
            .all(|a| flashes.iter().any(|f| on_sectors(f, a)));
        if !on_a_flash {
            return Err(Error::InvalidLayout);
        }
        self.check_areas()
    }

    fn areas(&self) -> [Area; 5] {
        let [s0, s1] = self.slots;
        let [l0, l1] = self.state_log;
        [self.active, s0, s1, l0, l1]
    }

    /// What [`Self::check`] checks but the flash (which building the regions checks, area by
    /// area): no area empty, no two overlapping, each state bank at least two records, each slot
    /// at least a container head.
    fn check_areas(&self) -> Result<(), Error> {
        let areas = self.areas();
        let mut i = 0;
        while let Some(a) = areas.get(i) {
            i = i.saturating_add(1);
            if a.len == 0 || areas.get(i..).unwrap_or(&[]).iter().any(|b| a.overlaps(b)) {
                return Err(Error::InvalidLayout);
            }
        }
        let records = (2 * RECORD_SIZE) as u32;
        let head = MAX_HEAD_LEN as u32;
        let [l0, l1] = self.state_log;
        let [s0, s1] = self.slots;
        if l0.len.min(l1.len) < records || s0.len.min(s1.len) < head {
            return Err(Error::InvalidLayout);
        }
        Ok(())
    }

    /// The layout's regions on one flash, checked as [`Self::check`] does
    /// ([`Error::InvalidLayout`]; [`Error::InvalidRegion`] for an area off the flash's sector
    /// boundaries).
    pub fn regions<'c, F: NorFlash, M: SectorMap + Clone>(
        &self,
        flash: &BootFlash<'c, F, M>,
    ) -> Result<BootRegions<BootRegion<'c, F, M>>, Error> {
        self.build(flash, flash)
    }

    /// The layout's regions with the container slots on `slots` (external flash: they hold
    /// containers as received, never plaintext) and the active slot and the state log on
    /// `internal`, checked as [`Self::regions`] does.
    pub fn regions_split<'c, 'd, F: NorFlash, M: SectorMap + Clone, G: NorFlash, K>(
        &self,
        internal: &BootFlash<'c, F, M>,
        slots: &BootFlash<'d, G, K>,
    ) -> Result<SplitRegions<'c, 'd, F, M, G, K>, Error>
    where
        K: SectorMap + Clone,
    {
        self.build(internal, slots)
    }

    fn build<'c, 'd, F: NorFlash, M: SectorMap + Clone, G: NorFlash, K: SectorMap + Clone>(
        &self,
        internal: &BootFlash<'c, F, M>,
        slots: &BootFlash<'d, G, K>,
    ) -> Result<SplitRegions<'c, 'd, F, M, G, K>, Error> {
        self.check_areas()?;
        let [s0, s1] = self.slots;
        let [l0, l1] = self.state_log;
        Ok(BootRegions {
            active: internal.region(ACTIVE_REGION, self.active)?,
            slots: [slots.region("slot0", s0)?, slots.region("slot1", s1)?],
            state_log: [
                internal.region("state0", l0)?,
                internal.region("state1", l1)?,
            ],
        })
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
