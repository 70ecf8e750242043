//! `sbsfu verify` and `sbsfu decrypt`: the device installer itself, run into a flash that
//! streams what it programs (`SinkFlash`), so the host accepts exactly what a device accepts.

use std::fs::File;
use std::io::{self, Seek, Write};
use std::path::Path;

use sbsfu_device::{
    FlashRegion, Installer, IoSource, Policy, Region, SinkFlash, TrustedKey, install_from,
    verify_head,
};
use sbsfu_format::{DeviceKey, Header, MAX_CHUNK_SIZE};
use serde::Serialize;

use crate::cli::{DecryptArgs, TrustArgs, VerifyArgs};
use crate::digest_thread::DigestThread;
use crate::error::{Error, Result};
use crate::inspect::read_head;
use crate::keys::{read_device_key, read_public_key, read_trusted_key};
use crate::keyset;
use crate::output::{Output, SECRET};
use crate::passphrase::Passphrase;
use crate::report::{HeaderFields, Report};

/// Bytes read from the container per `feed`.
const READ_SIZE: usize = 64 * 1024;

/// What installing established.
struct Verdict {
    /// The verified header.
    header: Header,
    /// Its encoded length.
    header_len: usize,
    /// True: every chunk authenticated, the digest matched and the container ended where
    /// declared, so a device would install it. False: the container is encrypted and no device
    /// key was given, so only the signed header (signature, target, security counter) was checked.
    payload_checked: bool,
}

/// What the device trusts: the keys `args` name, loaded.
struct Trust {
    signers: Vec<TrustedKey>,
    device_keys: Vec<DeviceKey>,
}

impl Trust {
    fn load(args: &TrustArgs, target: &str, pass: &Passphrase) -> Result<Self> {
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
                .map(|p| read_trusted_key(p, pass))
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

/// Installs the container at `path` as a device trusting what `args` say would, writing the
/// installed image to `image` (a sink for `verify`, the output file for `decrypt`).
fn install_as_device(
    path: &Path,
    args: &TrustArgs,
    pass: &Passphrase,
    image: &mut dyn Write,
) -> Result<Verdict> {
    let (head, file_len) = read_head(path)?;
    let target = args
        .target
        .clone()
        .unwrap_or_else(|| head.header.target.as_str().to_owned());
    let trust = Trust::load(args, &target, pass)?;
    let policy = Policy {
        target: &target,
        signers: &trust.signers,
        device_keys: &trust.device_keys,
        min_security_counter: args.min_security_counter,
        require_encryption: args.require_encryption,
    };
    let h = head.header;
    let header_len = head.message.header_bytes().len();
    if h.is_encrypted() && trust.device_keys.is_empty() {
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

/// `sbsfu verify`: what a device would say of a container.
#[derive(Serialize)]
pub struct Verified {
    file: String,
    /// Always true: a container that does not verify is an error.
    verified: bool,
    /// Every chunk authenticated and the digest matched (false: encrypted, and no device key
    /// given, so the signed header alone was checked).
    payload_checked: bool,
    #[serde(flatten)]
    fields: HeaderFields,
}

impl Report for Verified {
    fn text(&self) -> String {
        let mut s = if self.payload_checked {
            format!(
                "OK: {} would install on {}: signature, every chunk and the image digest verified\n",
                self.file,
                self.fields.target()
            )
        } else {
            format!(
                "HEADER OK: {}: signature, target and security counter verified; payload NOT \
                 checked (encrypted, no --decrypt-key given)\n",
                self.file
            )
        };
        s.push_str(&self.fields.lines());
        s
    }
}

/// `sbsfu verify`.
pub fn verify(args: &VerifyArgs, pass: &Passphrase) -> Result<Verified> {
    let v = install_as_device(&args.container, &args.trust, pass, &mut io::sink())?;
    Ok(Verified {
        file: args.container.display().to_string(),
        verified: true,
        payload_checked: v.payload_checked,
        fields: HeaderFields::new(&v.header, v.header_len),
    })
}

/// `sbsfu decrypt`: the image a device would install, into `--out` (mode 0600: it is the
/// plaintext); returns what it prints.
pub fn decrypt(args: &DecryptArgs, pass: &Passphrase) -> Result<String> {
    let mut file = Output::create(&args.out, true, SECRET)?;
    let v = {
        let mut w = file.writer();
        let v = install_as_device(&args.container, &args.trust, pass, &mut w)?;
        w.flush().map_err(|e| Error::io(&args.out, e))?;
        v
    };
    if !v.payload_checked {
        return Err(Error::Usage(
            "the container is encrypted: give --decrypt-key".into(),
        ));
    }
    file.commit()?;
    Ok(format!(
        "wrote {} ({} bytes, verified)\n",
        args.out.display(),
        v.header.image_len
    ))
}
