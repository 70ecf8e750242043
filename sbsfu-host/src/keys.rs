//! Key files: Ed25519 keys as PKCS#8 / SPKI PEM (what `openssl pkey` reads and writes), device
//! keys as a PEM block of 32 bytes.

use std::fs;
use std::path::Path;

use ::pkcs8::der::pem::{self, LineEnding};
use ed25519_dalek::pkcs8::{
    self, DecodePrivateKey, DecodePublicKey, EncodePrivateKey, EncodePublicKey,
};
use ed25519_dalek::{SigningKey, VerifyingKey};
use rand::TryRng;
use sbsfu_format::{DeviceKey, KeyId};
use zeroize::Zeroizing;

use crate::error::{Error, Result};

/// PEM label of a device key file.
pub const DEVICE_KEY_LABEL: &str = "SBSFU AES256 DEVICE KEY";

/// Key ids of the published development keys in `keys-example/` (checked against the files by a
/// test). Signing with them needs `--allow-dev-key`.
pub const DEV_SIGNING_KEY_ID: &str = "a9f80929a4145aa5";
/// Key id of the development device key in `keys-example/device.key`.
pub const DEV_DEVICE_KEY_ID: &str = "4627aaf9b624390b";

/// Whether `id` names one of the published development keys.
pub fn is_dev_key(id: KeyId) -> bool {
    let id = id.to_string();
    id == DEV_SIGNING_KEY_ID || id == DEV_DEVICE_KEY_ID
}

/// 32 bytes from the operating system's CSPRNG.
pub fn random_bytes<const N: usize>() -> std::io::Result<[u8; N]> {
    let mut out = [0u8; N];
    rand::rngs::SysRng
        .try_fill_bytes(&mut out)
        .map_err(|e| std::io::Error::other(format!("OS random number generator failed: {e}")))?;
    Ok(out)
}

fn read_text(path: &Path) -> Result<Zeroizing<String>> {
    let bytes = Zeroizing::new(fs::read(path).map_err(|e| Error::io(path, e))?);
    String::from_utf8(bytes.to_vec())
        .map(Zeroizing::new)
        .map_err(|_| Error::key(path, "not a PEM file (not text)"))
}

fn pem_label(text: &str) -> Option<&str> {
    pem::decode_label(text.as_bytes()).ok()
}

/// Reads an Ed25519 private key (PKCS#8 PEM).
pub fn read_signing_key(path: &Path) -> Result<SigningKey> {
    let text = read_text(path)?;
    match pem_label(&text) {
        Some("PRIVATE KEY") => SigningKey::from_pkcs8_pem(&text)
            .map_err(|e| Error::key(path, format!("not an Ed25519 PKCS#8 private key ({e})"))),
        Some("ENCRYPTED PRIVATE KEY") => Err(Error::key(
            path,
            "is passphrase-protected; passphrase-protected keys are not supported yet",
        )),
        Some(other) => Err(Error::key(
            path,
            format!("expected a PRIVATE KEY, found a PEM {other}"),
        )),
        None => Err(Error::key(path, "not a PEM file")),
    }
}

/// Reads an Ed25519 public key: SPKI PEM (`PUBLIC KEY`), or the public half of a private key.
pub fn read_public_key(path: &Path) -> Result<VerifyingKey> {
    let text = read_text(path)?;
    match pem_label(&text) {
        Some("PUBLIC KEY") => VerifyingKey::from_public_key_pem(&text)
            .map_err(|e| Error::key(path, format!("not an Ed25519 public key ({e})"))),
        Some("PRIVATE KEY" | "ENCRYPTED PRIVATE KEY") => {
            read_signing_key(path).map(|k| k.verifying_key())
        }
        Some(other) => Err(Error::key(
            path,
            format!("expected a PUBLIC KEY, found a PEM {other}"),
        )),
        None => Err(Error::key(path, "not a PEM file")),
    }
}

/// Reads a device key file.
pub fn read_device_key(path: &Path) -> Result<DeviceKey> {
    let text = read_text(path)?;
    let (label, bytes) = pem::decode_vec(text.as_bytes())
        .map_err(|_| Error::key(path, "not a device key (expected a PEM block)"))?;
    let bytes = Zeroizing::new(bytes);
    if label != DEVICE_KEY_LABEL {
        return Err(Error::key(
            path,
            format!("expected a PEM {DEVICE_KEY_LABEL}, found a PEM {label}"),
        ));
    }
    let key: [u8; 32] = bytes
        .as_slice()
        .try_into()
        .map_err(|_| Error::key(path, "device key is not 32 bytes"))?;
    Ok(DeviceKey::from_bytes(key))
}

/// PKCS#8 v1 PEM of a signing key (RFC 8410: the seed only). v2, which also embeds the public
/// key, is not read by OpenSSL 3.0's `openssl pkey`.
pub fn signing_key_pem(key: &SigningKey) -> Result<Zeroizing<String>> {
    let mut pair = pkcs8::KeypairBytes::from(key.clone());
    pair.public_key = None;
    pair.to_pkcs8_pem(LineEnding::LF)
        .map_err(|e| Error::Usage(format!("encoding the private key failed: {e}")))
}

/// SPKI PEM of a public key.
pub fn public_key_pem(key: &VerifyingKey) -> Result<String> {
    key.to_public_key_pem(LineEnding::LF)
        .map_err(|e| Error::Usage(format!("encoding the public key failed: {e}")))
}

/// PEM of a device key.
pub fn device_key_pem(key: &DeviceKey) -> Result<Zeroizing<String>> {
    pem::encode_string(DEVICE_KEY_LABEL, LineEnding::LF, key.as_bytes())
        .map(Zeroizing::new)
        .map_err(|e| Error::Usage(format!("encoding the device key failed: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn example(name: &str) -> std::path::PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../keys-example")
            .join(name)
    }

    #[test]
    fn dev_key_ids_match_the_published_files() {
        let signing = read_signing_key(&example("signing.pem")).unwrap();
        let public = read_public_key(&example("signing.pub.pem")).unwrap();
        assert_eq!(signing.verifying_key(), public);
        assert_eq!(
            KeyId::of_ed25519(public.as_bytes()).to_string(),
            DEV_SIGNING_KEY_ID
        );
        let device = read_device_key(&example("device.key")).unwrap();
        assert_eq!(device.id().to_string(), DEV_DEVICE_KEY_ID);
    }

    #[test]
    fn pem_round_trips() {
        let k = SigningKey::from_bytes(&random_bytes().unwrap());
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("k.pem");
        fs::write(&p, signing_key_pem(&k).unwrap().as_bytes()).unwrap();
        assert_eq!(read_signing_key(&p).unwrap().to_bytes(), k.to_bytes());
        let q = dir.path().join("k.pub.pem");
        fs::write(&q, public_key_pem(&k.verifying_key()).unwrap()).unwrap();
        assert_eq!(read_public_key(&q).unwrap(), k.verifying_key());
        assert!(matches!(read_device_key(&q), Err(Error::Key { .. })));
        assert!(matches!(read_signing_key(&q), Err(Error::Key { .. })));
        let d = DeviceKey::from_bytes(random_bytes().unwrap());
        let r = dir.path().join("d.key");
        fs::write(&r, device_key_pem(&d).unwrap().as_bytes()).unwrap();
        assert_eq!(read_device_key(&r).unwrap().as_bytes(), d.as_bytes());
        assert!(matches!(read_signing_key(&r), Err(Error::Key { .. })));
    }
}
