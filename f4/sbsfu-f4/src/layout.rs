//! The STM32F405's memory map, as the example bootloader, the application and the host tools
//! that build flash images see it. The boot layout itself is the device crate's example layout,
//! `sbsfu_device::boot::STM32F405_LAYOUT` (docs/BOOT.md explains the choice).

use sbsfu_device::STM32F405_SECTORS;
use sbsfu_device::boot::{Area, STM32F405_FLASH};

/// Where the flash is mapped.
pub const FLASH_BASE: u32 = STM32F405_FLASH;
/// Its size.
pub const FLASH_SIZE: u32 = 1024 * 1024;
/// Its sectors.
pub const SECTORS: [u32; 12] = STM32F405_SECTORS;
/// Bytes programmed at a time: 32-bit words (x32 parallelism, 2.7-3.6 V).
pub const WRITE_SIZE: usize = 4;
/// The smallest sector, which is what the `NorFlash` trait's erase unit can say of sectors this
/// uneven; erases must still follow [`SECTORS`].
pub const SMALLEST_SECTOR: usize = 16 * 1024;

/// Where the OTP area is mapped (RM0090 section 3.8).
pub const OTP_BASE: u32 = 0x1FFF_7800;
/// Its size in 32-bit words (16 blocks of 32 bytes; the lock bytes follow at 0x1FFF_7A00): the
/// example bootloader's anti-rollback counter takes them all, 128 advances.
pub const OTP_WORDS: u32 = 128;

/// The F405's main SRAM (112 KiB + 16 KiB, contiguous): where an image's initial stack pointer
/// must point.
pub const RAM: Area = Area::new(0x2000_0000, 0x2_0000);

/// The bootloader: sectors 0-3 (64 KiB).
pub const BOOTLOADER: Area = Area::new(0x0800_0000, 0x1_0000);

/// Offset of `area` in the flash.
pub const fn offset(area: Area) -> u32 {
    area.address - FLASH_BASE
}

#[cfg(test)]
mod tests {
    use super::*;
    use sbsfu_device::Sectors;
    use sbsfu_device::boot::{FlashMap, STM32F405_LAYOUT};

    #[test]
    fn the_example_layout_is_valid_and_leaves_the_bootloader_alone() {
        let map = Sectors(&SECTORS);
        let layout = STM32F405_LAYOUT;
        layout
            .check(&[FlashMap {
                address: FLASH_BASE,
                size: FLASH_SIZE,
                sectors: &map,
            }])
            .unwrap();
        let end = BOOTLOADER.address + BOOTLOADER.len;
        assert!(
            layout
                .state_log
                .iter()
                .chain(layout.slots.iter())
                .chain([&layout.active])
                .all(|a| a.address >= end)
        );
    }
}
