//! Key sets: the Ed25519 keys a device trusts to sign firmware, replaced over the air by an
//! update that a separate root key signs.
//!
//! ```text
//! magic "\x89SFK\r\n\x1a\n" (8) || version BE16 = 1 || body_len BE16 || body || signature (64)
//! body (postcard) = epoch: varint u32 || target: string || root: key id (8)
//!                   || keys: varint length || 32 bytes per key, 1..=MAX_KEYSET_KEYS keys
//! signature = Ed25519(root, "sbsfu/v1/key-set\0" || magic .. body)
//! ```
//!
//! A key set is only ever signed by a root key, under its own context, so no container signature
//! can pass for one; the root key may not be one of the keys it lists, so the root key never signs
//! firmware. The epoch only grows: a device refuses a set older than the one it holds.

use ed25519_dalek::{Signature, Signer, SigningKey, VerifyingKey};
use serde::{Deserialize, Serialize};

use crate::Error;
use crate::header::MAX_TARGET_LEN;
use crate::keys::KeyId;
use crate::name::Name;
use crate::reader::{Reader, check_magic, postcard_exact, versioned};
use crate::signed::{ContextBuf, SIGNATURE_LEN};

/// The magic of a key-set file (PNG's trick, like the container's).
pub const KEYSET_MAGIC: [u8; 8] = *b"\x89SFK\r\n\x1a\n";
/// The only key-set format version.
pub const KEYSET_VERSION: u16 = 1;
/// Domain separation of the root key's signature.
pub const KEYSET_CONTEXT: &[u8; 17] = b"sbsfu/v1/key-set\0";
/// Length of magic, version and body length.
pub const KEYSET_PREFIX_LEN: usize = 12;
/// Most keys one set may trust.
pub const MAX_KEYSET_KEYS: usize = 4;
/// Upper bound on the body: 5 (epoch) + 33 (target) + 8 (root) + 2 + 4 x 32 (keys) = 176.
pub const MAX_KEYSET_BODY_LEN: usize = 192;
/// Upper bound on a whole key-set file.
pub const MAX_KEYSET_LEN: usize = KEYSET_PREFIX_LEN + MAX_KEYSET_BODY_LEN + SIGNATURE_LEN;
/// Upper bound on the signed message.
pub const MAX_KEYSET_MESSAGE_LEN: usize =
    KEYSET_CONTEXT.len() + KEYSET_PREFIX_LEN + MAX_KEYSET_BODY_LEN;
const PUBLIC_KEY_LEN: usize = 32;

/// A set of trusted signing keys.
#[derive(Clone, PartialEq, Eq)]
pub struct KeySet {
    /// Grows with every update; a device refuses sets with an epoch below the one it holds.
    pub epoch: u32,
    /// Device class the set is for.
    pub target: Name<MAX_TARGET_LEN>,
    /// Key id of the root key that signs this set.
    pub root: KeyId,
    keys: [[u8; PUBLIC_KEY_LEN]; MAX_KEYSET_KEYS],
    count: usize,
}

#[derive(Serialize, Deserialize)]
struct Wire<'a> {
    epoch: u32,
    target: &'a str,
    root: KeyId,
    keys: &'a [u8],
}

impl KeySet {
    /// A set of `keys` (1..=[`MAX_KEYSET_KEYS`] distinct, valid, non-weak Ed25519 public keys,
    /// none of them `root`) signed by `root`.
    pub fn new(
        epoch: u32,
        target: &str,
        root: &[u8; PUBLIC_KEY_LEN],
        keys: &[[u8; PUBLIC_KEY_LEN]],
    ) -> Result<Self, Error> {
        let mut set = Self {
            epoch,
            target: Name::new(target)?,
            root: KeyId::of_ed25519(root),
            keys: [[0; PUBLIC_KEY_LEN]; MAX_KEYSET_KEYS],
            count: keys.len(),
        };
        set.keys
            .get_mut(..keys.len())
            .ok_or(Error::InvalidKeySet)?
            .copy_from_slice(keys);
        set.validate()?;
        Ok(set)
    }

    /// The trusted keys.
    pub fn keys(&self) -> &[[u8; PUBLIC_KEY_LEN]] {
        self.keys.get(..self.count).unwrap_or(&[])
    }

    /// Whether the set trusts the key with id `id`.
    pub fn trusts(&self, id: KeyId) -> bool {
        self.keys().iter().any(|k| KeyId::of_ed25519(k) == id)
    }

    fn validate(&self) -> Result<(), Error> {
        let keys = self.keys();
        if keys.is_empty() || keys.len() > MAX_KEYSET_KEYS {
            return Err(Error::InvalidKeySet);
        }
        for (i, k) in keys.iter().enumerate() {
            let valid = VerifyingKey::from_bytes(k).is_ok_and(|v| !v.is_weak());
            let repeated = keys.get(..i).is_some_and(|before| before.contains(k));
            if !valid || repeated || KeyId::of_ed25519(k) == self.root {
                return Err(Error::InvalidKeySet);
            }
        }
        Ok(())
    }

