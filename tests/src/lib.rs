//! The workspace tests' harness, on the shared kit (`sbsfu_device::sim::kit`): a simulated
//! device that records, for every flash operation, how many container bytes it had been fed,
//! and the ways of cutting a container into pieces.
#![allow(missing_docs)]

use std::cell::Cell;

use sbsfu_device::boot::verify_region;
use sbsfu_device::sim::SimFlash;
use sbsfu_device::sim::kit::{TracedFlash, xorshift};
use sbsfu_device::{Error, Installed, Installer, Policy, TrustedKey};
use sbsfu_device::{FlashRegion, Region, STM32F405_SECTORS};
use sbsfu_format::{DeviceKey, SignedHeader};

/// The installer buffer of the simulated device.
pub const BUF: usize = 4096;
/// Where the `app` region is seen by the CPU.
pub const APP_ADDRESS: u32 = 0x0802_0000;
/// Flash offset of the `app` region: sector 5 of an F4 bank.
pub const APP_OFFSET: u32 = 0x20000;
/// Size of the `app` region: sectors 5..=23 of a 2 MiB part.
pub const APP_LEN: u32 = 0x1E0000;

/// Sector map of a 2 MiB dual-bank STM32F42x/F43x: the F405 map twice. Large enough for the
/// 1 MiB round trips.
pub fn dual_bank_sectors() -> Vec<u32> {
    let mut v = STM32F405_SECTORS.to_vec();
    v.extend_from_slice(&STM32F405_SECTORS);
    v
}

pub use sbsfu_device::sim::kit::{
    Spec, device_key, reseal_chunks, signing_key, x25519_key, x25519_public,
};

/// The three protections a container can have.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// Signed only (hash chain).
    Signed,
    /// AES-256-GCM, the content key wrapped under the AES device key 2.
    Aes,
    /// AES-256-GCM, the content key encrypted with HPKE to the X25519 device key 6.
    Hpke,
}

impl Kind {
    pub const ALL: [Kind; 3] = [Kind::Hpke, Kind::Aes, Kind::Signed];

    /// The default [`Spec`] of this kind.
    pub fn spec(self, chunk_size: u32) -> Spec {
        match self {
            Kind::Signed => Spec::new(false, chunk_size),
            Kind::Aes => Spec::new(true, chunk_size),
            Kind::Hpke => Spec::hpke(&[6], chunk_size),
        }
    }

    pub fn encrypted(self) -> bool {
        self != Kind::Signed
    }
}

pub fn trusted(seeds: &[u8]) -> Vec<TrustedKey> {
    seeds
        .iter()
        .map(|s| sbsfu_device::sim::kit::trusted(*s))
        .collect()
}

/// A deterministic, non-repeating image of `len` bytes.
pub fn image(len: usize, seed: u8) -> Vec<u8> {
    xorshift(len, 0x9E37_79B9 ^ u32::from(seed))
}

/// What the simulated device trusts.
#[derive(Clone)]
pub struct DeviceConfig {
    pub target: &'static str,
    pub signers: Vec<u8>,
    pub device_keys: Vec<u8>,
    /// Seeds of the device's X25519 keys (HPKE).
    pub x25519_keys: Vec<u8>,
    pub min_security_counter: u32,
    pub require_encryption: bool,
}

impl Default for DeviceConfig {
    fn default() -> Self {
        Self {
            target: "stm32f405",
            signers: vec![1],
            device_keys: vec![2],
            x25519_keys: vec![6],
            min_security_counter: 10,
            require_encryption: false,
        }
    }
}

/// How the container is cut into `feed` calls.
#[derive(Clone, Copy, Debug)]
pub enum Split {
    /// Slices of this many bytes.
    Every(usize),
    /// Slices of pseudo-random lengths 1..=600 from this seed.
    Random(u64),
    /// One slice.
    Whole,
}

impl Split {
    pub fn pieces(self, bytes: &[u8]) -> Vec<&[u8]> {
        match self {
            Split::Whole => vec![bytes],
            Split::Every(n) => bytes.chunks(n.max(1)).collect(),
            Split::Random(seed) => {
                let mut x = seed | 1;
                let mut out = Vec::new();
                let mut rest = bytes;
                while !rest.is_empty() {
                    x ^= x << 13;
                    x ^= x >> 7;
                    x ^= x << 17;
                    let n = ((x % 600) as usize + 1).min(rest.len());
                    let (a, b) = rest.split_at(n);
                    out.push(a);
                    rest = b;
                }
                out
            }
        }
    }
}

/// The result of feeding one container to the simulated device.
pub struct Outcome {
    pub result: Result<Installed, Error>,
    pub flash: SimFlash,
    /// For each flash operation: container bytes fed when it happened (end of the slice).
    pub ops_at: Vec<usize>,
    /// Length of the container's head (prefix, header, signature), if it parses.
    pub head_len: Option<usize>,
}

impl Outcome {
    /// The error, for tests that expect one.
    pub fn error(&self) -> Option<Error> {
        self.result.as_ref().err().copied()
    }

