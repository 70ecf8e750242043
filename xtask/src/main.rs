//! `cargo xtask <job>`: the project's multi-step jobs, one spelling for CI, the README and a new
//! user. Each job installs what it needs on a fresh Debian machine first.

use std::env;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};

mod docs;
mod f4;
mod fuzz;
mod qemu;
mod setup;

type Result<T = ()> = std::result::Result<T, String>;

const USAGE: &str = "usage: cargo xtask <job>

jobs:
  demo      sign an example image with keys-example/, inspect, verify and decrypt it
  test      every test: formatting, lints, host tests, power cuts, the STM32F4 tests, the demo
  f4-test   on an emulated STM32F405 (QEMU): on-target round trip, example bootloader chain
  f4-bench  bootloader flash and RAM, instruction counts (report, see docs/PERFORMANCE.md)
  f4-board-data  the test containers the board build of f4-test embeds (see the README)
  fuzz [--seconds N]  every fuzz target for N seconds (default 60; nightly, cargo-fuzz)
  docs      check that every test named in docs/ exists
  bench [--imgtool] [--sizes 1,16,64] [--runs N] [--rss-gib N]
            sbsfu vs `openssl dgst -sha256` (and imgtool) on this machine (bench/compare.py);
            `cargo bench` runs the criterion micro-benchmarks
";

fn main() -> ExitCode {
    let args: Vec<String> = env::args().skip(1).collect();
    let result = match args.first().map(String::as_str) {
        Some("demo") => demo(),
        Some("test") => test(),
        Some("f4-test") => f4::f4_test(),
        Some("f4-bench") => f4::f4_bench(),
        Some("f4-board-data") => f4::f4_board_data(),
        Some("fuzz") => fuzz::fuzz(&args[1..]),
        Some("docs") => docs::check_test_references(),
        Some("bench") => bench(&args[1..]),
        Some("-h" | "--help" | "help") => {
            print!("{USAGE}");
            Ok(())
        }
        _ => Err(format!("unknown or missing job\n\n{USAGE}")),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("xtask: error: {e}");
            ExitCode::FAILURE
        }
    }
}

/// The workspace root.
fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from("."))
}

fn cargo() -> Command {
    let mut c = Command::new(env::var_os("CARGO").unwrap_or_else(|| "cargo".into()));
    c.current_dir(root());
    c
}

/// Runs `cmd`, echoing it, and fails if it fails.
fn run(cmd: &mut Command) -> Result {
    let shown = show(cmd);
    println!("$ {shown}");
    let status = cmd
        .status()
        .map_err(|e| format!("cannot run `{shown}`: {e}"))?;
    if status.success() {
        Ok(())
    } else {
        Err(format!("`{shown}` failed ({status})"))
    }
}

fn show(cmd: &Command) -> String {
    let prefix = format!("{}/", root().display());
    let program = cmd.get_program();
    let program = if Path::new(program).file_name() == Some("cargo".as_ref()) {
        "cargo".as_ref()
    } else {
        program
    };
    std::iter::once(program)
        .chain(cmd.get_args())
        .map(|a| {
            let s = a.to_string_lossy();
            s.strip_prefix(&prefix).unwrap_or(&s).to_owned()
        })
        .collect::<Vec<_>>()
        .join(" ")
}

fn step(title: &str) {
    println!("\n==> {title}");
}

/// The main job: what a release engineer does, with the published development keys.
fn demo() -> Result {
    setup::host_tools()?;
    step("build the sbsfu CLI");
    run(cargo().args(["build", "--quiet", "-p", "sbsfu-host"]))?;
    let root = root();
    let dir = root.join("target/demo");
    fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    fs::write(dir.join("app.bin"), example_image()).map_err(|e| e.to_string())?;
    // Paths are relative to the workspace root, so the echoed commands can be pasted.
    let sbsfu = |args: &[&str]| {
        let mut c = Command::new(root.join("target/debug/sbsfu"));
        c.current_dir(&root).args(args);
        c
    };
    let trust = [
        "--pubkey",
        "keys-example/signing.pub.pem",
        "--decrypt-key",
        "keys-example/device.key",
    ];

    step("sign and encrypt the example image (development keys: --allow-dev-key)");
    run(&mut sbsfu(&[
        "sign",
        "--key",
        "keys-example/signing.pem",
        "--encrypt-key",
        "keys-example/device.key",
        "--version",
        "1.0.0",
        "--security-counter",
        "1",
        "--target",
        "stm32f405",
        "--load-address",
        "0x08020000",
        "--in",
        "target/demo/app.bin",
        "--out",
        "target/demo/app.sfu",
        "--allow-dev-key",
    ]))?;
    step("inspect it (no key needed)");
    run(&mut sbsfu(&["inspect", "target/demo/app.sfu"]))?;
    step("verify it exactly as a device would (runs the device installer)");
    run(sbsfu(&["verify"])
        .args(trust)
        .args(["--target", "stm32f405", "--min-security-counter", "1"])
        .arg("target/demo/app.sfu"))?;
    step("decrypt it and compare with the original");
    run(sbsfu(&["decrypt"]).args(trust).args([
        "target/demo/app.sfu",
        "--out",
        "target/demo/app.out.bin",
    ]))?;
    let a = fs::read(dir.join("app.bin")).map_err(|e| e.to_string())?;
    let b = fs::read(dir.join("app.out.bin")).map_err(|e| e.to_string())?;
    if a != b {
        return Err("the decrypted image differs from the original".into());
    }
    step("a device that has seen security counter 2 refuses it (exit code 3)");
    let mut downgrade = sbsfu(&["verify"]);
    downgrade
        .args(trust)
        .args(["--min-security-counter", "2", "target/demo/app.sfu"]);
    println!("$ {}", show(&downgrade));
    let refused = downgrade.status().map_err(|e| e.to_string())?;
    if refused.code() != Some(3) {
        return Err(format!(
            "a downgrade was not refused with exit code 3: {refused}"
        ));
    }
    println!("\ndemo OK: signed, encrypted, verified and decrypted byte-exact; downgrade refused");
    Ok(())
}

