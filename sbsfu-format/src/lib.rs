//! The sbsfu update container format.
//!
//! A container is a fixed [`Prefix`], a postcard-encoded [`Header`], an Ed25519 signature over a
//! domain-separation context plus the exact prefix and header bytes ([`SignedMessage`],
//! [`SignedHeader`]), then the payload as a sequence of chunks ([`PayloadLayout`]), each
//! authenticated: AES-256-GCM STREAM ([`ChunkCipher`]) or a signed hash chain ([`chain_link`]).
//! `docs/FORMAT.md` specifies it byte by byte. A key set ([`SignedKeySet`]) is the separate,
//! root-signed file that rotates the signing keys a device trusts. With the `std` feature,
//! `SealParams::prepare` builds a container's header and `Prepared::seal` writes the container.
//!
//! This crate is `no_std`, allocation-free and never panics on any input: every read is checked,
//! every length is bounded by a named `MAX_*` constant before it is used, and unknown versions and
//! trailing bytes are rejected. The host CLI and the device installer use the same code.
#![no_std]
#![forbid(unsafe_code)]
#![warn(missing_docs)]
// Parses untrusted bytes, on devices too: no panics, no unchecked indexing or arithmetic,
// outside tests (docs/ARCHITECTURE.md, "Lints"; the host-only sealer is exempt).
#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used))]
#![cfg_attr(not(test), deny(clippy::panic, clippy::indexing_slicing))]
#![cfg_attr(not(test), deny(clippy::arithmetic_side_effects))]

#[cfg(any(feature = "std", test))]
extern crate std;

mod chunk;
mod error;
mod header;
mod hex;
mod hpke;
mod keys;
mod keyset;
mod layout;
mod name;
mod prefix;
mod reader;
mod record;
#[cfg(feature = "std")]
mod seal;
mod signed;
mod wrap;
mod writer;

pub use error::Error;

// The checked reader behind every parser here, for protocols that follow the same rules (the link).
pub use reader::Reader;
// How ids and digests print (key ids, container ids): lowercase hex.
pub use hex::Hex;

// The container, in wire order: prefix, header, signature over both, payload.
pub use header::{
    DEFAULT_CHUNK_SIZE, DIGEST_LEN, Encryption, Header, HpkeEncryption, MAX_CHUNK_SIZE,
    MAX_HEADER_LEN, MAX_IMAGE_LEN, MAX_RECIPIENTS, MAX_REGION_LEN, MAX_TARGET_LEN, MIN_CHUNK_SIZE,
    Protection, RECIPIENT_LEN, Recipient, RecipientIds, Version,
};
pub use layout::PayloadLayout;
pub use name::Name;
pub use prefix::{FORMAT_VERSION, MAGIC, PREFIX_LEN, Prefix, check_magic_prefix};
pub use signed::{ContainerId, MAX_HEAD_LEN, SIGNATURE_LEN, SignedHeader, SignedMessage};

// How chunks are protected, and how the content key travels.
pub use chunk::{ChunkCipher, LINK_LEN, NONCE_PREFIX_LEN, TAG_LEN, chain_link, payload_aad};
pub use hpke::{AEAD_ID, KDF_ID, KEM_ID};
pub use wrap::{HPKE_INFO, hpke_wrap_aad, unwrap_content_key, unwrap_from_recipient};

// Keys and key sets.
pub use keys::{ContentKey, DeviceKey, DeviceKeyKind, KEY_ID_LEN, KeyId, x25519_public_key};
pub use keyset::{
    KEYSET_MAGIC, KEYSET_VERSION, KeySet, KeySetMessage, MAX_KEYSET_KEYS, MAX_KEYSET_LEN,
    SignedKeySet,
};

// The per-device record a factory writes (docs/FORMAT.md, "The device record").
pub use record::{
    DeviceRecord, MAX_CALIBRATION_LEN, MAX_FIELD_NAME_LEN, MAX_FIELD_VALUE_LEN, MAX_FIELDS,
    MAX_RECORD_LEN, MAX_SERIAL_LEN, RECORD_CHECKSUM_LEN, RECORD_MAGIC, RECORD_PREFIX_LEN,
    RECORD_VERSION, RecordFields, check_record_prefix,
};

// Writing containers (host side).
#[cfg(feature = "std")]
pub use seal::{
    EncryptParams, Prepared, ReadAt, RecipientKey, SealParams, Sealed, Threads, Wrap, seal_to_vec,
    write_signature,
};
