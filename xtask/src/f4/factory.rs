//! The boot chain of `cargo xtask f4-test` on factory images: `sbsfu provision --batch` makes
//! each device's image from the real bootloader ELF and the application's container, and QEMU
//! runs it as a programmer would have written it (the whole flash: bootloader, device record,
//! installed application, its container, the boot state). Then a per-device update
//! (`sign --encrypt-to-fleet fleet.json --serial SN`) is staged and installed, and one for
//! another device of the same batch is refused before anything is erased.

use std::cell::RefCell;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use sbsfu_device::boot::{BootFlash, BootManager, STM32F405_LAYOUT as LAYOUT, Stager};
use sbsfu_device::sim::{Op, SimFlash};
use sbsfu_device::{Error, TrustedKey};
use sbsfu_f4::config::{CHUNK, boot_config};
use sbsfu_f4::device_keys::{Keys, device_keys};
use sbsfu_f4::keys::SIGNING_KEY;
use sbsfu_f4::layout::{FLASH_BASE, FLASH_SIZE, offset};

use super::{boot_run, read, sbsfu, write};
use crate::{Result, root, run, step};

/// Where the batch goes.
const DIR: &str = "target/f4-test/factory";
/// The batch: two devices.
pub(super) const SERIALS: [&str; 2] = ["SN-F4-0001", "SN-F4-0002"];

/// One provisioned device.
pub(super) struct Device {
    /// Its serial number.
    pub serial: &'static str,
    /// Its whole flash, as programmed (read back from its HEX by objcopy).
    pub image: Vec<u8>,
    /// The same, as a file QEMU loads at the flash's start (`-kernel` of a raw image).
    pub file: PathBuf,
}

/// `sbsfu provision --batch` of [`SERIALS`] with the bootloader ELF `boot` and the application
/// container `container` (encrypted to the development class key); each HEX is turned into the
/// raw 1 MiB flash by `arm-none-eabi-objcopy` (an Intel HEX reader independent of ours), erased
/// bytes 0xFF.
pub(super) fn provision_batch(cli: &Path, boot: &Path, container: &str) -> Result<Vec<Device>> {
    step(
        "sbsfu provision --batch: two devices' factory images from a CSV, with the example \
         bootloader's ELF (its record's KiB left free) and the application's container",
    );
    let dir = root().join(DIR);
    let _ = fs::remove_dir_all(&dir);
    let csv = "target/f4-test/devices.csv";
    let rows: String = SERIALS.iter().map(|s| format!("{s},qemu\n")).collect();
    write(&root().join(csv), format!("serial,line\n{rows}").as_bytes())?;
    let boot = boot.to_str().ok_or("non-UTF-8 path")?;
    sbsfu(
        cli,
        &format!(
            "provision --bootloader {boot} --container {container} \
             --decrypt-key keys-example/device.key --batch {csv} --out-dir {DIR}"
        ),
    )?;
    SERIALS
        .iter()
        .map(|&serial| {
            let file = dir.join(format!("{serial}.bin"));
            run(Command::new("arm-none-eabi-objcopy")
                .args(["-I", "ihex", "-O", "binary", "--gap-fill", "0xff"])
                .arg(format!("--pad-to={:#x}", FLASH_BASE + FLASH_SIZE))
                .arg(dir.join(format!("{serial}.hex")))
                .arg(&file))?;
            let image = read(&file)?;
            if image.len() != FLASH_SIZE as usize {
                return Err(format!(
                    "{}: {} bytes, not the 1 MiB flash from 0x08000000",
                    file.display(),
                    image.len()
                ));
            }
            Ok(Device {
                serial,
                image,
                file,
            })
        })
        .collect()
}

/// Whether a run booted `version` of the application on device `serial`: the bootloader found
/// the device's record and verified the image, and the application read its serial number
/// from the record.
pub(super) fn booted(out: &crate::qemu::Outcome, serial: &str, version: &str) -> bool {
    out.status == Some(0)
        && out.output.contains(&format!(
            "sbsfu-boot: device record {serial}: its own device key"
        ))
        && out
            .output
            .contains(&format!("sbsfu-boot: verified app {version} "))
        && out
            .output
            .contains(&format!("f4-app: device record: serial {serial}\n"))
        && out.output.contains("hello from the application")
}

/// The device's flash in the device crate's simulated NOR flash, with the keys the bootloader
/// takes from that flash's record.
fn on_host(image: &[u8]) -> Result<(SimFlash, Keys)> {
    let mut flash = SimFlash::stm32f405();
    flash.data_mut().copy_from_slice(image);
    let keys = device_keys(&mut flash, |_| {});
    if !matches!(keys, Keys::Own(_)) {
        return Err("the factory image's record does not give the device its own key".into());
    }
    Ok((flash, keys))
}

/// `image` with `update` staged for the next reset, as the application's stager does it
/// (the device crate's `Stager`, with the device's keys), on the host.
fn staged(image: &[u8], update: &[u8]) -> Result<Vec<u8>> {
    let (mut flash, keys) = on_host(image)?;
    let signers = [TrustedKey::from_bytes(&SIGNING_KEY).map_err(|e| e.to_string())?];
    let config = boot_config(&signers, keys.as_slice());
    let cell = RefCell::new(&mut flash);
    let mut regions = LAYOUT
        .regions(&BootFlash::stm32f405(&cell))
        .map_err(|e| e.to_string())?;
    let mut stager = Stager::<CHUNK>::new(&config, &mut regions).map_err(|e| e.to_string())?;
    stager.feed(update).map_err(|e| e.to_string())?;
    stager.finish().map_err(|e| e.to_string())?;
    let image = cell.borrow().data().to_vec();
    Ok(image)
}

