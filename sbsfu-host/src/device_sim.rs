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
    Area, BootConfig, BootFlash, BootManager, DeviceInfo, STM32F405_LAYOUT, Stager, StagerTarget,
    confirm,
};
use sbsfu_format::DeviceKey;
use sbsfu_link::Receiver;

use crate::cli::DeviceSimArgs;
use crate::error::{Error, Result};
use crate::keys::{read_device_key, read_trusted_key};
use crate::passphrase::Passphrase;

/// The STM32F405's 1 MiB of flash.
const FLASH_SIZE: u32 = 1024 * 1024;
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
    /// Sleep as long as the F405's flash takes (`--f4-timing`).
    f4_timing: bool,
}

/// RM0090's typical times: sector erase by size, programming per 32-bit word.
fn f4_erase_time(len: u32) -> Duration {
    Duration::from_millis(match len {
        0..=0x4000 => 250,
        0x4001..=0x1_0000 => 550,
        _ => 1000,
    })
}
const F4_WORD_TIME: Duration = Duration::from_micros(16);

#[derive(Debug)]
struct FlashError(NorFlashErrorKind);

impl NorFlashError for FlashError {
    fn kind(&self) -> NorFlashErrorKind {
        self.0
    }
}

impl FileFlash {
    fn open(path: &Path, f4_timing: bool) -> Result<Self> {
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(path)
            .map_err(|e| Error::io(path, e))?;
        let len = file.metadata().map_err(|e| Error::io(path, e))?.len();
        if len == 0 {
            file.write_all_at(&vec![0xFF; FLASH_SIZE as usize], 0)
                .map_err(|e| Error::io(path, e))?;
        } else if len != u64::from(FLASH_SIZE) {
            return Err(Error::Input {
                path: path.to_owned(),
                reason: format!("is {len} bytes, not a flash image of {FLASH_SIZE}"),
            });
        }
        Ok(Self {
            file,
            path: path.to_owned(),
            f4_timing,
        })
    }

    fn check(&self, offset: u32, len: usize) -> std::result::Result<u64, FlashError> {
        let end = u64::from(offset) + len as u64;
        if end > u64::from(FLASH_SIZE) {
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
        FLASH_SIZE as usize
    }
}

impl NorFlash for FileFlash {
    const WRITE_SIZE: usize = 4;
    const ERASE_SIZE: usize = 16 * 1024;

    fn erase(&mut self, from: u32, to: u32) -> std::result::Result<(), FlashError> {
        let at = self.check(from, to.saturating_sub(from) as usize)?;
        let blank = vec![0xFF; to.saturating_sub(from) as usize];
        if self.f4_timing {
            std::thread::sleep(f4_erase_time(to.saturating_sub(from)));
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
        if self.f4_timing {
            std::thread::sleep(F4_WORD_TIME * (bytes.len() / Self::WRITE_SIZE) as u32);
        }
        self.file.write_all_at(bytes, at).map_err(|e| self.io(&e))
    }
}

/// `sbsfu device-sim`: runs until killed.
pub fn run(args: &DeviceSimArgs, pass: &Passphrase) -> Result<Vec<u8>> {
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
    let flash = RefCell::new(FileFlash::open(&args.flash, args.f4_timing)?);
    let listener = TcpListener::bind(&args.listen)
        .map_err(|e| Error::Link(format!("--listen {}: {e}", args.listen)))?;
    log(&format!(
        "listening on {}, flash {}",
        args.listen,
        args.flash.display()
    ));
    loop {
        power_on(&config, &flash, &listener)?;
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
    let info = DeviceInfo {
        busy_ms: 3000,
        accepts_reset: true,
    };
    let mut target = StagerTarget::new(stager, config.target, info);
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
fn serve(
    mut stream: TcpStream,
    receiver: &mut Receiver<FRAME>,
    target: &mut StagerTarget<'_, CHUNK>,
) -> bool {
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
