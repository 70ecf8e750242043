//! `cargo xtask fuzz --seconds N`: every fuzz target for N seconds with the nightly toolchain
//! (installed with `rustup toolchain install nightly --profile minimal` when missing, and
//! cargo-fuzz from crates.io). Fails on any crash, leak,
//! timeout (a run over 10 s: unbounded work) or out-of-memory; prints executions and coverage.

use std::process::Command;

use crate::{Result, root, setup, step};

/// The targets, in fuzz/fuzz_targets.
pub const TARGETS: [&str; 7] = [
    "parse_header",
    "install_stream",
    "roundtrip",
    "mutate_valid",
    "key_set",
    "boot_sequence",
    "link_receiver",
];

/// Runs every target for `seconds`.
pub fn fuzz(args: &[String]) -> Result {
    let seconds: u32 = match args {
        [flag, n] if flag == "--seconds" => n
            .parse()
            .map_err(|_| format!("--seconds takes a number, not `{n}`"))?,
        [] => 60,
        _ => return Err("usage: cargo xtask fuzz [--seconds N]".into()),
    };
    setup::fuzz_tools()?;
    let dir = root().join("fuzz");
    let mut summary = Vec::new();
    for target in TARGETS {
        step(&format!("fuzz {target} for {seconds} s"));
        let out = Command::new("cargo")
            .current_dir(&dir)
            .arg(format!("+{}", setup::FUZZ_TOOLCHAIN))
            .args(["fuzz", "run", target, "--"])
            .arg(format!("-max_total_time={seconds}"))
            .args(["-dict=sbsfu.dict", "-timeout=10", "-print_final_stats=1"])
            .output()
            .map_err(|e| format!("cargo fuzz: {e}"))?;
        let log = String::from_utf8_lossy(&out.stderr);
        let done = log
            .lines()
            .rev()
            .find(|l| l.contains("DONE") || l.contains("cov:"))
            .unwrap_or("")
            .to_owned();
        println!("    {done}");
        if !out.status.success() {
            let tail: Vec<&str> = log.lines().rev().take(40).collect();
            for l in tail.iter().rev() {
                eprintln!("    {l}");
            }
            return Err(format!(
                "fuzz target {target} failed: the crashing input is in fuzz/artifacts/{target}/; \
                 reproduce with `cd fuzz && cargo +nightly fuzz run {target} <file>`"
            ));
        }
        summary.push((target, done));
    }
    println!("\nfuzz OK ({seconds} s per target):");
    for (t, line) in summary {
        println!("  {t:<15} {line}");
    }
    Ok(())
}
