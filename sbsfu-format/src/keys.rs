//! Key identifiers and the symmetric key types.
//!
//! Key types deliberately have no `Debug` or `Display`, and wipe themselves when dropped.

use core::fmt;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use zeroize::{Zeroize, ZeroizeOnDrop};

/// Length of a key identifier.
pub const KEY_ID_LEN: usize = 8;

/// Domain separation for the key id of an Ed25519 public key.
pub const ED25519_KEY_ID_CONTEXT: &[u8] = b"sbsfu/v1/key-id/ed25519";
/// Domain separation for the key id of an AES-256 device key.
pub const DEVICE_KEY_ID_CONTEXT: &[u8] = b"sbsfu/v1/key-id/aes256";

/// Names a key without revealing it: the first 8 bytes of SHA-256 over a context and the key.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct KeyId(pub [u8; KEY_ID_LEN]);

impl KeyId {
    /// The id of an Ed25519 public key (its 32-byte compressed encoding).
    pub fn of_ed25519(public_key: &[u8; 32]) -> Self {
        Self::derive(ED25519_KEY_ID_CONTEXT, public_key)
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

impl fmt::Display for KeyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.iter().try_for_each(|b| write!(f, "{b:02x}"))
    }
}

impl fmt::Debug for KeyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "KeyId({self})")
    }
}

/// The long-lived AES-256 key provisioned into a device class; it only ever wraps content keys.
#[derive(Clone, Zeroize, ZeroizeOnDrop)]
pub struct DeviceKey([u8; 32]);

impl DeviceKey {
    /// Wraps raw key bytes.
    pub fn from_bytes(bytes: [u8; 32]) -> Self {
        Self(bytes)
    }

    /// The raw key bytes (for writing the key file; handle with care).
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    /// The key id carried in container headers.
    pub fn id(&self) -> KeyId {
        KeyId::derive(DEVICE_KEY_ID_CONTEXT, &self.0)
    }
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

    #[test]
    fn key_ids_are_domain_separated_known_answers() {
        let zero = [0u8; 32];
        assert_eq!(KeyId::of_ed25519(&zero).to_string(), ED25519_ZERO_ID);
        assert_eq!(DeviceKey::from_bytes(zero).id().to_string(), DEVICE_ZERO_ID);
    }
}
