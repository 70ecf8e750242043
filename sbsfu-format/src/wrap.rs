//! Wrapping the per-image content key under a device key (AES-256-GCM, random 96-bit nonce).
//!
//! The device key never encrypts payload data, only 32-byte content keys, each under a fresh
//! random nonce: it stays far below GCM's random-nonce limit for any realistic number of images.

use aes_gcm::aead::{AeadInOut, KeyInit};
use aes_gcm::{Aes256Gcm, Nonce, Tag};
use zeroize::Zeroize;

use crate::Error;
use crate::header::Encryption;
use crate::keys::{ContentKey, DeviceKey};

/// Associated data of the key wrap (domain separation from payload chunks).
pub const WRAP_CONTEXT: &[u8] = b"sbsfu/v1/content-key-wrap";

/// Encrypts `content` under `device` with `nonce`, returning the wrapped key and its tag (the
/// sealing side).
#[cfg(any(feature = "std", test))]
pub fn wrap_content_key(
    device: &DeviceKey,
    nonce: &[u8; 12],
    content: &ContentKey,
) -> Result<([u8; 32], [u8; 16]), Error> {
    let aead = Aes256Gcm::new(device.as_bytes().into());
    let mut buf = *content.as_bytes();
    let tag = aead
        .encrypt_inout_detached(&Nonce::from(*nonce), WRAP_CONTEXT, (&mut buf[..]).into())
        .map_err(|_| Error::BufferTooSmall)?;
    Ok((buf, tag.into()))
}

/// Recovers the content key of `enc` with `device`. A wrong key or any altered byte is
/// [`Error::Authentication`].
pub fn unwrap_content_key(device: &DeviceKey, enc: &Encryption) -> Result<ContentKey, Error> {
    let aead = Aes256Gcm::new(device.as_bytes().into());
    let mut buf = enc.wrapped_key;
    let result = aead.decrypt_inout_detached(
        &Nonce::from(enc.wrap_nonce),
        WRAP_CONTEXT,
        (&mut buf[..]).into(),
        &Tag::from(enc.wrap_tag),
    );
    let key = result.map(|()| ContentKey::from_bytes(buf));
    buf.zeroize();
    key.map_err(|_| Error::Authentication)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keys::KeyId;

    #[test]
    fn round_trip_and_tamper() {
        let dev = DeviceKey::from_bytes([3; 32]);
        let ck = ContentKey::from_bytes([4; 32]);
        let (wrapped_key, wrap_tag) = wrap_content_key(&dev, &[5; 12], &ck).unwrap();
        let enc = Encryption {
            device_key: dev.id(),
            wrap_nonce: [5; 12],
            wrapped_key,
            wrap_tag,
            nonce_prefix: [0; 7],
        };
        assert_eq!(unwrap_content_key(&dev, &enc).unwrap().as_bytes(), &[4; 32]);
        let wrong = DeviceKey::from_bytes([6; 32]);
        assert!(matches!(
            unwrap_content_key(&wrong, &enc),
            Err(Error::Authentication)
        ));
        for i in 0..32 {
            let mut e = enc;
            e.wrapped_key[i] ^= 0x80;
            assert!(matches!(
                unwrap_content_key(&dev, &e),
                Err(Error::Authentication)
            ));
        }
        let mut e = enc;
        e.wrap_nonce[0] ^= 1;
        assert!(matches!(
            unwrap_content_key(&dev, &e),
            Err(Error::Authentication)
        ));
        let _ = KeyId([0; 8]);
    }
}