/// A deterministic 64 KiB stand-in for a firmware image.
fn example_image() -> Vec<u8> {
    let mut x = 0x1234_5678u32;
    (0..64 * 1024)
        .map(|_| {
            x = x.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
            (x >> 24) as u8
        })
        .collect()
}

/// Decodes the known-answer vectors with `tests/vectors/reference_decoder.py`, written from
/// docs/FORMAT.md alone, and checks that it refuses a wrong key.
fn spec_cross_check() -> Result {
    setup::python_cryptography()?;
    let decoder = |args: &[&str]| {
        let mut c = Command::new("python3");
        c.current_dir(root().join("tests/vectors"))
            .arg("reference_decoder.py")
            .args(args);
        c
    };
    run(&mut decoder(&[
        "kat-encrypted.sfu",
        "signer.pub.pem",
        "device.key",
        "image.bin",
    ]))?;
    run(&mut decoder(&[
        "kat-signed.sfu",
        "signer.pub.pem",
        "image.bin",
    ]))?;
    // A refusal counts only for the right reason: a decoder that fails to start also exits 1.
    let refuses = |args: &[&str], reason: &str, what: &str| -> Result {
        let out = decoder(args).output().map_err(|e| e.to_string())?;
        let stderr = String::from_utf8_lossy(&out.stderr);
        if out.status.success() || !stderr.contains(reason) {
            return Err(format!(
                "the reference decoder did not refuse {what} for its {reason}: {stderr}"
            ));
        }
        Ok(())
    };
    refuses(
        &[
            "kat-signed.sfu",
            "../../keys-example/signing.pub.pem",
            "image.bin",
        ],
        "signer key id",
        "a container under the wrong key",
    )?;
    run(&mut decoder(&[
        "kat-keyset.sks",
        "root.pub.pem",
        "signer.pub.pem",
        "second.pub.pem",
    ]))?;
    refuses(
        &[
            "kat-keyset.sks",
            "signer.pub.pem",
            "signer.pub.pem",
            "second.pub.pem",
        ],
        "root key id",
        "a key set under a firmware key",
    )
}

/// `cargo xtask bench`: the release CLI against the SHA-256 floor and imgtool.
fn bench(args: &[String]) -> Result {
    setup::bench_tools(args.iter().any(|a| a == "--imgtool"))?;
    step("the release CLI");
    run(cargo().args(["build", "--release", "-p", "sbsfu-host"]))?;
    step("side by side, on this machine (bench/compare.py)");
    run(Command::new("python3")
        .current_dir(root())
        .arg("bench/compare.py")
        .args(args))
}

/// Every test, as CI runs it.
fn test() -> Result {
    setup::host_tools()?;
    setup::input_tools()?;
    setup::mcu_target()?;
    step("formatting");
    run(cargo().args(["fmt", "--all", "--check"]))?;
    step("every test the docs name exists");
    docs::check_test_references()?;
    step("lints");
    run(cargo().args([
        "clippy",
        "--workspace",
        "--all-targets",
        "--",
        "-D",
        "warnings",
    ]))?;
    step("host tests");
    run(cargo().args(["test", "--workspace"]))?;
    // The workspace build unifies the F4 crates' `fast-sha256` into sbsfu-device: test the
    // device crate's own default (sha2's SHA-256) too.
    step("the device crate's unit tests with its default features");
    run(cargo().args(["test", "-p", "sbsfu-device", "--lib"]))?;
    step("power cuts at every flash operation of an update and a revert (release build)");
    run(cargo().args([
        "test",
        "--release",
        "-p",
        "sbsfu-device",
        "power_cut",
        "--",
        "--nocapture",
    ]))?;
    step("the STM32F4 on QEMU");
    f4::f4_test()?;
    step("no_std builds for the MCU (thumbv7em-none-eabihf)");
    run(cargo().args([
        "build",
        "-p",
        "sbsfu-format",
        "-p",
        "sbsfu-device",
        "--target",
        "thumbv7em-none-eabihf",
    ]))?;
    for package in [
        "sbsfu-format",
        "sbsfu-device",
        "sbsfu-f4",
        "sbsfu-f4-boot",
        "sbsfu-f4-app",
        "sbsfu-f4-test",
        "sbsfu-f4-bench",
    ] {
        // One package per run: the firmware crates must not unify features with each other.
        run(cargo().args([
            "clippy",
            "--quiet",
            "-p",
            package,
            "--target",
            "thumbv7em-none-eabihf",
            "--",
            "-D",
            "warnings",
        ]))?;
    }
    step("the format spec, cross-checked by an independent Python decoder");
    spec_cross_check()?;
    step("fuzzing, briefly (every target)");
    fuzz::fuzz(&["--seconds".into(), "20".into()])?;
    step("the main job");
    demo()?;
    println!("\nall tests passed");
    Ok(())
}
