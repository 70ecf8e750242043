//! Passphrase-protected keys (RFC 5958 `EncryptedPrivateKeyInfo`): the schemes sbsfu decrypts,
//! and a clear refusal, by name, of those it does not.

use std::path::Path;

use ::pkcs8::der::asn1::{AnyRef, OctetStringRef};
use ::pkcs8::der::{Decode, Reader, SecretDocument};
use ::pkcs8::spki::AlgorithmIdentifierRef;
use ::pkcs8::{EncryptedPrivateKeyInfoRef, ObjectIdentifier};

use crate::error::{Error, Result};
use crate::passphrase::Passphrase;

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
pub(super) fn decrypt(path: &Path, der: &[u8], pass: &Passphrase) -> Result<SecretDocument> {
    check_scheme(der).map_err(|m| Error::key(path, m))?;
    let encrypted = EncryptedPrivateKeyInfoRef::from_der(der)
        .map_err(|e| Error::key(path, format!("not an encrypted PKCS#8 key ({e})")))?;
    let passphrase = pass.for_key(path)?;
    encrypted
        .decrypt(passphrase.as_bytes())
        .map_err(|_| Error::key(path, "wrong passphrase (or a damaged key file)"))
}
