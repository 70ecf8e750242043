//! Key files: Ed25519 and X25519 keys as PKCS#8 / SPKI PEM (what `openssl pkey` reads and
//! writes), AES-256 device keys as a PEM block of 32 bytes.

mod encrypted;
mod write;

use std::fmt::Display;
use std::fs;
use std::path::Path;

use ::pkcs8::der::asn1::OctetStringRef;
use ::pkcs8::der::{Decode, SecretDocument};
use ::pkcs8::spki::SubjectPublicKeyInfoRef;
use ::pkcs8::{ObjectIdentifier, PrivateKeyInfoRef};
use ed25519_dalek::pkcs8::{self, DecodePrivateKey, DecodePublicKey};
use ed25519_dalek::{SigningKey, VerifyingKey};
use rand::TryRng;
use rand::rngs::SysRng;
use sbsfu_device::TrustedKey;
use sbsfu_format::{DeviceKey, KeyId};
use zeroize::Zeroizing;

use crate::error::{Error, Result};
use crate::passphrase::Passphrase;
use crate::pem::{self, PemError};
use encrypted::decrypt;

pub use write::{
    device_key_pem, encrypted_device_key_pem, encrypted_signing_key_pem, public_key_pem,
    signing_key_pem, x25519_private_key_pem, x25519_public_key_pem,
};

/// PEM label of a device key file.
pub const DEVICE_KEY_LABEL: &str = "SBSFU AES256 DEVICE KEY";

/// Key ids of the published development keys in `keys-example/` (checked against the files by a
/// test). Signing with them needs `--allow-dev-key`.
pub const DEV_SIGNING_KEY_ID: &str = "a9f80929a4145aa5";
/// Key id of the development device key in `keys-example/device.key`.
pub const DEV_DEVICE_KEY_ID: &str = "4627aaf9b624390b";
/// Key id of the development root key in `keys-example/root.pem` (signs key sets).
pub const DEV_ROOT_KEY_ID: &str = "45b8c2d5dfb5d43e";
/// Key id of the development X25519 device key in `keys-example/device-x25519.pem`.
pub const DEV_X25519_KEY_ID: &str = "37adf09252eba0a7";

/// Whether `id` names one of the published development keys.
pub fn is_dev_key(id: KeyId) -> bool {
    let id = id.to_string();
    [
        DEV_SIGNING_KEY_ID,
        DEV_DEVICE_KEY_ID,
        DEV_ROOT_KEY_ID,
        DEV_X25519_KEY_ID,
    ]
    .contains(&id.as_str())
}

