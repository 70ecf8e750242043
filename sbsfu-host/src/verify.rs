//! `sbsfu verify` and `sbsfu decrypt`: the device installer itself, run against a simulated
//! flash, so the host accepts exactly what a device accepts.

use std::fs::File;
use std::io::{self, Seek, Write};
use std::path::Path;

use sbsfu_device::verify_head;
use sbsfu_device::{FlashRegion, Region, SinkFlash};
use sbsfu_device::{Installer, Policy, TrustedKey};
use sbsfu_device::{IoSource, install_from};
use sbsfu_format::MAX_CHUNK_SIZE;
use sbsfu_format::{DeviceKey, Header};

use crate::cli::DeviceArgs;
use crate::digest_thread::DigestThread;
use crate::error::{Error, Result};
use crate::inspect::read_head;
use crate::keys::{read_device_key, read_public_key};
use crate::keyset;
use crate::passphrase::Passphrase;

/// Bytes read from the container per `feed`.
const READ_SIZE: usize = 64 * 1024;

/// What verification established.
pub struct Verdict {
    /// The verified header.
    pub header: Header,
    /// Its encoded length.
    pub header_len: usize,
    /// True: every chunk authenticated, the digest matched and the container ended where
    /// declared, so a device would install it. False: the container is encrypted and no device
    /// key was given, so only the signed header (signature, target, security counter) was checked.
    pub payload_checked: bool,
}

/// The trusted keys and policy options of `args`, loaded.
struct Device {
    signers: Vec<TrustedKey>,
    device_keys: Vec<DeviceKey>,
}

impl Device {
    fn load(args: &DeviceArgs, target: &str, pass: &Passphrase) -> Result<Self> {
        let signers = match (&args.keyset, &args.root) {
            (Some(path), Some(root_path)) => {
                // The keys of a key set, once it verifies as the device's KeyStore would.
                let set = keyset::read(path)?;
                let root = read_public_key(root_path, pass)?;
                keyset::check(path, &set, (root_path, &root), target, None)?
                    .signers()
                    .to_vec()
            }
            _ => args
                .pubkeys
                .iter()
                .map(|p| {
                    let k = read_public_key(p, pass)?;
                    TrustedKey::from_bytes(k.as_bytes())
                        .map_err(|_| Error::key(p, "is a weak or invalid Ed25519 key"))
                })
                .collect::<Result<_>>()?,
        };
        let device_keys = args
            .decrypt_keys
            .iter()
            .map(|p| read_device_key(p, pass))
            .collect::<Result<_>>()?;
        Ok(Self {
            signers,
            device_keys,
        })
    }
}

/// Verifies the container at `path` as a device configured by `args` would, writing the
/// installed image to `image` (a sink for `verify`, the output file for `decrypt`).
pub fn run_device(
    path: &Path,
    args: &DeviceArgs,
    pass: &Passphrase,
    image: &mut dyn Write,
) -> Result<Verdict> {
    let (head, file_len) = read_head(path)?;
    let target = args
        .target
        .clone()
        .unwrap_or_else(|| head.header.target.as_str().to_owned());
    let device = Device::load(args, &target, pass)?;
    let policy = Policy {
        target: &target,
        signers: &device.signers,
        device_keys: &device.device_keys,
        min_security_counter: args.min_security_counter,
        require_encryption: args.require_encryption,
    };
    let h = head.header;
    let header_len = head.message.header_bytes().len();
    if h.device_key().is_some() && device.device_keys.is_empty() {
        let header = verify_head(&head.message, &head.signature, &policy)
            .map_err(|e| Error::rejected(path, e))?;
        return Ok(Verdict {
            header,
            header_len,
            payload_checked: false,
        });
    }

    // A flash just large enough for the declared image, at the declared place: the installer
    // itself checks the header before it erases a byte of it.
    let capacity = h
        .image_len
        .max(1)
        .next_multiple_of(SinkFlash::<io::Sink>::SECTOR);
    let mut flash = SinkFlash::new(image, capacity);
    let map = flash.sectors();
    let mut region = FlashRegion::new(
        h.region.as_str(),
        &mut flash,
        map,
        h.load_address,
        0,
        capacity,
    )
    .map_err(|e| Error::rejected(path, e))?;
    let mut regions: [&mut dyn Region; 1] = [&mut region];
    // The installer decrypts on this thread while SHA-256 runs on another.
    let mut installer = Box::new(Installer::<{ MAX_CHUNK_SIZE as usize }, _>::with_hasher(
        &policy,
        &mut regions,
        DigestThread::start(),
    ));
    let mut file = File::open(path).map_err(|e| Error::io(path, e))?;
    let mut source = IoSource::new(&mut file);
    let installed = install_from(&mut installer, &mut source, &mut vec![0u8; READ_SIZE]);
    if let Some(e) = source.error {
        return Err(Error::io(path, e));
    }
    // At the end of the file, it must still be the length it was when its head was read.
    if source.ended && file.stream_position().map_err(|e| Error::io(path, e))? != file_len {
        return Err(Error::io(
            path,
            io::Error::other("file changed while it was read"),
        ));
    }
    let installed = installed.map_err(|e| Error::rejected(path, e))?;
    Ok(Verdict {
        header: *installed.header(),
        header_len,
        payload_checked: true,
    })
}
