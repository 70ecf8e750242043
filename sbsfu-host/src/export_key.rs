//! `sbsfu export-key`: a device key as a constant for firmware (or its raw bytes). The output is
//! secret: it is written with mode 0600, and wiped from memory once printed.
//!
//! Each kind of device key says how it is named in source: a variant of [`SecretKey`] and a
//! branch of [`read`].

use zeroize::Zeroizing;

use sbsfu_format::{DeviceKey, DeviceKeyKind, KeyId};

use crate::cli::{ExportFormat, ExportKeyArgs};
use crate::constant::{Constant, Language};
use crate::error::Result;
use crate::keys::read_device_key;
use crate::output::{Output, SECRET};
use crate::passphrase::Passphrase;

/// A secret key that firmware embeds.
pub enum SecretKey {
    /// The AES-256 key that unwraps content keys (`sbsfu_format::DeviceKey`).
    Aes256(DeviceKey),
    /// The X25519 private key that decapsulates content keys (`DeviceKey::x25519`).
    X25519(DeviceKey),
}

impl SecretKey {
    /// The key's bytes.
    pub fn bytes(&self) -> &[u8] {
        match self {
            SecretKey::Aes256(k) | SecretKey::X25519(k) => k.as_bytes(),
        }
    }

    /// Its key id, as containers name it.
    pub fn id(&self) -> KeyId {
        match self {
            SecretKey::Aes256(k) | SecretKey::X25519(k) => k.id(),
        }
    }

    /// The names of its constant, and what the comment says it is.
    fn names(&self) -> (&'static str, &'static str, &'static str) {
        match self {
            SecretKey::Aes256(_) => (
                "SBSFU_DEVICE_KEY",
                "sbsfu_device_key",
                "AES-256 device key for sbsfu containers",
            ),
            SecretKey::X25519(_) => (
                "SBSFU_DEVICE_X25519_KEY",
                "sbsfu_device_x25519_key",
                "X25519 device key for sbsfu containers (`DeviceKey::x25519`)",
            ),
        }
    }
}

/// Reads the device key at `path`.
pub fn read(path: &std::path::Path, pass: &Passphrase) -> Result<SecretKey> {
    let key = read_device_key(path, pass)?;
    Ok(match key.kind() {
        DeviceKeyKind::Aes256 => SecretKey::Aes256(key),
        DeviceKeyKind::X25519 => SecretKey::X25519(key),
    })
}

/// The key in `format`.
pub fn render(key: &SecretKey, format: ExportFormat) -> Zeroizing<Vec<u8>> {
    let (rust_name, c_name, what) = key.names();
    let comment = format!(
        "{what} (key id {}). SECRET: keep it out of version control.",
        key.id()
    );
    let constant = Constant {
        rust_name,
        c_name,
        comment: &comment,
        bytes: key.bytes(),
    };
    let text = |language| Zeroizing::new(constant.render(language).as_bytes().to_vec());
    match format {
        ExportFormat::Rust => text(Language::Rust),
        ExportFormat::C => text(Language::C),
        ExportFormat::Raw => Zeroizing::new(key.bytes().to_vec()),
    }
}

/// Exports `args.key`: into `--out` (mode 0600), or returned for standard output.
pub fn export_key(args: &ExportKeyArgs, pass: &Passphrase) -> Result<Zeroizing<Vec<u8>>> {
    let key = read(&args.key, pass)?;
    let bytes = render(&key, args.format);
    match &args.out {
        Some(path) => {
            let mut out = Output::create(path, true, SECRET)?;
            out.write_all(&bytes)?;
            out.commit()?;
            Ok(Zeroizing::new(
                format!("wrote {} (secret, mode 0600)\n", path.display()).into_bytes(),
            ))
        }
        None => Ok(bytes),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_format_holds_the_key() {
        let key = SecretKey::Aes256(DeviceKey::from_bytes([0xA5; 32]));
        assert_eq!(render(&key, ExportFormat::Raw).as_slice(), [0xA5; 32]);
        let rust = String::from_utf8(render(&key, ExportFormat::Rust).to_vec()).unwrap();
        assert!(
            rust.contains("pub const SBSFU_DEVICE_KEY: [u8; 32] = ["),
            "{rust}"
        );
        assert_eq!(rust.matches("0xa5").count(), 32);
        assert!(rust.contains(&key.id().to_string()));
        let c = String::from_utf8(render(&key, ExportFormat::C).to_vec()).unwrap();
        assert!(
            c.contains("static const unsigned char sbsfu_device_key[32] = {"),
            "{c}"
        );
        assert_eq!(c.matches("0xa5").count(), 32);
        let x = SecretKey::X25519(DeviceKey::x25519([0x5a; 32]));
        let rust = String::from_utf8(render(&x, ExportFormat::Rust).to_vec()).unwrap();
        assert!(rust.contains("pub const SBSFU_DEVICE_X25519_KEY: [u8; 32] = ["));
        assert!(rust.contains(&x.id().to_string()));
        assert_eq!(render(&x, ExportFormat::Raw).as_slice(), [0x5a; 32]);
    }
}
