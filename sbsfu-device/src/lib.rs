//! The device side of sbsfu: a `no_std`, allocation-free streaming installer, and the boot
//! manager that makes updates power-safe.
//!
//! Feed a container in slices of any size, as bytes arrive from a UART, USB, a modem or external
//! flash. The [`Installer`] buffers the head and verifies it before anything touches flash: the
//! Ed25519 signature (`verify_strict`, key chosen by key id), then the [`Policy`] (target,
//! security counter, region, load address, sizes). It then authenticates every chunk before
//! programming its plaintext through embedded-storage's `NorFlash`, erasing each sector once as
//! writing reaches it, and reports success only once the image digest matched and the container
//! ended exactly where its header said. RAM is bounded by the const-generic chunk buffer (`N`
//! bytes, at least the container's chunk size) plus about 1 KiB of state; plaintext and keys are
//! wiped after use.
//!
//! # An install, start to finish
//!
//! The keys are the constants the CLI prints: `sbsfu pubkey --key signing.pem --format rust`
//! (the signer the device trusts) and `sbsfu export-key --key device.key --format rust` (the
//! device key, secret). Here, those of the published development keys in `keys-example/`.
//! `flash` is any embedded-storage `NorFlash`: on a board, its flash driver; in this example, a
//! simulated STM32F405 (feature `sim`).
//!
//! ```
//! use sbsfu_device::format::DeviceKey;
//! use sbsfu_device::{FlashRegion, Installer, Policy, Region, STM32F405_SECTORS, Sectors, TrustedKey};
//!
//! /// Ed25519 public key trusted to sign sbsfu images (key id a9f80929a4145aa5).
//! pub const SBSFU_SIGNING_KEY: [u8; 32] = [
//!     0xe6, 0xba, 0xbe, 0x69, 0xa2, 0x63, 0x68, 0xa4,
//!     0x02, 0x48, 0x9e, 0xb8, 0x8c, 0x09, 0xf1, 0x25,
//!     0x4f, 0x4b, 0x56, 0x92, 0x9b, 0x8a, 0x2b, 0x77,
//!     0x81, 0x63, 0x2b, 0xa4, 0x27, 0x60, 0x28, 0xa3,
//! ];
//! /// AES-256 device key for sbsfu containers (key id 4627aaf9b624390b). SECRET: keep it out of version control.
//! pub const SBSFU_DEVICE_KEY: [u8; 32] = [
//!     0x97, 0x38, 0xc8, 0x4d, 0x9d, 0x21, 0xcc, 0x4a,
//!     0xf4, 0xc5, 0x9d, 0x02, 0x1f, 0x00, 0xe8, 0xbd,
//!     0x32, 0x7e, 0x09, 0x97, 0x73, 0x9a, 0x25, 0xec,
//!     0xa6, 0x10, 0x2a, 0xde, 0x2b, 0xec, 0x22, 0xd4,
//! ];
//!
//! # let mut flash = sbsfu_device::sim::SimFlash::stm32f405(); // stands for the board's NorFlash
//! // What this device trusts, set up once.
//! let signers = [TrustedKey::from_bytes(&SBSFU_SIGNING_KEY)?];
//! let device_keys = [DeviceKey::from_bytes(SBSFU_DEVICE_KEY)];
//! let policy = Policy {
//!     target: "stm32f405",
//!     signers: &signers,
//!     device_keys: &device_keys,
//!     min_security_counter: 3, // the anti-rollback floor: from a `CounterStore`
//!     require_encryption: true,
//! };
//! // Where images go: the `app` region, sectors 5..=11 of an STM32F405, seen at 0x0802_0000.
//! let mut app = FlashRegion::new(
//!     "app", &mut flash, Sectors(&STM32F405_SECTORS), 0x0802_0000, 0x2_0000, 0xE_0000)?;
//! let mut regions: [&mut dyn Region; 1] = [&mut app];
//! let mut installer = Installer::<1024>::new(&policy, &mut regions);
//!
//! // The container as it arrives: here a file made by `sbsfu sign --encrypt-key ...
//! // --chunk-size 1024`, fed 7 bytes at a time as from a UART.
//! let container = include_bytes!("../../fuzz/seeds/encrypted-3000-1k.sfu");
//! for piece in container.chunks(7) {
//!     installer.feed(piece)?; // a precise `Error` on the first bad byte, and every call after
//! }
//! let installed = installer.finish()?; // only now: complete, authentic, digest matched
//! assert_eq!(installed.header().image_len, 3000);
//! // Keep `installed.signed_head()` beside the image: `boot::verify_region` checks both again
//! // at every boot.
//! # Ok::<(), sbsfu_device::Error>(())
//! ```
//!
//! With a device key shared by a class of devices, chunk authentication proves less than the
//! signature: stage instead of installing directly (the [`Installer`] documentation says why).
//!
//! # Where to go from here
//!
//! - [`boot`]: power-safe updates. The bootloader's [`boot::BootManager`] (install at reset,
//!   trial boot, revert, anti-rollback, a vector-table check before every boot) and the
//!   application's [`boot::Stager`] and [`boot::confirm`], with examples for both sides.
//! - [`OtpCounter`] keeps the anti-rollback floor in one-time-programmable memory that no flash
//!   writer can lower; [`KeyStore`] rotates and revokes the signing keys under a root key.
//! - [`Opener`] is the installer's sans-IO core (bytes in, verified header and chunks out), for a
//!   destination that is not a `Region`; [`install_from`] pulls from a [`Source`].
//!
//! # Cargo features
//!
//! | feature | what it adds |
//! |---|---|
//! | (none) | `no_std`, no heap, no `alloc`: the installer, the boot manager, the stores |
//! | `fast-sha256` | image digests (installer and boot verification) with an unrolled SHA-256 (`hmac-sha256`) instead of sha2's: for firmware that builds sha2 compact to keep Ed25519's SHA-512 small. What it costs and saves: docs/PERFORMANCE.md |
//! | `std` | `SinkFlash` (the installer into a `std::io::Write`: how the `sbsfu` CLI verifies), `MemFlash` (a plain NOR flash in memory: how `sbsfu provision` installs) and `IoSource` (the installer fed from a `std::io::Read`) |
//! | `sim` | implies `std`: `sim::SimFlash` (a NOR flash with the STM32F405's sectors, power cuts and a fault model) and `sim::kit`, the test kit of the workspace |
//!
//! In a firmware `Cargo.toml` (the crate is not published; it comes from the repository):
//!
//! ```toml
//! [dependencies]
//! sbsfu-device = { git = "https://github.com/sbsfu/sbsfu", features = ["fast-sha256"] }
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
    Event, INSTALL_PROGRESS_STEP, ImageHasher, ImageSha256, Installed, Installer, Opener,
    RegionBegun, RegionInstaller, Source, install_from, verify_head,
};

// Flash: named regions of any embedded-storage `NorFlash`, with the sector map it lacks.
pub use flash::{
    FlashRegion, MAX_WRITE_SIZE, Region, STM32F405_SECTORS, SectorMap, Sectors, Shared,
    SharedError, Uniform,
};
#[cfg(feature = "std")]
pub use flash::{MemError, MemFlash, SinkError, SinkFlash};

// What survives resets and power cuts: the anti-rollback counters, the key store, and the
// factory's device record.
pub use store::{
    CounterStore, FlashCounter, KeyStore, OtpCounter, OtpMemory, RECORD_SIZE, TrustedSet,
    check_key_set, check_newer, device_record,
};
