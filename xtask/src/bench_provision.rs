//! `cargo xtask bench-provision`: `sbsfu provision --batch` of 1,000 devices with the release
//! CLI (a fresh key, a record and an Intel HEX image each, and fleet.json), timed. A report
//! (docs/PERFORMANCE.md), never a timed test.

use std::fs;
use std::process::Command;
use std::time::Instant;

use crate::{Result, cargo, dev_sign_args, root, run, step};

/// Devices in the batch.
const DEVICES: usize = 1000;

pub fn bench_provision() -> Result {
    step("the release CLI");
    run(cargo().args(["build", "--release", "-p", "sbsfu-host"]))?;
    let cli = root().join("target/release/sbsfu");
    let dir = root().join("target/bench-provision");
    let _ = fs::remove_dir_all(&dir);
    fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
    let sbsfu = |args: &[&str]| run(Command::new(&cli).current_dir(&dir).args(args));
    step("a 200 KiB application, encrypted, and a stand-in bootloader holding the signer's key");
    let keys = root().join("keys-example");
    let (signing, device) = (keys.join("signing.pem"), keys.join("device.key"));
    let (signing, device) = (
        signing.to_str().unwrap_or(""),
        device.to_str().unwrap_or(""),
    );
    let mut app = 0x2000_1000u32.to_le_bytes().to_vec();
    app.extend(0x0802_0101u32.to_le_bytes());
    app.extend((0..200 * 1024 - 8).map(|i: u32| (i.wrapping_mul(2_654_435_761) >> 13) as u8));
    fs::write(dir.join("app.bin"), &app).map_err(|e| e.to_string())?;
    sbsfu(&[
        "pubkey", "--key", signing, "--format", "raw", "--out", "boot.bin",
    ])?;
    run(Command::new(&cli)
        .current_dir(&dir)
        .args(dev_sign_args(&keys, "app.bin", "app.sfu")))?;
    let mut csv = String::from("serial,line\n");
    for i in 0..DEVICES {
        csv.push_str(&format!("SN-{i:06},L{}\n", i % 4));
    }
    fs::write(dir.join("devices.csv"), csv).map_err(|e| e.to_string())?;
    step(&format!("sbsfu provision --batch: {DEVICES} devices"));
    let start = Instant::now();
    sbsfu(&[
        "provision",
        "--bootloader",
        "boot.bin",
        "--container",
        "app.sfu",
        "--decrypt-key",
        device,
        "--batch",
        "devices.csv",
        "--out-dir",
        "factory",
    ])?;
    let seconds = start.elapsed().as_secs_f64();
    let bytes: u64 = fs::read_dir(dir.join("factory"))
        .map_err(|e| e.to_string())?
        .filter_map(|e| e.ok()?.metadata().ok())
        .map(|m| m.len())
        .sum();
    println!(
        "provision: {DEVICES} devices in {seconds:.2} s ({:.1} ms per device, {:.0} MB written); target 10 s",
        seconds * 1000.0 / DEVICES as f64,
        bytes as f64 / 1e6
    );
    Ok(())
}