    /// Encodes the body into `out`.
    pub fn encode_body<'o>(&self, out: &'o mut [u8]) -> Result<&'o [u8], Error> {
        let mut flat = [0u8; PUBLIC_KEY_LEN * MAX_KEYSET_KEYS];
        for (dst, k) in flat.chunks_exact_mut(PUBLIC_KEY_LEN).zip(self.keys()) {
            dst.copy_from_slice(k);
        }
        let wire = Wire {
            epoch: self.epoch,
            target: self.target.as_str(),
            root: self.root,
            keys: flat
                .get(..self.count.saturating_mul(PUBLIC_KEY_LEN))
                .ok_or(Error::InvalidKeySet)?,
        };
        postcard::to_slice(&wire, out)
            .map(|b| &*b)
            .map_err(|_| Error::BufferTooSmall)
    }

    /// Parses exactly `bytes` as a body: strict, canonical, every key checked.
    pub fn parse_body(bytes: &[u8]) -> Result<Self, Error> {
        if bytes.is_empty() || bytes.len() > MAX_KEYSET_BODY_LEN {
            return Err(Error::MalformedKeySet);
        }
        let wire: Wire<'_> = postcard_exact(bytes, Error::MalformedKeySet, Error::MalformedKeySet)?;
        if wire.keys.len() > PUBLIC_KEY_LEN * MAX_KEYSET_KEYS
            || !wire.keys.len().is_multiple_of(PUBLIC_KEY_LEN)
        {
            return Err(Error::InvalidKeySet);
        }
        let mut set = Self {
            epoch: wire.epoch,
            target: Name::new(wire.target)?,
            root: wire.root,
            keys: [[0; PUBLIC_KEY_LEN]; MAX_KEYSET_KEYS],
            count: wire.keys.len() / PUBLIC_KEY_LEN,
        };
        for (dst, k) in set
            .keys
            .iter_mut()
            .zip(wire.keys.chunks_exact(PUBLIC_KEY_LEN))
        {
            dst.copy_from_slice(k);
        }
        set.validate()?;
        let mut canonical = [0u8; MAX_KEYSET_BODY_LEN];
        if set.encode_body(&mut canonical)? != bytes {
            return Err(Error::MalformedKeySet);
        }
        Ok(set)
    }

    /// The message the root key signs.
    pub fn message(&self) -> Result<KeySetMessage, Error> {
        let mut body = [0u8; MAX_KEYSET_BODY_LEN];
        let body = self.encode_body(&mut body)?;
        let len = u16::try_from(body.len()).map_err(|_| Error::BufferTooSmall)?;
        let mut m = KeySetMessage::new();
        m.extend(&KEYSET_MAGIC)?;
        m.extend(&KEYSET_VERSION.to_be_bytes())?;
        m.extend(&len.to_be_bytes())?;
        m.extend(body)?;
        Ok(m)
    }
}

/// What the root key signs: context, prefix and body, in one fixed buffer.
#[derive(Clone)]
pub struct KeySetMessage {
    inner: ContextBuf<MAX_KEYSET_MESSAGE_LEN>,
}

impl KeySetMessage {
    fn new() -> Self {
        Self {
            inner: ContextBuf::new(KEYSET_CONTEXT),
        }
    }

    fn extend(&mut self, bytes: &[u8]) -> Result<(), Error> {
        self.inner.extend(bytes)
    }

    /// The whole message, as signed: the "to be signed" bytes for an external signer.
    pub fn as_bytes(&self) -> &[u8] {
        self.inner.as_bytes()
    }

    /// Prefix and body, as they appear in the file (the signature follows them).
    pub fn file_bytes(&self) -> &[u8] {
        self.inner.body()
    }

    /// Signs the message (host side).
    pub fn sign(&self, key: &SigningKey) -> [u8; SIGNATURE_LEN] {
        key.sign(self.as_bytes()).to_bytes()
    }

    /// Verifies `signature` with `verify_strict`; every failure is [`Error::Authentication`].
    pub fn verify(&self, key: &VerifyingKey, signature: &[u8; SIGNATURE_LEN]) -> Result<(), Error> {
        key.verify_strict(self.as_bytes(), &Signature::from_bytes(signature))
            .map_err(|_| Error::Authentication)
    }
}

