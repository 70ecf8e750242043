//! What the CLI integration tests share: running the binary, fresh keys, sample images.
#![allow(dead_code)]

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use tempfile::TempDir;

/// Runs `sbsfu` in `dir`, without a passphrase from the caller's environment.
pub fn sbsfu(dir: &Path, args: &[&str]) -> Output {
    sbsfu_with(dir, args, &[])
}

/// Runs `sbsfu` in `dir` with extra environment variables.
pub fn sbsfu_with(dir: &Path, args: &[&str], env: &[(&str, &str)]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_sbsfu"))
        .current_dir(dir)
        .args(args)
        .env_remove("SBSFU_KEY_PASSPHRASE")
        .envs(env.iter().copied())
        .stdin(std::process::Stdio::null())
        .output()
        .expect("run sbsfu")
}

/// Runs `sbsfu`, which must succeed; returns its standard output.
pub fn ok(dir: &Path, args: &[&str]) -> String {
    let out = sbsfu(dir, args);
    assert!(
        out.status.success(),
        "sbsfu {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// Runs `sbsfu`, which must fail with exit code `code`; returns its standard error.
pub fn fails(dir: &Path, args: &[&str], code: i32) -> String {
    let out = sbsfu(dir, args);
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(self::code(&out), code, "sbsfu {args:?}: {err}");
    err
}

/// The exit code.
pub fn code(out: &Output) -> i32 {
    out.status.code().expect("exited normally, not by a signal")
}

/// A directory with fresh (non-development) keys.
pub fn workspace() -> TempDir {
    let dir = tempfile::tempdir().unwrap();
    ok(
        dir.path(),
        &["keygen", "--type", "ed25519", "--out", "signing.pem"],
    );
    ok(
        dir.path(),
        &["pubkey", "--key", "signing.pem", "--out", "signing.pub.pem"],
    );
    ok(
        dir.path(),
        &["keygen", "--type", "aes256", "--out", "device.key"],
    );
    dir
}

pub fn sign_args<'a>(encrypted: bool, input: &'a str, out: &'a str) -> Vec<&'a str> {
    let mut v = vec![
        "sign",
        "--key",
        "signing.pem",
        "--version",
        "1.2.3",
        "--security-counter",
        "7",
        "--target",
        "stm32f405",
        "--load-address",
        "0x08020000",
        "--in",
        input,
        "--out",
        out,
    ];
    if encrypted {
        v.extend(["--encrypt-key", "device.key"]);
    }
    v
}

pub fn pattern(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i * 31 + i / 7) as u8).collect()
}

pub fn openssl_available() -> bool {
    Command::new("openssl")
        .arg("version")
        .output()
        .is_ok_and(|o| o.status.success())
}

pub fn files(d: &Path) -> Vec<PathBuf> {
    let mut v: Vec<_> = fs::read_dir(d)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    v.sort();
    v
}

/// Runs a command that must succeed.
pub fn run_ok(cmd: &mut Command) -> Output {
    let out = cmd.output().unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// Runs `openssl` in `dir` with the words of `line`: it must succeed.
pub fn openssl(dir: &Path, line: &str) -> Output {
    run_ok(Command::new("openssl").current_dir(dir).args(words(line)))
}

/// The words of a command line (no quoting: arguments here hold no spaces).
pub fn words(line: &str) -> Vec<&str> {
    line.split_whitespace().collect()
}

/// A [`workspace`] with an image, `app.bin`: `pattern(len)`.
pub fn app_workspace(len: usize) -> TempDir {
    let dir = workspace();
    fs::write(dir.path().join("app.bin"), pattern(len)).unwrap();
    dir
}

/// An [`app_workspace`] with `app.bin` signed, and encrypted if so, into `app.sfu`.
pub fn signed_app(len: usize, encrypted: bool) -> TempDir {
    let dir = app_workspace(len);
    ok(dir.path(), &sign_args(encrypted, "app.bin", "app.sfu"));
    dir
}
