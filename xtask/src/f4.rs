//! `cargo xtask f4-test` and `cargo xtask f4-bench`: the STM32F4 firmware under QEMU.

use std::cell::RefCell;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use sbsfu_device::TrustedKey;
use sbsfu_device::boot::Phase;
use sbsfu_device::boot::{BootFlash, BootManager, STM32F405_LAYOUT as LAYOUT, Stager};
use sbsfu_device::format::DeviceKey;
use sbsfu_device::sim::SimFlash;
use sbsfu_f4::config::{CHUNK, boot_config};
use sbsfu_f4::keys::{DEVICE_KEY, DEVICE_X25519_KEY, SIGNING_KEY};
use sbsfu_f4::layout::{FLASH_BASE, offset};

#[path = "f4_push.rs"]
mod push;

use crate::qemu::{self, Run};

mod factory;
mod hpke;
use crate::{Result, cargo, root, run, sbsfu_cli, setup, step};

const MCU: &str = setup::MCU_TARGET;

/// Which SHA-2 backend a firmware build uses.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Sha2 {
    /// The shipping choice (.cargo/config.toml): compact.
    Compact,
    /// The unrolled backend, for comparison (its own target directory).
    Unrolled,
}

/// Where each firmware build's ELF is copied, under a name of its own (`f4-boot-ram-otp`,
/// `f4-app-receive-1.1.0`): every variant is built in the one target directory, where the next
/// variant's build replaces the ELF that cargo leaves under the binary's name.
const ELF_DIR: &str = "target/f4-elf";

/// Builds firmware with the shipping profile; returns its ELF, copied into [`ELF_DIR`].
fn firmware(package: &str, bin: &str, features: &[&str], sha2: Sha2) -> Result<PathBuf> {
    firmware_version(package, bin, features, sha2, None)
}

/// [`firmware`], with `SBSFU_APP_VERSION` set to `version` if given (the example application
/// reports that version: `option_env!`, so that only the application's own crate is rebuilt).
///
/// All variants share the default target directory, and so every dependency's artifacts: the
/// features differ only in our firmware crates (`receive` adds sbsfu-link and sbsfu-device's
/// `link`, built once more), and the crypto crates are compiled once. The unrolled SHA-2 build
/// changes RUSTFLAGS, which would rebuild everything: it keeps a directory of its own.
fn firmware_version(
    package: &str,
    bin: &str,
    features: &[&str],
    sha2: Sha2,
    version: Option<&str>,
) -> Result<PathBuf> {
    let mut c = cargo();
    c.args([
        "build",
        "--quiet",
        "--profile",
        "firmware",
        "--target",
        MCU,
        "-p",
        package,
    ]);
    let mut name = std::iter::once(bin)
        .chain(features.iter().copied())
        .collect::<Vec<_>>();
    let mut target = root().join("target");
    if sha2 == Sha2::Unrolled {
        // RUSTFLAGS replaces (not extends) the flags of .cargo/config.toml: the compact-SHA
        // one goes, the compact-AES one stays.
        c.env("RUSTFLAGS", "--cfg aes_backend_soft=\"compact\"");
        // It does not fit the bootloader's 64K: link it larger, to measure it.
        c.env("SBSFU_BOOT_FLASH", "128K");
        target = root().join("target/f4-unrolled");
        c.arg("--target-dir").arg(&target);
        name.push("unrolled");
    }
    if !features.is_empty() {
        c.arg("--features").arg(features.join(","));
    }
    if let Some(v) = version {
        c.env("SBSFU_APP_VERSION", v);
        name.push(v);
    }
    run(&mut c)?;
    let built = target.join(MCU).join("firmware").join(bin);
    let elf = root().join(ELF_DIR).join(name.join("-"));
    fs::create_dir_all(root().join(ELF_DIR)).map_err(|e| e.to_string())?;
    fs::copy(&built, &elf).map_err(|e| format!("{} to {}: {e}", built.display(), elf.display()))?;
    Ok(elf)
}

