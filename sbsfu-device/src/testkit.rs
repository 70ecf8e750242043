//! Keys, policies and containers for the unit tests.

use std::vec::Vec;

use ed25519_dalek::SigningKey;
use sbsfu_format::{ContentKey, DeviceKey, Version};
use sbsfu_format::{EncryptParams, SealParams, seal_to_vec};

use crate::keys::{Policy, TrustedKey};

pub const APP_ADDRESS: u32 = 0x0802_0000;

pub fn signing_key() -> SigningKey {
    SigningKey::from_bytes(&[0x11; 32])
}

pub fn device_key() -> DeviceKey {
    DeviceKey::from_bytes([0x22; 32])
}

pub fn trusted() -> TrustedKey {
    TrustedKey::from_bytes(&signing_key().verifying_key().to_bytes()).unwrap()
}

pub fn image(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i * 7 + i / 251) as u8).collect()
}

pub fn params(encrypted: bool, chunk_size: u32, device: &DeviceKey) -> SealParams<'_> {
    SealParams {
        signer: signing_key().verifying_key().to_bytes(),
        target: "stm32f405",
        version: Version {
            major: 1,
            minor: 0,
            patch: 0,
        },
        security_counter: 5,
        region: "app",
        load_address: APP_ADDRESS,
        chunk_size,
        encryption: encrypted.then(|| EncryptParams {
            device_key: device,
            content_key: ContentKey::from_bytes([0x33; 32]),
            wrap_nonce: [0x44; 12],
            nonce_prefix: [0x55; 7],
        }),
    }
}

pub fn container(encrypted: bool, chunk_size: u32, image: &[u8]) -> Vec<u8> {
    let dk = device_key();
    seal_to_vec(&params(encrypted, chunk_size, &dk), &signing_key(), image).unwrap()
}

/// Runs `f` with the default policy.
pub fn with_policy<T>(f: impl FnOnce(&Policy<'_>) -> T) -> T {
    let signers = [trusted()];
    let device_keys = [device_key()];
    let policy = Policy {
        target: "stm32f405",
        signers: &signers,
        device_keys: &device_keys,
        min_security_counter: 5,
        require_encryption: false,
    };
    f(&policy)
}
