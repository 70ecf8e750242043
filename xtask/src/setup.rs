//! What a fresh Debian machine lacks: installed on demand, and said so.

use std::process::Command;

use crate::{Result, run};

/// The pinned toolchain (see rust-toolchain.toml).
pub const TOOLCHAIN: &str = "1.95.0";
/// The STM32F4's target.
pub const MCU_TARGET: &str = "thumbv7em-none-eabihf";

fn have(program: &str) -> bool {
    Command::new("sh")
        .args(["-c", &format!("command -v {program} >/dev/null 2>&1")])
        .status()
        .is_ok_and(|s| s.success())
}

/// Whether Python can make a virtualenv with pip (Debian splits that into python3-venv).
fn venv_works() -> bool {
    Command::new("python3")
        .args(["-c", "import ensurepip, venv"])
        .status()
        .is_ok_and(|s| s.success())
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| o.stdout.starts_with(b"0\n"))
}

/// Installs Debian packages, with sudo when not root; refreshes the index once if needed.
fn apt_install(packages: &[&str]) -> Result {
    let apt = |args: &[&str]| {
        let mut c = if is_root() {
            Command::new("apt-get")
        } else {
            let mut c = Command::new("sudo");
            c.arg("apt-get");
            c
        };
        c.args(args).env("DEBIAN_FRONTEND", "noninteractive");
        c
    };
    let mut install = apt(&["install", "-y", "--no-install-recommends"]);
    install.args(packages);
    if run(&mut install).is_ok() {
        return Ok(());
    }
    run(&mut apt(&["update"]))?;
    let mut install = apt(&["install", "-y", "--no-install-recommends"]);
    install.args(packages);
    run(&mut install)
}

/// Host tools the tests use: OpenSSL (interoperability tests).
pub fn host_tools() -> Result {
    if !have("openssl") {
        apt_install(&["openssl"])?;
    }
    Ok(())
}

/// What sbsfu-host/tests/inputs.rs compares `sign --in` with: the ARM binutils (objcopy,
/// objdump), and Python with venv and pip (the test installs bincopy and intelhex from PyPI into
/// a virtualenv of its own).
pub fn input_tools() -> Result {
    install_missing(&[
        (have("arm-none-eabi-objcopy"), "binutils-arm-none-eabi"),
        (have("python3"), "python3"),
        (venv_works(), "python3-venv"),
    ])
}

/// Installs the packages whose check (`true`: present) failed.
fn install_missing(checks: &[(bool, &str)]) -> Result {
    let missing: Vec<&str> = checks
        .iter()
        .filter(|(present, _)| !present)
        .map(|(_, package)| *package)
        .collect();
    if missing.is_empty() {
        Ok(())
    } else {
        apt_install(&missing)
    }
}

/// QEMU's STM32F405 and the ARM binutils (objcopy, nm, size).
pub fn qemu_tools() -> Result {
    install_missing(&[
        (have("qemu-system-arm"), "qemu-system-arm"),
        (have("arm-none-eabi-objcopy"), "binutils-arm-none-eabi"),
    ])
}

/// Python's `cryptography` package, for the independent reference decoder of the format.
pub fn python_cryptography() -> Result {
    let probe = |py: &str| {
        Command::new(py)
            .args(["-c", "import cryptography"])
            .status()
            .is_ok_and(|s| s.success())
    };
    if probe("python3") {
        return Ok(());
    }
    if !have("python3") {
        apt_install(&["python3", "python3-cryptography"])?;
        if probe("python3") {
            return Ok(());
        }
    }
    run(Command::new("python3").args(["-m", "pip", "install", "--quiet", "cryptography"]))
        .or_else(|_| apt_install(&["python3-cryptography"]))
}

/// The MCU target's standard library (RUSTUP_AUTO_INSTALL is 0 on CI machines).
pub fn mcu_target() -> Result {
    rust_target(MCU_TARGET)
}

/// The ESP32-C3's target, for the bridge example (`examples/esp32c3-bridge`).
pub const RISCV_TARGET: &str = "riscv32imc-unknown-none-elf";

