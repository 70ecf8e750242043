//! The unit tests' defaults, on the shared kit (`sim::kit`): containers signed by key 0x11 for
//! device key 0x22, security counter 5, and the policy that accepts them.

use std::vec::Vec;

use sbsfu_format::Version;

use crate::sim::SimFlash;
use crate::sim::kit::{Spec, device_key, policy, trusted};
use crate::{FlashRegion, Installer, Policy, Region, Shared};

pub const APP_ADDRESS: u32 = 0x0802_0000;
/// The installer buffer of the unit tests.
pub const BUF: usize = 1024;
/// A region: its name, where it is seen, and the flash offsets it covers (start, length).
pub type Window = (&'static str, u32, u32, u32);
/// The `app` region of an F405: sectors 5..=11.
pub const APP: Window = ("app", APP_ADDRESS, 0x20000, 0xE0000);

/// Runs `f` with an installer enforcing `policy` over the region `window` of `flash`.
pub fn with_installer<T>(
    policy: &Policy<'_>,
    flash: &mut SimFlash,
    (name, address, start, len): Window,
    f: impl FnOnce(&mut Installer<'_, BUF>) -> T,
) -> T {
    let map = flash.geometry();
    let mut region = FlashRegion::new(name, flash, map, address, start, len).unwrap();
    let mut regions: [&mut dyn Region; 1] = [&mut region];
    f(&mut Installer::<BUF>::new(policy, &mut regions))
}

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

/// Runs `f` with two 16K banks of `flash` (sectors 2 and 3 of an F405), as the stores mount
/// them, and the flash itself shared with them (its OTP area, or its bytes to corrupt).
pub fn with_banks<'f, T>(
    flash: &'f mut SimFlash,
    f: impl FnOnce([&mut dyn Region; 2], Shared<'_, &'f mut SimFlash>) -> T,
) -> T {
    let map = flash.geometry();
    let cell = core::cell::RefCell::new(flash);
    let mut a = FlashRegion::new("a", Shared(&cell), map.clone(), 0, 0x8000, 0x4000).unwrap();
    let mut b = FlashRegion::new("b", Shared(&cell), map, 0, 0xC000, 0x4000).unwrap();
    f([&mut a, &mut b], Shared(&cell))
}
