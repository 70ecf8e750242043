//! The example STM32F405 layout (1 MiB, sectors 4 x 16K, 64K, 7 x 128K), shared by the
//! bootloader, the application and the host tools that build flash images. docs/BOOT.md explains
//! the choice.

use sbsfu_device::boot::{Area, BootLayout};
use sbsfu_device::flash::STM32F405_SECTORS;

/// Where the flash is mapped.
pub const FLASH_BASE: u32 = 0x0800_0000;
/// Its size.
pub const FLASH_SIZE: u32 = 1024 * 1024;
/// Its sectors.
pub const SECTORS: [u32; 12] = STM32F405_SECTORS;

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

/// The boot layout: state log in sectors 4 (64K) and 11 (128K), active slot in 5-6, container
/// slots in 7-8 and 9-10. (docs/BOOT.md: a bootloader of 48 KiB or less would let the log take
/// sectors 3 and 4 instead and free sector 11.)
pub const LAYOUT: BootLayout = BootLayout {
    active: Area::new(0x0802_0000, 0x4_0000),
    slots: [
        Area::new(0x0806_0000, 0x4_0000),
        Area::new(0x080A_0000, 0x4_0000),
    ],
    meta: [
        Area::new(0x0801_0000, 0x1_0000),
        Area::new(0x080E_0000, 0x2_0000),
    ],
};

/// Offset of `area` in the flash.
pub const fn offset(area: Area) -> u32 {
    area.address - FLASH_BASE
}

#[cfg(test)]
mod tests {
    use super::*;
    use sbsfu_device::boot::FlashMap;
    use sbsfu_device::flash::Sectors;

    #[test]
    fn the_example_layout_is_valid_and_leaves_the_bootloader_alone() {
        let map = Sectors(&SECTORS);
        LAYOUT
            .check(&[FlashMap {
                address: FLASH_BASE,
                size: FLASH_SIZE,
                sectors: &map,
            }])
            .unwrap();
        let end = BOOTLOADER.address + BOOTLOADER.len;
        assert!(
            LAYOUT
                .meta
                .iter()
                .chain(LAYOUT.slots.iter())
                .chain([&LAYOUT.active])
                .all(|a| a.address >= end)
        );
    }
}
