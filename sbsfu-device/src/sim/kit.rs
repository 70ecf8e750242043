//! What the tests, the fuzz targets, the benchmarks and `cargo xtask` share: deterministic keys,
//! images and containers, a test policy, and a flash that records when each operation happened.
//! One kit: every test double of the workspace is here or in [`SimFlash`](super::SimFlash).

use std::cell::Cell;
use std::vec::Vec;

use ed25519_dalek::SigningKey;
use embedded_storage::nor_flash::{ErrorType, NorFlash, ReadNorFlash};
use sbsfu_format::{
    ChunkCipher, ContentKey, DeviceKey, EncryptParams, PayloadLayout, RecipientKey, SealParams,
    SignedHeader, Version, Wrap, seal_to_vec, x25519_public_key,
};

use crate::{Policy, TrustedKey};

/// The signing key of seed `seed` (32 bytes of it).
pub fn signing_key(seed: u8) -> SigningKey {
    SigningKey::from_bytes(&[seed; 32])
}

/// The device key of seed `seed`.
pub fn device_key(seed: u8) -> DeviceKey {
    DeviceKey::from_bytes([seed; 32])
}

/// The X25519 device key of seed `seed` (32 bytes of it): a device's own key, that containers
/// are encrypted to with HPKE.
pub fn x25519_key(seed: u8) -> DeviceKey {
    DeviceKey::x25519([seed; 32])
}

/// The public key of [`x25519_key`], what a sender holds.
pub fn x25519_public(seed: u8) -> [u8; 32] {
    x25519_public_key(&[seed; 32])
}

/// The public half of [`signing_key`], as a device trusts it.
pub fn trusted(seed: u8) -> TrustedKey {
    TrustedKey::from_bytes(signing_key(seed).verifying_key().as_bytes()).expect("a valid key")
}

/// A policy for `target` that trusts `signers` and holds `device_keys`, with no floor and
/// signed-only images allowed (each test states what it tightens).
pub fn policy<'a>(
    target: &'a str,
    signers: &'a [TrustedKey],
    device_keys: &'a [DeviceKey],
) -> Policy<'a> {
    Policy {
        target,
        signers,
        device_keys,
        min_security_counter: 0,
        require_encryption: false,
    }
}

/// `len` pseudo-random bytes: xorshift32 (13, 17, 5) from `state` (non-zero).
pub fn xorshift(len: usize, mut state: u32) -> Vec<u8> {
    (0..len)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 17;
            state ^= state << 5;
            state as u8
        })
        .collect()
}

/// Everything that varies between test containers.
#[derive(Clone, Debug)]
pub struct Spec {
    /// AES-256-GCM (under [`device_key`] of `device`), or signed only; see also `recipients`.
    pub encrypted: bool,
    /// If not empty: encrypted with HPKE to the [`x25519_key`]s of these seeds, in this order
    /// (`encrypted` and `device` then play no part).
    pub recipients: Vec<u8>,
    /// Plaintext bytes per chunk.
    pub chunk_size: u32,
    /// Device class.
    pub target: &'static str,
    /// Destination region.
    pub region: &'static str,
    /// Where the region is seen.
    pub load_address: u32,
    /// Display version.
    pub version: Version,
    /// Anti-rollback counter.
    pub security_counter: u32,
    /// Seed of the [`signing_key`].
    pub signer: u8,
    /// Seed of the [`device_key`].
    pub device: u8,
    /// Seeds the content key and nonces, so two specs differing only here make two containers
    /// of the same image under different keys.
    pub randomness: u8,
}

impl Spec {
    /// An `app` container for an STM32F405 at `0x0802_0000`, security counter 10, version
    /// 2.0.1, signed by key 1, encrypted (if so) for device key 2.
    pub fn new(encrypted: bool, chunk_size: u32) -> Self {
        Self {
            encrypted,
            chunk_size,
            target: "stm32f405",
            region: "app",
            load_address: 0x0802_0000,
            version: Version {
                major: 2,
                minor: 0,
                patch: 1,
            },
            security_counter: 10,
            signer: 1,
            device: 2,
            recipients: Vec::new(),
            randomness: 3,
        }
    }

    /// Like [`Spec::new`], encrypted with HPKE to the X25519 keys of `recipients`.
    pub fn hpke(recipients: &[u8], chunk_size: u32) -> Self {
        Self {
            recipients: recipients.to_vec(),
            ..Self::new(true, chunk_size)
        }
    }