/// Parses the prefix and body at the start of `bytes`; returns the set and the bytes used.
fn parse_prefix_and_body(bytes: &[u8]) -> Result<(KeySet, usize), Error> {
    let mut r = versioned(bytes, &KEYSET_MAGIC, KEYSET_VERSION, Error::NotAKeySet)?;
    let len = usize::from(r.take_u16_be()?);
    if len == 0 || len > MAX_KEYSET_BODY_LEN {
        return Err(Error::MalformedKeySet);
    }
    let set = KeySet::parse_body(r.take(len)?)?;
    Ok((set, KEYSET_PREFIX_LEN.saturating_add(len)))
}

/// A parsed key-set file: the set, the message its signature covers, and the signature.
/// Nothing in it is to be trusted before [`SignedKeySet::verify`] succeeds.
#[derive(Clone)]
pub struct SignedKeySet {
    /// The set.
    pub set: KeySet,
    /// Context, prefix and body.
    pub message: KeySetMessage,
    /// The root key's signature.
    pub signature: [u8; SIGNATURE_LEN],
}

impl SignedKeySet {
    /// Parses exactly `bytes` as a key-set file; trailing bytes are an error.
    pub fn parse(bytes: &[u8]) -> Result<Self, Error> {
        Self::parse_inner(bytes).map_err(|e| match e {
            Error::Truncated => Error::MalformedKeySet,
            other => other,
        })
    }

    fn parse_inner(bytes: &[u8]) -> Result<Self, Error> {
        // Magic first: a container or any other file is named as such, whatever its length.
        check_magic(bytes, &KEYSET_MAGIC, Error::NotAKeySet)?;
        if bytes.len() > MAX_KEYSET_LEN {
            return Err(Error::MalformedKeySet);
        }
        let (set, used) = parse_prefix_and_body(bytes)?;
        let mut r = Reader::new(bytes.get(used..).unwrap_or_default());
        let signature = r.take_array::<SIGNATURE_LEN>()?;
        r.expect_end(Error::MalformedKeySet)?;
        let mut message = KeySetMessage::new();
        message.extend(bytes.get(..used).ok_or(Error::Truncated)?)?;
        Ok(Self {
            set,
            message,
            signature,
        })
    }

    /// Signs `set` with the root key (host side).
    pub fn sign(set: KeySet, root: &SigningKey) -> Result<Self, Error> {
        if KeyId::of_ed25519(root.verifying_key().as_bytes()) != set.root {
            return Err(Error::InvalidKeySet);
        }
        let message = set.message()?;
        let signature = message.sign(root);
        Ok(Self {
            set,
            message,
            signature,
        })
    }

    /// Verifies the signature under `root` (whose id must be the set's root id).
    pub fn verify(&self, root: &VerifyingKey) -> Result<(), Error> {
        if KeyId::of_ed25519(root.as_bytes()) != self.set.root {
            return Err(Error::Authentication);
        }
        self.message.verify(root, &self.signature)
    }

