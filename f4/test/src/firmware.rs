//! The cases (MCU only). Under QEMU (the default build) the containers are read from the host
//! over semihosting and programmed into a RAM-backed NOR flash shaped like the F405's sectors 3
//! (16K) and 4 (64K), QEMU's flash being ROM. On a board (`--features board`) they are embedded
//! in the firmware and programmed into the chip's real flash, sector 6.

use cortex_m_rt::entry;
use sbsfu_device::boot::verify_region;
use sbsfu_device::format::DeviceKey;
use sbsfu_device::{Error, Installed, Installer, Policy, TrustedKey};
use sbsfu_device::{FlashRegion, Region, Sectors};
use sbsfu_device::{Source, install_from};
use sbsfu_f4::Counting;
use sbsfu_f4::keys::{DEVICE_KEY, DEVICE_X25519_KEY, SIGNING_KEY, TARGET};
use semihosting::{println, process};

/// Installer buffer (the containers use 1 KiB chunks, as for the example bootloader).
const CHUNK: usize = 1024;

#[cfg(not(feature = "board"))]
mod target {
    //! QEMU: host files and a RAM-backed flash window.
    use core::cell::RefCell;

    use critical_section::Mutex;

    use super::*;
    use sbsfu_f4::RamFlash;
    use semihosting::io::Read;

    pub static SECTORS: [u32; 2] = [16 * 1024, 64 * 1024];
    pub const LEN: u32 = 80 * 1024;
    /// Where the window is seen (F405 sectors 3-4).
    pub const ADDRESS: u32 = 0x0800_C000;
    /// Flash offset of the window in its own map.
    pub const START: u32 = 0;
    pub type Flash = RamFlash<'static, { LEN as usize }>;
    pub static FLASH: Mutex<RefCell<Counting<Flash>>> =
        Mutex::new(RefCell::new(Counting::new(RamFlash::new(&SECTORS))));
    pub fn map() -> Sectors<'static> {
        Sectors(&SECTORS)
    }

    macro_rules! data {
        ($file:literal) => {
            $crate::firmware::target::Data(concat!("target/f4-test/", $file, "\0"))
        };
    }
    pub(crate) use data;

    /// A host file, read over semihosting.
    #[derive(Clone, Copy)]
    pub struct Data(pub &'static str);

    pub struct Reader {
        file: semihosting::fs::File,
        step: usize,
    }

    impl Data {
        pub fn open(&self, step: usize) -> Option<Reader> {
            let path = core::ffi::CStr::from_bytes_with_nul(self.0.as_bytes()).ok()?;
            semihosting::fs::File::open(path)
                .ok()
                .map(|file| Reader { file, step })
        }
    }

    impl Source for Reader {
        fn read(&mut self, buf: &mut [u8]) -> Result<usize, Error> {
            let n = self.step.min(buf.len());
            self.file
                .read(buf.get_mut(..n).unwrap_or(&mut []))
                .map_err(|_| Error::Source)
        }
    }
}

#[cfg(feature = "board")]
mod target {
    //! A board: embedded data and the internal flash's sector 6.
    use super::*;
    use sbsfu_f4::internal_flash::InternalFlash;

    pub const ADDRESS: u32 = 0x0804_0000;
    pub const START: u32 = 0x4_0000;
    pub const LEN: u32 = 0x2_0000;
    pub type Flash = InternalFlash;
    pub fn map() -> Sectors<'static> {
        Sectors(&sbsfu_f4::layout::SECTORS)
    }

    macro_rules! data {
        ($file:literal) => {
            $crate::firmware::target::Data(include_bytes!(concat!(
                env!("SBSFU_F4_DATA"),
                "/",
                $file
            )))
        };
    }
    pub(crate) use data;

    /// Bytes embedded in the firmware.
    #[derive(Clone, Copy)]
    pub struct Data(pub &'static [u8]);

    pub struct Reader {
        rest: &'static [u8],
        step: usize,
    }

    impl Data {
        pub fn open(&self, step: usize) -> Option<Reader> {
            Some(Reader { rest: self.0, step })
        }
    }

    impl Source for Reader {
        fn read(&mut self, buf: &mut [u8]) -> Result<usize, Error> {
            let n = self.step.min(buf.len()).min(self.rest.len());
            let (head, tail) = self.rest.split_at(n);
            buf.get_mut(..n).ok_or(Error::Source)?.copy_from_slice(head);
            self.rest = tail;
            Ok(n)
        }
    }
}

