//! `cargo xtask <job>`: the project's multi-step jobs, one spelling for CI, the README and a new
//! user. Each job installs what it needs on a fresh Debian machine first.

use std::env;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};
use std::sync::OnceLock;
use std::time::Instant;

mod bench_provision;
mod docs;
mod f4;
mod fuzz;
mod qemu;
mod readme;
mod setup;

type Result<T = ()> = std::result::Result<T, String>;

const USAGE: &str = "usage: cargo xtask <job>

jobs:
  demo      sign an example image with keys-example/, inspect, verify and decrypt it
  test      every test: formatting, lints, API docs, host tests, the README's examples, power
            cuts, the STM32F4 tests, fuzzing briefly, the demo
  readme    run the shell examples of README.md and docs/ as written (see xtask/src/readme.rs)
  f4-test   on an emulated STM32F405 (QEMU): on-target round trip, example bootloader chain,
            sbsfu push over USART2 into the example application (through a faulty link too)
  f4-bench  bootloader flash and RAM, instruction counts (report, see docs/PERFORMANCE.md)
  f4-board-data  the test containers the board build of f4-test embeds (see the README)
  bench-link  the link protocol on a simulated 921,600-baud line into F4 flash timings, beside
            YMODEM-1K and AN3155 (report, see docs/PERFORMANCE.md)
  bench-provision  sbsfu provision --batch of 1,000 devices, timed (report, docs/PERFORMANCE.md)
  fuzz [--seconds N]  every fuzz target for N seconds (default 60; nightly, cargo-fuzz)
  docs      check that every test named in docs/ exists
  bench [--imgtool] [--sizes 1,16,64] [--runs N] [--rss-gib N]
            sbsfu vs `openssl dgst -sha256` (and imgtool) on this machine (bench/compare.py);
            `cargo bench` runs the criterion micro-benchmarks
";

/// When this job started: every step's title shows the time since (CI logs show where it goes).
static STARTED: OnceLock<Instant> = OnceLock::new();

