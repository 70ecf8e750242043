//! Key files: Ed25519 and X25519 keys as PKCS#8 / SPKI PEM (what `openssl pkey` reads and
//! writes), AES-256 device keys as a PEM block of 32 bytes.

use std::fs;
use std::path::Path;

use ::pkcs8::der::asn1::BitStringRef;
use ::pkcs8::der::asn1::{AnyRef, OctetStringRef};
use ::pkcs8::der::pem::{self as der_pem, LineEnding};
use ::pkcs8::der::{Decode, Encode, Reader, SecretDocument};
use ::pkcs8::spki::{AlgorithmIdentifierRef, SubjectPublicKeyInfoRef};
use ::pkcs8::{EncryptedPrivateKeyInfoRef, ObjectIdentifier, PrivateKeyInfoRef};
use ed25519_dalek::pkcs8::{
    self, DecodePrivateKey, DecodePublicKey, EncodePrivateKey, EncodePublicKey,
};
use ed25519_dalek::{SigningKey, VerifyingKey};
use rand::TryRng;
use rand::rngs::SysRng;
use sbsfu_device::TrustedKey;
use sbsfu_format::{DeviceKey, KeyId};
use zeroize::Zeroizing;

use crate::error::{Error, Result};
use crate::passphrase::Passphrase;
use crate::pem::{self, PemError};

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

/// How to re-encrypt a key sbsfu cannot decrypt.
const REENCRYPT: &str = "re-encrypt it with `openssl pkcs8 -topk8 -v2 aes-256-cbc`";

/// Refuses, by name, the encryption schemes we do not decrypt (PKCS#5 v1, PKCS#12, DES and
/// 3DES in PBES2): otherwise they would fail as a "wrong passphrase" or an opaque parse error.
/// PBES2 with PBKDF2 (HMAC-SHA1 or SHA-2) or scrypt, and AES, passes.
fn check_scheme(der: &[u8]) -> std::result::Result<(), String> {
    use ::pkcs8::pkcs5::{pbes1, pbes2};
    let algorithm = AnyRef::from_der(der)
        .and_then(|outer| {
            outer.sequence(|r| {
                let algorithm: AlgorithmIdentifierRef<'_> = r.decode()?;
                let _data: &OctetStringRef = r.decode()?;
                Ok(algorithm)
            })
        })
        .map_err(|e| format!("not an encrypted PKCS#8 key ({e})"))?;
    let oid = algorithm.oid;
    let unsupported = |what: &str| {
        Err(format!(
            "is encrypted with {what} (object identifier {oid}), which sbsfu does not read; \
             {REENCRYPT}"
        ))
    };
    let pbes1_name = [
        (pbes1::PBE_WITH_MD2_AND_DES_CBC_OID, "pbeWithMD2AndDES-CBC"),
        (pbes1::PBE_WITH_MD2_AND_RC2_CBC_OID, "pbeWithMD2AndRC2-CBC"),
        (pbes1::PBE_WITH_MD5_AND_DES_CBC_OID, "pbeWithMD5AndDES-CBC"),
        (pbes1::PBE_WITH_MD5_AND_RC2_CBC_OID, "pbeWithMD5AndRC2-CBC"),
        (
            pbes1::PBE_WITH_SHA1_AND_DES_CBC_OID,
            "pbeWithSHA1AndDES-CBC",
        ),
        (
            pbes1::PBE_WITH_SHA1_AND_RC2_CBC_OID,
            "pbeWithSHA1AndRC2-CBC",
        ),
    ]
    .into_iter()
    .find(|(o, _)| *o == oid);
    if let Some((_, name)) = pbes1_name {
        return unsupported(&format!("PKCS#5 v1 {name}"));
    }
    if oid.as_bytes().starts_with(PKCS12_PBE_PREFIX.as_bytes()) {
        return unsupported("PKCS#12 password-based encryption (RC4, RC2 or 3DES)");
    }
    if oid != pbes2::PBES2_OID {
        return unsupported("an unknown scheme");
    }
    let (kdf, cipher) = algorithm
        .parameters
        .ok_or_else(|| "PBES2 without parameters".to_owned())
        .and_then(|p| {
            p.sequence(|r| {
                let kdf: AlgorithmIdentifierRef<'_> = r.decode()?;
                let cipher: AlgorithmIdentifierRef<'_> = r.decode()?;
                Ok((kdf.oid, cipher.oid))
            })
            .map_err(|e: ::pkcs8::der::Error| format!("not an encrypted PKCS#8 key ({e})"))
        })?;
    let cipher_ok = [
        pbes2::AES_128_CBC_OID,
        pbes2::AES_192_CBC_OID,
        pbes2::AES_256_CBC_OID,
        pbes2::AES_128_GCM_OID,
        pbes2::AES_256_GCM_OID,
    ]
    .contains(&cipher);
    let what = match cipher {
        _ if cipher_ok => None,
        DES_EDE3_CBC_OID => Some("3DES (PBES2 with des-ede3-cbc)"),
        DES_CBC_OID => Some("DES (PBES2 with des-cbc)"),
        _ => Some("an unknown cipher"),
    };
    if let Some(what) = what {
        return Err(format!(
            "is encrypted with {what}, object identifier {cipher}, which sbsfu does not read; \
             {REENCRYPT}"
        ));
    }
    if kdf != pbes2::PBKDF2_OID && kdf != pbes2::SCRYPT_OID {
        return Err(format!(
            "derives its key with an unknown function, object identifier {kdf}, which sbsfu \
             does not read; {REENCRYPT}"
        ));
    }
    Ok(())
}