use target::{Data, Flash, data};

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Expect {
    Installs,
    Fails(Error),
}

const ANY_KEY: sbsfu_device::format::KeyId = sbsfu_device::format::KeyId([0; 8]);

/// What each container is and what must happen to it.
const CASES: &[(&str, Data, Expect)] = &[
    (
        "valid-encrypted",
        data!("valid-encrypted.sfu"),
        Expect::Installs,
    ),
    ("valid-hpke", data!("valid-hpke.sfu"), Expect::Installs),
    (
        "hpke-for-another-device",
        data!("other-device-hpke.sfu"),
        Expect::Fails(Error::NotARecipient),
    ),
    (
        "valid-signed-only",
        data!("valid-signed.sfu"),
        Expect::Installs,
    ),
    (
        "tampered",
        data!("tampered.sfu"),
        Expect::Fails(Error::Authentication),
    ),
    (
        "wrong-key",
        data!("wrong-key.sfu"),
        Expect::Fails(Error::UnknownSigner(ANY_KEY)),
    ),
    (
        "wrong-target",
        data!("wrong-target.sfu"),
        Expect::Fails(Error::WrongTarget),
    ),
    (
        "downgraded",
        data!("downgraded.sfu"),
        Expect::Fails(Error::Rollback {
            counter: 4,
            minimum: 5,
        }),
    ),
    (
        "truncated",
        data!("truncated.sfu"),
        Expect::Fails(Error::Truncated),
    ),
    (
        "trailing-bytes",
        data!("trailing.sfu"),
        Expect::Fails(Error::TrailingBytes),
    ),
    (
        "wrong-device-key",
        data!("wrong-device-key.sfu"),
        Expect::Fails(Error::UnknownDeviceKey(ANY_KEY)),
    ),
];
const IMAGE: Data = data!("image.bin");

/// Read sizes: one byte (a UART), odd sizes, a flash page, more than a chunk.
const READ_SIZES: &[usize] = &[1, 7, 256, 4096];

#[panic_handler]
fn panic(_: &core::panic::PanicInfo<'_>) -> ! {
    println!("f4-test: panic");
    process::exit(100)
}

/// Whether `got` is the expected error (key ids are not compared: they depend on the keys).
fn same(got: Error, want: Error) -> bool {
    match (got, want) {
        (Error::UnknownSigner(_), Error::UnknownSigner(_))
        | (Error::UnknownDeviceKey(_), Error::UnknownDeviceKey(_)) => true,
        _ => got == want,
    }
}

fn region(
    flash: &mut Counting<Flash>,
) -> Result<FlashRegion<'static, &mut Counting<Flash>, Sectors<'static>>, Error> {
    FlashRegion::new(
        "app",
        flash,
        target::map(),
        target::ADDRESS,
        target::START,
        target::LEN,
    )
}

/// Whether the region holds exactly the expected image.
fn image_matches(flash: &mut Counting<Flash>, len: usize) -> bool {
    let (Ok(mut r), Some(mut image)) = (region(flash), IMAGE.open(512)) else {
        return false;
    };
    let (mut expected, mut actual) = ([0u8; 512], [0u8; 512]);
    let mut at = 0u32;
    loop {
        let n = match image.read(&mut expected) {
            Ok(0) => return at as usize == len,
            Ok(n) => n,
            Err(_) => return false,
        };
        if r.read(at, &mut actual[..n]).is_err() || actual[..n] != expected[..n] {
            return false;
        }
        at += n as u32;
    }
}

