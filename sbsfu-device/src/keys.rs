//! Trusted signing keys and the device's acceptance policy.

use ed25519_dalek::VerifyingKey;
use sbsfu_format::{DeviceKey, DeviceKeyKind, Header, HpkeEncryption, KeyId, Protection};

use crate::Error;

/// An Ed25519 public key this device accepts headers from, with its key id precomputed.
///
/// Like every key type here it has no `Debug`: keys are named by [`TrustedKey::id`] in logs.
#[derive(Clone)]
pub struct TrustedKey {
    id: KeyId,
    key: VerifyingKey,
}

impl TrustedKey {
    /// Parses a 32-byte compressed public key. Invalid encodings and weak (small-order) keys
    /// are refused.
    pub fn from_bytes(bytes: &[u8; 32]) -> Result<Self, Error> {
        let key = VerifyingKey::from_bytes(bytes).map_err(|_| Error::InvalidKey)?;
        if key.is_weak() {
            return Err(Error::InvalidKey);
        }
        Ok(Self {
            id: KeyId::of_ed25519(bytes),
            key,
        })
    }

    /// The key id headers name this key by.
    pub fn id(&self) -> KeyId {
        self.id
    }

    /// The verifying key.
    pub fn verifying_key(&self) -> &VerifyingKey {
        &self.key
    }
}

/// What a device accepts.
pub struct Policy<'a> {
    /// The device class; a header for any other target is refused.
    pub target: &'a str,
    /// Keys trusted to sign images, looked up by key id.
    pub signers: &'a [TrustedKey],
    /// Device keys that may unwrap content keys, looked up by key id: AES-256 keys, and X25519
    /// keys that containers are encrypted to with HPKE.
    pub device_keys: &'a [DeviceKey],
    /// Images with a lower security counter are refused.
    pub min_security_counter: u32,
    /// Refuse signed-only (unencrypted) images.
    pub require_encryption: bool,
}

impl Policy<'_> {
    /// The trusted key with id `id`.
    pub fn signer(&self, id: KeyId) -> Result<&TrustedKey, Error> {
        self.signers
            .iter()
            .find(|k| k.id == id)
            .ok_or(Error::UnknownSigner(id))
    }

    /// The AES-256 device key with id `id`.
    pub fn device_key(&self, id: KeyId) -> Result<&DeviceKey, Error> {
        self.device_keys
            .iter()
            .filter(|k| k.kind() == DeviceKeyKind::Aes256)
            .find(|k| k.id() == id)
            .ok_or(Error::UnknownDeviceKey(id))
    }

    /// The recipient of `hpke` this device holds the X25519 key of, by key id: that key, its
    /// public key (one scalar multiplication per X25519 key held) and the recipient's index in
    /// the header (its entry stays in the header bytes: [`Header::recipient`]).
    /// [`Error::NotARecipient`] when the container is encrypted to other keys only.
    pub fn recipient(&self, hpke: &HpkeEncryption) -> Result<(&DeviceKey, [u8; 32], usize), Error> {
        self.device_keys
            .iter()
            .filter_map(|k| Some((k, k.public_key()?)))
            .find_map(|(k, public)| {
                let id = KeyId::of_x25519(&public);
                let i = hpke.recipients.as_slice().iter().position(|r| *r == id)?;
                Some((k, public, i))
            })
            .ok_or(Error::NotARecipient)
    }

    /// Whether this device holds the key that decrypts `header`'s payload (always, for a
    /// signed-only payload).
    pub fn can_decrypt(&self, header: &Header) -> bool {
        match &header.protection {
            Protection::SignedOnly { .. } => true,
            Protection::Aes256Gcm(e) => self.device_key(e.device_key).is_ok(),
            Protection::Hpke(h) => self.recipient(h).is_ok(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn weak_and_invalid_keys_are_refused() {
        // The identity point (small order), and y = 2, which is on no point of the curve.
        let mut identity = [0u8; 32];
        identity[0] = 1;
        assert!(matches!(
            TrustedKey::from_bytes(&identity),
            Err(Error::InvalidKey)
        ));
        let mut off_curve = [0u8; 32];
        off_curve[0] = 2;
        assert!(matches!(
            TrustedKey::from_bytes(&off_curve),
            Err(Error::InvalidKey)
        ));
    }
}
