//! The `sbsfu` binary end to end, as a release pipeline runs it: start-up, and signing and
//! verifying a 1 MiB image (process start, key parsing, I/O, crypto). The side-by-side
//! comparison with OpenSSL and imgtool on larger images is `cargo xtask bench`.
// `criterion_group!` generates an undocumented function.
#![allow(missing_docs)]

use std::path::Path;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};

/// What the CLI tests share: running the binary.
#[path = "../tests/common/mod.rs"]
mod common;

const MIB: usize = 1 << 20;

fn run(dir: &Path, args: &[&str]) {
    common::ok(dir, args);
}

fn cli(c: &mut Criterion) {
    let keys = Path::new(env!("CARGO_MANIFEST_DIR")).join("../keys-example");
    let key = |name: &str| keys.join(name).to_str().unwrap().to_owned();
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let image: Vec<u8> = (0..MIB).map(|i| (i * 7 + i / 251) as u8).collect();
    std::fs::write(d.join("app.bin"), &image).unwrap();
    let (signing, device, public) = (
        key("signing.pem"),
        key("device.key"),
        key("signing.pub.pem"),
    );
    let sign = format!(
        "sign --key {signing} --encrypt-key {device} --allow-dev-key --version 1.0.0 \
         --security-counter 1 --target stm32f405 --load-address 0x08020000 \
         --in app.bin --out app.sfu"
    );
    let sign = common::words(&sign);
    let verify = [
        "verify",
        "--pubkey",
        &public,
        "--decrypt-key",
        &device,
        "app.sfu",
    ];

    c.bench_function("sbsfu --version (start-up)", |b| {
        b.iter(|| run(d, &["--version"]))
    });
    let mut g = c.benchmark_group("sbsfu, 1 MiB image");
    g.throughput(Throughput::Bytes(MIB as u64));
    g.bench_function("sign --encrypt-key", |b| b.iter(|| run(d, &sign)));
    g.bench_function("verify --decrypt-key", |b| b.iter(|| run(d, &verify)));
    g.finish();
}

criterion_group!(benches, cli);
criterion_main!(benches);
