//! `sbsfu provision`: factory images read back by an independent Intel HEX reader
//! (`arm-none-eabi-objcopy`), the device's own record parser, and the device's boot manager;
//! batches, `fleet.json`, atomic outputs. The refusals are CLI golden cases (`cmd/provision-*`).

use std::fs;
use std::path::Path;
use std::process::Command;

use sbsfu_format::{DeviceRecord, check_record_prefix};

mod common;
use common::*;

const FLASH: usize = 0x0800_0000;
const RECORD: usize = 0x0800_FC00 - FLASH;
const ACTIVE: usize = 0x0802_0000 - FLASH;
const SLOT0: usize = 0x0806_0000 - FLASH;

/// A workspace with a "bootloader" holding the signing public key and a container for the
/// example layout; returns the application image.
fn factory() -> (tempfile::TempDir, Vec<u8>) {
    let dir = workspace();
    let d = dir.path();
    ok(
        d,
        &[
            "pubkey",
            "--key",
            "signing.pem",
            "--format",
            "raw",
            "--out",
            "pub.raw",
        ],
    );
    let mut boot = vec![0x11; 700];
    boot.extend(fs::read(d.join("pub.raw")).unwrap());
    boot.extend([0x22; 900]);
    fs::write(d.join("boot.bin"), &boot).unwrap();
    let mut app = 0x2000_1000u32.to_le_bytes().to_vec();
    app.extend(0x0802_0101u32.to_le_bytes());
    app.extend(pattern(30_000));
    fs::write(d.join("app.bin"), &app).unwrap();
    let mut args = sign_args(true, "app.bin", "app.sfu");
    args.extend(["--chunk-size", "1024"]);
    ok(d, &args);
    (dir, app)
}

/// `sbsfu provision` of the factory's bootloader and container; the options that follow say
/// which device(s) and where to.
const PROVISION: &str =
    "provision --bootloader boot.bin --container app.sfu --decrypt-key device.key";

fn record(flash: &[u8]) -> DeviceRecord<'_> {
    let len = check_record_prefix(&flash[RECORD..]).unwrap();
    DeviceRecord::parse(&flash[RECORD..RECORD + len]).unwrap()
}

/// `sbsfu sign` of app.bin for the device `serial` of factory/fleet.json, into `out`.
fn fleet_sign(serial: &str, out: &str) -> String {
    format!(
        "sign --key signing.pem --version 1.3.0 --security-counter 8 --target stm32f405 \
         --load-address 0x08020000 --in app.bin --encrypt-to-fleet factory/fleet.json \
         --serial {serial} --out {out}"
    )
}

/// The flash an Intel HEX image in `dir` describes, as an independent reader makes it:
/// `arm-none-eabi-objcopy`, gaps filled with `0xFF`.
fn objcopy_flash(dir: &Path, hex: &str) -> Vec<u8> {
    // Written elsewhere: the folder's own files are checked too.
    let elsewhere = tempfile::tempdir().unwrap();
    let bin = elsewhere.path().join("flash.bin");
    let objcopy = Command::new("arm-none-eabi-objcopy")
        .current_dir(dir)
        .args(["-I", "ihex", "-O", "binary", "--gap-fill", "0xff", hex])
        .arg(&bin)
        .output()
        .expect("arm-none-eabi-objcopy (binutils-arm-none-eabi; cargo xtask test installs it)");
    assert!(
        objcopy.status.success(),
        "{}",
        String::from_utf8_lossy(&objcopy.stderr)
    );
    fs::read(bin).unwrap()
}

fn mode(path: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    fs::metadata(path).unwrap().permissions().mode() & 0o777
}

#[test]
fn provision_hex_read_back_by_objcopy() {
    let (dir, app) = factory();
    let d = dir.path();
    let device = [
        "--serial",
        "SN-7",
        "--field",
        "hw=rev B",
        "--calibration",
        "cal.bin",
    ];
    let base = [&words(PROVISION)[..], &device[..]].concat();
    fs::write(d.join("cal.bin"), [1, 2, 3, 250]).unwrap();
    let json = ok(d, &[&base[..], &["--out", "dev.hex", "--json"]].concat());
    let report: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(report["devices"][0]["serial"], "SN-7");
    assert_eq!(report["version"], "1.2.3");
    assert_eq!(mode(&d.join("dev.hex")), 0o600);
    let flash = objcopy_flash(d, "dev.hex");
    // The bootloader, the record, the container in slot 0, the image installed.
    assert_eq!(&flash[..700], &[0x11; 700][..]);
    let rec = record(&flash);
    assert_eq!(rec.serial(), "SN-7");
    assert_eq!(rec.target(), "stm32f405");
    assert_eq!(rec.field("hw"), Some("rev B"));
    assert_eq!(rec.calibration(), &[1, 2, 3, 250]);
    assert_eq!(rec.key_id().to_string(), report["devices"][0]["key_id"]);
    let container = fs::read(d.join("app.sfu")).unwrap();
    assert_eq!(&flash[SLOT0..SLOT0 + container.len()], &container[..]);
    assert_eq!(&flash[ACTIVE..ACTIVE + app.len()], &app[..]);
    // Erased flash is left out of the HEX: far less than the 1 MiB flash.
    assert!(fs::metadata(d.join("dev.hex")).unwrap().len() < 300_000);
    // The raw binary is the whole flash, the same but for the device's own record.
    ok(d, &[&base[..], &["--out", "dev.bin"]].concat());
    let raw = fs::read(d.join("dev.bin")).unwrap();
    assert_eq!(raw.len(), 1 << 20);
    assert_eq!(mode(&d.join("dev.bin")), 0o600);
    assert_eq!(&raw[..RECORD], &flash[..RECORD]);
    assert_eq!(&raw[RECORD + 0x400..flash.len()], &flash[RECORD + 0x400..]);
    assert!(raw[flash.len()..].iter().all(|b| *b == 0xFF));
    assert_eq!(record(&raw).serial(), "SN-7");
    assert_ne!(
        record(&raw).key_id(),
        rec.key_id(),
        "every image gets a fresh key"
    );
}

