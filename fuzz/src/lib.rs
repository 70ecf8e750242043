//! What the fuzz targets share: the simulated device (the example keys, a small NOR flash whose
//! every operation is traced against how many container bytes had been fed), and the invariants
//! every target asserts.

pub mod boot_sequence;

use std::cell::Cell;

use sbsfu_device::boot::verify_region;
use sbsfu_device::sim::SimFlash;
use sbsfu_device::sim::kit::{TracedFlash, policy};
use sbsfu_device::{Error, FlashRegion, Installed, Installer, Policy, Region, TrustedKey};
use sbsfu_format::{DeviceKey, SignedHeader};

/// Where the fuzzed device's `app` region is; the seed containers are linked there.
pub const APP_ADDRESS: u32 = 0x0802_0000;
/// The installer buffer.
pub const BUF: usize = 1024;
/// 64 KiB of 1 KiB sectors: small, so that every run is cheap.
pub const SECTORS: [u32; 64] = [1024; 64];

/// The example keys: what the seed corpus is signed with.
pub fn example_policy<T>(min_counter: u32, f: impl FnOnce(&Policy<'_>) -> T) -> T {
    let signers = [TrustedKey::from_bytes(&sbsfu_f4::keys::SIGNING_KEY).expect("example key")];
    let device_keys = [
        DeviceKey::from_bytes(sbsfu_f4::keys::DEVICE_KEY),
        DeviceKey::x25519(sbsfu_f4::keys::DEVICE_X25519_KEY),
    ];
    f(&Policy {
        min_security_counter: min_counter,
        ..policy("stm32f405", &signers, &device_keys)
    })
}

/// Feeds `pieces` (in order) to a fresh device and finishes, asserting the invariants:
/// - no erase or write before the whole head (and so the signature check) was in, and none at
///   all when the input has no parsable head;
/// - once a `feed` failed, `finish` fails too: nothing is reported valid after an error;
/// - bounded work: never more plaintext programmed than container bytes received (plus the
///   padding of one final write), whatever size the header declares;
/// - a success is real: the image in flash verifies against the signed head.
pub fn install_checked(policy: &Policy<'_>, pieces: &[&[u8]]) -> Result<Installed, Error> {
    let whole: Vec<u8> = pieces.concat();
    let head_len = SignedHeader::parse(&whole).ok().map(|(_, n)| n);
    let fed = Cell::new(0);
    let mut flash = TracedFlash::new(SimFlash::<4, 1024>::new(&SECTORS), &fed);
    let mut failed = None;
    let result = {
        let mut region = FlashRegion::new("app", &mut flash, sbsfu_device::Sectors(&SECTORS), APP_ADDRESS, 0, 64 * 1024)
            .expect("region");
        let mut regions: [&mut dyn Region; 1] = [&mut region];
        let mut installer = Installer::<BUF>::new(policy, &mut regions);
        let mut pos = 0;
        for piece in pieces {
            pos += piece.len();
            fed.set(pos);
            if let Err(e) = installer.feed(piece) {
                failed.get_or_insert(e);
            }
        }
        let result = installer.finish();
        if let Some(e) = failed {
            assert!(result.is_err(), "reported valid after {e:?}");
        }
        result
    };
    match head_len {
        Some(h) => assert!(
            flash.ops_at.iter().all(|fed| *fed >= h),
            "flash touched at {:?} bytes, before the head of {h}",
            flash.ops_at
        ),
        None => assert!(flash.ops_at.is_empty(), "flash touched without a head"),
    }
    assert!(
        flash.programmed <= whole.len() + 4,
        "programmed {} bytes from {} received",
        flash.programmed,
        whole.len()
    );
    if let Ok(installed) = &result {
        let mut region = FlashRegion::new("app", &mut flash, sbsfu_device::Sectors(&SECTORS), APP_ADDRESS, 0, 64 * 1024)
            .expect("region");
        let mut scratch = [0u8; 256];
        verify_region(&mut region, installed.signed_head(), policy, &mut scratch)
            .expect("an installed image verifies from flash");
    }
    result
}

/// A fuzz input as a stream cut in pieces: the first byte says how many split points follow
/// (its value modulo 8, 2 bytes each, little-endian); the rest is the stream, cut there.
pub fn stream_pieces(data: &[u8]) -> Vec<&[u8]> {
    let (cuts, stream) = match data.split_first() {
        Some((n, rest)) if rest.len() >= usize::from(n % 8) * 2 => {
            let (c, s) = rest.split_at(usize::from(n % 8) * 2);
            let cuts = c.chunks(2).map(|p| u16::from_le_bytes([p[0], p[1]]));
            (cuts.collect::<Vec<_>>(), s)
        }
        _ => (Vec::new(), data),
    };
    split(stream, &cuts)
}

/// Cuts `data` at the given points (each taken modulo what is left).
pub fn split<'d>(data: &'d [u8], cuts: &[u16]) -> Vec<&'d [u8]> {
    let mut out = Vec::new();
    let mut rest = data;
    for c in cuts {
        if rest.is_empty() {
            break;
        }
        let n = (*c as usize) % (rest.len() + 1);
        let (a, b) = rest.split_at(n);
        out.push(a);
        rest = b;
    }
    out.push(rest);
    out
}