fn main() -> ExitCode {
    STARTED.get_or_init(Instant::now);
    let args: Vec<String> = env::args().skip(1).collect();
    let result = match args.first().map(String::as_str) {
        Some("demo") => demo(),
        Some("test") => test(),
        Some("readme") => readme::readme(),
        Some("f4-test") => f4::f4_test(),
        Some("f4-bench") => f4::f4_bench(),
        Some("f4-board-data") => f4::f4_board_data(),
        Some("fuzz") => fuzz::fuzz(&args[1..]),
        Some("docs") => docs::check_test_references(),
        Some("bench") => bench(&args[1..]),
        Some("bench-link") => bench_link(),
        Some("bench-provision") => bench_provision::bench_provision(),
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

/// Runs `cargo` with the words of `line` (no quoting: its arguments hold no spaces).
fn run_cargo(line: &str) -> Result {
    run(cargo().args(line.split_whitespace()))
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

/// A step's title, after the minutes and seconds since the job started: `==> [12:34] title`.
fn step(title: &str) {
    let secs = STARTED.get_or_init(Instant::now).elapsed().as_secs();
    println!("\n==> [{:02}:{:02}] {title}", secs / 60, secs % 60);
}

/// Builds the `sbsfu` CLI (cargo's progress shown: a first build takes minutes) and returns it.
fn sbsfu_cli() -> Result<PathBuf> {
    run(cargo().args(["build", "-p", "sbsfu-host"]))?;
    Ok(root().join("target/debug/sbsfu"))
}

/// Where the demo works, relative to the workspace root (so its echoed commands can be pasted).
const DEMO_DIR: &str = "target/demo";
/// The example image's load address (the F405's application slot).
const DEMO_LOAD_ADDRESS: &str = "0x08020000";

/// The main job: what a release engineer does, with the published development keys. One line
/// per step as it starts, and a summary of every file it made.
fn demo() -> Result {
    let root = root();
    let file = |name: &str| format!("{DEMO_DIR}/{name}");
    let (input, container, output) = (file("app.bin"), file("app.sfu"), file("app.out.bin"));

    step("[1/6] building the sbsfu CLI (cargo build -p sbsfu-host; a first build takes minutes)");
    let cli = sbsfu_cli()?;
    let sbsfu = |args: &[&str]| {
        let mut c = Command::new(&cli);
        c.current_dir(&root).args(args);
        c
    };

    step(&format!(
        "[2/6] making the input, {input}: a 64 KiB stand-in for a firmware build (pseudo-random \
         bytes, made by the demo itself), to be loaded at {DEMO_LOAD_ADDRESS}"
    ));
    let dir = root.join(DEMO_DIR);
    fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    // A rerun starts clean: no output of an earlier run can pass for this one's.
    for name in [&container, &output] {
        let _ = fs::remove_file(root.join(name));
    }
    fs::write(root.join(&input), example_image()).map_err(|e| format!("{input}: {e}"))?;
    let trust = [
        "--pubkey",
        "keys-example/signing.pub.pem",
        "--decrypt-key",
        "keys-example/device.key",
    ];

    step(&format!(
        "[3/6] signing (Ed25519) and encrypting (AES-256-GCM) it into {container}, with the \
         published development keys of keys-example/ (hence --allow-dev-key)"
    ));
    run(sbsfu(&[]).args(dev_sign_args(Path::new("keys-example"), &input, &container)))?;

    step(
        "[4/6] verifying it exactly as a device would (the sbsfu-device installer, on a simulated flash)",
    );
    run(sbsfu(&["verify"])
        .args(trust)
        .args(["--target", "stm32f405", "--min-security-counter", "1"])
        .arg(&container))?;

    step(&format!(
        "[5/6] decrypting it into {output}, what a device would install, and comparing with the input"
    ));
    run(sbsfu(&["decrypt"])
        .args(trust)
        .args([container.as_str(), "--out", output.as_str()]))?;
    let read = |name: &str| fs::read(root.join(name)).map_err(|e| format!("{name}: {e}"));
    if read(&input)? != read(&output)? {
        return Err(format!("{output} differs from {input}"));
    }
    println!("{output} is byte for byte {input}");

    step("[6/6] refusing a downgrade: a device that has seen security counter 2 (exit code 3)");
    let mut downgrade = sbsfu(&["verify"]);
    downgrade
        .args(trust)
        .args(["--min-security-counter", "2"])
        .arg(&container);
    println!("$ {}", show(&downgrade));
    let refused = downgrade.status().map_err(|e| e.to_string())?;
    if refused.code() != Some(3) {
        return Err(format!(
            "a downgrade was not refused with exit code 3: {refused}"
        ));
    }
    println!("refused, exit code 3, as expected");

    let size = fs::metadata(root.join(&container)).map_or(0, |m| m.len());
    println!(
        "
demo OK: signed, encrypted, verified, decrypted byte-exact; a downgrade refused

the files (in {root}):
  {input:<24} the input: a 64 KiB stand-in image the demo generates (not a real program)
  {container:<24} the update container, {size} bytes: signed and encrypted
  {output:<24} the image a device would install, decrypted and verified: equal to the input
  keys-example/signing.pem, keys-example/device.key
                           the keys it used: PUBLISHED development keys, never ship them

try next:
  target/debug/sbsfu inspect {container} --json
  your own keys and your own build (.elf, .hex, .s19, .bin): README.md, \"The `sbsfu` command line\"
  on an emulated STM32F405, the example bootloader verifying and booting an application:
    cargo xtask f4-test
  every test, as CI runs them: cargo xtask test",
        root = root.display()
    );
    Ok(())
}

/// `sbsfu sign` of `input` into `out`: signed (Ed25519) and encrypted (AES-256-GCM) for the
/// example application at [`DEMO_LOAD_ADDRESS`], with the published development keys in `keys`
/// (hence --allow-dev-key). The demo's container and bench-provision's.
fn dev_sign_args(keys: &Path, input: &str, out: &str) -> Vec<String> {
    let key = |name: &str| keys.join(name).display().to_string();
    let (signing, device) = (key("signing.pem"), key("device.key"));
    [
        "sign",
        "--key",
        &signing,
        "--encrypt-key",
        &device,
        "--version",
        "1.0.0",
        "--security-counter",
        "1",
        "--target",
        "stm32f405",
        "--load-address",
        DEMO_LOAD_ADDRESS,
        "--in",
        input,
        "--out",
        out,
        "--allow-dev-key",
    ]
    .map(String::from)
    .to_vec()
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
    // HPKE, to either recipient (the decoder first checks itself against the CFRG vector).
    for key in ["device-x25519.pem", "lab-x25519.pem"] {
        run(&mut decoder(&[
            "kat-hpke.sfu",
            "signer.pub.pem",
            key,
            "image.bin",
        ]))?;
    }
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
    refuses(
        &[
            "kat-hpke.sfu",
            "signer.pub.pem",
            "../../keys-example/device-x25519.pem",
            "image.bin",
        ],
        "recipient key id",
        "an HPKE container encrypted to other keys",
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
/// `cargo xtask bench-link`: the stage-1 benchmark of the link, in simulated time (exact and
/// repeatable), built in release.
fn bench_link() -> Result {
    step(
        "sbsfu-link: a 512 KiB container at 921,600 baud into F4 flash, beside YMODEM-1K and AN3155",
    );
    run(cargo().args([
        "run",
        "--release",
        "-p",
        "sbsfu-link",
        "--features",
        "sim",
        "--example",
        "bench_link",
    ]))
}

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
    // What a stage would miss halfway is installed (or refused, naming the command) first.
    setup::fuzz_tools()?;
    setup::host_tools()?;
    setup::input_tools()?;
    setup::mcu_target()?;
    setup::rust_target(setup::RISCV_TARGET)?;
    step("formatting");
    run_cargo("fmt --all --check")?;
    step("every test the docs name exists");
    docs::check_test_references()?;
    step("lints");
    run_cargo("clippy --workspace --all-targets -- -D warnings")?;
    step("API docs without warnings (RUSTDOCFLAGS=\"-D warnings\" cargo doc --no-deps)");
    run(cargo()
        .args(["doc", "--workspace", "--no-deps"])
        .env("RUSTDOCFLAGS", "-D warnings"))?;
    step("host tests");
    run_cargo("test --workspace")?;
    step("the shell examples of the README and docs/, as written (cargo xtask readme)");
    readme::readme()?;
    // The workspace build unifies the F4 crates' `fast-sha256` into sbsfu-device: test the
    // device crate's own default (sha2's SHA-256) too.
    step("the device crate's unit tests with its default features");
    run_cargo("test -p sbsfu-device --lib")?;
    // The full version, as `--release` runs it (it cuts less often where debug assertions are
    // on), but built in the dev profile with the device crate optimised and its debug assertions
    // off: it then reuses the dependencies of the step before instead of a release build of all
    // of them (criterion, proptest, the crypto), and runs as fast (docs/PERFORMANCE.md).
    step(
        "power cuts at every flash operation of an update and a revert (the full version: \
         the device crate optimised, without debug assertions)",
    );
    run_cargo(
        "test -p sbsfu-device --test power_cut \
         --config profile.dev.package.sbsfu-device.debug-assertions=false \
         --config profile.dev.package.sbsfu-device.opt-level=3 -- --nocapture",
    )?;
    step("the STM32F4 on QEMU");
    f4::f4_test()?;
    // The flash and RAM budgets of the example bootloader (f4-bench's footprint, without its
    // instruction counts: one more firmware build and three boots under QEMU).
    step(
        "the example bootloader within 63 KiB of flash (the device record has the last KiB of sector 3) and 16 KiB of RAM",
    );
    f4::f4_footprint()?;
    // With the firmware profile: the crypto crates are already built by the firmware above
    // (a dev build would compile them all again for the MCU, for a check that they build).
    step("no_std builds for the MCU (thumbv7em-none-eabihf)");
    run_cargo(
        "build --profile firmware -p sbsfu-format -p sbsfu-device -p sbsfu-link \
         --target thumbv7em-none-eabihf",
    )?;
    // The device side of the link, as firmware builds it.
    run_cargo(
        "build --profile firmware -p sbsfu-device --features link --target thumbv7em-none-eabihf",
    )?;
    for package in [
        "sbsfu-format",
        "sbsfu-device",
        "sbsfu-f4",
        "sbsfu-f4-boot",
        "sbsfu-f4-app",
        "sbsfu-f4-test",
        "sbsfu-f4-bench",
        "sbsfu-link",
    ] {
        // One package per run: the firmware crates must not unify features with each other.
        run_cargo(&format!(
            "clippy --quiet -p {package} --target thumbv7em-none-eabihf -- -D warnings"
        ))?;
    }
    step(
        "the ESP32-C3 bridge (examples/esp32c3-bridge: sbsfu-link's sender over UART1): it builds",
    );
    run(cargo()
        .current_dir(root().join("examples/esp32c3-bridge"))
        .args(["build", "--release"]))?;
    step("the format spec, cross-checked by an independent Python decoder");
    spec_cross_check()?;
    step("fuzzing, briefly (every target)");
    fuzz::fuzz(&["--seconds".into(), "20".into()])?;
    step("the main job");
    demo()?;
    println!("\nall tests passed");
    Ok(())
}
