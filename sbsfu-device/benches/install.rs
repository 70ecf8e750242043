//! The device installer on the host, per MiB: a container streamed in 4 KiB slices into a
//! simulated NOR flash (real erase and program checks), and the boot-time verification of the
//! installed image from flash. Device timings are in docs/PERFORMANCE.md (`cargo xtask f4-bench`).
// `criterion_group!` generates an undocumented function.
#![allow(missing_docs)]

use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use ed25519_dalek::SigningKey;
use sbsfu_device::boot::verify_region;
use sbsfu_device::sim::SimFlash;
use sbsfu_device::{FlashRegion, Region, Uniform};
use sbsfu_device::{Installer, Policy, TrustedKey};
use sbsfu_format::{ContentKey, DeviceKey, Version};
use sbsfu_format::{EncryptParams, SealParams, seal_to_vec};

const MIB: usize = 1 << 20;
const ADDRESS: u32 = 0x0802_0000;

fn container(encrypted: bool, image: &[u8], key: &SigningKey, device: &DeviceKey) -> Vec<u8> {
    let params = SealParams {
        signer: key.verifying_key().to_bytes(),
        target: "stm32f405",
        version: Version {
            major: 1,
            minor: 0,
            patch: 0,
        },
        security_counter: 1,
        region: "app",
        load_address: ADDRESS,
        chunk_size: 4096,
        encryption: encrypted.then(|| EncryptParams {
            device_key: device,
            content_key: ContentKey::from_bytes([3; 32]),
            wrap_nonce: [4; 12],
            nonce_prefix: [5; 7],
        }),
    };
    seal_to_vec(&params, key, image).unwrap()
}

fn install(c: &mut Criterion) {
    let key = SigningKey::from_bytes(&[1; 32]);
    let device = DeviceKey::from_bytes([2; 32]);
    let signers = [TrustedKey::from_bytes(&key.verifying_key().to_bytes()).unwrap()];
    let device_keys = [DeviceKey::from_bytes([2; 32])];
    let policy = Policy {
        target: "stm32f405",
        signers: &signers,
        device_keys: &device_keys,
        min_security_counter: 0,
        require_encryption: false,
    };
    let image: Vec<u8> = (0..MIB).map(|i| (i * 7 + i / 251) as u8).collect();
    let map = Uniform {
        size: 16 * 1024,
        capacity: MIB as u32,
    };
    let mut g = c.benchmark_group("install 1 MiB into SimFlash");
    g.throughput(Throughput::Bytes(MIB as u64));
    g.sample_size(20);
    for (name, encrypted) in [("encrypted", true), ("signed only", false)] {
        let bytes = container(encrypted, &image, &key, &device);
        g.bench_function(name, |b| {
            b.iter_batched_ref(
                || SimFlash::<4, 16384>::new(&[16 * 1024; 64]),
                |flash| {
                    let mut app =
                        FlashRegion::new("app", flash, map, ADDRESS, 0, MIB as u32).unwrap();
                    let mut regions: [&mut dyn Region; 1] = [&mut app];
                    let mut installer = Installer::<4096>::new(&policy, &mut regions);
                    for piece in bytes.chunks(4096) {
                        installer.feed(piece).unwrap();
                    }
                    installer.finish().unwrap();
                },
                BatchSize::LargeInput,
            )
        });
    }
    // What every boot does: signature and digest of the image, read back from flash.
    let bytes = container(true, &image, &key, &device);
    let mut flash = SimFlash::<4, 16384>::new(&[16 * 1024; 64]);
    let head = {
        let mut app = FlashRegion::new("app", &mut flash, map, ADDRESS, 0, MIB as u32).unwrap();
        let mut regions: [&mut dyn Region; 1] = [&mut app];
        let mut installer = Installer::<4096>::new(&policy, &mut regions);
        installer.feed(&bytes).unwrap();
        installer.finish().unwrap().signed_head().to_vec()
    };
    g.bench_function("verify from flash (boot)", |b| {
        let mut app = FlashRegion::new("app", &mut flash, map, ADDRESS, 0, MIB as u32).unwrap();
        let mut scratch = [0u8; 1024];
        b.iter(|| verify_region(&mut app, &head, &policy, &mut scratch).unwrap())
    });
    g.finish();
}

criterion_group!(benches, install);
criterion_main!(benches);
