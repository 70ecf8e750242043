//! Wrapping the per-image content key: under an AES-256 device key (AES-256-GCM, random 96-bit
//! nonce), or to X25519 device public keys with HPKE ([`crate::hpke`]).
//!
//! The device key never encrypts payload data, only 32-byte content keys, each under a fresh
//! random nonce: it stays far below GCM's random-nonce limit for any realistic number of images.
//! An HPKE wrap uses a fresh ephemeral key per recipient, so its AEAD key is used once.

use aes_gcm::aead::{AeadInOut, KeyInit};
use aes_gcm::{Aes256Gcm, Nonce, Tag};
use zeroize::Zeroize;

use crate::Error;
use crate::header::{Encryption, Header, Recipient};
use crate::hpke;
use crate::keys::{ContentKey, DeviceKey};
use crate::signed::SignedMessage;

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

/// AES-256-GCM decryption of `buf` in place: the one copy of it in firmware, for both ways a
/// content key travels (the HPKE wrap's AEAD is AES-256-GCM too).
#[inline(never)]
pub(crate) fn aes_gcm_open(
    key: &[u8; 32],
    nonce: &[u8; 12],
    aad: &[u8],
    buf: &mut [u8],
    tag: &[u8; 16],
) -> Result<(), Error> {
    Aes256Gcm::new(key.into())
        .decrypt_inout_detached(&Nonce::from(*nonce), aad, buf.into(), &Tag::from(*tag))
        .map_err(|_| Error::Authentication)
}

/// Recovers the content key of `enc` with `device`. A wrong key or any altered byte is
/// [`Error::Authentication`].
pub fn unwrap_content_key(device: &DeviceKey, enc: &Encryption) -> Result<ContentKey, Error> {
    let mut buf = enc.wrapped_key;
    let result = aes_gcm_open(
        device.as_bytes(),
        &enc.wrap_nonce,
        WRAP_CONTEXT,
        &mut buf,
        &enc.wrap_tag,
    );
    let key = result.map(|()| ContentKey::from_bytes(buf));
    buf.zeroize();
    key
}

/// HPKE's `info` for a content key: names sbsfu and the format version.
pub const HPKE_INFO: &[u8] = b"sbsfu/v1/hpke-content-key";

/// HPKE's associated data for the wraps of `header`: SHA-256 of the header's signed message
/// (`"sbsfu/v1/container-header\0" || prefix || header`, `message` as signed, or made by the
/// sealer before the wraps exist) with the digest and every recipient's `enc`, `wrapped_key`
/// and `wrap_tag` set to zero.
///
/// It binds each wrap to every other header field (signer, target, version, counter, region,
/// address, sizes, the recipients' key ids, the nonce prefix) without being circular: what is
/// zeroed is what the wraps produce, and the digest, which the sealer learns only after the
/// wraps are made. Both are bound anyway: the digest by the signature and by the final check,
/// the wraps by every chunk's associated data ([`crate::payload_aad`]).
pub fn hpke_wrap_aad(header: &Header, message: &SignedMessage) -> Result<[u8; 32], Error> {
    message.digest_zeroing(header, true)
}

/// Seals `content` to the X25519 public key `recipient` with the ephemeral private key
/// `ephemeral` (fresh from a CSPRNG for each recipient of each container), bound to `aad`
/// ([`hpke_wrap_aad`]). A small-order public key fails ([`Error::Authentication`]).
#[cfg(any(feature = "std", test))]
pub fn wrap_to_recipient(
    recipient: &[u8; 32],
    ephemeral: &[u8; 32],
    content: &ContentKey,
    aad: &[u8; 32],
) -> Result<Recipient, Error> {
    let mut wrapped_key = *content.as_bytes();
    let (enc, wrap_tag) = hpke::seal_base(recipient, ephemeral, HPKE_INFO, aad, &mut wrapped_key)?;
    Ok(Recipient {
        key_id: crate::keys::KeyId::of_x25519(recipient),
        enc,
        wrapped_key,
        wrap_tag,
    })
}