/// Installs the Rust standard library of `target` for the pinned toolchain when missing.
pub fn rust_target(target: &str) -> Result {
    let installed = Command::new("rustup")
        .args(["target", "list", "--installed", "--toolchain", TOOLCHAIN])
        .output()
        .map_err(|e| format!("rustup: {e}"))?;
    if !String::from_utf8_lossy(&installed.stdout)
        .lines()
        .any(|l| l.trim() == target)
    {
        run(Command::new("rustup").args(["target", "add", "--toolchain", TOOLCHAIN, target]))?;
    }
    Ok(())
}

/// The toolchain the fuzz targets build with (libFuzzer and the sanitizers need nightly).
pub const FUZZ_TOOLCHAIN: &str = "nightly";
/// How `cargo xtask` installs it, and what to run by hand if that fails.
pub const INSTALL_NIGHTLY: &str = "rustup toolchain install nightly --profile minimal";

/// Whether `rustup toolchain list` shows the undated `nightly` channel (`nightly-<host>`; a dated
/// `nightly-2024-01-01-<host>` is not what `cargo +nightly` runs).
fn lists_nightly(toolchains: &str) -> bool {
    toolchains.lines().any(|l| {
        l.split_whitespace()
            .next()
            .and_then(|name| name.strip_prefix("nightly-"))
            .is_some_and(|rest| !rest.starts_with(|c: char| c.is_ascii_digit()))
    })
}

/// What fuzzing needs: the nightly toolchain and cargo-fuzz, installed when missing, and said
/// so. Called first by `cargo xtask test`, so that a machine that cannot fuzz fails at once
/// rather than after the other stages.
pub fn fuzz_tools() -> Result {
    let list = Command::new("rustup")
        .args(["toolchain", "list"])
        .output()
        .map_err(|e| format!("rustup: {e}"))?;
    if !lists_nightly(&String::from_utf8_lossy(&list.stdout)) {
        println!("fuzzing needs the nightly toolchain and none is installed: installing it");
        let mut install = Command::new("rustup");
        install.args([
            "toolchain",
            "install",
            FUZZ_TOOLCHAIN,
            "--profile",
            "minimal",
        ]);
        run(&mut install).map_err(|e| {
            format!("{e}\nfuzzing needs a nightly toolchain: run `{INSTALL_NIGHTLY}`, then again")
        })?;
    }
    let fuzz_version = Command::new("cargo").args(["fuzz", "--version"]).output();
    if !fuzz_version.is_ok_and(|o| o.status.success()) {
        println!("fuzzing needs cargo-fuzz and it is not installed: installing it");
        run(Command::new("cargo").args(["install", "--locked", "cargo-fuzz"]))
            .map_err(|e| format!("{e}\nrun `cargo install --locked cargo-fuzz`, then again"))?;
    }
    Ok(())
}

/// What the benchmark comparison needs: Python 3, GNU time (peak RSS), OpenSSL (the SHA-256
/// floor), and, to install imgtool into a virtualenv, Python's venv module.
pub fn bench_tools(imgtool: bool) -> Result {
    host_tools()?;
    install_missing(&[
        (have("python3"), "python3"),
        (std::path::Path::new("/usr/bin/time").exists(), "time"),
        (!imgtool || venv_works(), "python3-venv"),
    ])
}

#[cfg(test)]
mod tests {
    use super::lists_nightly;

    #[test]
    fn only_the_undated_nightly_counts() {
        let ours = "stable-x86_64-unknown-linux-gnu (default)\n\
                    nightly-x86_64-unknown-linux-gnu\n\
                    1.95.0-x86_64-unknown-linux-gnu (active)\n";
        assert!(lists_nightly(ours));
        assert!(!lists_nightly("1.95.0-x86_64-unknown-linux-gnu (active)\n"));
        assert!(!lists_nightly(
            "nightly-2024-01-01-x86_64-unknown-linux-gnu\n"
        ));
        assert!(!lists_nightly(""));
    }
}