#[test]
fn provision_batch_writes_every_image_and_the_fleet_or_nothing() {
    let (dir, _) = factory();
    let d = dir.path();
    fs::write(
        d.join("devices.csv"),
        "serial,hw\nA-1,rev B\nA-2,rev C\n# a comment\nA-3,\n",
    )
    .unwrap();
    let base = words(PROVISION);
    ok(
        d,
        &[
            &base[..],
            &["--batch", "devices.csv", "--out-dir", "factory"],
        ]
        .concat(),
    );
    let out = d.join("factory");
    let names: Vec<String> = files(&out)
        .iter()
        .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
        .collect();
    assert_eq!(names, ["A-1.hex", "A-2.hex", "A-3.hex", "fleet.json"]);
    for n in ["A-1.hex", "A-2.hex", "A-3.hex"] {
        assert_eq!(mode(&out.join(n)), 0o600, "{n}");
    }
    let fleet: serde_json::Value =
        serde_json::from_slice(&fs::read(out.join("fleet.json")).unwrap()).unwrap();
    let devices = fleet["devices"].as_array().unwrap();
    assert_eq!(devices.len(), 3);
    assert_eq!(devices[1]["serial"], "A-2");
    assert_eq!(devices[1]["target"], "stm32f405");
    assert_eq!(devices[1]["version"], "1.2.3");
    let ids: std::collections::HashSet<_> = devices.iter().map(|d| d["key_id"].clone()).collect();
    assert_eq!(ids.len(), 3, "a fresh key per device");
    assert!(
        devices
            .iter()
            .all(|d| d["key_type"] == "x25519" && d["public_key"].as_str().unwrap().len() == 64)
    );
    // No secret in the registry: A-1's private key (from its image) appears nowhere in it.
    let a1 = objcopy_flash(&out, "A-1.hex");
    let secret: String = record(&a1)
        .device_key()
        .as_bytes()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    assert!(
        !String::from_utf8(fs::read(out.join("fleet.json")).unwrap())
            .unwrap()
            .contains(&secret)
    );
    assert_eq!(devices[0]["key_id"], record(&a1).key_id().to_string());
    // A container for device A-2 alone, from the registry.
    ok(d, &words(&fleet_sign("A-2", "a2.sfu")));
    let inspected: serde_json::Value =
        serde_json::from_str(&ok(d, &["inspect", "a2.sfu", "--json"])).unwrap();
    assert_eq!(
        inspected["recipient_key_ids"],
        serde_json::json!([devices[1]["key_id"]])
    );
    let unknown = fails(d, &words(&fleet_sign("Z-9", "z9.sfu")), 1);
    assert!(unknown.contains("lists no device Z-9"));
    // A failed batch (the last row repeats a serial) leaves no file at all.
    fs::write(d.join("dup.csv"), "serial\nB-1\nB-2\nB-1\n").unwrap();
    fails(
        d,
        &[&base[..], &["--batch", "dup.csv", "--out-dir", "failed"]].concat(),
        1,
    );
    assert!(!d.join("failed").exists() || files(&d.join("failed")).is_empty());
    // Nor does one that fails on its last device (a serial too long for the record).
    let long = "L".repeat(40);
    fs::write(d.join("long.csv"), format!("serial\nC-1\n{long}\n")).unwrap();
    let failed = sbsfu(
        d,
        &[&base[..], &["--batch", "long.csv", "--out-dir", "failed"]].concat(),
    );
    assert_ne!(code(&failed), 0);
    assert!(files(&d.join("failed")).is_empty());
}

/// The bootloader may fill its region up to the record's first byte, not one byte more: what
/// lets the example bootloader (linked into 63 KiB) be provisioned, and refuses one that would
/// overwrite the record or be overwritten by it.
#[test]
fn provision_bootloader_may_end_at_the_record_not_in_it() {
    let (dir, _) = factory();
    let d = dir.path();
    let mut boot = fs::read(d.join("boot.bin")).unwrap();
    boot.resize(RECORD, 0x33);
    fs::write(d.join("boot-full.bin"), &boot).unwrap();
    boot.push(0x33);
    fs::write(d.join("boot-over.bin"), &boot).unwrap();
    let args = |boot: &'static str, out: &'static str| {
        [
            "provision",
            "--bootloader",
            boot,
            "--container",
            "app.sfu",
            "--decrypt-key",
            "device.key",
            "--serial",
            "SN-8",
            "--out",
            out,
        ]
    };
    ok(d, &args("boot-full.bin", "full.bin"));
    let flash = fs::read(d.join("full.bin")).unwrap();
    assert_eq!(&flash[..RECORD], &boot[..RECORD]);
    assert_eq!(record(&flash).serial(), "SN-8");
    let err = fails(d, &args("boot-over.bin", "over.bin"), 1);
    assert!(
        err.contains("spans 0x08000000..0x0800fc01: outside the bootloader region"),
        "{err}"
    );
    assert!(!d.join("over.bin").exists());
}