/// Whether `from..to` (offsets) lies in one of the state log's banks.
fn in_state_log(from: u32, to: u32) -> bool {
    LAYOUT.state_log.iter().any(|a| {
        let start = offset(*a);
        from >= start && to <= start + a.len
    })
}

/// The boot manager (the bootloader's own code) on the host over `image` with the device's
/// keys: the first check that failed, the version it would boot, and the flash operations it
/// made outside the state log with every byte outside it that changed.
fn boot_on_host(image: &[u8]) -> Result<(Option<Error>, String, Vec<Op>, usize)> {
    let (mut flash, keys) = on_host(image)?;
    let signers = [TrustedKey::from_bytes(&SIGNING_KEY).map_err(|e| e.to_string())?];
    let config = boot_config(&signers, keys.as_slice());
    flash.clear_log();
    let (why, version) = {
        let cell = RefCell::new(&mut flash);
        let mut regions = LAYOUT
            .regions(&BootFlash::stm32f405(&cell))
            .map_err(|e| e.to_string())?;
        let mut manager =
            BootManager::<CHUNK>::new(&config, &mut regions, None).map_err(|e| e.to_string())?;
        let boot = manager.run().map_err(|e| e.to_string())?;
        (manager.first_error(), boot.header.version.to_string())
    };
    let outside: Vec<Op> = flash
        .log()
        .iter()
        .copied()
        .filter(|op| match *op {
            Op::Erase { from, to } => !in_state_log(from, to),
            Op::Write { offset, len } => !in_state_log(offset, offset + len),
            Op::OtpProgram { .. } => false,
        })
        .collect();
    let changed = (0..image.len())
        .filter(|&i| !in_state_log(i as u32, i as u32 + 1) && flash.data()[i] != image[i])
        .count();
    Ok((why, version, outside, changed))
}

/// A per-device update installs on the device it was encrypted to; one encrypted to the other
/// device of the batch is refused at its head, before anything is erased.
pub(super) fn per_device_update(cli: &Path, devices: &[Device]) -> Result {
    let [device, other] = devices else {
        return Err("two provisioned devices expected".into());
    };
    let elf = super::firmware("sbsfu-f4-app", "f4-app", &[], super::Sha2::Compact)?;
    let elf = elf.to_str().ok_or("non-UTF-8 path")?;
    let sign = |serial: &str, version: &str, counter: u32| -> Result<Vec<u8>> {
        let out = format!("{DIR}/{serial}-{version}.sfu");
        sbsfu(
            cli,
            &format!(
                "sign --key keys-example/signing.pem --allow-dev-key --version {version} \
                 --security-counter {counter} --target stm32f405 --chunk-size {CHUNK} \
                 --in {elf} --encrypt-to-fleet {DIR}/fleet.json --serial {serial} --out {out}"
            ),
        )?;
        read(&root().join(out))
    };

    step(&format!(
        "{}: an update encrypted to its own key (sign --encrypt-to-fleet) is staged, installed \
         with the key from its record, and boots",
        device.serial
    ));
    let update = sign(device.serial, "1.1.0", 2)?;
    let file = root()
        .join(DIR)
        .join(format!("{}-staged.bin", device.serial));
    write(&file, &staged(&device.image, &update)?)?;
    let out = boot_run(&file, &[])?;
    if !booted(&out, device.serial, "1.1.0") || !out.output.contains(", on trial)") {
        return Err(format!(
            "{}'s bootloader did not install and boot the update encrypted to its key",
            device.serial
        ));
    }

    step(&format!(
        "{}: an update encrypted to {} (same batch) is refused before any erase; the installed \
         application boots",
        device.serial, other.serial
    ));
    let foreign = sign(other.serial, "1.2.0", 3)?;
    let image = staged(&device.image, &foreign)?;
    // The bootloader's code on the host first, where every flash operation is seen.
    let (why, version, outside, changed) = boot_on_host(&image)?;
    if why != Some(Error::NotARecipient)
        || version != "1.0.0"
        || !outside.is_empty()
        || changed != 0
    {
        return Err(format!(
            "the boot manager with {}'s keys did not refuse {}'s update untouched: first error \
             {why:?}, booted {version}, {} flash operations outside the state log, {changed} \
             bytes changed",
            device.serial,
            other.serial,
            outside.len()
        ));
    }
    println!(
        "    on the host: refused ({}), nothing erased or programmed outside the state log, \
         {version} boots",
        Error::NotARecipient.as_str()
    );
    let file = root()
        .join(DIR)
        .join(format!("{}-foreign.bin", device.serial));
    write(&file, &image)?;
    let out = boot_run(&file, &[])?;
    if !booted(&out, device.serial, "1.0.0")
        || !out
            .output
            .contains("sbsfu-boot: noted: encrypted to other devices' keys")
    {
        return Err(format!(
            "{}'s bootloader did not refuse the update for {} and boot its application",
            device.serial, other.serial
        ));
    }
    Ok(())
}