    /// The file: prefix, body, signature.
    pub fn encode<'o>(&self, out: &'o mut [u8; MAX_KEYSET_LEN]) -> &'o [u8] {
        let file = self.message.file_bytes();
        let end = file.len().saturating_add(SIGNATURE_LEN);
        let (head, tail) = out.split_at_mut(file.len().min(MAX_KEYSET_LEN));
        head.copy_from_slice(file.get(..head.len()).unwrap_or_default());
        tail.iter_mut()
            .zip(self.signature.iter())
            .for_each(|(o, s)| *o = *s);
        out.get(..end).unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(seed: u8) -> SigningKey {
        SigningKey::from_bytes(&[seed; 32])
    }

    fn public(seed: u8) -> [u8; 32] {
        key(seed).verifying_key().to_bytes()
    }

    /// Known-answer body: epoch 3, target "stm32f405", root id of key 0x10, one key of 0x20.
    #[test]
    fn body_known_answer() {
        let set = KeySet::new(3, "stm32f405", &public(0x10), &[public(0x20)]).unwrap();
        let mut buf = [0u8; MAX_KEYSET_BODY_LEN];
        let body = set.encode_body(&mut buf).unwrap();
        let mut expected = std::vec![3u8, 9];
        expected.extend_from_slice(b"stm32f405");
        expected.extend_from_slice(&KeyId::of_ed25519(&public(0x10)).0);
        expected.push(32);
        expected.extend_from_slice(&public(0x20));
        assert_eq!(body, expected.as_slice());
        assert_eq!(KeySet::parse_body(body).unwrap().keys(), &[public(0x20)]);
    }

    #[test]
    fn round_trip_sign_parse_verify() {
        let set = KeySet::new(
            u32::MAX,
            "stm32f405",
            &public(1),
            &[public(2), public(3), public(4), public(5)],
        )
        .unwrap();
        let signed = SignedKeySet::sign(set.clone(), &key(1)).unwrap();
        let mut buf = [0u8; MAX_KEYSET_LEN];
        let bytes = signed.encode(&mut buf);
        assert!(bytes.len() <= MAX_KEYSET_LEN);
        let parsed = SignedKeySet::parse(bytes).unwrap();
        assert!(parsed.set == set);
        parsed.verify(&key(1).verifying_key()).unwrap();
        assert!(parsed.set.trusts(KeyId::of_ed25519(&public(4))));
        assert!(!parsed.set.trusts(KeyId::of_ed25519(&public(1))));
    }

    #[test]
    fn firmware_keys_cannot_sign_a_set() {
        let set = KeySet::new(1, "t", &public(1), &[public(2)]).unwrap();
        // The signing API refuses a key other than the set's root...
        assert_eq!(
            SignedKeySet::sign(set.clone(), &key(2)).err(),
            Some(Error::InvalidKeySet)
        );
        // ... and a forged one (root id of key 1, signed by key 2) fails verification.
        let forged = SignedKeySet {
            message: set.message().unwrap(),
            signature: set.message().unwrap().sign(&key(2)),
            set,
        };
        assert_eq!(
            forged.verify(&key(1).verifying_key()),
            Err(Error::Authentication)
        );
        assert_eq!(
            forged.verify(&key(2).verifying_key()),
            Err(Error::Authentication)
        );
    }

    #[test]
    fn invalid_sets_are_refused() {
        let root = public(1);
        assert_eq!(
            KeySet::new(1, "t", &root, &[]).err(),
            Some(Error::InvalidKeySet)
        );
        assert_eq!(
            KeySet::new(1, "t", &root, &[public(2); 5]).err(),
            Some(Error::InvalidKeySet)
        );
        assert_eq!(
            KeySet::new(1, "t", &root, &[public(2), public(2)]).err(),
            Some(Error::InvalidKeySet)
        );
        // The root key never signs firmware.
        assert_eq!(
            KeySet::new(1, "t", &root, &[public(2), root]).err(),
            Some(Error::InvalidKeySet)
        );
        // A weak (small-order) key.
        let mut identity = [0u8; 32];
        identity[0] = 1;
        assert_eq!(
            KeySet::new(1, "t", &root, &[identity]).err(),
            Some(Error::InvalidKeySet)
        );
        assert_eq!(
            KeySet::new(1, "T", &root, &[public(2)]).err(),
            Some(Error::InvalidName)
        );
    }

    #[test]
    fn parse_is_strict() {
        let set = KeySet::new(7, "stm32f405", &public(1), &[public(2)]).unwrap();
        let signed = SignedKeySet::sign(set, &key(1)).unwrap();
        let mut buf = [0u8; MAX_KEYSET_LEN];
        let good = signed.encode(&mut buf).to_vec();
        // Every truncation fails without panicking.
        for n in 0..good.len() {
            assert!(SignedKeySet::parse(&good[..n]).is_err(), "length {n}");
        }
        let mut trailing = good.clone();
        trailing.push(0);
        assert_eq!(
            SignedKeySet::parse(&trailing).err(),
            Some(Error::MalformedKeySet)
        );
        let mut magic = good.clone();
        magic[1] ^= 1;
        assert_eq!(SignedKeySet::parse(&magic).err(), Some(Error::NotAKeySet));
        let mut version = good.clone();
        version[9] = 2;
        assert_eq!(
            SignedKeySet::parse(&version).err(),
            Some(Error::UnsupportedVersion(2))
        );
        // The body length is bounded before it is used.
        for len in [0u16, MAX_KEYSET_BODY_LEN as u16 + 1, u16::MAX] {
            let mut bad = good.clone();
            bad[10..12].copy_from_slice(&len.to_be_bytes());
            assert_eq!(
                SignedKeySet::parse(&bad).err(),
                Some(Error::MalformedKeySet),
                "{len}"
            );
        }
        // A container is not a key set.
        assert_eq!(
            SignedKeySet::parse(b"\x89SFU\r\n\x1a\n").err(),
            Some(Error::NotAKeySet)
        );
        // Overlong epoch varint (3 = 0x83 0x00): same value, not canonical.
        let mut body = std::vec![0x83u8, 0x00];
        let mut enc = [0u8; MAX_KEYSET_BODY_LEN];
        body.extend_from_slice(&signed.set.encode_body(&mut enc).unwrap()[1..]);
        assert_eq!(
            KeySet::parse_body(&body).err(),
            Some(Error::MalformedKeySet)
        );
        // Key bytes not a multiple of 32.
        let mut ragged = signed.set.encode_body(&mut enc).unwrap().to_vec();
        let at = ragged.len() - 33;
        ragged[at] = 31;
        ragged.pop();
        assert_eq!(
            KeySet::parse_body(&ragged).err(),
            Some(Error::InvalidKeySet)
        );
    }
}