    /// The installed image, as read back from flash.
    pub fn installed_image(&self) -> &[u8] {
        let h = self.result.as_ref().expect("installed").header();
        let start = APP_OFFSET as usize;
        &self.flash.data()[start..start + h.image_len as usize]
    }

    /// No flash operation happened before the whole head (and so the signature) was in; and
    /// none at all if the head does not parse.
    pub fn assert_nothing_before_signature(&self) {
        match self.head_len {
            Some(h) => assert!(
                self.ops_at.iter().all(|fed| *fed >= h),
                "flash touched after {:?} bytes, before the head of {h} bytes was complete",
                self.ops_at
            ),
            None => assert!(self.ops_at.is_empty(), "flash touched without a head"),
        }
    }
}

/// Feeds `container` to a device configured by `cfg`, cut by `split`, then finishes.
pub fn install(cfg: &DeviceConfig, container: &[u8], split: Split) -> Outcome {
    let signers = trusted(&cfg.signers);
    let device_keys: Vec<DeviceKey> = cfg
        .device_keys
        .iter()
        .map(|s| device_key(*s))
        .chain(cfg.x25519_keys.iter().map(|s| x25519_key(*s)))
        .collect();
    let policy = Policy {
        target: cfg.target,
        signers: &signers,
        device_keys: &device_keys,
        min_security_counter: cfg.min_security_counter,
        require_encryption: cfg.require_encryption,
    };
    install_with(&policy, container, split)
}

/// Feeds `container` to a device with `policy`, cut by `split`, then finishes.
pub fn install_with(policy: &Policy<'_>, container: &[u8], split: Split) -> Outcome {
    let mut flash = SimFlash::new(&dual_bank_sectors());
    let map = flash.geometry();
    let fed = Cell::new(0);
    let mut traced = TracedFlash::new(&mut flash, &fed);
    let result = {
        let mut region =
            FlashRegion::new("app", &mut traced, map, APP_ADDRESS, APP_OFFSET, APP_LEN).unwrap();
        let mut regions: [&mut dyn Region; 1] = [&mut region];
        let mut installer = Box::new(Installer::<BUF>::new(policy, &mut regions));
        let mut pos = 0;
        let mut result = Ok(());
        for piece in split.pieces(container) {
            pos += piece.len();
            fed.set(pos);
            result = installer.feed(piece);
            if result.is_err() {
                break;
            }
        }
        result.and_then(|()| installer.finish())
    };
    let ops_at = traced.ops_at;
    let head_len = SignedHeader::parse(container).ok().map(|(_, n)| n);
    Outcome {
        result,
        flash,
        ops_at,
        head_len,
    }
}

/// Verifies what `outcome` installed again from flash, as a boot would.
pub fn boot_verify(cfg: &DeviceConfig, outcome: &mut Outcome) -> Result<(), Error> {
    let head = outcome
        .result
        .as_ref()
        .map_err(|e| *e)?
        .signed_head()
        .to_vec();
    let signers = trusted(&cfg.signers);
    let policy = Policy {
        target: cfg.target,
        signers: &signers,
        device_keys: &[],
        min_security_counter: cfg.min_security_counter,
        require_encryption: false,
    };
    let map = outcome.flash.geometry();
    let mut region = FlashRegion::new(
        "app",
        &mut outcome.flash,
        map,
        APP_ADDRESS,
        APP_OFFSET,
        APP_LEN,
    )
    .unwrap();
    let mut scratch = [0u8; 512];
    verify_region(&mut region, &head, &policy, &mut scratch).map(|_| ())
}

/// Byte ranges of the chunks of a container: `(start, body_end, end)` for each chunk.
pub fn chunk_spans(container: &[u8]) -> Vec<(usize, usize, usize)> {
    let (head, head_len) = SignedHeader::parse(container).expect("head");
    let layout = sbsfu_format::PayloadLayout::of(&head.header).unwrap();
    (0..layout.chunk_count())
        .map(|i| {
            let start = head_len + layout.wire_offset(i) as usize;
            let body_end = start + layout.plain_len(i) as usize;
            (start, body_end, body_end + layout.tail_len(i))
        })
        .collect()
}

/// Re-signs a container after its header was edited (what a holder of the signing key could do):
/// for tests of checks that come after the signature.
pub fn resign(
    container: &[u8],
    edit: impl FnOnce(&mut sbsfu_format::Header),
    signer: u8,
) -> Vec<u8> {
    let (head, head_len) = SignedHeader::parse(container).expect("head");
    let mut h = head.header;
    edit(&mut h);
    // An HPKE header's recipients' entries, kept while the edit keeps its recipients.
    let wraps: Vec<_> = (0..)
        .map_while(|i| head.header.recipient(head.message.header_bytes(), i))
        .collect();
    let m = sbsfu_format::SignedMessage::for_header_with(&h, &wraps)
        .or_else(|_| sbsfu_format::SignedMessage::for_header(&h))
        .unwrap();
    let mut out = m.container_bytes().to_vec();
    out.extend_from_slice(&m.sign(&signing_key(signer)));
    out.extend_from_slice(&container[head_len..]);
    out
}
