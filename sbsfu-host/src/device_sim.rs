//! `sbsfu device-sim`: a simulated device on the host, for bridges, servers and CI to test
//! delivery without hardware. It is the device's own code: `sbsfu-link`'s receiver, the
//! `Stager` behind it (`StagerTarget`) and the boot manager, on an STM32F405 flash (the example
//! layout, `STM32F405_LAYOUT`) kept in a file.
//!
//! Every flash operation is written to the file before the device goes on, so killing the
//! process at any moment is a power cut, and starting it again on the same file a reset: the
//! boot manager runs first (installing a pending container, confirming it as a healthy
//! application would), then the receiver serves one TCP connection after another. A `Reset`
//! request (`push --reset`) is a reset too.
//!
//! With `--data-region NAME --data-flash FILE` it also has a data region: a simulated 1 MiB
//! external NOR flash (4 KiB sectors, seen at `0x9000_0000`) kept in its own file, whose first
//! 992 KiB are the region NAME and whose last 32 KiB its install log. Containers naming NAME are
//! installed there at once (`push` prints `installed`), resuming after a kill like the rest.

use std::cell::RefCell;
use std::fs::{File, OpenOptions};
use std::io::{self, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use embedded_storage::nor_flash::{
    ErrorType, NorFlash, NorFlashError, NorFlashErrorKind, ReadNorFlash,
};
use sbsfu_device::Error as DeviceError;
use sbsfu_device::boot::{
    Area, BootConfig, BootFlash, BootManager, DeviceInfo, InstallerTarget, Routed,
    STM32F405_LAYOUT, Stager, StagerTarget, confirm,
};
use sbsfu_device::{FlashRegion, Policy, Region, RegionInstaller, Shared, Uniform};
use sbsfu_format::{DeviceKey, Name};
use sbsfu_link::Receiver;
use sbsfu_link::target::Target;

use crate::cli::DeviceSimArgs;
use crate::error::{Error, Result};
use crate::keys::{read_device_key, read_trusted_key};
use crate::passphrase::Passphrase;

/// The STM32F405's 1 MiB of flash.
const FLASH_SIZE: u32 = 1024 * 1024;
/// The external flash of `--data-region`: 1 MiB in 4 KiB sectors, seen at `DATA_ADDRESS`; the
/// region is all but its last 32 KiB, which hold the install log's two banks.
const DATA_FLASH_SIZE: u32 = 1024 * 1024;
const DATA_SECTOR: u32 = 4096;
const DATA_ADDRESS: u32 = 0x9000_0000;
const DATA_LOG_BANK: u32 = 16 * 1024;
const DATA_REGION_SIZE: u32 = DATA_FLASH_SIZE - 2 * DATA_LOG_BANK;
/// The installer's chunk buffer (the largest `chunk_size` it accepts).
const CHUNK: usize = 16 * 1024;
/// Frames and window the receiver accepts.
const FRAME: usize = 4096;
const WINDOW: u8 = 8;
/// The F405's RAM: where an image's initial stack pointer must point.
const RAM: Area = Area::new(0x2000_0000, 0x2_0000);

/// A NOR flash kept in a file: erased bytes read `0xFF`, programming only clears bits and is
/// refused over bytes not erased, and every operation is in the file when it returns.
struct FileFlash {
    file: File,
    path: PathBuf,
    size: u32,
    /// Sleep as long as the flash takes (`--f4-timing`).
    timing: Option<Timing>,
}

/// How long a flash takes: to erase a sector of so many bytes, to program a 32-bit word.
type Timing = (fn(u32) -> Duration, Duration);

/// RM0090's typical times: sector erase by size, programming per 32-bit word.
fn f4_erase_time(len: u32) -> Duration {
    Duration::from_millis(match len {
        0..=0x4000 => 250,
        0x4001..=0x1_0000 => 550,
        _ => 1000,
    })
}
const F4_WORD_TIME: Duration = Duration::from_micros(16);

/// A serial NOR flash's typical 4 KiB sector erase (Winbond W25Q, say).
fn qspi_erase_time(_len: u32) -> Duration {
    Duration::from_millis(45)
}

#[derive(Debug)]
struct FlashError(NorFlashErrorKind);

impl NorFlashError for FlashError {
    fn kind(&self) -> NorFlashErrorKind {
        self.0
    }
}

impl FileFlash {
    fn open(path: &Path, size: u32, timing: Option<Timing>) -> Result<Self> {
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(path)
            .map_err(|e| Error::io(path, e))?;
        let len = file.metadata().map_err(|e| Error::io(path, e))?.len();
        if len == 0 {
            file.write_all_at(&vec![0xFF; size as usize], 0)
                .map_err(|e| Error::io(path, e))?;
        } else if len != u64::from(size) {
            return Err(Error::Input {
                path: path.to_owned(),
                reason: format!("is {len} bytes, not a flash image of {size}"),
            });
        }
        Ok(Self {
            file,
            path: path.to_owned(),
            size,
            timing,
        })
    }

    fn check(&self, offset: u32, len: usize) -> std::result::Result<u64, FlashError> {
        let end = u64::from(offset) + len as u64;
        if end > u64::from(self.size) {
            return Err(FlashError(NorFlashErrorKind::OutOfBounds));
        }
        Ok(u64::from(offset))
    }

    fn io(&self, e: &io::Error) -> FlashError {
        eprintln!("device-sim: {}: {e}", self.path.display());
        FlashError(NorFlashErrorKind::Other)
    }
}

impl ErrorType for FileFlash {
    type Error = FlashError;
}

impl ReadNorFlash for FileFlash {
    const READ_SIZE: usize = 1;

    fn read(&mut self, offset: u32, bytes: &mut [u8]) -> std::result::Result<(), FlashError> {
        let at = self.check(offset, bytes.len())?;
        self.file.read_exact_at(bytes, at).map_err(|e| self.io(&e))
    }

    fn capacity(&self) -> usize {
        self.size as usize
    }
}

impl NorFlash for FileFlash {
    const WRITE_SIZE: usize = 4;
    const ERASE_SIZE: usize = 16 * 1024;

    fn erase(&mut self, from: u32, to: u32) -> std::result::Result<(), FlashError> {
        let at = self.check(from, to.saturating_sub(from) as usize)?;
        let blank = vec![0xFF; to.saturating_sub(from) as usize];
        if let Some((erase, _)) = self.timing {
            std::thread::sleep(erase(to.saturating_sub(from)));
        }
        self.file.write_all_at(&blank, at).map_err(|e| self.io(&e))
    }

    fn write(&mut self, offset: u32, bytes: &[u8]) -> std::result::Result<(), FlashError> {
        let at = self.check(offset, bytes.len())?;
        if !(offset as usize).is_multiple_of(Self::WRITE_SIZE)
            || !bytes.len().is_multiple_of(Self::WRITE_SIZE)
        {
            return Err(FlashError(NorFlashErrorKind::NotAligned));
        }
        let mut old = vec![0u8; bytes.len()];
        self.file
            .read_exact_at(&mut old, at)
            .map_err(|e| self.io(&e))?;
        if old.iter().any(|b| *b != 0xFF) {
            // NOR programs erased cells only: the device code must never ask for more.
            return Err(FlashError(NorFlashErrorKind::Other));
        }
        if let Some((_, word)) = self.timing {
            std::thread::sleep(word * (bytes.len() / Self::WRITE_SIZE) as u32);
        }
        self.file.write_all_at(bytes, at).map_err(|e| self.io(&e))
    }
}

/// `sbsfu device-sim`: runs until killed.
pub fn run(args: &DeviceSimArgs, pass: &Passphrase) -> Result<Vec<u8>> {
    if let Some(name) = &args.data_region
        && (Name::<16>::new(name).is_err() || name == sbsfu_device::boot::ACTIVE_REGION)
    {
        return Err(Error::Usage(format!(
            "--data-region {name}: a region name is 1 to 16 bytes of [a-z0-9._-], not `app`"
        )));
    }
    let signers = args
        .pubkeys
        .iter()
        .map(|p| read_trusted_key(p, pass))
        .collect::<Result<Vec<_>>>()?;
    let device_keys = args
        .decrypt_keys
        .iter()
        .map(|p| read_device_key(p, pass))
        .collect::<Result<Vec<DeviceKey>>>()?;
    let config = BootConfig {
        target: &args.target,
        ram: RAM,
        signers: &signers,
        device_keys: &device_keys,
        trial_boots: 1,
        require_encryption: false,
    };
    let timing = |erase: fn(u32) -> Duration| args.f4_timing.then_some((erase, F4_WORD_TIME));
    let flash = RefCell::new(FileFlash::open(
        &args.flash,
        FLASH_SIZE,
        timing(f4_erase_time),
    )?);
    let data = match (&args.data_region, &args.data_flash) {
        (Some(name), Some(path)) => {
            let flash = FileFlash::open(path, DATA_FLASH_SIZE, timing(qspi_erase_time))?;
            Some((name.as_str(), RefCell::new(flash)))
        }
        _ => None,
    };
    let listener = TcpListener::bind(&args.listen)
        .map_err(|e| Error::Link(format!("--listen {}: {e}", args.listen)))?;
    log(&format!(
        "listening on {}, flash {}",
        args.listen,
        args.flash.display()
    ));
    loop {
        power_on(&config, &flash, data.as_ref(), &listener)?;
        log("reset");
    }
}

fn log(line: &str) {
    eprintln!("device-sim: {line}");
}

/// One power-on: the boot manager, then the application's receiver until a `Reset`.
fn power_on(
    config: &BootConfig<'_>,
    flash: &RefCell<FileFlash>,
    data: Option<&(&str, RefCell<FileFlash>)>,
    listener: &TcpListener,
) -> Result<()> {
    let device = |e: DeviceError| Error::Link(format!("device: {e}"));
    let mut regions = STM32F405_LAYOUT
        .regions(&BootFlash::stm32f405(flash))
        .map_err(device)?;
    match BootManager::<CHUNK>::new(config, &mut regions, None).and_then(|mut m| m.run()) {
        Ok(boot) => {
            let h = &boot.header;
            log(&format!(
                "boot: {} {} (security counter {}){}",
                h.region,
                h.version,
                h.security_counter,
                if boot.trial { ", on trial" } else { "" }
            ));
            if boot.trial {
                // The application is healthy: it confirms itself.
                confirm(&mut regions.state_log().map_err(device)?, None).map_err(device)?;
                log("confirmed");
            }
        }
        Err(DeviceError::NoImage) => log("boot: no image installed yet"),
        Err(e) => log(&format!("boot: {e}")),
    }
    let stager = Stager::<CHUNK>::new(config, &mut regions).map_err(device)?;
    let floor = stager.state().floor;
    let info = DeviceInfo {
        busy_ms: 3000,
        accepts_reset: true,
    };
    let target = StagerTarget::new(stager, config.target, info);
    let Some((name, data)) = data else {
        return serve_all(target, listener);
    };
    // The data region: its own policy (the device's floor), its install log.
    let policy = Policy {
        target: config.target,
        signers: config.signers,
        device_keys: config.device_keys,
        min_security_counter: floor,
        require_encryption: config.require_encryption,
    };
    let sectors = Uniform {
        size: DATA_SECTOR,
        capacity: DATA_FLASH_SIZE,
    };
    let area = |name, start, len| {
        FlashRegion::new(
            name,
            Shared(data),
            sectors,
            DATA_ADDRESS + start,
            start,
            len,
        )
        .map_err(device)
    };
    let mut region = area(name, 0, DATA_REGION_SIZE)?;
    let mut log0 = area("log0", DATA_REGION_SIZE, DATA_LOG_BANK)?;
    let mut log1 = area("log1", DATA_REGION_SIZE + DATA_LOG_BANK, DATA_LOG_BANK)?;
    let banks: [&mut dyn Region; 2] = [&mut log0, &mut log1];
    let installer = RegionInstaller::<CHUNK>::new(&policy, &mut region, banks).map_err(device)?;
    let data_target = InstallerTarget::new(installer, config.target, info);
    serve_all(Routed::new(target, data_target, name), listener)
}

/// The application's receiver over `target`, one connection after another, until a `Reset`.
fn serve_all<T: Target>(mut target: T, listener: &TcpListener) -> Result<()> {
    let mut receiver = Receiver::<FRAME>::new(WINDOW);
    for stream in listener.incoming() {
        let stream = match stream {
            Ok(s) => s,
            Err(e) => {
                log(&format!("accept: {e}"));
                continue;
            }
        };
        if serve(stream, &mut receiver, &mut target) {
            return Ok(());
        }
    }
    Ok(())
}

/// Serves one connection until it closes; `true` when the sender asked for a reset.
fn serve<T: Target>(mut stream: TcpStream, receiver: &mut Receiver<FRAME>, target: &mut T) -> bool {
    let peer = stream
        .peer_addr()
        .map_or_else(|_| "?".to_owned(), |a| a.to_string());
    log(&format!("connection from {peer}"));
    if stream
        .set_read_timeout(Some(Duration::from_millis(10)))
        .and_then(|()| stream.set_nodelay(true))
        .is_err()
    {
        return false;
    }
    let mut buf = [0u8; 4096];
    loop {
        let n = match stream.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                ) =>
            {
                0
            }
            Err(_) => break,
        };
        let mut rest = &buf[..n];
        while !rest.is_empty() {
            let used = receiver.receive(target, rest);
            rest = &rest[used..];
            let Some(reply) = receiver.transmit() else {
                if used == 0 {
                    break;
                }
                continue;
            };
            if stream.write_all(reply).is_err() {
                return false;
            }
        }
        while receiver.poll(target) {
            if receiver
                .transmit()
                .is_some_and(|r| stream.write_all(r).is_err())
            {
                return false;
            }
        }
        if receiver.reset_requested() {
            return true;
        }
    }
    log(&format!("{peer} disconnected"));
    false
}
