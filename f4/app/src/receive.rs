//! Receiving updates (feature `receive`): `sbsfu-link`'s receiver on USART2 (polled, behind
//! `embedded-io`'s traits), staging into the free container slot through sbsfu-device's
//! `Stager` (`StagerTarget`), for the bootloader to install at the next reset.
//!
//! Under QEMU the STM32F405's flash is ROM, so the flash the stager writes is the whole 1 MiB
//! flash image in a host file reached through semihosting ([`HostFlash`]); on a board it is the
//! internal flash (`sbsfu_f4::internal_flash::InternalFlash`) behind the same `NorFlash` trait.
//! On a board, also receive by DMA or interrupt into a ring of (window + 1) frames: the CPU
//! stalls while the flash programs, and a polled USART would lose bytes (QEMU holds them).

use core::cell::RefCell;
use core::ffi::CStr;

use embedded_io::{ErrorType, Read, ReadReady, Write};
use embedded_storage::nor_flash::{
    ErrorType as FlashErrorType, NorFlash, NorFlashError, NorFlashErrorKind, ReadNorFlash,
};
use sbsfu_device::TrustedKey;
use sbsfu_device::boot::{BootFlash, DeviceInfo, STM32F405_LAYOUT, Stager, StagerTarget};
use sbsfu_f4::config::{CHUNK, boot_config};
use sbsfu_f4::device_keys::device_keys;
use sbsfu_f4::keys::{SIGNING_KEY, TARGET};
use sbsfu_f4::layout::{FLASH_SIZE, SMALLEST_SECTOR, WRITE_SIZE};
use sbsfu_link::Receiver;
use semihosting::io::{Read as _, Seek as _, SeekFrom, Write as _};
use stm32f4::stm32f405 as pac;

/// The flash image the stager writes under QEMU (relative to QEMU's working directory, the
/// repository root).
const HOST_FLASH: &CStr = c"target/f4-test/push-flash.bin";
/// Frames of up to 1 KiB, four in flight.
const FRAME: usize = 1024;
const WINDOW: u8 = 4;
/// Polls without a byte before the application ends (seconds under QEMU): the sender is gone.
const IDLE_POLLS: u32 = 2_000_000;
/// Cycles between two polls of an idle USART (a byte takes 1,800 at 921,600 baud and 168 MHz).
const IDLE_DELAY: u32 = 500;

/// USART2 (PA2 TX, PA3 RX), polled.
pub struct Usart2(pac::USART2);

impl Usart2 {
    /// Clocks the USART and its pins, 8N1, receiver and transmitter on. (The baud rate divider
    /// is left at its reset value: QEMU does not pace the line; a board sets BRR for its clock.)
    pub fn new(usart: pac::USART2, rcc: &pac::RCC, gpioa: &pac::GPIOA) -> Self {
        rcc.ahb1enr().modify(|_, w| w.gpioaen().set_bit());
        rcc.apb1enr().modify(|_, w| w.usart2en().set_bit());
        gpioa
            .moder()
            .modify(|_, w| w.moder2().alternate().moder3().alternate());
        gpioa.afrl().modify(|_, w| w.afrl2().af7().afrl3().af7());
        usart
            .cr1()
            .modify(|_, w| w.ue().set_bit().te().set_bit().re().set_bit());
        Self(usart)
    }
}

impl ErrorType for Usart2 {
    type Error = core::convert::Infallible;
}

impl ReadReady for Usart2 {
    fn read_ready(&mut self) -> Result<bool, Self::Error> {
        Ok(self.0.sr().read().rxne().bit_is_set())
    }
}

impl Read for Usart2 {
    /// Waits for one byte, then takes what else is there.
    fn read(&mut self, buf: &mut [u8]) -> Result<usize, Self::Error> {
        let mut n = 0;
        for slot in buf.iter_mut() {
            if n > 0 && !self.0.sr().read().rxne().bit_is_set() {
                break;
            }
            while !self.0.sr().read().rxne().bit_is_set() {}
            *slot = self.0.dr().read().dr().bits() as u8;
            n += 1;
        }
        Ok(n)
    }
}