/// 32 bytes from the operating system's CSPRNG.
pub fn random_bytes<const N: usize>() -> std::io::Result<[u8; N]> {
    let mut out = [0u8; N];
    SysRng
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

/// The label and bytes of a key file's PEM block (any line width: see [`crate::pem`]).
fn read_pem(path: &Path) -> Result<(String, Zeroizing<Vec<u8>>)> {
    let text = read_text(path)?;
    pem::decode(&text).map_err(|e| match e {
        PemError::NotPem => Error::key(path, "not a PEM file"),
        PemError::Invalid(m) => Error::key(path, format!("not a valid PEM file ({m})")),
    })
}

/// PEM label of a passphrase-protected PKCS#8 key (RFC 5958 `EncryptedPrivateKeyInfo`).
pub const ENCRYPTED_LABEL: &str = "ENCRYPTED PRIVATE KEY";

/// id-Ed25519 (RFC 8410).
const ED25519_OID: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.101.112");
/// id-X25519 (RFC 8410).
const X25519_OID: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.101.110");
/// id-aes256-GCM (NIST): the algorithm of an encrypted device key's PKCS#8 wrapper, since a
/// device key is used with AES-256-GCM only.
const AES256_GCM_OID: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.16.840.1.101.3.4.1.46");

/// The algorithm of a decrypted PKCS#8 key.
fn algorithm_of(path: &Path, der: &SecretDocument) -> Result<ObjectIdentifier> {
    PrivateKeyInfoRef::from_der(der.as_bytes())
        .map(|k| k.algorithm.oid)
        .map_err(|e| Error::key(path, format!("not a PKCS#8 key ({e})")))
}

/// The error for a key file of the wrong kind: it is `found`, not `expected`.
fn wrong_kind(path: &Path, found: impl Display, expected: &str) -> Error {
    Error::key(path, format!("is {found}, not {expected}"))
}

/// The error for a key file whose PEM block is labelled `label`, not `expected`.
fn wrong_label(path: &Path, expected: &str, label: &str) -> Error {
    Error::key(path, format!("expected {expected}, found a PEM {label}"))
}

/// What [`read_signing_key`] and [`read_public_key`] expect.
const SIGNING_KEY: &str = "an Ed25519 signing key";
/// What [`read_device_key`] expects.
const DEVICE_KEY: &str = "a device key (X25519 or AES-256)";

/// Reads an Ed25519 private key: PKCS#8 PEM, plain or passphrase-protected.
pub fn read_signing_key(path: &Path, pass: &Passphrase) -> Result<SigningKey> {
    let (label, der) = read_pem(path)?;
    let not_ed25519 =
        |e: pkcs8::Error| Error::key(path, format!("not an Ed25519 PKCS#8 private key ({e})"));
    let a_device_key = || wrong_kind(path, "a device key (AES-256)", SIGNING_KEY);
    let an_x25519_key = || wrong_kind(path, "an X25519 device key (it decrypts)", SIGNING_KEY);
    match label.as_str() {
        "PRIVATE KEY" if algorithm_of_plain(&der) == Some(X25519_OID) => Err(an_x25519_key()),
        "PRIVATE KEY" => SigningKey::from_pkcs8_der(&der).map_err(not_ed25519),
        ENCRYPTED_LABEL => {
            let der = decrypt(path, &der, pass)?;
            match algorithm_of(path, &der)? {
                ED25519_OID => SigningKey::from_pkcs8_der(der.as_bytes()).map_err(not_ed25519),
                AES256_GCM_OID => Err(a_device_key()),
                X25519_OID => Err(an_x25519_key()),
                oid => Err(wrong_kind(path, format_args!("a {oid} key"), SIGNING_KEY)),
            }
        }
        DEVICE_KEY_LABEL => Err(a_device_key()),
        other => Err(wrong_label(path, "a PRIVATE KEY", other)),
    }
}

/// Reads an Ed25519 public key: SPKI PEM (`PUBLIC KEY`), or the public half of a private key.
pub fn read_public_key(path: &Path, pass: &Passphrase) -> Result<VerifyingKey> {
    let (label, der) = read_pem(path)?;
    match label.as_str() {
        "PUBLIC KEY" if spki_algorithm(&der) == Some(X25519_OID) => Err(wrong_kind(
            path,
            "an X25519 device public key (it encrypts)",
            SIGNING_KEY,
        )),
        "PUBLIC KEY" => VerifyingKey::from_public_key_der(&der)
            .map_err(|e| Error::key(path, format!("not an Ed25519 public key ({e})"))),
        "PRIVATE KEY" | ENCRYPTED_LABEL => read_signing_key(path, pass).map(|k| k.verifying_key()),
        other => Err(wrong_label(path, "a PUBLIC KEY", other)),
    }
}

/// `key` (read from `path`) as a device trusts it: weak and invalid keys are refused.
pub fn trusted_key(path: &Path, key: &VerifyingKey) -> Result<TrustedKey> {
    TrustedKey::from_bytes(key.as_bytes())
        .map_err(|_| Error::key(path, "is a weak or invalid Ed25519 key"))
}

/// Reads an Ed25519 public key (as [`read_public_key`]) as a device trusts it.
pub fn read_trusted_key(path: &Path, pass: &Passphrase) -> Result<TrustedKey> {
    trusted_key(path, &read_public_key(path, pass)?)
}

/// The algorithm of a plain PKCS#8 DER key, if it parses.
fn algorithm_of_plain(der: &[u8]) -> Option<ObjectIdentifier> {
    PrivateKeyInfoRef::from_der(der)
        .ok()
        .map(|k| k.algorithm.oid)
}

/// The algorithm of an SPKI DER public key, if it parses.
fn spki_algorithm(der: &[u8]) -> Option<ObjectIdentifier> {
    SubjectPublicKeyInfoRef::from_der(der)
        .ok()
        .map(|k| k.algorithm.oid)
}

/// The device key in PKCS#8 DER: an X25519 private key (RFC 8410: an OCTET STRING inside the
/// private key OCTET STRING) or our AES-256 key (the 32 bytes under id-aes256-GCM).
fn device_key_from_pkcs8(path: &Path, der: &[u8]) -> Result<DeviceKey> {
    let info = PrivateKeyInfoRef::from_der(der)
        .map_err(|e| Error::key(path, format!("not a PKCS#8 key ({e})")))?;
    let raw: Zeroizing<Vec<u8>> = match info.algorithm.oid {
        AES256_GCM_OID => Zeroizing::new(info.private_key.as_bytes().to_vec()),
        X25519_OID => {
            let inner = <&OctetStringRef>::from_der(info.private_key.as_bytes())
                .map_err(|e| Error::key(path, format!("not an X25519 private key ({e})")))?;
            Zeroizing::new(inner.as_bytes().to_vec())
        }
        ED25519_OID => return Err(wrong_kind(path, SIGNING_KEY, DEVICE_KEY)),
        oid => return Err(wrong_kind(path, format_args!("a {oid} key"), DEVICE_KEY)),
    };
    let key: [u8; 32] = raw
        .as_slice()
        .try_into()
        .map_err(|_| Error::key(path, "device key is not 32 bytes"))?;
    Ok(match info.algorithm.oid {
        X25519_OID => DeviceKey::x25519(key),
        _ => DeviceKey::from_bytes(key),
    })
}

/// Reads a device key: an X25519 private key (PKCS#8 PEM, plain or passphrase-protected, as
/// `sbsfu keygen --type x25519` and `openssl genpkey -algorithm x25519` write it), or an AES-256
/// key (our PEM block of 32 bytes, or its passphrase-protected PKCS#8 wrapper).
pub fn read_device_key(path: &Path, pass: &Passphrase) -> Result<DeviceKey> {
    let (label, bytes) = read_pem(path).map_err(|e| match e {
        Error::Key { .. } => Error::key(path, "not a device key (expected a PEM block)"),
        other => other,
    })?;
    match label.as_str() {
        DEVICE_KEY_LABEL => {
            let key: [u8; 32] = bytes
                .as_slice()
                .try_into()
                .map_err(|_| Error::key(path, "device key is not 32 bytes"))?;
            Ok(DeviceKey::from_bytes(key))
        }
        "PRIVATE KEY" => device_key_from_pkcs8(path, &bytes),
        ENCRYPTED_LABEL => device_key_from_pkcs8(path, decrypt(path, &bytes, pass)?.as_bytes()),
        "PUBLIC KEY" => Err(Error::key(
            path,
            "is a public key; decrypting needs the device's private key",
        )),
        other => Err(wrong_label(path, "a device key", other)),
    }
}

/// Reads the X25519 public key of a device to encrypt to (`sign --encrypt-to`): SPKI PEM, as
/// `sbsfu pubkey` and `openssl pkey -pubout` write it. Private keys are refused: a build
/// machine needs only the public key. Small-order keys (which would make the shared secret
/// known to all) are refused.
pub fn read_recipient_key(path: &Path) -> Result<[u8; 32]> {
    let (label, der) = read_pem(path)?;
    match label.as_str() {
        "PUBLIC KEY" => {}
        "PRIVATE KEY" | ENCRYPTED_LABEL => {
            return Err(Error::key(
                path,
                "is a private key; encrypt to the device's public key (`sbsfu pubkey --key`)",
            ));
        }
        DEVICE_KEY_LABEL => {
            return Err(wrong_kind(
                path,
                "an AES-256 device key",
                "an X25519 public key (give it to --encrypt-key)",
            ));
        }
        other => return Err(wrong_label(path, "an X25519 PUBLIC KEY", other)),
    }
    let spki = SubjectPublicKeyInfoRef::from_der(&der)
        .map_err(|e| Error::key(path, format!("not a public key ({e})")))?;
    match spki.algorithm.oid {
        X25519_OID => {}
        ED25519_OID => {
            return Err(wrong_kind(
                path,
                "an Ed25519 public key (it verifies signatures)",
                "an X25519 device key",
            ));
        }
        oid => {
            return Err(wrong_kind(
                path,
                format_args!("a {oid} key"),
                "an X25519 key",
            ));
        }
    }
    let key: [u8; 32] = spki
        .subject_public_key
        .as_bytes()
        .and_then(|b| b.try_into().ok())
        .ok_or_else(|| Error::key(path, "X25519 public key is not 32 bytes"))?;
    // A clamped scalar is a multiple of 8: it sends a small-order point, and only such a
    // point, to zero.
    if x25519_dalek::x25519([0x55; 32], key) == [0; 32] {
        return Err(Error::key(path, "is a small-order X25519 key, unusable"));
    }
    Ok(key)
}

/// The X25519 key id of a public key, as headers name recipients (for provisioning records
/// too: one function).
pub fn x25519_key_id(public: &[u8; 32]) -> KeyId {
    KeyId::of_x25519(public)
}

#[cfg(test)]
mod tests;
