//! The unit tests' defaults, on the shared kit (`sim::kit`): containers signed by key 0x11 for
//! device key 0x22, security counter 5, and the policy that accepts them.

use std::vec::Vec;

use sbsfu_format::Version;

use crate::Policy;
use crate::sim::kit::{Spec, device_key, policy, trusted};

pub const APP_ADDRESS: u32 = 0x0802_0000;

pub fn image(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i * 7 + i / 251) as u8).collect()
}

pub fn container(encrypted: bool, chunk_size: u32, image: &[u8]) -> Vec<u8> {
    Spec {
        version: Version {
            major: 1,
            minor: 0,
            patch: 0,
        },
        security_counter: 5,
        signer: 0x11,
        device: 0x22,
        ..Spec::new(encrypted, chunk_size)
    }
    .seal(image)
}

/// Runs `f` with the policy of these containers (floor 5).
pub fn with_policy<T>(f: impl FnOnce(&Policy<'_>) -> T) -> T {
    let signers = [trusted(0x11)];
    let device_keys = [device_key(0x22)];
    f(&Policy {
        min_security_counter: 5,
        ..policy("stm32f405", &signers, &device_keys)
    })
}