fn install(
    data: Data,
    step: usize,
    policy: &Policy<'_>,
    flash: &mut Counting<Flash>,
) -> Result<Installed, Error> {
    flash.reset();
    let mut source = data.open(step).ok_or(Error::Source)?;
    let mut region = region(flash)?;
    let mut regions: [&mut dyn Region; 1] = [&mut region];
    let mut installer = Installer::<CHUNK>::new(policy, &mut regions);
    let mut scratch = [0u8; 4096];
    install_from(&mut installer, &mut source, &mut scratch)
}

/// One case: `Ok` if it behaved as expected, or why not.
fn check(
    data: Data,
    expect: Expect,
    step: usize,
    policy: &Policy<'_>,
    flash: &mut Counting<Flash>,
) -> Result<(), &'static str> {
    match (install(data, step, policy, flash), expect) {
        (Ok(installed), Expect::Installs) => {
            let mut scratch = [0u8; 512];
            let verified = region(flash)
                .and_then(|mut r| {
                    verify_region(&mut r, installed.signed_head(), policy, &mut scratch)
                })
                .is_ok();
            if !verified {
                Err("installed, but the flash does not verify against the signed head")
            } else if !image_matches(flash, installed.header().image_len as usize) {
                Err("installed, but the flash differs from the image")
            } else {
                Ok(())
            }
        }
        (Ok(_), Expect::Fails(_)) => Err("accepted (reported valid)"),
        (Err(e), Expect::Installs) => Err(e.as_str()),
        (Err(e), Expect::Fails(want)) if !same(e, want) => Err(e.as_str()),
        (Err(_), Expect::Fails(want)) => {
            // Refused at the head: nothing may have been erased or written.
            let at_head = !matches!(
                want,
                Error::Authentication | Error::Truncated | Error::TrailingBytes
            );
            if at_head && flash.operations() != (0, 0) {
                Err("flash touched before the head was refused")
            } else {
                Ok(())
            }
        }
    }
}

#[cfg(not(feature = "board"))]
fn with_flash<T>(f: impl FnOnce(&mut Counting<Flash>) -> T) -> T {
    critical_section::with(|cs| f(&mut target::FLASH.borrow_ref_mut(cs)))
}

#[cfg(feature = "board")]
fn with_flash<T>(f: impl FnOnce(&mut Counting<Flash>) -> T) -> T {
    let Some(dp) = stm32f4::stm32f405::Peripherals::take() else {
        process::exit(91)
    };
    f(&mut Counting::new(
        sbsfu_f4::internal_flash::InternalFlash::new(dp.FLASH),
    ))
}

#[entry]
fn main() -> ! {
    let signers = [TrustedKey::from_bytes(&SIGNING_KEY).unwrap_or_else(|_| process::exit(90))];
    let device_keys = [
        DeviceKey::from_bytes(DEVICE_KEY),
        DeviceKey::x25519(DEVICE_X25519_KEY),
    ];
    let policy = Policy {
        target: TARGET,
        signers: &signers,
        device_keys: &device_keys,
        min_security_counter: 5,
        require_encryption: false,
    };
    let failures = with_flash(|flash| {
        let mut failures = 0;
        for (name, data, expect) in CASES {
            for &step in READ_SIZES {
                match check(*data, *expect, step, &policy, flash) {
                    Ok(()) => println!("PASS {name} read={step}"),
                    Err(why) => {
                        println!("FAIL {name} read={step}: {why}");
                        failures += 1;
                    }
                }
            }
        }
        failures
    });
    println!(
        "f4-test: {} cases, {} failed",
        CASES.len() * READ_SIZES.len(),
        failures
    );
    process::exit(failures)
}
