//! A simulated OTP area in RAM, for QEMU: its STM32F405 does not map the OTP area (reads fault,
//! writes cannot program it), so the example bootloader built with its `ram-otp` feature keeps
//! the anti-rollback counter here instead, with OTP semantics (programming only clears bits,
//! nothing erases).
//!
//! It lives at [`ADDRESS`], past the real chip's 128 KiB of SRAM: QEMU's model has 192 KiB, the
//! firmware's memory map never reaches there, and a test can preload it with QEMU's
//! `-device loader` (a [`MARKER`] word, then the words). Without the marker it starts blank.
//! Never use it on a board: there is no RAM at that address (and RAM forgets at power-off).

/// Where the simulated area is (QEMU only).
pub const ADDRESS: u32 = 0x2002_0000;
/// The first word of a preloaded area.
pub const MARKER: u32 = 0x5054_4F52; // "ROTP"

#[cfg(target_os = "none")]
pub use area::RamOtp;

#[cfg(target_os = "none")]
mod area {
    #![allow(unsafe_code)]

    use sbsfu_device::Error;
    use sbsfu_device::OtpMemory;

    use super::{ADDRESS, MARKER};
    use crate::layout::OTP_WORDS;

    /// The simulated OTP area as [`OtpMemory`].
    pub struct RamOtp(());

    impl RamOtp {
        /// The area; blank unless a marker says it was preloaded.
        pub fn new() -> Self {
            let area = ADDRESS as *mut u32;
            // SAFETY: under QEMU, `ADDRESS..ADDRESS + 4 * (1 + OTP_WORDS)` is SRAM that the
            // program's memory map leaves alone and only this type touches (the firmware is
            // single-threaded and creates one); volatile, because QEMU's loader, not the
            // program, may have written it.
            unsafe {
                if area.read_volatile() != MARKER {
                    for i in 1..=OTP_WORDS as usize {
                        area.add(i).write_volatile(0xFFFF_FFFF);
                    }
                    area.write_volatile(MARKER);
                }
            }
            Self(())
        }

        fn word(index: u32) -> Result<*mut u32, Error> {
            if index >= OTP_WORDS {
                return Err(Error::Flash(
                    embedded_storage::nor_flash::NorFlashErrorKind::OutOfBounds,
                ));
            }
            Ok((ADDRESS + 4 * (1 + index)) as *mut u32)
        }
    }

    impl Default for RamOtp {
        fn default() -> Self {
            Self::new()
        }
    }

    impl OtpMemory for RamOtp {
        fn words(&self) -> u32 {
            OTP_WORDS
        }

        fn read_word(&mut self, index: u32) -> Result<u32, Error> {
            let word = Self::word(index)?;
            // SAFETY: an aligned word of the area (index checked), initialized by `new`.
            Ok(unsafe { word.read_volatile() })
        }

        fn program_word(&mut self, index: u32, value: u32) -> Result<(), Error> {
            let word = Self::word(index)?;
            // SAFETY: as above. Programming only clears bits, as OTP does.
            unsafe { word.write_volatile(word.read_volatile() & value) };
            Ok(())
        }
    }
}