/// Recovers the content key wrapped to `recipient` with the X25519 device key `device`, whose
/// public key is `public`, bound to `aad` ([`hpke_wrap_aad`]). Anything altered, a wrong key or
/// an AES device key is [`Error::Authentication`].
pub fn unwrap_from_recipient(
    device: &DeviceKey,
    public: &[u8; 32],
    recipient: &Recipient,
    aad: &[u8; 32],
) -> Result<ContentKey, Error> {
    if device.public_key().is_none() {
        return Err(Error::Authentication);
    }
    let mut buf = recipient.wrapped_key;
    let result = hpke::open_base(
        device.as_bytes(),
        public,
        &recipient.enc,
        HPKE_INFO,
        aad,
        &mut buf,
        &recipient.wrap_tag,
    );
    let key = result.map(|()| ContentKey::from_bytes(buf));
    buf.zeroize();
    key
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

    use crate::header::tests::{encrypted, sample};
    use crate::header::{HpkeEncryption, Protection, RecipientIds};
    use crate::keys::x25519_public_key;

    /// A header encrypted to `secrets`' public keys, its signed message with the wraps, and
    /// its recipients' entries.
    fn wrapped(secrets: &[[u8; 32]]) -> (Header, SignedMessage, std::vec::Vec<Recipient>) {
        let publics: std::vec::Vec<[u8; 32]> = secrets.iter().map(x25519_public_key).collect();
        let ids: std::vec::Vec<KeyId> = publics.iter().map(KeyId::of_x25519).collect();
        let h = sample(Protection::Hpke(HpkeEncryption {
            recipients: RecipientIds::new(&ids).unwrap(),
            nonce_prefix: [7; 7],
        }));
        let aad = hpke_wrap_aad(&h, &SignedMessage::for_header(&h).unwrap()).unwrap();
        let ck = ContentKey::from_bytes([4; 32]);
        let list: std::vec::Vec<Recipient> = publics
            .iter()
            .enumerate()
            .map(|(i, p)| wrap_to_recipient(p, &[0x40 + i as u8; 32], &ck, &aad).unwrap())
            .collect();
        let m = SignedMessage::for_header_with(&h, &list).unwrap();
        (h, m, list)
    }

    #[test]
    fn each_recipient_unwraps_its_own_and_nothing_else() {
        let secrets = [[1u8; 32], [2; 32], [3; 32]];
        let (h, m, list) = wrapped(&secrets);
        // The wraps do not change the associated data they were made under.
        let aad = hpke_wrap_aad(&h, &m).unwrap();
        assert_eq!(
            aad,
            hpke_wrap_aad(&h, &SignedMessage::for_header(&h).unwrap()).unwrap()
        );
        for (i, s) in secrets.iter().enumerate() {
            let dev = DeviceKey::x25519(*s);
            let public = dev.public_key().unwrap();
            assert_eq!(list[i].key_id, dev.id());
            assert_eq!(h.recipient(m.header_bytes(), i), Some(list[i]));
            let ck = unwrap_from_recipient(&dev, &public, &list[i], &aad).unwrap();
            assert_eq!(ck.as_bytes(), &[4; 32]);
            for (j, r) in list.iter().enumerate().filter(|(j, _)| *j != i) {
                assert!(
                    unwrap_from_recipient(&dev, &public, r, &aad).is_err(),
                    "{i} opened {j}"
                );
            }
        }
        // Fresh ephemeral keys: no two recipients share an encapsulated key.
        assert_ne!(list[0].enc, list[1].enc);
        // An AES device key never opens an HPKE wrap.
        let aes = DeviceKey::from_bytes([1; 32]);
        let public = x25519_public_key(&[1; 32]);
        assert_eq!(
            unwrap_from_recipient(&aes, &public, &list[0], &aad).err(),
            Some(Error::Authentication)
        );
    }

    #[test]
    fn the_wrap_is_bound_to_the_rest_of_the_header() {
        let (h, m, list) = wrapped(&[[1u8; 32]]);
        let dev = DeviceKey::x25519([1; 32]);
        let public = dev.public_key().unwrap();
        let r = list[0];
        let aad_of = |c: &Header| hpke_wrap_aad(c, &SignedMessage::for_header(c).unwrap()).unwrap();
        let mut changed = [h; 4];
        changed[0].security_counter += 1;
        changed[1].target = crate::Name::new("other").unwrap();
        changed[2].chunk_size *= 2;
        if let Protection::Hpke(p) = &mut changed[3].protection {
            p.nonce_prefix[0] ^= 1;
        }
        for c in &changed {
            assert_eq!(
                unwrap_from_recipient(&dev, &public, &r, &aad_of(c)).err(),
                Some(Error::Authentication)
            );
        }
        // The digest is not bound here (it is signed, and checked at the end).
        let mut d = h;
        d.digest = [0x99; 32];
        assert!(unwrap_from_recipient(&dev, &public, &r, &aad_of(&d)).is_ok());
        for i in 0..32 {
            let mut bad = r;
            bad.wrapped_key[i] ^= 0x80;
            let aad = hpke_wrap_aad(&h, &m).unwrap();
            assert!(unwrap_from_recipient(&dev, &public, &bad, &aad).is_err());
        }
    }

    #[test]
    fn the_associated_data_is_hashed_from_the_signed_bytes() {
        // Hashing the bytes as signed, with ranges read as zero, gives what hashing a
        // re-encoding with those fields set to zero gives, for every protection.
        let (h, m, _) = wrapped(&[[1u8; 32], [2; 32]]);
        let mut zero = h;
        zero.digest = [0; 32];
        let wraps_zero = SignedMessage::for_header(&zero).unwrap().digest();
        assert_eq!(hpke_wrap_aad(&h, &m).unwrap(), wraps_zero);
        let mut h2 = h;
        h2.digest = [0x5a; 32];
        let (_, _, list) = wrapped(&[[1u8; 32], [2; 32]]);
        let m2 = SignedMessage::for_header_with(&h2, &list).unwrap();
        let expected = SignedMessage::for_header_with(&zero, &list)
            .unwrap()
            .digest();
        assert_eq!(crate::payload_aad(&h2, &m2).unwrap(), expected);
        assert_ne!(crate::payload_aad(&h2, &m2).unwrap(), wraps_zero);
        for p in [
            Protection::SignedOnly {
                chain_head: [3; 32],
            },
            encrypted(),
        ] {
            let mut s = sample(p);
            s.digest = [0x77; 32];
            let mut z = s;
            z.digest = [0; 32];
            let m = SignedMessage::for_header(&s).unwrap();
            let expected = SignedMessage::for_header(&z).unwrap().digest();
            assert_eq!(crate::payload_aad(&s, &m).unwrap(), expected);
            // A header that is not the message's is refused, not hashed.
            assert_eq!(
                crate::payload_aad(&z, &m).err(),
                Some(Error::MalformedHeader)
            );
        }
    }
}
