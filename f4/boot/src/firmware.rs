//! The bootloader proper (MCU only).

use core::cell::RefCell;

use cortex_m_rt::entry;
use sbsfu_device::boot::{Area, Boot, BootManager};
use sbsfu_device::flash::{FlashRegion, Sectors, Shared};
use sbsfu_device::format::DeviceKey;
use sbsfu_device::{Error, TrustedKey};
use sbsfu_f4::config::{CHUNK, boot_config};
use sbsfu_f4::internal_flash::InternalFlash;
use sbsfu_f4::keys::{DEVICE_KEY, SIGNING_KEY};
use sbsfu_f4::layout::{LAYOUT, SECTORS, offset};
use stm32f4::stm32f405 as pac;

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

type Region<'c> = FlashRegion<'static, Shared<'c, InternalFlash>, Sectors<'static>>;

fn region<'c>(
    flash: &'c RefCell<InternalFlash>,
    name: &'static str,
    area: Area,
) -> Result<Region<'c>, Error> {
    FlashRegion::new(
        name,
        Shared(flash),
        Sectors(&SECTORS),
        area.address,
        offset(area),
        area.len,
    )
}

/// Runs the boot manager over the internal flash. On failure: the error, and the first check
/// that failed on the way (the reason).
fn decide(flash: InternalFlash) -> Result<Boot, (Error, Option<Error>)> {
    let signers = [TrustedKey::from_bytes(&SIGNING_KEY).map_err(|e| (e, None))?];
    let device_keys = [DeviceKey::from_bytes(DEVICE_KEY)];
    let config = boot_config(&signers, &device_keys);
    let cell = RefCell::new(flash);
    let regions = (|| {
        Ok((
            region(&cell, "app", LAYOUT.active)?,
            region(&cell, "slot0", LAYOUT.slots[0])?,
            region(&cell, "slot1", LAYOUT.slots[1])?,
            region(&cell, "meta0", LAYOUT.meta[0])?,
            region(&cell, "meta1", LAYOUT.meta[1])?,
        ))
    })();
    let (mut active, mut slot0, mut slot1, mut meta0, mut meta1) =
        regions.map_err(|e| (e, None))?;
    let mut manager = BootManager::<CHUNK>::new(
        &LAYOUT,
        &config,
        &mut active,
        [&mut slot0, &mut slot1],
        [&mut meta0, &mut meta1],
        None,
    )
    .map_err(|e| (e, None))?;
    let result = manager.run();
    let why = manager.first_error();
    result.map_err(|e| (e, why))
}

#[entry]
fn main() -> ! {
    let Some(dp) = pac::Peripherals::take() else {
        halt(101)
    };
    match decide(InternalFlash::new(dp.FLASH)) {
        Ok(boot) => {
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
            say::text("); jumping to ");
            say::hex(h.load_address);
            say::text("\n");
            if cfg!(feature = "measure") {
                say::text("sbsfu-boot: measure: halted\n");
                loop {
                    cortex_m::asm::wfi();
                }
            }
            jump(h.load_address)
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

/// Starts the application whose vector table is at `address` (its first word is the initial
/// stack pointer, its second the reset handler).
#[allow(unsafe_code)]
fn jump(address: u32) -> ! {
    let Some(core) = cortex_m::Peripherals::take() else {
        halt(102)
    };
    cortex_m::interrupt::disable();
    // SAFETY: `address` is the start of the active slot, whose image the boot manager has just
    // verified (signature and digest over exactly the bytes in flash, linked for this address:
    // its header's load address). Its vector table is aligned (the slot starts on a 128K sector)
    // and no interrupt is enabled, so relocating the table cannot route an interrupt into a
    // half-initialized state.
    unsafe { core.SCB.vtor.write(address) };
    // SAFETY: as above, the first two words of the verified image are its initial stack pointer
    // and reset handler; the bootloader keeps nothing alive (it never returns to its own code),
    // and the application sets up its own stack, data and bss from there.
    unsafe { cortex_m::asm::bootload(address as *const u32) }
}
