//! The bootloader proper (MCU only).

use core::cell::RefCell;

use cortex_m_rt::entry;
use sbsfu_device::CounterStore;
use sbsfu_device::OtpCounter;
use sbsfu_device::boot::{Boot, BootFlash, BootManager, STM32F405_LAYOUT};
use sbsfu_device::{Error, TrustedKey};
use sbsfu_f4::config::{CHUNK, boot_config};
use sbsfu_f4::device_keys::{Keys, device_keys};
use sbsfu_f4::internal_flash::InternalFlash;
use sbsfu_f4::keys::SIGNING_KEY;
use sbsfu_f4::watchdog::Watchdog;
use stm32f4::stm32f405 as pac;

use crate::jump::jump;

/// Reports without `core::fmt` (which would cost several KiB of flash): static strings and
/// decimal or hexadecimal numbers, over semihosting when the feature is on.
mod say {
    #[cfg(feature = "semihosting")]
    pub fn text(s: &str) {
        use semihosting::io::Write;
        if let Ok(mut out) = semihosting::io::stdout() {
            let _ = out.write_all(s.as_bytes());
        }
    }

    #[cfg(not(feature = "semihosting"))]
    pub fn text(_: &str) {}

    fn number(mut n: u32, base: u32, digits: usize) {
        let mut buf = [b'0'; 10];
        let mut i = buf.len();
        loop {
            i -= 1;
            let d = (n % base) as u8;
            buf[i] = if d < 10 { b'0' + d } else { b'a' + d - 10 };
            n /= base;
            if n == 0 && buf.len() - i >= digits {
                break;
            }
        }
        text(core::str::from_utf8(&buf[i..]).unwrap_or("?"));
    }

    pub fn dec(n: u32) {
        number(n, 10, 1)
    }

    pub fn hex(n: u32) {
        text("0x");
        number(n, 16, 8)
    }
}

#[panic_handler]
fn panic(_: &core::panic::PanicInfo<'_>) -> ! {
    // Nothing here panics by design; if something did, never boot anything.
    halt(100)
}

/// Stops: under QEMU (with semihosting) the machine exits with `code`; on a board, it waits.
fn halt(code: i32) -> ! {
    #[cfg(feature = "semihosting")]
    semihosting::process::exit(code);
    #[cfg(not(feature = "semihosting"))]
    {
        let _ = code;
        loop {
            cortex_m::asm::wfi();
        }
    }
}

/// What to boot, the OTP advances left, and the first check that failed on the way.
type Decision = (Boot, u32, Option<Error>);
/// Why nothing can boot, and the first check that failed on the way.
type Failure = (Error, Option<Error>);

/// The device keys (`sbsfu_f4::device_keys`), and what the record said.
fn keys(flash: &mut InternalFlash) -> Keys {
    let keys = device_keys(flash, |record| {
        say::text("sbsfu-boot: device record ");
        say::text(record.serial());
        say::text(": its own device key\n");
    });
    match &keys {
        Keys::Own(_) => {}
        Keys::CompiledIn(_) => {
            say::text("sbsfu-boot: no device record: the compiled-in development keys\n")
        }
        Keys::Refused(e, _) => {
            say::text("sbsfu-boot: device record refused: ");
            say::text(match e {
                Error::WrongTarget => "made for another target",
                e => e.as_str(),
            });
            say::text(": no device key of its own, the class key only\n");
        }
    }
    keys
}

/// Runs the boot manager over the internal flash, with the anti-rollback counter in OTP. On
/// success: what to boot, the OTP advances left and the first check that failed on the way, if
/// one did (a staged update refused, a state record not written); on failure: the error, and
/// that first failed check (the reason).
fn decide(mut flash: InternalFlash) -> Result<Decision, Failure> {
    let signers = [TrustedKey::from_bytes(&SIGNING_KEY).map_err(|e| (e, None))?];
    let keys = keys(&mut flash);
    let config = boot_config(&signers, keys.as_slice());
    let cell = RefCell::new(flash);
    #[cfg(feature = "ram-otp")]
    let mut counter = OtpCounter::new(sbsfu_f4::ram_otp::RamOtp::new());
    #[cfg(not(feature = "ram-otp"))]
    let mut counter = OtpCounter::new(sbsfu_device::Shared(&cell));
    // Used in place, not moved out of the `Result`: a second copy would sit under everything
    // the boot manager does.
    let mut regions = STM32F405_LAYOUT.regions(&BootFlash::stm32f405(&cell));
    let regions = regions.as_mut().map_err(|e| (*e, None))?;
    let mut manager =
        BootManager::<CHUNK>::new(&config, regions, Some(&mut counter)).map_err(|e| (e, None))?;
    let result = manager.run();
    let why = manager.first_error();
    let left = counter.remaining().unwrap_or(0);
    result.map(|boot| (boot, left, why)).map_err(|e| (e, why))
}

#[entry]
fn main() -> ! {
    let Some(dp) = pac::Peripherals::take() else {
        halt(101)
    };
    // The watchdog first: from here on no failure waits forever (an image that never verifies
    // halts, and the watchdog resets the chip to try again). The flash driver feeds it after
    // every erase and program, so a long install never trips it.
    let flash = InternalFlash::new(dp.FLASH).feeding(Watchdog::start(dp.IWDG));
    match decide(flash) {
        Ok((boot, otp_left, why)) => {
            if let Some(why) = why {
                say::text("sbsfu-boot: noted: ");
                say::text(why.as_str());
                say::text("\n");
            }
            let h = boot.header;
            say::text("sbsfu-boot: verified ");
            say::text(h.region.as_str());
            say::text(" ");
            say::dec(h.version.major);
            say::text(".");
            say::dec(h.version.minor);
            say::text(".");
            say::dec(h.version.patch);
            say::text(" (");
            say::dec(h.image_len);
            say::text(" bytes, security counter ");
            say::dec(h.security_counter);
            say::text(if boot.trial { ", on trial" } else { "" });
            say::text("); floor ");
            say::dec(boot.floor);
            say::text(" (");
            say::dec(otp_left);
            say::text(" OTP advances left); jumping to ");
            say::hex(h.load_address);
            say::text("\n");
            if cfg!(feature = "measure") {
                say::text("sbsfu-boot: measure: halted\n");
                loop {
                    cortex_m::asm::wfi();
                }
            }
            let Some(core) = cortex_m::Peripherals::take() else {
                halt(102)
            };
            jump(h.load_address, boot.vectors, core.SYST, core.NVIC, core.SCB)
        }
        Err((e, why)) => {
            say::text("sbsfu-boot: refused: ");
            if let Some(why) = why {
                say::text(why.as_str());
                say::text("; ");
            }
            say::text(e.as_str());
            say::text(": halting\n");
            if cfg!(feature = "measure") {
                say::text("sbsfu-boot: measure: halted\n");
                loop {
                    cortex_m::asm::wfi();
                }
            }
            halt(1)
        }
    }
}
