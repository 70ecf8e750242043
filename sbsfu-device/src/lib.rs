//! The device side of sbsfu: a `no_std`, allocation-free streaming installer.
//!
//! Feed a container in slices of any size, as bytes arrive from a UART, USB, a modem or external
//! flash. The [`stream::Opener`] buffers the head, verifies the Ed25519 signature (`verify_strict`,
//! key chosen by key id) and the device policy (target, security counter, sizes, destination)
//! before anything touches flash; then it authenticates every chunk before its plaintext is
//! released. The [`install::Installer`] programs that plaintext through embedded-storage's
//! `NorFlash`, erasing each sector once as writing reaches it, and reports success only once the
//! image digest matched and the container ended exactly where its header said.
//!
//! RAM is bounded by the const-generic chunk buffer (`N` bytes, at least the container's chunk
//! size) plus about 1 KiB of state; plaintext and keys are wiped after use.
#![no_std]
#![forbid(unsafe_code)]
#![warn(missing_docs)]
#![cfg_attr(
    not(test),
    deny(
        clippy::unwrap_used,
        clippy::expect_used,
        clippy::panic,
        clippy::indexing_slicing,
        clippy::arithmetic_side_effects
    )
)]

#[cfg(any(feature = "std", test))]
extern crate std;

pub mod error;
pub mod flash;
pub mod head;
pub mod install;
pub mod keys;
#[cfg(feature = "sim")]
pub mod sim;
pub mod stream;
#[cfg(test)]
mod testkit;
pub mod verify;

pub use error::Error;
pub use flash::{FlashRegion, Region, STM32F405_SECTORS, SectorMap, Sectors, Uniform};
pub use install::{Installed, Installer};
pub use keys::{Policy, TrustedKey};
pub use sbsfu_format as format;
pub use stream::{Event, Opener};