    /// The container of `image`, sealed and signed.
    pub fn seal(&self, image: &[u8]) -> Vec<u8> {
        let dk = device_key(self.device);
        let key = signing_key(self.signer);
        let r = self.randomness;
        // Fixed "randomness": the ephemeral keys of a test container follow from its seed (a
        // release CLI draws every one from the OS).
        let wrap = if self.recipients.is_empty() {
            Wrap::DeviceKey {
                key: &dk,
                nonce: [r ^ 0x5a; 12],
            }
        } else {
            Wrap::Recipients(
                self.recipients
                    .iter()
                    .enumerate()
                    .map(|(i, seed)| RecipientKey {
                        public_key: x25519_public(*seed),
                        ephemeral: zeroize::Zeroizing::new([r ^ 0x3c ^ (i as u8 * 16); 32]),
                    })
                    .collect(),
            )
        };
        let encrypted = self.encrypted || !self.recipients.is_empty();
        let params = SealParams {
            encryption: encrypted.then(|| EncryptParams {
                wrap,
                content_key: ContentKey::from_bytes([r; 32]),
                nonce_prefix: [r ^ 0xa5; 7],
            }),
            chunk_size: self.chunk_size,
            load_address: self.load_address,
            region: self.region,
            security_counter: self.security_counter,
            version: self.version,
            target: self.target,
            signer: key.verifying_key().to_bytes(),
        };
        seal_to_vec(&params, &key, image).expect("a valid spec seals")
    }
}

/// The container `c` with every chunk's plaintext replaced by `fill` and sealed with `cipher`:
/// what whoever unwrapped the content key (with a stolen device key) can make. The signed head,
/// and so the digest it signs, is `c`'s own.
pub fn reseal_chunks(c: &[u8], cipher: &ChunkCipher, fill: u8) -> Vec<u8> {
    let (signed, head_len) = SignedHeader::parse(c).expect("a container");
    let layout = PayloadLayout::of(&signed.header).expect("a container's layout");
    let mut out = c[..head_len].to_vec();
    for i in 0..layout.chunk_count() {
        let mut chunk = std::vec![fill; layout.plain_len(i) as usize];
        let tag = cipher
            .seal(i, layout.is_last(i), &mut chunk)
            .expect("a chunk seals");
        out.extend_from_slice(&chunk);
        out.extend_from_slice(&tag);
    }
    out
}

/// A flash that notes, for each erase and write, how many container bytes had been fed (from
/// `fed`), and counts the bytes programmed: what "nothing touches flash before the signature"
/// and "never more plaintext than received" are checked with.
pub struct TracedFlash<'a, F> {
    /// The flash.
    pub inner: F,
    /// Container bytes fed so far, set by the test as it feeds.
    pub fed: &'a Cell<usize>,
    /// For each erase or write, in order: `fed` when it happened.
    pub ops_at: Vec<usize>,
    /// Bytes programmed.
    pub programmed: usize,
}

impl<'a, F> TracedFlash<'a, F> {
    /// `inner`, traced against `fed`.
    pub fn new(inner: F, fed: &'a Cell<usize>) -> Self {
        Self {
            inner,
            fed,
            ops_at: Vec::new(),
            programmed: 0,
        }
    }
}

impl<F: ErrorType> ErrorType for TracedFlash<'_, F> {
    type Error = F::Error;
}

impl<F: ReadNorFlash> ReadNorFlash for TracedFlash<'_, F> {
    const READ_SIZE: usize = F::READ_SIZE;
    fn read(&mut self, offset: u32, bytes: &mut [u8]) -> Result<(), F::Error> {
        self.inner.read(offset, bytes)
    }
    fn capacity(&self) -> usize {
        self.inner.capacity()
    }
}

impl<F: NorFlash> NorFlash for TracedFlash<'_, F> {
    const WRITE_SIZE: usize = F::WRITE_SIZE;
    const ERASE_SIZE: usize = F::ERASE_SIZE;
    fn erase(&mut self, from: u32, to: u32) -> Result<(), F::Error> {
        self.ops_at.push(self.fed.get());
        self.inner.erase(from, to)
    }
    fn write(&mut self, offset: u32, bytes: &[u8]) -> Result<(), F::Error> {
        self.ops_at.push(self.fed.get());
        self.programmed += bytes.len();
        self.inner.write(offset, bytes)
    }
}
