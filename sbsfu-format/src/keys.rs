//! Key identifiers and the symmetric key types.
//!
//! Key types deliberately have no `Debug` or `Display`, and wipe themselves when dropped.

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use zeroize::{Zeroize, ZeroizeOnDrop};

use crate::hex::hex_id_fmt;

/// Length of a key identifier.
pub const KEY_ID_LEN: usize = 8;

/// Domain separation for the key id of an Ed25519 public key.
pub const ED25519_KEY_ID_CONTEXT: &[u8] = b"sbsfu/v1/key-id/ed25519";
/// Domain separation for the key id of an AES-256 device key.
pub const DEVICE_KEY_ID_CONTEXT: &[u8] = b"sbsfu/v1/key-id/aes256";
/// Domain separation for the key id of an X25519 device key (over its public key).
pub const X25519_KEY_ID_CONTEXT: &[u8] = b"sbsfu/v1/key-id/x25519";

/// Names a key without revealing it: the first 8 bytes of SHA-256 over a context and the key.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default, Serialize, Deserialize)]
pub struct KeyId(pub [u8; KEY_ID_LEN]);

impl KeyId {
    /// The id of an Ed25519 public key (its 32-byte compressed encoding).
    pub fn of_ed25519(public_key: &[u8; 32]) -> Self {
        Self::derive(ED25519_KEY_ID_CONTEXT, public_key)
    }

    /// The id of an X25519 public key (RFC 7748 encoding): what a sender knows of a device
    /// key, so a container names its recipients without anyone holding the secret.
    pub fn of_x25519(public_key: &[u8; 32]) -> Self {
        Self::derive(X25519_KEY_ID_CONTEXT, public_key)
    }

    fn derive(context: &[u8], key: &[u8; 32]) -> Self {
        let digest = Sha256::new()
            .chain_update(context)
            .chain_update(key)
            .finalize();
        let mut id = [0u8; KEY_ID_LEN];
        id.iter_mut().zip(digest.iter()).for_each(|(o, d)| *o = *d);
        KeyId(id)
    }
}

hex_id_fmt!(KeyId);

/// What kind of secret a [`DeviceKey`] is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeviceKeyKind {
    /// An AES-256 key that unwraps content keys ([`crate::Protection::Aes256Gcm`]).
    Aes256,
    /// An X25519 private key that HPKE-decapsulates content keys ([`crate::Protection::Hpke`]).
    X25519,
}

/// The long-lived secret provisioned into a device (or a device class): it only ever unwraps
/// content keys. An AES-256 key is shared by whoever seals for it; an X25519 key stays on the
/// device, senders holding only its public key.
#[derive(Clone, Zeroize, ZeroizeOnDrop)]
pub struct DeviceKey {
    secret: [u8; 32],
    #[zeroize(skip)]
    kind: DeviceKeyKind,
}

impl DeviceKey {
    /// An AES-256 device key from its raw bytes.
    pub fn from_bytes(bytes: [u8; 32]) -> Self {
        Self {
            secret: bytes,
            kind: DeviceKeyKind::Aes256,
        }
    }

    /// An X25519 device key from its 32-byte private key (RFC 7748; clamped when used).
    pub fn x25519(secret: [u8; 32]) -> Self {
        Self {
            secret,
            kind: DeviceKeyKind::X25519,
        }
    }

    /// Its kind.
    pub fn kind(&self) -> DeviceKeyKind {
        self.kind
    }

    /// The raw secret bytes (for writing the key file; handle with care).
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.secret
    }

    /// The X25519 public key of an X25519 device key (one scalar multiplication), or `None`.
    pub fn public_key(&self) -> Option<[u8; 32]> {
        (self.kind == DeviceKeyKind::X25519).then(|| x25519_public_key(&self.secret))
    }

    /// The key id carried in container headers. For an X25519 key it is the id of its public
    /// key, so it costs a scalar multiplication: look keys up by kind first.
    pub fn id(&self) -> KeyId {
        match self.public_key() {
            Some(public) => KeyId::of_x25519(&public),
            None => KeyId::derive(DEVICE_KEY_ID_CONTEXT, &self.secret),
        }
    }
}

/// The X25519 public key of `secret` (RFC 7748 `X25519(secret, 9)`).
pub fn x25519_public_key(secret: &[u8; 32]) -> [u8; 32] {
    x25519_dalek::x25519(*secret, x25519_dalek::X25519_BASEPOINT_BYTES)
}

/// The per-image AES-256 key that seals the payload; fresh and random for every container.
#[derive(Zeroize, ZeroizeOnDrop)]
pub struct ContentKey([u8; 32]);

impl ContentKey {
    /// Wraps raw key bytes. The host draws them from the OS random number generator.
    pub fn from_bytes(bytes: [u8; 32]) -> Self {
        Self(bytes)
    }

    /// The raw key bytes.
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::string::ToString;

    // Known answers, computed independently with `sha256sum`:
    // SHA-256("sbsfu/v1/key-id/ed25519" || 32 x 0x00)[..8] and the device-key analogue.
    const ED25519_ZERO_ID: &str = "78815d9e5678e880";
    const DEVICE_ZERO_ID: &str = "5ba6b01aa20c36ea";
    // SHA-256("sbsfu/v1/key-id/x25519" || 32 x 0x00)[..8], also by `sha256sum`.
    const X25519_ZERO_ID: &str = "4a0060515d38686a";

    #[test]
    fn key_ids_are_domain_separated_known_answers() {
        let zero = [0u8; 32];
        assert_eq!(KeyId::of_ed25519(&zero).to_string(), ED25519_ZERO_ID);
        assert_eq!(DeviceKey::from_bytes(zero).id().to_string(), DEVICE_ZERO_ID);
        assert_eq!(KeyId::of_x25519(&zero).to_string(), X25519_ZERO_ID);
        // An X25519 device key is named by its public key (RFC 7748 section 6.1's Alice).
        let alice = DeviceKey::x25519(hex_literal::hex!(
            "77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a"
        ));
        let public =
            hex_literal::hex!("8520f0098930a754748b7ddcb43ef75a0dbf3a0d26381af4eba4a98eaa9b4e6a");
        assert_eq!(alice.public_key(), Some(public));
        assert_eq!(alice.id(), KeyId::of_x25519(&public));
        assert_eq!(DeviceKey::from_bytes([0; 32]).public_key(), None);
    }
}