impl Write for Usart2 {
    fn write(&mut self, buf: &[u8]) -> Result<usize, Self::Error> {
        for b in buf {
            while !self.0.sr().read().txe().bit_is_set() {}
            self.0.dr().write(|w| w.dr().set(u16::from(*b)));
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> Result<(), Self::Error> {
        while !self.0.sr().read().tc().bit_is_set() {}
        Ok(())
    }
}

/// A NOR flash kept in a host file (semihosting): `0xFF` is erased, programming only goes to
/// erased bytes, and every operation is in the file when it returns.
pub struct HostFlash(semihosting::fs::File);

#[derive(Debug)]
pub struct HostFlashError(NorFlashErrorKind);

impl NorFlashError for HostFlashError {
    fn kind(&self) -> NorFlashErrorKind {
        self.0
    }
}

const IO: HostFlashError = HostFlashError(NorFlashErrorKind::Other);

impl HostFlash {
    fn at(&mut self, offset: u32, len: usize) -> Result<(), HostFlashError> {
        if offset as usize + len > FLASH_SIZE as usize {
            return Err(HostFlashError(NorFlashErrorKind::OutOfBounds));
        }
        self.0
            .seek(SeekFrom::Start(u64::from(offset)))
            .map(|_| ())
            .map_err(|_| IO)
    }
}

impl FlashErrorType for HostFlash {
    type Error = HostFlashError;
}

impl ReadNorFlash for HostFlash {
    const READ_SIZE: usize = 1;

    fn read(&mut self, offset: u32, bytes: &mut [u8]) -> Result<(), HostFlashError> {
        self.at(offset, bytes.len())?;
        self.0.read_exact(bytes).map_err(|_| IO)
    }

    fn capacity(&self) -> usize {
        FLASH_SIZE as usize
    }
}

impl NorFlash for HostFlash {
    // The internal flash's geometry: the file stands in for it.
    const WRITE_SIZE: usize = WRITE_SIZE;
    const ERASE_SIZE: usize = SMALLEST_SECTOR;

    fn erase(&mut self, from: u32, to: u32) -> Result<(), HostFlashError> {
        let blank = [0xFFu8; 1024];
        self.at(from, to.saturating_sub(from) as usize)?;
        let mut left = to.saturating_sub(from) as usize;
        while left > 0 {
            let n = left.min(blank.len());
            self.0.write_all(&blank[..n]).map_err(|_| IO)?;
            left -= n;
        }
        Ok(())
    }

    fn write(&mut self, offset: u32, bytes: &[u8]) -> Result<(), HostFlashError> {
        // NOR programs erased cells only: check, as the chip would leave the result undefined.
        let mut old = [0u8; 256];
        for (i, piece) in bytes.chunks(old.len()).enumerate() {
            let at = offset + (i * old.len()) as u32;
            self.read(at, &mut old[..piece.len()])?;
            if old[..piece.len()].iter().any(|b| *b != 0xFF) {
                return Err(IO);
            }
        }
        self.at(offset, bytes.len())?;
        self.0.write_all(bytes).map_err(|_| IO)
    }
}

/// Receives updates until the sender asks for a reset (then the application ends: under QEMU
/// the test resets the machine) or goes quiet.
pub fn run(usart: &mut Usart2, watchdog: &pac::IWDG) -> i32 {
    let Ok(signer) = TrustedKey::from_bytes(&SIGNING_KEY) else {
        return 10;
    };
    let signers = [signer];
    let Ok(file) = semihosting::fs::File::options()
        .read(true)
        .write(true)
        .open(HOST_FLASH)
    else {
        semihosting::println!("f4-app: cannot open {:?}", HOST_FLASH);
        return 11;
    };
    let mut flash = HostFlash(file);
    // The bootloader's keys: the device record's key if there is one (staging refuses what the
    // bootloader could not install).
    let keys = device_keys(&mut flash, |_| {});
    let config = boot_config(&signers, keys.as_slice());
    let flash = RefCell::new(flash);
    let Ok(mut regions) = STM32F405_LAYOUT.regions(&BootFlash::stm32f405(&flash)) else {
        return 12;
    };
    let stager = match Stager::<CHUNK>::new(&config, &mut regions) {
        Ok(s) => s,
        Err(e) => {
            semihosting::println!("f4-app: cannot stage: {}", e.as_str());
            return 13;
        }
    };
    let info = DeviceInfo {
        busy_ms: 5000,
        accepts_reset: true,
    };
    let mut target = StagerTarget::new(stager, TARGET, info);
    let mut receiver = Receiver::<FRAME>::new(WINDOW);
    semihosting::println!("f4-app: receiving updates on USART2");
    let mut buf = [0u8; 64];
    let mut idle = 0u32;
    loop {
        watchdog.kr().write(|w| w.key().feed());
        if usart.read_ready() == Ok(true) {
            idle = 0;
            let Ok(n) = usart.read(&mut buf);
            let mut rest = &buf[..n];
            while !rest.is_empty() {
                let used = receiver.receive(&mut target, rest);
                rest = &rest[used..];
                if let Some(reply) = receiver.transmit() {
                    let _ = usart.write_all(reply);
                }
            }
        } else {
            idle += 1;
            cortex_m::asm::delay(IDLE_DELAY);
        }
        while receiver.poll(&mut target) {
            if let Some(reply) = receiver.transmit() {
                let _ = usart.write_all(reply);
            }
        }
        if receiver.reset_requested() {
            let _ = usart.flush();
            semihosting::println!(
                "f4-app: container staged, reset requested: the bootloader installs it"
            );
            return 0;
        }
        if idle > IDLE_POLLS {
            semihosting::println!("f4-app: no sender on USART2");
            return 0;
        }
    }
}