/// des-ede3-cbc (RFC 8018), which PBES2 may name; not decrypted here.
const DES_EDE3_CBC_OID: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.3.7");
/// desCBC (RFC 8018), likewise.
const DES_CBC_OID: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.14.3.2.7");

/// pkcs-12PbeIds (1.2.840.113549.1.12.1), the parent of PKCS#12's password-based schemes.
const PKCS12_PBE_PREFIX: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.12.1");

/// Decrypts an `ENCRYPTED PRIVATE KEY` into its PKCS#8 DER.
fn decrypt(path: &Path, der: &[u8], pass: &Passphrase) -> Result<SecretDocument> {
    check_scheme(der).map_err(|m| Error::key(path, m))?;
    let encrypted = EncryptedPrivateKeyInfoRef::from_der(der)
        .map_err(|e| Error::key(path, format!("not an encrypted PKCS#8 key ({e})")))?;
    let passphrase = pass.for_key(path)?;
    encrypted
        .decrypt(passphrase.as_bytes())
        .map_err(|_| Error::key(path, "wrong passphrase (or a damaged key file)"))
}

/// The algorithm of a decrypted PKCS#8 key.
fn algorithm_of(path: &Path, der: &SecretDocument) -> Result<ObjectIdentifier> {
    PrivateKeyInfoRef::from_der(der.as_bytes())
        .map(|k| k.algorithm.oid)
        .map_err(|e| Error::key(path, format!("not a PKCS#8 key ({e})")))
}

/// Reads an Ed25519 private key: PKCS#8 PEM, plain or passphrase-protected.
pub fn read_signing_key(path: &Path, pass: &Passphrase) -> Result<SigningKey> {
    let (label, der) = read_pem(path)?;
    let not_ed25519 =
        |e: pkcs8::Error| Error::key(path, format!("not an Ed25519 PKCS#8 private key ({e})"));
    let a_device_key = || {
        Err(Error::key(
            path,
            "is a device key (AES-256), not an Ed25519 signing key",
        ))
    };
    let an_x25519_key = || {
        Err(Error::key(
            path,
            "is an X25519 device key (it decrypts), not an Ed25519 signing key",
        ))
    };
    match label.as_str() {
        "PRIVATE KEY" if algorithm_of_plain(&der) == Some(X25519_OID) => an_x25519_key(),
        "PRIVATE KEY" => SigningKey::from_pkcs8_der(&der).map_err(not_ed25519),
        ENCRYPTED_LABEL => {
            let der = decrypt(path, &der, pass)?;
            match algorithm_of(path, &der)? {
                ED25519_OID => SigningKey::from_pkcs8_der(der.as_bytes()).map_err(not_ed25519),
                AES256_GCM_OID => a_device_key(),
                X25519_OID => an_x25519_key(),
                oid => Err(Error::key(
                    path,
                    format!("is a {oid} key, not an Ed25519 signing key"),
                )),
            }
        }
        DEVICE_KEY_LABEL => a_device_key(),
        other => Err(Error::key(
            path,
            format!("expected a PRIVATE KEY, found a PEM {other}"),
        )),
    }
}

