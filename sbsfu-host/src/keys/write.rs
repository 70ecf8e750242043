//! Writing key files: PKCS#8 and SPKI PEM, plain or passphrase-protected.

use ::pkcs8::PrivateKeyInfoRef;
use ::pkcs8::der::asn1::{BitStringRef, OctetStringRef};
use ::pkcs8::der::pem::{self as der_pem, LineEnding};
use ::pkcs8::der::{Decode, Encode};
use ::pkcs8::spki::{AlgorithmIdentifierRef, SubjectPublicKeyInfoRef};
use ed25519_dalek::pkcs8::{self, EncodePrivateKey, EncodePublicKey};
use ed25519_dalek::{SigningKey, VerifyingKey};
use rand::rngs::SysRng;
use sbsfu_format::DeviceKey;
use zeroize::Zeroizing;

use super::{AES256_GCM_OID, DEVICE_KEY_LABEL, ENCRYPTED_LABEL, X25519_OID};
use crate::error::{Error, Result};

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
