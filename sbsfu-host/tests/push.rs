//! `sbsfu push` against `sbsfu device-sim` over TCP: a push stages, a reset installs; a real
//! SIGKILL of the simulated device mid-transfer (a power cut) and a restart on the same flash
//! file (a reset), then a push that resumes; the one-line errors, exactly.

mod common;

use std::fs;
use std::net::TcpListener;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use common::*;

/// The container slot the stager fills first on a blank device (slot 0 of the F405 layout).
const SLOT0: usize = 0x6_0000;

/// A free local port (bound, then let go).
fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A running `device-sim`, killed (SIGKILL) when dropped.
struct Sim(Child);

impl Sim {
    fn start(dir: &Path, port: u16, f4_timing: bool) -> Self {
        Self::start_with(dir, port, f4_timing, &[])
    }

    /// With a data region `assets` on the external flash `data.bin`.
    fn with_data_region(dir: &Path, port: u16, f4_timing: bool) -> Self {
        let data = ["--data-region", "assets", "--data-flash", "data.bin"];
        Self::start_with(dir, port, f4_timing, &data)
    }

    fn start_with(dir: &Path, port: u16, f4_timing: bool, extra: &[&str]) -> Self {
        let listen = format!("127.0.0.1:{port}");
        let mut args = vec![
            "device-sim",
            "--listen",
            &listen,
            "--flash",
            "flash.bin",
            "--pubkey",
            "signing.pub.pem",
            "--decrypt-key",
            "device.key",
            "--target",
            "stm32f405",
        ];
        if f4_timing {
            args.push("--f4-timing");
        }
        args.extend_from_slice(extra);
        let child = Command::new(env!("CARGO_BIN_EXE_sbsfu"))
            .current_dir(dir)
            .args(&args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        Self(child)
    }
}

impl Drop for Sim {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// An image with a valid vector table for the F405 example layout (the test ELF's first 84
/// bytes, then `len` pseudo-random bytes), signed and encrypted as version `1.minor.0`.
fn container(dir: &Path, len: usize, minor: u32, target: &str, name: &str) {
    let mut image = fs::read(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/images/app.bin")).unwrap();
    image.extend(pattern(len));
    sign(
        dir,
        &image,
        minor,
        name,
        &["--target", target, "--load-address", "0x08020000"],
    );
}

/// `len` pseudo-random bytes for the data region `assets` (seen at 0x90000000), signed and
/// encrypted as version `1.minor.0`.
fn data_container(dir: &Path, len: usize, minor: u32, name: &str) {
    let to = [
        "--target",
        "stm32f405",
        "--region",
        "assets",
        "--load-address",
        "0x90000000",
    ];
    sign(dir, &pattern(len), minor, name, &to);
}

/// Signs `image` (written beside as `name.bin`) into `name`, encrypted for `device.key`, as
/// version `1.minor.0` with security counter `minor`, in chunks of 1 KiB, for the destination
/// `to` (target, region, load address).
fn sign(dir: &Path, image: &[u8], minor: u32, name: &str, to: &[&str]) {
    let bin = format!("{name}.bin");
    fs::write(dir.join(&bin), image).unwrap();
    let version = format!("1.{minor}.0");
    let counter = minor.to_string();
    let mut args = vec![
        "sign",
        "--key",
        "signing.pem",
        "--encrypt-key",
        "device.key",
        "--version",
        &version,
        "--security-counter",
        &counter,
        "--in",
        &bin,
        "--input-format",
        "bin",
        "--chunk-size",
        "1024",
        "--out",
        name,
    ];
    args.extend_from_slice(to);
    ok(dir, &args);
}

fn json(out: &str) -> serde_json::Value {
    serde_json::from_str(out).unwrap()
}

#[test]
fn push_stages_and_a_reset_installs_the_new_version() {
    let w = workspace();
    let dir = w.path();
    container(dir, 3000, 1, "stm32f405", "v1.sfu");
    let port = free_port();
    let tcp = format!("127.0.0.1:{port}");
    let _sim = Sim::start(dir, port, false);

    let r = json(&ok(dir, &["push", "--tcp", &tcp, "v1.sfu", "--json"]));
    assert_eq!(r["result"], "pending");
    assert_eq!(r["resumed_from"], 0);
    assert_eq!(r["bytes_sent"], r["container_len"]);
    let id = r["id"].as_str().unwrap().to_owned();

    let info = json(&ok(dir, &["push", "--info", "--tcp", &tcp, "--json"]));
    assert_eq!(info["target"], "stm32f405");
    assert_eq!(info["regions"][0]["pending"], id.as_str());
    assert_eq!(info["regions"][0]["version"], serde_json::Value::Null);

    // Pushed again, the pending container is confirmed without a byte sent; --reset installs it.
    let r = json(&ok(
        dir,
        &["push", "--tcp", &tcp, "v1.sfu", "--reset", "--json"],
    ));
    assert_eq!(r["bytes_sent"], 0);
    assert_eq!(r["reset"], true);
    let info = json(&ok(dir, &["push", "--info", "--tcp", &tcp, "--json"]));
    assert_eq!(info["regions"][0]["version"], "1.1.0");
    assert_eq!(info["regions"][0]["pending"], serde_json::Value::Null);
}

/// `sbsfu push` of `file` to the device at `tcp`, running.
fn push_in_background(dir: &Path, tcp: &str, file: &str) -> Child {
    Command::new(env!("CARGO_BIN_EXE_sbsfu"))
        .current_dir(dir)
        .args(["push", "--tcp", tcp, file])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

/// Returns once the device has written something (anything but 0xFF) at offset `at` of its
/// flash file `flash`.
fn wait_until_written(dir: &Path, flash: &str, at: usize) {
    let started = Instant::now();
    loop {
        let bytes = fs::read(dir.join(flash)).unwrap_or_default();
        if bytes.len() > at && bytes[at..at + 64].iter().any(|b| *b != 0xFF) {
            return;
        }
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "the push never got far"
        );
        thread::sleep(Duration::from_millis(5));
    }
}

#[test]
fn a_killed_device_resumes_the_push_after_its_restart() {
    let w = workspace();
    let dir = w.path();
    container(dir, 200_000, 2, "stm32f405", "big.sfu");
    let len = fs::metadata(dir.join("big.sfu")).unwrap().len();
    let port = free_port();
    let tcp = format!("127.0.0.1:{port}");
    let sim = Sim::start(dir, port, true);
    // Kill the device once it has stored 150 KB (of 203 KB): a power cut mid-transfer.
    let push = push_in_background(dir, &tcp, "big.sfu");
    wait_until_written(dir, "flash.bin", SLOT0 + 150_000);
    drop(sim);
    let out = push.wait_with_output().unwrap();
    assert_eq!(code(&out), 1);
    let err = String::from_utf8(out.stderr).unwrap();
    let head = format!(
        "sbsfu: error: tcp {tcp}: the device closed the connection while sending data, after "
    );
    assert!(err.starts_with(&head), "{err}");
    assert!(
        err.ends_with(&format!(
            " of {len} bytes were acknowledged; push again to resume\n"
        )),
        "{err}"
    );
    assert_eq!(err.lines().count(), 1);

    let _sim = Sim::start(dir, port, false);
    let info = json(&ok(dir, &["push", "--info", "--tcp", &tcp, "--json"]));
    let durable = info["regions"][0]["partial_durable"].as_u64().unwrap();
    assert!(durable >= 128 * 1024, "durable {durable}");
    let r = json(&ok(dir, &["push", "--tcp", &tcp, "big.sfu", "--json"]));
    assert_eq!(r["result"], "pending");
    let resumed = r["resumed_from"].as_u64().unwrap();
    assert!(resumed >= 128 * 1024, "resumed from {resumed}");
    assert_eq!(r["bytes_sent"].as_u64().unwrap(), len - resumed);
}

#[test]
fn refusals_and_broken_links_are_one_line_with_their_exit_code() {
    let w = workspace();
    let dir = w.path();
    container(dir, 100, 1, "stm32f407", "other.sfu");
    fs::write(dir.join("junk.sfu"), b"not a container").unwrap();
    let port = free_port();
    let tcp = format!("127.0.0.1:{port}");
    {
        let _sim = Sim::start(dir, port, false);
        assert_eq!(
            fails(dir, &["push", "--tcp", &tcp, "other.sfu"], 3),
            "sbsfu: error: other.sfu: refused by the device: image is for another target (code 0x0104)\n"
        );
        assert_eq!(
            fails(dir, &["push", "--tcp", &tcp, "junk.sfu"], 1),
            "sbsfu: error: junk.sfu: not an sbsfu container (bad magic)\n"
        );
    }
    // Nothing listens any more.
    assert_eq!(
        fails(dir, &["push", "--tcp", &tcp, "other.sfu"], 1),
        format!("sbsfu: error: tcp {tcp}: Connection refused (os error 111)\n")
    );
}

#[test]
fn a_data_region_container_is_installed_at_once() {
    let w = workspace();
    let dir = w.path();
    data_container(dir, 20_000, 1, "assets.sfu");
    let port = free_port();
    let tcp = format!("127.0.0.1:{port}");
    let _sim = Sim::with_data_region(dir, port, false);

    let out = ok(dir, &["push", "--tcp", &tcp, "assets.sfu"]);
    assert!(out.contains("\n  result           installed\n"), "{out}");
    let info = json(&ok(dir, &["push", "--info", "--tcp", &tcp, "--json"]));
    let assets = &info["regions"][1];
    assert_eq!(assets["name"], "assets");
    assert_eq!(assets["version"], "1.1.0");
    assert_eq!(assets["pending"], serde_json::Value::Null);
    assert_eq!(assets["partial"], serde_json::Value::Null);
    assert_eq!(info["regions"][0]["name"], "app");
    // The plaintext is in the external flash, from its first byte.
    let data = fs::read(dir.join("data.bin")).unwrap();
    assert_eq!(
        &data[..20_000],
        &fs::read(dir.join("assets.sfu.bin")).unwrap()[..]
    );

    // Pushed again: already installed, verified again, nothing sent.
    let r = json(&ok(dir, &["push", "--tcp", &tcp, "assets.sfu", "--json"]));
    assert_eq!(r["result"], "installed");
    assert_eq!(r["bytes_sent"], 0);
}

#[test]
fn a_killed_device_resumes_a_data_region_push_after_its_restart() {
    let w = workspace();
    let dir = w.path();
    data_container(dir, 300_000, 2, "big.sfu");
    let len = fs::metadata(dir.join("big.sfu")).unwrap().len();
    let port = free_port();
    let tcp = format!("127.0.0.1:{port}");
    let sim = Sim::with_data_region(dir, port, true);
    // Kill the device once it has installed 200 KB (of 300 KB): a power cut mid-transfer.
    let push = push_in_background(dir, &tcp, "big.sfu");
    wait_until_written(dir, "data.bin", 200_000);
    drop(sim);
    let out = push.wait_with_output().unwrap();
    assert_eq!(code(&out), 1);

    let _sim = Sim::with_data_region(dir, port, false);
    let info = json(&ok(dir, &["push", "--info", "--tcp", &tcp, "--json"]));
    let durable = info["regions"][1]["partial_durable"].as_u64().unwrap();
    assert!(durable >= 128 * 1024, "durable {durable}");
    assert_eq!(info["regions"][1]["version"], serde_json::Value::Null);
    let r = json(&ok(dir, &["push", "--tcp", &tcp, "big.sfu", "--json"]));
    assert_eq!(r["result"], "installed");
    let resumed = r["resumed_from"].as_u64().unwrap();
    assert_eq!(resumed, durable);
    assert_eq!(r["bytes_sent"].as_u64().unwrap(), len - resumed);
    let data = fs::read(dir.join("data.bin")).unwrap();
    assert_eq!(
        &data[..300_000],
        &fs::read(dir.join("big.sfu.bin")).unwrap()[..]
    );
}
