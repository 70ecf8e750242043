//! The STM32F4's internal flash (RM0090 section 3) as an embedded-storage `NorFlash`: memory-mapped
//! reads, sector erase, programming in 32-bit words (x32: 2.7-3.6 V).
//!
//! Ours rather than stm32f4xx-hal's because the HAL bounds every access by the flash-size
//! signature register at 0x1FFF_7A22, which QEMU's STM32F405 does not map (the access faults);
//! the size here comes from the layout. The `unsafe` blocks are the memory-mapped reads and
//! writes that flash access is, and one register field the PAC marks unsafe.
//!
//! Under QEMU the FLASH registers read as zero (never busy, never locked, no error) and writes to
//! flash are dropped; a caller that reads back what it wrote (the record log does) sees that.
//!
//! The same controller programs the **OTP area** (RM0090 section 3.8: 512 bytes at 0x1FFF_7800,
//! 128 words; bits only go from 1 to 0, nothing erases them): [`InternalFlash`] is also the
//! [`OtpMemory`] of sbsfu-device's [`sbsfu_device::OtpCounter`]. (QEMU does not map
//! the OTP area: see [`crate::ram_otp`].)
//!
//! Given the independent watchdog ([`InternalFlash::feeding`]), it refreshes it after every
//! erase and program operation, so that a long install (a 128K sector erase takes up to 2 s)
//! never trips it while a boot that hangs still does.
#![allow(unsafe_code)]

use embedded_storage::nor_flash::{
    ErrorType, NorFlash, NorFlashError, NorFlashErrorKind, ReadNorFlash,
};
use sbsfu_device::Error;
use sbsfu_device::OtpMemory;
use sbsfu_device::{SectorMap, Sectors};
use stm32f4::stm32f405::FLASH;
use stm32f4::stm32f405::flash::cr::PSIZE;

use crate::layout::{
    FLASH_BASE, FLASH_SIZE, OTP_BASE, OTP_WORDS, SECTORS, SMALLEST_SECTOR, WRITE_SIZE,
};
use crate::watchdog::Watchdog;

const KEY1: u32 = 0x4567_0123;
const KEY2: u32 = 0xCDEF_89AB;

/// Why a flash operation failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FlashError {
    /// Misaligned or outside the flash.
    Bounds,
    /// The controller reported an error (write protection, programming sequence, alignment,
    /// parallelism), or stayed locked.
    Controller,
}

impl NorFlashError for FlashError {
    fn kind(&self) -> NorFlashErrorKind {
        match self {
            FlashError::Bounds => NorFlashErrorKind::OutOfBounds,
            FlashError::Controller => NorFlashErrorKind::Other,
        }
    }
}

/// The internal flash: offsets from 0x0800_0000, [`FLASH_SIZE`] bytes, sectors [`SECTORS`].
pub struct InternalFlash {
    regs: FLASH,
    watchdog: Option<Watchdog>,
}

impl InternalFlash {
    /// Takes the FLASH peripheral.
    pub fn new(regs: FLASH) -> Self {
        Self {
            regs,
            watchdog: None,
        }
    }

    /// Refreshes `watchdog` after every erase and program operation.
    pub fn feeding(self, watchdog: Watchdog) -> Self {
        Self {
            watchdog: Some(watchdog),
            ..self
        }
    }

    fn check(offset: u32, len: usize) -> Result<usize, FlashError> {
        let len = u32::try_from(len).map_err(|_| FlashError::Bounds)?;
        let end = offset.checked_add(len).ok_or(FlashError::Bounds)?;
        if end > FLASH_SIZE {
            return Err(FlashError::Bounds);
        }
        usize::try_from(FLASH_BASE + offset).map_err(|_| FlashError::Bounds)
    }

    fn unlock(&mut self) -> Result<(), FlashError> {
        if self.regs.cr().read().lock().bit_is_set() {
            self.regs.keyr().write(|w| w.key().set(KEY1));
            self.regs.keyr().write(|w| w.key().set(KEY2));
        }
        if self.regs.cr().read().lock().bit_is_set() {
            return Err(FlashError::Controller);
        }
        Ok(())
    }

    fn lock(&mut self) {
        self.regs.cr().modify(|_, w| w.lock().set_bit());
    }

    /// Waits for the controller, then reports (and clears) its error flags.
    fn wait(&mut self) -> Result<(), FlashError> {
        while self.regs.sr().read().bsy().bit_is_set() {}
        if let Some(w) = &self.watchdog {
            w.feed();
        }
        let sr = self.regs.sr().read();
        let failed = sr.pgserr().bit_is_set()
            || sr.pgperr().bit_is_set()
            || sr.pgaerr().bit_is_set()
            || sr.wrperr().bit_is_set()
            || sr.operr().bit_is_set();
        self.regs.sr().write(|w| {
            w.pgserr().clear_bit_by_one();
            w.pgperr().clear_bit_by_one();
            w.pgaerr().clear_bit_by_one();
            w.wrperr().clear_bit_by_one();
            w.operr().clear_bit_by_one()
        });
        if failed {
            Err(FlashError::Controller)
        } else {
            Ok(())
        }
    }