/// Runs the CLI on one command line (its arguments hold no spaces), from the workspace root.
fn sbsfu(cli: &Path, line: &str) -> Result {
    let args: Vec<&str> = line.split_whitespace().collect();
    let out = Command::new(cli)
        .current_dir(root())
        .args(&args)
        .output()
        .map_err(|e| e.to_string())?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "sbsfu {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}

fn write(path: &Path, bytes: &[u8]) -> Result {
    fs::write(path, bytes).map_err(|e| format!("{}: {e}", path.display()))
}

fn read(path: &Path) -> Result<Vec<u8>> {
    fs::read(path).map_err(|e| format!("{}: {e}", path.display()))
}

/// A deterministic pseudo-random image.
fn image(len: usize, seed: u32) -> Vec<u8> {
    sbsfu_device::sim::kit::xorshift(len, seed | 1)
}

/// `image` with a vector table the boot manager accepts at the active slot: the stack at the
/// top of RAM, the reset handler just after the table.
fn bootable(mut image: Vec<u8>) -> Vec<u8> {
    let sp = sbsfu_f4::layout::RAM.address + sbsfu_f4::layout::RAM.len;
    image[..4].copy_from_slice(&sp.to_le_bytes());
    image[4..8].copy_from_slice(&(LAYOUT.active.address + 9).to_le_bytes());
    image
}

/// `arm-none-eabi-objcopy -O binary`: what the ELF puts in flash, from its first address. (Not
/// `--gap-fill 0xff`: with lld's output that pads up to the empty `.data` placed in RAM, 400 MB.
/// Our firmware's loaded sections are contiguous, so there is no gap to fill.)
fn objcopy(elf: &Path, out: &Path) -> Result {
    run(Command::new("arm-none-eabi-objcopy")
        .args(["-O", "binary"])
        .arg(elf)
        .arg(out))
}

/// `arm-none-eabi-objcopy -O ihex`.
fn objcopy_hex(elf: &Path, out: &Path) -> Result {
    run(Command::new("arm-none-eabi-objcopy")
        .args(["-O", "ihex"])
        .arg(elf)
        .arg(out))
}

/// What an ARM binutils `tool` prints about `elf` (with `flags` before it).
fn binutils(tool: &str, flags: &[&str], elf: &Path) -> Result<String> {
    let out = Command::new(tool)
        .args(flags)
        .arg(elf)
        .output()
        .map_err(|e| format!("{tool}: {e}"))?;
    if !out.status.success() {
        return Err(format!("{tool} {}: {}", elf.display(), out.status));
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// A symbol's address, from `arm-none-eabi-nm`.
fn symbol(elf: &Path, name: &str) -> Result<u32> {
    binutils("arm-none-eabi-nm", &[], elf)?
        .lines()
        .find_map(|l| {
            let mut it = l.split_whitespace();
            let (addr, _, sym) = (it.next()?, it.next()?, it.next()?);
            (sym == name).then(|| u32::from_str_radix(addr, 16).ok())?
        })
        .ok_or_else(|| format!("{}: no symbol {name}", elf.display()))
}

/// Section sizes, from `arm-none-eabi-size -A`.
fn sections(elf: &Path) -> Result<Vec<(String, u64)>> {
    Ok(binutils("arm-none-eabi-size", &["-A"], elf)?
        .lines()
        .filter_map(|l| {
            let mut it = l.split_whitespace();
            let name = it.next()?;
            let size = it.next()?.parse().ok()?;
            name.starts_with('.').then(|| (name.to_owned(), size))
        })
        .collect())
}

/// Where the flash image goes: after the bootloader, from the device record's region on (its
/// last KiB of sector 3: erased, 0xFF, unless provisioned). QEMU's flash reads 0x00 where
/// nothing is loaded, which the bootloader would take for a foreign record.
const IMAGE_FROM: u32 = sbsfu_device::boot::STM32F405_RECORD.address;

enum Scenario<'a> {
    /// The application installed and confirmed: a normal boot.
    Idle,
    /// A second container staged and its install under way (the bootloader's deepest path).
    Installing(&'a [u8]),
    /// A second container staged (pending): the bootloader checks it before installing.
    Staged(&'a [u8]),
}

/// A 1 MiB flash image of the example layout, made by running the device code on the host: the
/// factory writes `app` into container slot 0, the boot manager installs it.
fn provision(app: &[u8], scenario: Scenario<'_>) -> Result<Vec<u8>> {
    let mut flash = SimFlash::stm32f405();
    let slot0 = offset(LAYOUT.slots[0]) as usize;
    flash.data_mut()[slot0..slot0 + app.len()].copy_from_slice(app);
    let signers = [TrustedKey::from_bytes(&SIGNING_KEY).map_err(|e| e.to_string())?];
    let device_keys = [
        DeviceKey::from_bytes(DEVICE_KEY),
        DeviceKey::x25519(DEVICE_X25519_KEY),
    ];
    let config = boot_config(&signers, &device_keys);
    let cell = RefCell::new(&mut flash);
    let mut regions = LAYOUT
        .regions(&BootFlash::stm32f405(&cell))
        .map_err(|e| e.to_string())?;
    BootManager::<CHUNK>::new(&config, &mut regions, None)
        .and_then(|mut m| m.run())
        .map_err(|e| format!("provisioning: {e}"))?;
    if let Scenario::Installing(update) | Scenario::Staged(update) = scenario {
        let mut stager = Stager::<CHUNK>::new(&config, &mut regions).map_err(|e| e.to_string())?;
        stager.feed(update).map_err(|e| e.to_string())?;
        stager.finish().map_err(|e| e.to_string())?;
    }
    if let Scenario::Installing(_) = scenario {
        let mut log = regions.state_log().map_err(|e| e.to_string())?;
        let mut state = log.load().map_err(|e| e.to_string())?;
        state.phase = Phase::Installing { slot: 1 };
        log.save(&state).map_err(|e| e.to_string())?;
    }
    let image = cell.borrow().data().to_vec();
    Ok(image)
}

/// Writes the part of a flash image after the bootloader, for QEMU's loader device.
fn flash_file(image: &[u8], name: &str) -> Result<PathBuf> {
    let path = root().join("target/f4-test").join(name);
    write(&path, &image[(IMAGE_FROM - FLASH_BASE) as usize..])?;
    Ok(path)
}

/// The test containers, in `dir`, for an installer whose region is seen at `address`: what the
/// host CLI produces, and damaged or refused variants of it.
fn test_containers(cli: &Path, dir: &str, address: &str, image_len: usize) -> Result {
    let path = |f: &str| format!("{dir}/{f}");
    fs::create_dir_all(root().join(dir)).map_err(|e| e.to_string())?;
    write(&root().join(path("image.bin")), &image(image_len, 4))?;
    sbsfu(
        cli,
        &format!("keygen --type ed25519 --out {dir}/other.pem --force"),
    )?;
    sbsfu(
        cli,
        &format!("keygen --type aes256 --out {dir}/other.key --force"),
    )?;
    let sign = |out: &str, key: &str, rest: &str| {
        sbsfu(
            cli,
            &format!(
                "sign --key {key} --version 1.0.0 --load-address {address} --chunk-size {CHUNK} \
                 --in {dir}/image.bin --out {dir}/{out} --allow-dev-key {rest}"
            ),
        )
    };
    let dev = "keys-example/signing.pem";
    let enc = "--encrypt-key keys-example/device.key";
    let other_pem = path("other.pem");
    sign(
        "valid-encrypted.sfu",
        dev,
        &format!("{enc} --target stm32f405 --security-counter 5"),
    )?;
    sign(
        "valid-signed.sfu",
        dev,
        "--target stm32f405 --security-counter 5",
    )?;
    sign(
        "wrong-key.sfu",
        &other_pem,
        &format!("{enc} --target stm32f405 --security-counter 5"),
    )?;
    sign(
        "wrong-target.sfu",
        dev,
        &format!("{enc} --target stm32f407 --security-counter 5"),
    )?;
    sign(
        "downgraded.sfu",
        dev,
        &format!("{enc} --target stm32f405 --security-counter 4"),
    )?;
    sign(
        "wrong-device-key.sfu",
        dev,
        &format!("--encrypt-key {dir}/other.key --target stm32f405 --security-counter 5"),
    )?;
    hpke::test_containers(cli, dir, address, CHUNK)?;
    let valid = read(&root().join(path("valid-encrypted.sfu")))?;
    let mut tampered = valid.clone();
    let mid = tampered.len() / 2;
    tampered[mid] ^= 1;
    write(&root().join(path("tampered.sfu")), &tampered)?;
    write(
        &root().join(path("truncated.sfu")),
        &valid[..valid.len() - 100],
    )?;
    let mut trailing = valid;
    trailing.push(b'x');
    write(&root().join(path("trailing.sfu")), &trailing)
}

/// The RAM-simulated OTP area of the `ram-otp` bootloader (`sbsfu_f4::ram_otp`), holding the
/// counter `values` (one word each, as complements), for QEMU's loader.
fn ram_otp(values: &[u32]) -> Vec<u8> {
    let mut words = vec![0xFFFF_FFFFu32; 1 + sbsfu_f4::layout::OTP_WORDS as usize];
    words[0] = sbsfu_f4::ram_otp::MARKER;
    for (w, v) in words[1..].iter_mut().zip(values) {
        *w = !v;
    }
    words.iter().flat_map(|w| w.to_le_bytes()).collect()
}

/// `cargo xtask f4-board-data`: the containers the board build of f4-test embeds (its test
/// region is sector 6, at 0x0804_0000; images of 8 KiB keep the firmware below it).
pub fn f4_board_data() -> Result {
    let cli = sbsfu_cli()?;
    test_containers(&cli, "target/f4-board", "0x08040000", 8 * 1024)
}

/// The example application, signed and encrypted for the example layout, straight from the
/// linker's ELF (the load address comes from the file).
fn app_container(cli: &Path, version: &str, counter: &str, out: &str) -> Result<Vec<u8>> {
    let elf = firmware("sbsfu-f4-app", "f4-app", &[], Sha2::Compact)?;
    let elf = elf.to_str().ok_or("non-UTF-8 path")?;
    sbsfu(
        cli,
        &format!(
            "sign --key keys-example/signing.pem --encrypt-key keys-example/device.key \
             --version {version} --security-counter {counter} --target stm32f405 \
             --chunk-size {CHUNK} --in {elf} --out {out} --allow-dev-key"
        ),
    )?;
    read(&root().join(out))
}

/// The application's ELF, its objcopy'd HEX and its objcopy'd binary (no gaps: see `objcopy`) must sign into
/// the same signed-only container: one image whichever file the build system hands over.
fn same_image_from_elf_hex_and_bin(cli: &Path) -> Result {
    let elf = firmware("sbsfu-f4-app", "f4-app", &[], Sha2::Compact)?;
    let dir = root().join("target/f4-test");
    objcopy(&elf, &dir.join("app.bin"))?;
    objcopy_hex(&elf, &dir.join("app.hex"))?;
    let mut containers = Vec::new();
    for (input, address) in [
        (elf.clone(), None),
        (dir.join("app.hex"), None),
        (dir.join("app.bin"), Some("0x08020000")),
    ] {
        let out = dir.join("same-image.sfu");
        let (input, out_s) = (
            input.to_str().ok_or("non-UTF-8 path")?.to_owned(),
            out.to_str().ok_or("non-UTF-8 path")?.to_owned(),
        );
        let address = address.map_or(String::new(), |a| format!("--load-address {a}"));
        sbsfu(
            cli,
            &format!(
                "sign --key keys-example/signing.pem --allow-dev-key --version 1.0.0 \
                 --security-counter 1 --target stm32f405 --in {input} --out {out_s} {address}"
            ),
        )?;
        containers.push(read(&out)?);
    }
    if containers.iter().any(|c| *c != containers[0]) {
        return Err(
            "the application's ELF, HEX and binary signed into different containers".into(),
        );
    }
    println!(
        "ELF, HEX and binary of f4-app: one container ({} bytes)",
        containers[0].len()
    );
    Ok(())
}

/// The example bootloader under QEMU, with `load` (files at addresses) preloaded.
fn boot_run(boot: &Path, load: &[(&Path, u32)]) -> Result<qemu::Outcome> {
    qemu::run(&Run {
        elf: boot,
        load,
        icount: false,
        timeout: 120,
        dump_after: None,
    })
}

/// Whether the bootloader refused to boot, for `why`, and the application never ran.
fn refused(out: &qemu::Outcome, why: &str) -> bool {
    out.status == Some(1)
        && out.output.contains(&format!("sbsfu-boot: refused: {why}"))
        && !out.output.contains("hello from the application")
}

/// `cargo xtask f4-test`.
pub fn f4_test() -> Result {
    setup::mcu_target()?;
    setup::qemu_tools()?;
    let cli = sbsfu_cli()?;

    step(
        "on-target round trip: host-made containers through sbsfu-device on an emulated STM32F405",
    );
    test_containers(&cli, "target/f4-test", "0x0800C000", 40 * 1024)?;
    let elf = firmware("sbsfu-f4-test", "f4-test", &[], Sha2::Compact)?;
    let out = qemu::run(&Run {
        elf: &elf,
        load: &[],
        icount: false,
        timeout: 300,
        dump_after: None,
    })?;
    if out.status != Some(0) || !out.output.contains(", 0 failed") {
        return Err(format!("f4-test failed (exit status {:?})", out.status));
    }
    // The firmware's own count ("f4-test: N cases, 0 failed").
    let cases = out
        .output
        .lines()
        .find_map(|l| l.strip_prefix("f4-test: ")?.split(' ').next())
        .unwrap_or("?")
        .to_owned();

    step("the application's ELF, HEX and binary sign into one container");
    same_image_from_elf_hex_and_bin(&cli)?;

    let app = app_container(&cli, "1.0.0", "1", "target/f4-test/app.sfu")?;
    let boot = firmware("sbsfu-f4-boot", "f4-boot", &["ram-otp"], Sha2::Compact)?;
    let devices = factory::provision_batch(&cli, &boot, "target/f4-test/app.sfu")?;
    for device in &devices {
        step(&format!(
            "{}'s factory image under QEMU (the whole flash, as programmed): the bootloader \
             takes its key from the record, verifies the application, advances the OTP \
             counter, jumps; the application prints its serial number and takes interrupts",
            device.serial
        ));
        let out = boot_run(&device.file, &[])?;
        if !factory::booted(&out, device.serial, "1.0.0")
            || !out.output.contains("floor 1 (63 OTP advances left)")
            || !out.output.contains("SysTick interrupts after the jump")
        {
            return Err(format!(
                "the bootloader did not verify {}'s application with the key from its record, \
                 advance its OTP counter and start it in reset state (interrupts taken), or \
                 the application did not print its serial number",
                device.serial
            ));
        }
    }

    step("example bootloader: a tampered application is refused, and it says why");
    let mut tampered = devices[0].image.clone();
    tampered[(offset(LAYOUT.active) + 0x100) as usize] ^= 0x01;
    let file_tampered = root().join("target/f4-test/flash-tampered.bin");
    write(&file_tampered, &tampered)?;
    let out = boot_run(&file_tampered, &[])?;
    if !refused(&out, "authentication failed") {
        return Err("the bootloader did not refuse the tampered application".into());
    }

    factory::per_device_update(&cli, &devices)?;

    hpke::boot_chain(&cli, &app, &boot)?;

    step("example bootloader: an OTP counter above the application's refuses it, whatever the log");
    let otp = root().join("target/f4-test/otp-counter-2.bin");
    write(&otp, &ram_otp(&[2]))?;
    let out = boot_run(&devices[0].file, &[(&otp, sbsfu_f4::ram_otp::ADDRESS)])?;
    if !refused(&out, "security counter below the device minimum") {
        return Err("the bootloader booted an image below its OTP counter".into());
    }
    push::push_scenarios(&cli, &boot)?;
    step("the same test firmware for a board (real flash, embedded data): it builds");
    f4_board_data()?;
    firmware("sbsfu-f4-test", "f4-test", &["board"], Sha2::Compact)?;

    println!(
        "\nf4-test OK: {cases} on-target cases, factory images of sbsfu provision booted with \
         the key from their records (a per-device update installed, another device's refused), \
         the boot chain with the OTP counter and an interrupt after the jump, and the refusals \
         of a tampered image and of an image below the OTP counter, and sbsfu push over USART2 \
         into the running application (through a faulty, cut link too, resumed)"
    );
    Ok(())
}

/// Peak stack of a halted run: from the painted stack (`0xCCCC_CCCC` from `_stack_end` up to
/// `_stack_start`), the first word that is no longer paint.
fn peak_stack(elf: &Path, ram: &[u8]) -> Result<u32> {
    let start = symbol(elf, "_stack_start")?;
    let end = symbol(elf, "_stack_end")?;
    let mut at = end;
    while at < start {
        let i = (at - 0x2000_0000) as usize;
        if ram.get(i..i + 4) != Some(&[0xCC; 4][..]) {
            break;
        }
        at += 4;
    }
    Ok(start - at)
}

/// Counts from one run of f4-bench.
struct Counts {
    ed25519: u64,
    image_bytes: u64,
    raw_aes: u64,
    raw_sha: u64,
    install: u64,
    reset_install: u64,
    boot_1mib: u64,
    hpke_lookup: u64,
    hpke_open: u64,
}

fn bench_counts(cli: &Path) -> Result<Counts> {
    let elf = firmware("sbsfu-f4-bench", "f4-bench", &[], Sha2::Compact)?;
    let dir = root().join("target/f4-bench");
    fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
    write(&dir.join("image.bin"), &bootable(image(16 * 1024, 7)))?;
    sbsfu(
        cli,
        &format!(
            "sign --key keys-example/signing.pem --encrypt-key keys-example/device.key \
             --version 1.0.0 --security-counter 1 --target stm32f405 --load-address 0x08020000 \
             --chunk-size {CHUNK} --in target/f4-bench/image.bin --out target/f4-bench/bench.sfu \
             --allow-dev-key"
        ),
    )?;
    // Sign exactly what QEMU's flash will hold: the firmware, then zeros (unwritten ROM).
    let bin = dir.join("flash.bin");
    objcopy(&elf, &bin)?;
    let mut flash = read(&bin)?;
    flash.resize(1024 * 1024, 0);
    write(&bin, &flash)?;
    sbsfu(
        cli,
        "sign --key keys-example/signing.pem --version 1.0.0 --security-counter 1 \
         --target stm32f405 --load-address 0x08000000 --chunk-size 65536 \
         --in target/f4-bench/flash.bin --out target/f4-bench/flash.sfu --allow-dev-key",
    )?;
    let sfu = read(&dir.join("flash.sfu"))?;
    let head = 12 + usize::from(u16::from_be_bytes([sfu[10], sfu[11]])) + 64;
    write(&dir.join("flash.head"), &sfu[..head])?;
    hpke::bench_head(cli)?;
    let out = qemu::run(&Run {
        elf: &elf,
        load: &[],
        icount: true,
        timeout: 300,
        dump_after: Some("bench: done"),
    })?;
    let get = |key: &str| -> Result<u64> {
        out.output
            .lines()
            .find_map(|l| l.strip_prefix(&format!("bench: {key} ")))
            .and_then(|v| v.trim().parse().ok())
            .ok_or_else(|| format!("f4-bench printed no {key}"))
    };
    Ok(Counts {
        ed25519: get("ed25519_verify")?,
        image_bytes: get("image_bytes")?,
        raw_aes: get("raw_aes_gcm")?,
        raw_sha: get("raw_sha256")?,
        install: get("install_payload")?,
        reset_install: get("reset_install")?,
        boot_1mib: get("boot_verify_1mib")?,
        hpke_lookup: get("hpke_lookup")?,
        hpke_open: get("hpke_open")?,
    })
}

/// Flash bytes of a firmware image: vector table, code, read-only data, initialized data.
fn flash_bytes(elf: &Path) -> Result<(u64, u64, u64)> {
    let s = sections(elf)?;
    let size = |names: &[&str]| -> u64 {
        s.iter()
            .filter(|(n, _)| names.contains(&n.as_str()))
            .map(|(_, v)| v)
            .sum()
    };
    Ok((
        size(&[".vector_table", ".text", ".rodata", ".data"]),
        size(&[".data"]),
        size(&[".bss", ".uninit"]),
    ))
}

/// The example bootloader's footprint: flash (shipping build) and RAM (initialized and zeroed
/// data, and the peak stack of a `measure` build over a normal boot and two installs at reset).
#[derive(Clone, Copy)]
struct Footprint {
    flash: u64,
    data: u64,
    bss: u64,
    peak: u32,
}

/// The example bootloader's flash: sectors 0-3 but the device record's last KiB (63 KiB, as
/// f4/boot/memory.x says).
const FLASH_BUDGET: u64 = 63 * 1024;

impl Footprint {
    fn ram(&self) -> u64 {
        self.data + self.bss + u64::from(self.peak)
    }

    /// Whether flash and RAM are within the budgets: [`FLASH_BUDGET`] and 16 KiB.
    fn within_budgets(&self) -> [bool; 2] {
        [self.flash <= FLASH_BUDGET, self.ram() <= 16384]
    }
}

fn footprint(cli: &Path) -> Result<Footprint> {
    fs::create_dir_all(root().join("target/f4-test")).map_err(|e| e.to_string())?;
    step("bootloader footprint (shipping profile: opt-level s, fat LTO, compact SHA-2)");
    let boot = firmware("sbsfu-f4-boot", "f4-boot", &[], Sha2::Compact)?;
    let (flash, data, bss) = flash_bytes(&boot)?;

    step("bootloader peak stack: halted after a normal boot, and after an install at reset");
    let measure = firmware("sbsfu-f4-boot", "f4-boot", &["measure"], Sha2::Compact)?;
    let app = app_container(cli, "1.0.0", "1", "target/f4-test/app.sfu")?;
    let update = app_container(cli, "1.0.1", "2", "target/f4-test/app-1.0.1.sfu")?;
    let hpke_update = hpke::app_container(
        cli,
        "1.0.1",
        "2",
        "keys-example/device-x25519.pub.pem",
        "target/f4-test/app-1.0.1-hpke.sfu",
    )?;
    let mut peak = 0;
    for (name, scenario) in [
        ("normal boot", Scenario::Idle),
        ("install at reset", Scenario::Installing(&update)),
        ("install at reset, HPKE", Scenario::Installing(&hpke_update)),
    ] {
        let file = flash_file(&provision(&app, scenario)?, "flash-measure.bin")?;
        let out = qemu::run(&Run {
            elf: &measure,
            load: &[(&file, IMAGE_FROM)],
            icount: false,
            timeout: 120,
            dump_after: Some("halted"),
        })?;
        out.output
            .lines()
            .filter(|l| l.contains("sbsfu-boot: ") && !l.contains("measure"))
            .for_each(|l| println!("    {}", l.trim()));
        let ram = out.ram.ok_or("no RAM dump")?;
        let p = peak_stack(&measure, &ram)?;
        println!("    peak stack, {name}: {p} bytes");
        peak = peak.max(p);
    }
    Ok(Footprint {
        flash,
        data,
        bss,
        peak,
    })
}

/// `cargo xtask test`'s check of the bootloader's flash and RAM budgets: the footprint part of
/// `f4-bench`, without its instruction counts.
pub fn f4_footprint() -> Result {
    setup::mcu_target()?;
    setup::qemu_tools()?;
    let cli = sbsfu_cli()?;
    let f = footprint(&cli)?;
    let [flash_ok, ram_ok] = f.within_budgets();
    println!(
        "bootloader flash: {} bytes (<= {FLASH_BUDGET}: {}); ram: {} bytes (<= 16384: {})",
        f.flash,
        verdict(flash_ok),
        f.ram(),
        verdict(ram_ok)
    );
    if !(flash_ok && ram_ok) {
        return Err("the bootloader is over its flash or RAM budget (see above)".into());
    }
    Ok(())
}

/// `cargo xtask f4-bench`.
pub fn f4_bench() -> Result {
    setup::mcu_target()?;
    setup::qemu_tools()?;
    let cli = sbsfu_cli()?;
    let fp = footprint(&cli)?;
    let Footprint {
        flash,
        data,
        bss,
        peak,
    } = fp;

    step("instruction counts under QEMU -icount (TIM2 counts one per instruction)");
    let c = bench_counts(&cli)?;
    // The image SHA-256 is `fast-sha256`'s either way: sha2's unrolled backend changes only
    // Ed25519's SHA-512, hence only the size.
    step("the bootloader with sha2's unrolled backend (not shipped: too large)");
    let unrolled = firmware("sbsfu-f4-boot", "f4-boot", &[], Sha2::Unrolled)?;
    let unrolled_boot = flash_bytes(&unrolled)?.0;

    let per_kib = |n: u64| n as f64 * 1024.0 / c.image_bytes as f64;
    let raw = per_kib(c.raw_aes + c.raw_sha);
    let install = per_kib(c.install);
    println!();
    println!("bootloader flash: {flash} bytes");
    println!("bootloader ram: {} bytes", fp.ram());
    println!("ed25519 verify: {} instructions", c.ed25519);
    println!(
        "install path: {:.0} instructions per KiB (decrypt + authenticate + hash + program); raw AES-256-GCM + SHA-256: {:.0} per KiB; ratio {:.3}",
        install,
        raw,
        install / raw
    );
    println!("boot verification of 1 MiB: {} instructions", c.boot_1mib);
    println!(
        "hpke decapsulation: {} instructions (recipient lookup by key id {} + open {})",
        c.hpke_lookup + c.hpke_open,
        c.hpke_lookup,
        c.hpke_open
    );
    println!();
    println!("details:");
    println!(
        "  flash {flash} = code and constants {} + data {data}; ram = data {data} + bss {bss} + peak stack {peak}",
        flash - data
    );
    println!(
        "  AES-256-GCM {:.1} and SHA-256 {:.1} instructions per byte; a 16 KiB install at reset (check, install, verify): {} instructions",
        c.raw_aes as f64 / c.image_bytes as f64,
        c.raw_sha as f64 / c.image_bytes as f64,
        c.reset_install
    );
    let [flash_ok, ram_ok] = fp.within_budgets();
    let budgets = [
        flash_ok,
        ram_ok,
        install / raw <= 1.1,
        c.boot_1mib <= 45_000_000,
    ];
    println!(
        "  budgets: flash <= {FLASH_BUDGET} ({}, also enforced by memory.x), ram <= 16384 ({}), install path <= 1.1 x raw ({}), boot verification of 1 MiB <= 45000000 ({})",
        verdict(budgets[0]),
        verdict(budgets[1]),
        verdict(budgets[2]),
        verdict(budgets[3])
    );
    println!("  with sha2's unrolled backend: bootloader flash {unrolled_boot} bytes");
    if budgets.contains(&false) {
        return Err("a budget is not met (see above)".into());
    }
    Ok(())
}

fn verdict(ok: bool) -> &'static str {
    if ok { "met" } else { "NOT met" }
}
