//! The HPKE cases of `cargo xtask f4-test` and `f4-bench`: containers encrypted to the device's
//! X25519 public key (`sign --encrypt-to`), decapsulated on the emulated STM32F405.

use std::path::Path;

use super::{IMAGE_FROM, Scenario, Sha2, boot_run, firmware, flash_file, provision, read, sbsfu};
use crate::{Result, root, step};

/// The development device's X25519 public key (keys-example/), what a build machine holds.
const DEVICE_PUB: &str = "keys-example/device-x25519.pub.pem";

/// Another device's X25519 key pair, made in `dir`: its public key's path.
fn other_device(cli: &Path, dir: &str) -> Result<String> {
    sbsfu(
        cli,
        &format!("keygen --type x25519 --out {dir}/other-x25519.pem --force"),
    )?;
    sbsfu(
        cli,
        &format!("pubkey --key {dir}/other-x25519.pem --out {dir}/other-x25519.pub.pem"),
    )?;
    Ok(format!("{dir}/other-x25519.pub.pem"))
}

/// The on-target installer's HPKE cases in `dir` (beside `test_containers`' others): encrypted to
/// this device, and to another device only.
pub(super) fn test_containers(cli: &Path, dir: &str, address: &str, chunk: usize) -> Result {
    let other = other_device(cli, dir)?;
    for (out, to) in [
        ("valid-hpke.sfu", DEVICE_PUB),
        ("other-device-hpke.sfu", other.as_str()),
    ] {
        sbsfu(
            cli,
            &format!(
                "sign --key keys-example/signing.pem --allow-dev-key --encrypt-to {to} \
                 --version 1.0.0 --load-address {address} --chunk-size {chunk} \
                 --target stm32f405 --security-counter 5 --in {dir}/image.bin --out {dir}/{out}"
            ),
        )?;
    }
    Ok(())
}

/// The example application, signed and encrypted to `to` (an X25519 public key PEM).
pub(super) fn app_container(
    cli: &Path,
    version: &str,
    counter: &str,
    to: &str,
    out: &str,
) -> Result<Vec<u8>> {
    let elf = firmware("sbsfu-f4-app", "f4-app", &[], Sha2::Compact)?;
    let elf = elf.to_str().ok_or("non-UTF-8 path")?;
    sbsfu(
        cli,
        &format!(
            "sign --key keys-example/signing.pem --encrypt-to {to} --version {version} \
             --security-counter {counter} --target stm32f405 --chunk-size {} --in {elf} \
             --out {out} --allow-dev-key",
            sbsfu_f4::config::CHUNK
        ),
    )?;
    read(&root().join(out))
}

/// The bootloader installs an update encrypted to its own X25519 key (decapsulating on the
/// target) and boots it; an update encrypted to another device is refused before anything is
/// erased, and the installed application still boots.
pub(super) fn boot_chain(cli: &Path, app: &[u8], boot: &Path) -> Result {
    step(
        "example bootloader: installs an update encrypted to its X25519 key (HPKE) at reset and boots it",
    );
    let update = app_container(cli, "1.1.0", "2", DEVICE_PUB, "target/f4-test/app-hpke.sfu")?;
    // A device never provisioned (its record's region erased): the compiled-in keys.
    boot_expect(
        boot,
        provision(app, Scenario::Installing(&update))?,
        "flash-hpke.bin",
        &[
            "sbsfu-boot: no device record: the compiled-in development keys",
            "sbsfu-boot: verified app 1.1.0",
        ],
        "install and boot the HPKE-encrypted update",
    )?;

    step("example bootloader: an update encrypted to another device's key is refused at its head");
    let other = other_device(cli, "target/f4-test")?;
    let foreign = app_container(cli, "1.2.0", "3", &other, "target/f4-test/app-foreign.sfu")?;
    // The staged update is checked in full before the active slot is erased: refused at its
    // head, so the application in place verifies and runs as before.
    boot_expect(
        boot,
        provision(app, Scenario::Staged(&foreign))?,
        "flash-foreign.bin",
        &[
            "sbsfu-boot: noted: encrypted to other devices' keys",
            "sbsfu-boot: verified app 1.0.0",
        ],
        "refuse the update for another device and keep the installed application",
    )
}

/// Boots `boot` on the flash `image` (written to `file`); fails, saying that the bootloader did
/// not `what`, unless the boot ended well (exit status 0) with the application started, after
/// the bootloader printed each of `lines`.
fn boot_expect(boot: &Path, image: Vec<u8>, file: &str, lines: &[&str], what: &str) -> Result {
    let file = flash_file(&image, file)?;
    let out = boot_run(boot, &[(&file, IMAGE_FROM)])?;
    let booted = out.status == Some(0)
        && lines
            .iter()
            .chain(&["hello from the application"])
            .all(|l| out.output.contains(l));
    if booted {
        Ok(())
    } else {
        Err(format!("the bootloader did not {what}:\n{}", out.output))
    }
}

/// The head of an HPKE container to the development device key, for the decapsulation count
/// of `f4-bench` (`bench: hpke_lookup` and `bench: hpke_open`).
pub(super) fn bench_head(cli: &Path) -> Result {
    sbsfu(
        cli,
        &format!(
            "sign --key keys-example/signing.pem --encrypt-to {DEVICE_PUB} --allow-dev-key \
             --version 1.0.0 --security-counter 1 --target stm32f405 --load-address 0x08020000 \
             --in target/f4-bench/image.bin --out target/f4-bench/hpke.sfu"
        ),
    )?;
    let sfu = read(&root().join("target/f4-bench/hpke.sfu"))?;
    let head = 12 + usize::from(u16::from_be_bytes([sfu[10], sfu[11]])) + 64;
    super::write(&root().join("target/f4-bench/hpke.head"), &sfu[..head])
}
