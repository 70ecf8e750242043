//! The device installer on the host, per MiB: a container streamed in 4 KiB slices into a
//! simulated NOR flash (real erase and program checks), and the boot-time verification of the
//! installed image from flash. Device timings are in docs/PERFORMANCE.md (`cargo xtask f4-bench`).
// `criterion_group!` generates an undocumented function.
#![allow(missing_docs)]

use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use sbsfu_device::boot::verify_region;
use sbsfu_device::sim::SimFlash;
use sbsfu_device::sim::kit::{Spec, device_key, policy, trusted};
use sbsfu_device::{FlashRegion, Installer, Region, Uniform};

const MIB: usize = 1 << 20;
const ADDRESS: u32 = 0x0802_0000;

fn container(encrypted: bool, image: &[u8]) -> Vec<u8> {
    Spec {
        security_counter: 1,
        load_address: ADDRESS,
        ..Spec::new(encrypted, 4096)
    }
    .seal(image)
}

fn install(c: &mut Criterion) {
    let signers = [trusted(1)];
    let device_keys = [device_key(2)];
    let policy = policy("stm32f405", &signers, &device_keys);
    let image: Vec<u8> = (0..MIB).map(|i| (i * 7 + i / 251) as u8).collect();
    let map = Uniform {
        size: 16 * 1024,
        capacity: MIB as u32,
    };
    let mut g = c.benchmark_group("install 1 MiB into SimFlash");
    g.throughput(Throughput::Bytes(MIB as u64));
    g.sample_size(20);
    for (name, encrypted) in [("encrypted", true), ("signed only", false)] {
        let bytes = container(encrypted, &image);
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
    let bytes = container(true, &image);
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
