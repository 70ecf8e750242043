//! The device side of sbsfu: a `no_std`, allocation-free streaming installer.
//!
//! Feed a container in slices of any size, as bytes arrive from a UART, USB, a modem or external
//! flash. The [`Opener`] buffers the head, verifies the Ed25519 signature (`verify_strict`,
//! key chosen by key id) and the device policy (target, security counter, sizes, destination)
//! before anything touches flash; then it authenticates every chunk before its plaintext is
//! released. The [`install::Installer`] programs that plaintext through embedded-storage's
//! `NorFlash`, erasing each sector once as writing reaches it, and reports success only once the
//! image digest matched and the container ended exactly where its header said.
//!
//! Beyond one install: [`boot`] makes updates power-safe (staging, trial boot, revert,
//! anti-rollback, a vector-table check before every boot), [`OtpCounter`] keeps the
//! anti-rollback floor in one-time-programmable memory that no flash writer can lower, and
//! [`KeyStore`] rotates and revokes the signing keys under a root key.
//!
//! RAM is bounded by the const-generic chunk buffer (`N` bytes, at least the container's chunk
//! size) plus about 1 KiB of state; plaintext and keys are wiped after use.
//!
//! ```
//! use sbsfu_device::{FlashRegion, Installer, Policy, Region, Sectors, TrustedKey, STM32F405_SECTORS};
//! use sbsfu_device::format::DeviceKey;
//! # use sbsfu_device::sim::SimFlash;
//! # let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../tests/vectors/");
//! # let container = std::fs::read(format!("{dir}kat-encrypted.sfu")).unwrap();
//! # let signer_public_key: [u8; 32] = ed25519_dalek::SigningKey::from_bytes(&[1; 32]).verifying_key().to_bytes();
//! # let device_key_bytes = [2u8; 32];
//! # let mut flash = SimFlash::stm32f405(); // on a board: the real flash driver
//!
//! // Once, at start-up: what this device trusts.
//! let signers = [TrustedKey::from_bytes(&signer_public_key)?];
//! let device_keys = [DeviceKey::from_bytes(device_key_bytes)];
//! let policy = Policy {
//!     target: "stm32f405",
//!     signers: &signers,
//!     device_keys: &device_keys,
//!     min_security_counter: 10, // from the device's monotonic counter store
//!     require_encryption: true,
//! };
//! // The `app` region: sectors 5..=11 of the F405, seen by the CPU at 0x0802_0000.
//! let mut app = FlashRegion::new(
//!     "app", &mut flash, Sectors(&STM32F405_SECTORS), 0x0802_0000, 0x2_0000, 0xE_0000)?;
//! let mut regions: [&mut dyn Region; 1] = [&mut app];
//! let mut installer = Installer::<4096>::new(&policy, &mut regions);
//!
//! // As bytes arrive (here: 3 at a time, as from a UART).
//! for piece in container.chunks(3) {
//!     installer.feed(piece)?;
//! }
//! let installed = installer.finish()?;
//! assert_eq!(installed.header().image_len, 700);
//! // Store `installed.signed_head()` next to the image to verify both again at every boot.
//! # Ok::<(), sbsfu_device::Error>(())
//! ```
#![no_std]
// Runs on devices, on bytes from anywhere: no panics, no unchecked indexing or arithmetic,
// outside tests (docs/ARCHITECTURE.md, "Lints").
#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used))]
#![cfg_attr(not(test), deny(clippy::panic, clippy::indexing_slicing))]
#![cfg_attr(not(test), deny(clippy::arithmetic_side_effects))]
#![forbid(unsafe_code)]
#![warn(missing_docs)]

#[cfg(any(feature = "std", test))]
extern crate std;

pub mod boot;
mod error;
mod flash;
mod install;
mod keys;
#[cfg(feature = "sim")]
pub mod sim;
mod store;
#[cfg(test)]
mod testkit;

pub use error::Error;
pub use sbsfu_format as format;

// What a device trusts.
pub use keys::{Policy, TrustedKey};

// The streaming installer: bytes in (pushed, or pulled from a `Source`), verified chunks
// programmed into a `Region`.
#[cfg(feature = "std")]
pub use install::IoSource;
#[cfg(feature = "fast-sha256")]
pub use install::UnrolledSha256;
pub use install::{
    Event, ImageHasher, ImageSha256, Installed, Installer, Opener, Source, install_from,
    verify_head,
};

// Flash: named regions of any embedded-storage `NorFlash`, with the sector map it lacks.
pub use flash::{
    FlashRegion, MAX_WRITE_SIZE, Region, STM32F405_SECTORS, SectorMap, Sectors, Shared,
    SharedError, Uniform,
};
#[cfg(feature = "std")]
pub use flash::{SinkError, SinkFlash};

// What survives resets and power cuts: the anti-rollback counters and the key store.
pub use store::{
    CounterStore, FlashCounter, KeyStore, OtpCounter, OtpMemory, TrustedSet, check_key_set,
    check_newer,
};