    fn erase_sector(&mut self, number: u8) -> Result<(), FlashError> {
        self.regs.cr().modify(|_, w| {
            w.psize().variant(PSIZE::Psize32);
            w.ser().set_bit();
            w.pg().clear_bit();
            // SAFETY: `number` comes from the sector map, 0..=11, all valid SNB values on a
            // single-bank F405/F407 (RM0090 3.9.7); the PAC marks the 4-bit field unsafe only
            // because it cannot know which values a part has.
            unsafe { w.snb().bits(number) }
        });
        self.regs.cr().modify(|_, w| w.strt().set_bit());
        let result = self.wait();
        self.regs.cr().modify(|_, w| w.ser().clear_bit());
        result
    }
}

impl ErrorType for InternalFlash {
    type Error = FlashError;
}

impl ReadNorFlash for InternalFlash {
    const READ_SIZE: usize = 1;

    fn read(&mut self, offset: u32, bytes: &mut [u8]) -> Result<(), FlashError> {
        let address = Self::check(offset, bytes.len())?;
        // SAFETY: the range lies inside the internal flash (checked against FLASH_SIZE above),
        // which is always mapped and readable at FLASH_BASE; it is only read, as bytes, and no
        // Rust reference to it exists elsewhere (flash is not an object of this program).
        let flash = unsafe { core::slice::from_raw_parts(address as *const u8, bytes.len()) };
        bytes.copy_from_slice(flash);
        Ok(())
    }

    fn capacity(&self) -> usize {
        FLASH_SIZE as usize
    }
}

impl NorFlash for InternalFlash {
    const WRITE_SIZE: usize = WRITE_SIZE;
    const ERASE_SIZE: usize = SMALLEST_SECTOR;

    fn erase(&mut self, from: u32, to: u32) -> Result<(), FlashError> {
        let map = Sectors(&SECTORS);
        let aligned = map.sector(from).is_some_and(|s| s.start == from)
            && to
                .checked_sub(1)
                .and_then(|l| map.sector(l))
                .is_some_and(|s| s.end == to);
        if !aligned {
            return Err(FlashError::Bounds);
        }
        self.unlock()?;
        let mut result = Ok(());
        let mut start = 0u32;
        for (number, size) in (0u8..).zip(SECTORS) {
            if start >= from && start < to {
                result = self.erase_sector(number);
                if result.is_err() {
                    break;
                }
            }
            start += size;
        }
        self.lock();
        result
    }

    fn write(&mut self, offset: u32, bytes: &[u8]) -> Result<(), FlashError> {
        if !offset.is_multiple_of(4) || !bytes.len().is_multiple_of(4) {
            return Err(FlashError::Bounds);
        }
        let address = Self::check(offset, bytes.len())?;
        self.program(address, bytes)
    }
}

impl InternalFlash {
    /// Programs `bytes` (a whole number of words) at `address`, in the main flash or the OTP
    /// area, which the caller has bounds-checked.
    fn program(&mut self, address: usize, bytes: &[u8]) -> Result<(), FlashError> {
        self.unlock()?;
        self.regs.cr().modify(|_, w| {
            w.psize().variant(PSIZE::Psize32);
            w.ser().clear_bit();
            w.pg().set_bit()
        });
        let mut result = Ok(());
        for (i, word) in bytes.chunks_exact(4).enumerate() {
            let value = u32::from_le_bytes([word[0], word[1], word[2], word[3]]);
            // SAFETY: `address + 4 * i` is word-aligned (offset and length are multiples of 4)
            // and inside the flash or the OTP area (checked by the callers); with PG set, a word
            // write there is a programming operation (RM0090 3.6.2), which is what is intended.
            // Nothing in this program holds a reference to flash or OTP memory.
            unsafe { core::ptr::write_volatile((address + 4 * i) as *mut u32, value) };
            result = self.wait();
            if result.is_err() {
                break;
            }
        }
        self.regs.cr().modify(|_, w| w.pg().clear_bit());
        self.lock();
        result
    }
}

impl OtpMemory for InternalFlash {
    fn words(&self) -> u32 {
        OTP_WORDS
    }

    fn read_word(&mut self, index: u32) -> Result<u32, Error> {
        if index >= OTP_WORDS {
            return Err(Error::Flash(NorFlashErrorKind::OutOfBounds));
        }
        // SAFETY: a word-aligned address inside the OTP area, which is always mapped and
        // readable on an STM32F4; only read, and nothing in this program references it.
        Ok(unsafe { core::ptr::read_volatile((OTP_BASE + 4 * index) as *const u32) })
    }

    fn program_word(&mut self, index: u32, value: u32) -> Result<(), Error> {
        if index >= OTP_WORDS {
            return Err(Error::Flash(NorFlashErrorKind::OutOfBounds));
        }
        self.program((OTP_BASE + 4 * index) as usize, &value.to_le_bytes())
            .map_err(|e| Error::Flash(e.kind()))
    }
}