/// Reads an Ed25519 public key: SPKI PEM (`PUBLIC KEY`), or the public half of a private key.
pub fn read_public_key(path: &Path, pass: &Passphrase) -> Result<VerifyingKey> {
    let (label, der) = read_pem(path)?;
    match label.as_str() {
        "PUBLIC KEY" if spki_algorithm(&der) == Some(X25519_OID) => Err(Error::key(
            path,
            "is an X25519 device public key (it encrypts), not an Ed25519 signing key",
        )),
        "PUBLIC KEY" => VerifyingKey::from_public_key_der(&der)
            .map_err(|e| Error::key(path, format!("not an Ed25519 public key ({e})"))),
        "PRIVATE KEY" | ENCRYPTED_LABEL => read_signing_key(path, pass).map(|k| k.verifying_key()),
        other => Err(Error::key(
            path,
            format!("expected a PUBLIC KEY, found a PEM {other}"),
        )),
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
        ED25519_OID => {
            return Err(Error::key(
                path,
                "is an Ed25519 signing key, not a device key (X25519 or AES-256)",
            ));
        }
        oid => {
            return Err(Error::key(
                path,
                format!("is a {oid} key, not a device key (X25519 or AES-256)"),
            ));
        }
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
        other => Err(Error::key(
            path,
            format!("expected a device key, found a PEM {other}"),
        )),
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
            return Err(Error::key(
                path,
                "is an AES-256 device key, not an X25519 public key (give it to --encrypt-key)",
            ));
        }
        other => {
            return Err(Error::key(
                path,
                format!("expected an X25519 PUBLIC KEY, found a PEM {other}"),
            ));
        }
    }
    let spki = SubjectPublicKeyInfoRef::from_der(&der)
        .map_err(|e| Error::key(path, format!("not a public key ({e})")))?;
    match spki.algorithm.oid {
        X25519_OID => {}
        ED25519_OID => {
            return Err(Error::key(
                path,
                "is an Ed25519 public key (it verifies signatures), not an X25519 device key",
            ));
        }
        oid => {
            return Err(Error::key(
                path,
                format!("is a {oid} key, not an X25519 key"),
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

/// Encrypts PKCS#8 DER under `passphrase` (PBES2: scrypt N=2^14, r=8, p=1, the parameters
/// OpenSSL 3 accepts within its default memory limit, and AES-256-CBC) as PEM.
fn encrypt_der(der: &[u8], passphrase: &str) -> Result<Zeroizing<String>> {
    let fail = |e: pkcs8::Error| Error::Usage(format!("encrypting the key failed: {e}"));
    let info = PrivateKeyInfoRef::from_der(der).map_err(|e| fail(e.into()))?;
    let doc = info
        .encrypt_with_rng(&mut SysRng, passphrase.as_bytes())
        .map_err(fail)?;
    doc.to_pem(ENCRYPTED_LABEL, LineEnding::LF)
        .map_err(|e| fail(e.into()))
}

/// Passphrase-protected PKCS#8 PEM of a signing key, as `openssl pkey -passin` reads it.
pub fn encrypted_signing_key_pem(key: &SigningKey, passphrase: &str) -> Result<Zeroizing<String>> {
    let mut pair = pkcs8::KeypairBytes::from(key.clone());
    pair.public_key = None;
    let der = pair
        .to_pkcs8_der()
        .map_err(|e| Error::Usage(format!("encoding the private key failed: {e}")))?;
    encrypt_der(der.as_bytes(), passphrase)
}

/// Passphrase-protected PKCS#8 PEM of a device key (algorithm id-aes256-GCM, the 32 key bytes as
/// the private key).
pub fn encrypted_device_key_pem(key: &DeviceKey, passphrase: &str) -> Result<Zeroizing<String>> {
    let fail =
        |e: ::pkcs8::der::Error| Error::Usage(format!("encoding the device key failed: {e}"));
    let octets = OctetStringRef::new(key.as_bytes()).map_err(fail)?;
    let info = PrivateKeyInfoRef::new(
        AlgorithmIdentifierRef {
            oid: AES256_GCM_OID,
            parameters: None,
        },
        octets,
    );
    let der = Zeroizing::new(info.to_der().map_err(fail)?);
    encrypt_der(&der, passphrase)
}

/// PKCS#8 DER of an X25519 private key (RFC 8410: `CurvePrivateKey`, an OCTET STRING of the 32
/// bytes, inside the private key OCTET STRING), as OpenSSL writes it.
fn x25519_pkcs8_der(secret: &[u8; 32]) -> Result<Zeroizing<Vec<u8>>> {
    let fail =
        |e: ::pkcs8::der::Error| Error::Usage(format!("encoding the X25519 key failed: {e}"));
    let inner = Zeroizing::new(
        OctetStringRef::new(secret)
            .map_err(fail)?
            .to_der()
            .map_err(fail)?,
    );
    let info = PrivateKeyInfoRef::new(
        AlgorithmIdentifierRef {
            oid: X25519_OID,
            parameters: None,
        },
        OctetStringRef::new(&inner).map_err(fail)?,
    );
    Ok(Zeroizing::new(info.to_der().map_err(fail)?))
}

/// PKCS#8 PEM of an X25519 device key (`openssl pkey` reads it), passphrase-protected if one is
/// given. One function for every writer of device keys (keygen, factory records).
pub fn x25519_private_key_pem(
    secret: &[u8; 32],
    passphrase: Option<&str>,
) -> Result<Zeroizing<String>> {
    let der = x25519_pkcs8_der(secret)?;
    match passphrase {
        Some(p) => encrypt_der(&der, p),
        None => der_pem::encode_string("PRIVATE KEY", LineEnding::LF, &der)
            .map(Zeroizing::new)
            .map_err(|e| Error::Usage(format!("encoding the X25519 key failed: {e}"))),
    }
}

/// SPKI PEM of an X25519 public key, what `openssl pkey -pubout` writes.
pub fn x25519_public_key_pem(public: &[u8; 32]) -> Result<String> {
    let fail =
        |e: ::pkcs8::der::Error| Error::Usage(format!("encoding the public key failed: {e}"));
    let spki = SubjectPublicKeyInfoRef {
        algorithm: AlgorithmIdentifierRef {
            oid: X25519_OID,
            parameters: None,
        },
        subject_public_key: BitStringRef::from_bytes(public).map_err(fail)?,
    };
    let der = spki.to_der().map_err(fail)?;
    der_pem::encode_string("PUBLIC KEY", LineEnding::LF, &der).map_err(|e| fail(e.into()))
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
    der_pem::encode_string(DEVICE_KEY_LABEL, LineEnding::LF, key.as_bytes())
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

    fn none() -> Passphrase {
        Passphrase::none()
    }

    #[test]
    fn dev_key_ids_match_the_published_files() {
        let signing = read_signing_key(&example("signing.pem"), &none()).unwrap();
        let public = read_public_key(&example("signing.pub.pem"), &none()).unwrap();
        assert_eq!(signing.verifying_key(), public);
        assert_eq!(
            KeyId::of_ed25519(public.as_bytes()).to_string(),
            DEV_SIGNING_KEY_ID
        );
        let device = read_device_key(&example("device.key"), &none()).unwrap();
        assert_eq!(device.id().to_string(), DEV_DEVICE_KEY_ID);
        let x25519 = read_device_key(&example("device-x25519.pem"), &none()).unwrap();
        assert_eq!(x25519.id().to_string(), DEV_X25519_KEY_ID);
        assert_eq!(
            x25519_key_id(&read_recipient_key(&example("device-x25519.pub.pem")).unwrap()),
            x25519.id()
        );
        let root = read_signing_key(&example("root.pem"), &none()).unwrap();
        assert_eq!(
            read_public_key(&example("root.pub.pem"), &none()).unwrap(),
            root.verifying_key()
        );
        assert_eq!(
            KeyId::of_ed25519(root.verifying_key().as_bytes()).to_string(),
            DEV_ROOT_KEY_ID
        );
    }

    #[test]
    fn small_order_recipient_keys_are_refused() {
        // The zero point and a point of order 8: DH with them gives a known (all-zero) secret.
        let dir = tempfile::tempdir().unwrap();
        let order_8 = [
            0xe0, 0xeb, 0x7a, 0x7c, 0x3b, 0x41, 0xb8, 0xae, 0x16, 0x56, 0xe3, 0xfa, 0xf1, 0x9f,
            0xc4, 0x6a, 0xda, 0x09, 0x8d, 0xeb, 0x9c, 0x32, 0xb1, 0xfd, 0x86, 0x62, 0x05, 0x16,
            0x5f, 0x49, 0xb8, 0x00,
        ];
        for (i, key) in [[0u8; 32], order_8].iter().enumerate() {
            let p = dir.path().join(format!("{i}.pub.pem"));
            fs::write(&p, x25519_public_key_pem(key).unwrap()).unwrap();
            let e = read_recipient_key(&p).unwrap_err();
            assert!(e.to_string().contains("small-order"), "{e}");
            assert_eq!(e.exit_code(), crate::error::EXIT_KEY);
        }
        let good = dir.path().join("good.pub.pem");
        fs::write(&good, x25519_public_key_pem(&[9; 32]).unwrap()).unwrap();
        assert_eq!(read_recipient_key(&good).unwrap(), [9; 32]);
    }

    #[test]
    fn a_missing_key_file_is_an_io_error() {
        let missing = Path::new("/nonexistent/device.key");
        assert!(matches!(
            read_device_key(missing, &none()),
            Err(Error::Io { .. })
        ));
        assert!(matches!(
            read_signing_key(missing, &none()),
            Err(Error::Io { .. })
        ));
    }

    #[test]
    fn pem_round_trips() {
        let k = SigningKey::from_bytes(&random_bytes().unwrap());
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("k.pem");
        fs::write(&p, signing_key_pem(&k).unwrap().as_bytes()).unwrap();
        assert_eq!(
            read_signing_key(&p, &none()).unwrap().to_bytes(),
            k.to_bytes()
        );
        let q = dir.path().join("k.pub.pem");
        fs::write(&q, public_key_pem(&k.verifying_key()).unwrap()).unwrap();
        assert_eq!(read_public_key(&q, &none()).unwrap(), k.verifying_key());
        assert!(matches!(
            read_device_key(&q, &none()),
            Err(Error::Key { .. })
        ));
        assert!(matches!(
            read_signing_key(&q, &none()),
            Err(Error::Key { .. })
        ));
        let d = DeviceKey::from_bytes(random_bytes().unwrap());
        let r = dir.path().join("d.key");
        fs::write(&r, device_key_pem(&d).unwrap().as_bytes()).unwrap();
        assert_eq!(
            read_device_key(&r, &none()).unwrap().as_bytes(),
            d.as_bytes()
        );
        assert!(matches!(
            read_signing_key(&r, &none()),
            Err(Error::Key { .. })
        ));
    }

    #[test]
    fn encrypted_keys_round_trip_and_refuse_wrong_passphrases() {
        let dir = tempfile::tempdir().unwrap();
        let good = dir.path().join("good");
        fs::write(&good, "hunter2 but longer\n").unwrap();
        let bad = dir.path().join("bad");
        fs::write(&bad, "hunter3 but longer\n").unwrap();
        let good = Passphrase::new(Some(good));
        let bad = Passphrase::new(Some(bad));

        let k = SigningKey::from_bytes(&random_bytes().unwrap());
        let p = dir.path().join("k.pem");
        let pem = encrypted_signing_key_pem(&k, "hunter2 but longer").unwrap();
        assert!(pem.starts_with("-----BEGIN ENCRYPTED PRIVATE KEY-----"));
        fs::write(&p, pem.as_bytes()).unwrap();
        assert_eq!(
            read_signing_key(&p, &good).unwrap().to_bytes(),
            k.to_bytes()
        );
        assert_eq!(read_public_key(&p, &good).unwrap(), k.verifying_key());
        let e = read_signing_key(&p, &bad).unwrap_err();
        assert!(e.to_string().contains("wrong passphrase"), "{e}");
        assert_eq!(e.exit_code(), crate::error::EXIT_KEY);
        assert!(
            read_device_key(&p, &good)
                .err()
                .unwrap()
                .to_string()
                .contains("is an Ed25519 signing key")
        );

        let d = DeviceKey::from_bytes(random_bytes().unwrap());
        let r = dir.path().join("d.key");
        fs::write(
            &r,
            encrypted_device_key_pem(&d, "hunter2 but longer")
                .unwrap()
                .as_bytes(),
        )
        .unwrap();
        assert_eq!(read_device_key(&r, &good).unwrap().as_bytes(), d.as_bytes());
        assert!(
            read_device_key(&r, &bad)
                .err()
                .unwrap()
                .to_string()
                .contains("wrong passphrase")
        );
        assert!(
            read_signing_key(&r, &good)
                .unwrap_err()
                .to_string()
                .contains("is a device key")
        );
    }
}
