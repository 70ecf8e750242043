//! The keys the firmware is built with (see build.rs): by default the published development
//! keys of keys-example/, which must never ship.

/// The trusted Ed25519 signing key.
pub const SIGNING_KEY: [u8; 32] = *include_bytes!(concat!(env!("OUT_DIR"), "/signing.pub.raw"));

/// The root key that signs key-set updates (`sbsfu keyset create`); it never signs firmware.
pub const ROOT_KEY: [u8; 32] = *include_bytes!(concat!(env!("OUT_DIR"), "/root.pub.raw"));

/// The AES-256 device key that unwraps content keys.
pub const DEVICE_KEY: [u8; 32] = *include_bytes!(concat!(env!("OUT_DIR"), "/device.key.raw"));

/// The device's own X25519 private key: containers are encrypted to its public key with HPKE
/// (`sbsfu sign --encrypt-to`). Per device in production (issue 14's factory records).
pub const DEVICE_X25519_KEY: [u8; 32] =
    *include_bytes!(concat!(env!("OUT_DIR"), "/device-x25519.key.raw"));

/// The device class this firmware is for.
pub const TARGET: &str = "stm32f405";
