//! `sbsfu keygen` and `sbsfu pubkey`.

use std::path::Path;

use ed25519_dalek::{SigningKey, VerifyingKey};
use sbsfu_format::{DeviceKey, KeyId, x25519_public_key};

use crate::cli::{KeyType, KeygenArgs, PubkeyArgs, PubkeyFormat};
use crate::constant::{Constant, Language};
use crate::error::{Error, Result};
use crate::keys::{
    device_key_pem, encrypted_device_key_pem, encrypted_signing_key_pem, public_key_pem,
    random_bytes, read_device_key, read_public_key, read_recipient_key, signing_key_pem,
    x25519_key_id, x25519_private_key_pem, x25519_public_key_pem,
};
use crate::output::{Output, PRIVATE, PUBLIC};
use crate::passphrase::Passphrase;

/// Generates a key into `args.out` (mode 0600, never over an existing file unless `--force`),
/// passphrase-protected with `--protect` or `--passphrase-file`.
pub fn keygen(args: &KeygenArgs, pass: &Passphrase) -> Result<String> {
    let mut out = Output::create(&args.out, args.force, PRIVATE)?;
    let passphrase = if args.protect || pass.has_file() {
        Some(pass.for_new_key(&args.out)?)
    } else {
        None
    };
    let seed = zeroize::Zeroizing::new(random_bytes::<32>().map_err(|e| Error::io(&args.out, e))?);
    let (pem, id) = match args.key_type {
        KeyType::Ed25519 => {
            let key = SigningKey::from_bytes(&seed);
            let pem = match &passphrase {
                Some(p) => encrypted_signing_key_pem(&key, p)?,
                None => signing_key_pem(&key)?,
            };
            (pem, KeyId::of_ed25519(key.verifying_key().as_bytes()))
        }
        KeyType::Aes256 => {
            let key = DeviceKey::from_bytes(*seed);
            let pem = match &passphrase {
                Some(p) => encrypted_device_key_pem(&key, p)?,
                None => device_key_pem(&key)?,
            };
            (pem, key.id())
        }
        KeyType::X25519 => {
            let pem = x25519_private_key_pem(&seed, passphrase.as_ref().map(|p| p.as_str()))?;
            (pem, x25519_key_id(&x25519_public_key(&seed)))
        }
    };
    out.write_all(pem.as_bytes())?;
    out.commit()?;
    let protection = if passphrase.is_some() {
        ", passphrase-protected"
    } else {
        ""
    };
    Ok(format!(
        "wrote {} (key id {id}{protection})",
        args.out.display()
    ))
}

/// A public key `pubkey` exports.
enum Public {
    Ed25519(VerifyingKey),
    X25519([u8; 32]),
}

/// The public key of the key file at `path`: an Ed25519 signing key or public key, or an X25519
/// device key or public key.
fn read_any_public(path: &Path, pass: &Passphrase) -> Result<Public> {
    match read_public_key(path, pass) {
        Ok(k) => Ok(Public::Ed25519(k)),
        Err(ed25519_error) => {
            if let Ok(k) = read_recipient_key(path) {
                return Ok(Public::X25519(k));
            }
            match read_device_key(path, pass) {
                Ok(k) => k.public_key().map(Public::X25519).ok_or_else(|| {
                    Error::key(path, "is an AES-256 device key, which has no public half")
                }),
                Err(_) => Err(ed25519_error),
            }
        }
    }
}

/// Exports a public key in `args.format`: into `--out`, or returned for standard output.
pub fn pubkey(args: &PubkeyArgs, pass: &Passphrase) -> Result<Vec<u8>> {
    let bytes = match read_any_public(&args.key, pass)? {
        Public::Ed25519(key) => render(&key, args.format)?,
        Public::X25519(key) => render_x25519(&key, args.format)?,
    };
    match &args.out {
        Some(path) => {
            let mut out = Output::create(path, true, PUBLIC)?;
            out.write_all(&bytes)?;
            out.commit()?;
            Ok(format!("wrote {}\n", path.display()).into_bytes())
        }
        None => Ok(bytes),
    }
}

fn render(key: &VerifyingKey, format: PubkeyFormat) -> Result<Vec<u8>> {
    let comment = format!(
        "Ed25519 public key trusted to sign sbsfu images (key id {}).",
        KeyId::of_ed25519(key.as_bytes())
    );
    let constant = Constant {
        rust_name: "SBSFU_SIGNING_KEY",
        c_name: "sbsfu_signing_key",
        comment: &comment,
        bytes: key.as_bytes(),
    };
    Ok(match format {
        PubkeyFormat::Pem => public_key_pem(key)?.into_bytes(),
        PubkeyFormat::Raw => key.as_bytes().to_vec(),
        PubkeyFormat::Rust => constant.render(Language::Rust).as_bytes().to_vec(),
        PubkeyFormat::C => constant.render(Language::C).as_bytes().to_vec(),
    })
}

fn render_x25519(key: &[u8; 32], format: PubkeyFormat) -> Result<Vec<u8>> {
    let comment = format!(
        "X25519 public key of an sbsfu device (key id {}): `sbsfu sign --encrypt-to` encrypts to it.",
        x25519_key_id(key)
    );
    let constant = Constant {
        rust_name: "SBSFU_DEVICE_PUBLIC_KEY",
        c_name: "sbsfu_device_public_key",
        comment: &comment,
        bytes: key,
    };
    Ok(match format {
        PubkeyFormat::Pem => x25519_public_key_pem(key)?.into_bytes(),
        PubkeyFormat::Raw => key.to_vec(),
        PubkeyFormat::Rust => constant.render(Language::Rust).as_bytes().to_vec(),
        PubkeyFormat::C => constant.render(Language::C).as_bytes().to_vec(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn constants_list_every_byte_once() {
        let key = SigningKey::from_bytes(&[9; 32]).verifying_key();
        let rust = String::from_utf8(render(&key, PubkeyFormat::Rust).unwrap()).unwrap();
        assert_eq!(rust.matches("0x").count(), 32);
        assert!(rust.contains("pub const SBSFU_SIGNING_KEY: [u8; 32] = ["));
        assert!(rust.ends_with(",\n];\n"), "{rust}");
        let c = String::from_utf8(render(&key, PubkeyFormat::C).unwrap()).unwrap();
        assert_eq!(c.matches("0x").count(), 32);
        assert_eq!(render(&key, PubkeyFormat::Raw).unwrap(), key.as_bytes());
    }
}
