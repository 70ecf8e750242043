//! Where a factory image puts things: the chip's flash, the bootloader, the device record and
//! the boot layout. The example STM32F405 is built in; other chips are described in a TOML
//! file (`--layout`, README "Factory provisioning").

use std::path::Path;

use sbsfu_device::boot::{
    Area, BootLayout, FlashMap, STM32F405_FLASH, STM32F405_LAYOUT, STM32F405_RECORD,
};
use sbsfu_device::{STM32F405_SECTORS, Sectors};
use serde::Deserialize;

use crate::error::{Error, Result};

/// A chip's flash and where each part of a factory image goes.
#[derive(Debug, Clone)]
pub struct FactoryLayout {
    /// The device class containers must name.
    pub target: String,
    /// Where the CPU sees the flash's first byte.
    pub flash_address: u32,
    /// Its sector sizes, in order.
    pub sectors: Vec<u32>,
    /// The RAM an image's stack pointer must point into.
    pub ram: Area,
    /// The bootloader's area.
    pub bootloader: Area,
    /// The device record's area (never erased in the field).
    pub record: Area,
    /// The active slot, the container slots, the state log.
    pub boot: BootLayout,
}

/// The layout file, as written.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    target: String,
    flash: FlashFile,
    ram: AreaFile,
    bootloader: AreaFile,
    record: AreaFile,
    active: AreaFile,
    slots: [AreaFile; 2],
    state_log: [AreaFile; 2],
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FlashFile {
    address: u32,
    sectors: Vec<u32>,
}

#[derive(Deserialize, Clone, Copy)]
#[serde(deny_unknown_fields)]
struct AreaFile {
    address: u32,
    size: u32,
}

impl From<AreaFile> for Area {
    fn from(a: AreaFile) -> Self {
        Area::new(a.address, a.size)
    }
}

impl FactoryLayout {
    /// The example STM32F405 (docs/BOOT.md, "Layout").
    pub fn stm32f405() -> Self {
        Self {
            target: "stm32f405".into(),
            flash_address: STM32F405_FLASH,
            sectors: STM32F405_SECTORS.to_vec(),
            ram: Area::new(0x2000_0000, 0x2_0000),
            bootloader: Area::new(STM32F405_FLASH, STM32F405_RECORD.address - STM32F405_FLASH),
            record: STM32F405_RECORD,
            boot: STM32F405_LAYOUT,
        }
    }

    /// The layout in `path` (TOML), checked.
    pub fn read(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
        let bad = |reason: String| Error::Input {
            path: path.to_owned(),
            reason,
        };
        let f: File =
            toml::from_str(&text).map_err(|e| bad(format!("not a layout: {}", e.message())))?;
        let layout = Self {
            target: f.target,
            flash_address: f.flash.address,
            sectors: f.flash.sectors,
            ram: f.ram.into(),
            bootloader: f.bootloader.into(),
            record: f.record.into(),
            boot: BootLayout {
                active: f.active.into(),
                slots: f.slots.map(Area::from),
                state_log: f.state_log.map(Area::from),
            },
        };
        layout.check().map_err(bad)?;
        Ok(layout)
    }

    /// The flash's size in bytes.
    pub fn flash_size(&self) -> u32 {
        self.sectors.iter().sum()
    }

    /// Every area on the flash, no two overlapping, the boot layout on sector boundaries (the
    /// device's own check), and a valid target name.
    pub fn check(&self) -> std::result::Result<(), String> {
        sbsfu_format::Name::<{ sbsfu_format::MAX_TARGET_LEN }>::new(&self.target)
            .map_err(|_| format!("target {:?} is not a valid target name", self.target))?;
        if self.sectors.is_empty() || self.sectors.iter().any(|s| *s == 0 || s % 1024 != 0) {
            return Err(
                "flash.sectors must list sector sizes, each a non-zero multiple of 1 KiB".into(),
            );
        }
        let end = u64::from(self.flash_address) + u64::from(self.flash_size());
        let named = self.areas();
        for (name, a) in &named {
            let a_end = u64::from(a.address) + u64::from(a.len);
            if a.len == 0 || a.address < self.flash_address || a_end > end {
                return Err(format!("region {name} is empty or not on the flash"));
            }
        }
        for (i, (n1, a)) in named.iter().enumerate() {
            for (n2, b) in &named[i + 1..] {
                let (a0, a1) = (
                    u64::from(a.address),
                    u64::from(a.address) + u64::from(a.len),
                );
                let (b0, b1) = (
                    u64::from(b.address),
                    u64::from(b.address) + u64::from(b.len),
                );
                if a0 < b1 && b0 < a1 {
                    return Err(format!("regions {n1} and {n2} overlap"));
                }
            }
        }
        let map = FlashMap {
            address: self.flash_address,
            size: self.flash_size(),
            sectors: &Sectors(&self.sectors),
        };
        self.boot
            .check(&[map])
            .map_err(|e| format!("the boot layout is refused by the device: {e}"))
    }

    /// Every area, named as the layout file names it.
    fn areas(&self) -> [(&'static str, Area); 7] {
        let b = &self.boot;
        [
            ("bootloader", self.bootloader),
            ("record", self.record),
            ("active", b.active),
            ("slots[0]", b.slots[0]),
            ("slots[1]", b.slots[1]),
            ("state_log[0]", b.state_log[0]),
            ("state_log[1]", b.state_log[1]),
        ]
    }

    /// Offset of `address` in the flash image.
    pub fn offset(&self, address: u32) -> usize {
        (address - self.flash_address) as usize
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_built_in_layout_is_valid() {
        FactoryLayout::stm32f405().check().unwrap();
    }

    #[test]
    fn overlapping_regions_are_refused() {
        let mut l = FactoryLayout::stm32f405();
        l.record = Area::new(0x0801_0000, 0x400);
        assert_eq!(
            l.check().unwrap_err(),
            "regions record and state_log[0] overlap"
        );
    }
}
