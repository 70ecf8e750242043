//! The sbsfu update container format.
//!
//! A container is a fixed [`prefix`], a postcard-encoded [`header`], an Ed25519 signature over a
//! domain-separation context plus the exact prefix and header bytes ([`signed`]), then the payload
//! as a sequence of chunks ([`layout`], [`chunk`]). `docs/FORMAT.md` specifies it byte by byte.
//! A [`keyset`] is the separate, root-signed file that rotates the signing keys a device trusts.
//!
//! This crate is `no_std`, allocation-free and never panics on any input: every read is checked,
//! every length is bounded by a named `MAX_*` constant before it is used, and unknown versions and
//! trailing bytes are rejected. The host CLI and the device installer use the same code.
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

pub mod chunk;
pub mod error;
pub mod header;
pub mod keys;
pub mod keyset;
pub mod layout;
pub mod name;
pub mod prefix;
pub mod reader;
#[cfg(feature = "std")]
pub mod seal;
pub mod signed;
pub mod wrap;

pub use error::Error;
pub use header::{Header, Protection, Version};
pub use keys::{ContentKey, DeviceKey, KeyId};
pub use prefix::Prefix;
pub use signed::SignedMessage;
