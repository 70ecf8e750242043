//! `sign --in` against other tools: real-world firmware files (tests/inputs/README.md says where
//! each comes from) signed by the `sbsfu` binary, installed with `sbsfu decrypt`, and compared
//! byte for byte, with the load address, with what `arm-none-eabi-objcopy` and the Python readers
//! `bincopy` and `intelhex` (from PyPI, installed by this test into a virtualenv) make of the same
//! file. Then malformed variants, address windows, sparse spans in bounded memory, and keys as
//! OpenSSL writes them.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

mod common;
use common::*;

/// A file of tests/inputs (or tests/images), decompressed into `d` if it is gzipped.
fn fixture(d: &Path, name: &str) -> PathBuf {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests");
    let src = ["inputs", "images"]
        .iter()
        .map(|dir| root.join(dir).join(name))
        .find(|p| p.exists())
        .unwrap_or_else(|| panic!("no fixture {name}"));
    match name.strip_suffix(".gz") {
        Some(plain) => {
            let out = run_ok(Command::new("gzip").arg("-dc").arg(&src));
            let dst = d.join(plain);
            fs::write(&dst, out.stdout).unwrap();
            dst
        }
        None => src,
    }
}

/// What a device installs from `file`: the load address and the image, through `sbsfu sign`
/// (signed only, JSON) and `sbsfu decrypt`.
fn sbsfu_view(d: &Path, file: &Path, extra: &[&str]) -> (u64, Vec<u8>) {
    let mut args = vec![
        "sign",
        "--key",
        "signing.pem",
        "--version",
        "1.0.0",
        "--security-counter",
        "1",
        "--target",
        "t",
        "--in",
        file.to_str().unwrap(),
        "--out",
        "view.sfu",
        "--json",
    ];
    args.extend(extra);
    let json: serde_json::Value = serde_json::from_str(&ok(d, &args)).unwrap();
    ok(
        d,
        &words("decrypt --pubkey signing.pub.pem view.sfu --out view.bin"),
    );
    let image = fs::read(d.join("view.bin")).unwrap();
    assert_eq!(json["image_len"], image.len());
    (json["load_address"].as_u64().unwrap(), image)
}

/// objcopy's view: the lowest load address of a loaded section (`objdump -h`), and
/// `objcopy -O binary --gap-fill 0xff`. `bfd` names a text input format (`ihex`, `srec`).
fn objcopy_view(d: &Path, file: &Path, bfd: Option<&str>) -> (u64, Vec<u8>) {
    let with_input = |tool: &str| {
        let mut c = Command::new(tool);
        if let Some(b) = bfd {
            c.args(["-I", b]);
        }
        c
    };
    let headers = run_ok(with_input("arm-none-eabi-objdump").arg("-h").arg(file));
    let text = String::from_utf8(headers.stdout).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    let mut low = u64::MAX;
    for (i, line) in lines.iter().enumerate() {
        let fields: Vec<&str> = line.split_whitespace().collect();
        let is_section = fields.first().is_some_and(|f| f.parse::<u32>().is_ok());
        if !is_section || fields.len() < 7 {
            continue;
        }
        // Idx Name Size VMA LMA File-off Algn: from the right, since names may hold spaces.
        let n = fields.len();
        let size = u64::from_str_radix(fields[n - 5], 16).unwrap();
        let lma = u64::from_str_radix(fields[n - 3], 16).unwrap();
        let flags = lines.get(i + 1).copied().unwrap_or_default();
        if size > 0 && flags.contains("LOAD") && flags.contains("CONTENTS") {
            low = low.min(lma);
        }
    }
    let out = d.join("objcopy.bin");
    run_ok(
        with_input("arm-none-eabi-objcopy")
            .args(["-O", "binary", "--gap-fill", "0xff"])
            .arg(file)
            .arg(&out),
    );
    (low, fs::read(out).unwrap())
}

/// A virtualenv with the Python readers, made once per build directory.
fn python() -> &'static Path {
    static PYTHON: OnceLock<PathBuf> = OnceLock::new();
    PYTHON.get_or_init(|| {
        let venv = Path::new(env!("CARGO_TARGET_TMPDIR")).join("py-readers");
        let python = venv.join("bin/python");
        let ready = venv.join("ready");
        if !ready.exists() {
            run_ok(Command::new("python3").args(["-m", "venv"]).arg(&venv));
            run_ok(Command::new(&python).args([
                "-m",
                "pip",
                "install",
                "--quiet",
                "--disable-pip-version-check",
                "bincopy==20.1.1",
                "intelhex==2.3.0",
            ]));
            fs::write(&ready, "").unwrap();
        }
        python
    })
}

/// A Python reader's view (`bincopy` or `intelhex`), of the data inside `window` if given.
fn python_view(d: &Path, reader: &str, file: &Path, window: Option<(u64, u64)>) -> (u64, Vec<u8>) {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/inputs/read.py");
    let out = d.join(format!("{reader}.bin"));
    let mut c = Command::new(python());
    c.arg(script).arg(reader).arg(file).arg(&out);
    if let Some((a, b)) = window {
        c.args([a.to_string(), b.to_string()]);
    }
    let printed = run_ok(&mut c);
    let address = String::from_utf8(printed.stdout)
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    (address, fs::read(out).unwrap())
}

/// Asserts two views agree, without printing megabytes when they do not.
fn same(what: &str, ours: &(u64, Vec<u8>), theirs: &(u64, Vec<u8>)) {
    assert_eq!(ours.0, theirs.0, "{what}: load address");
    assert_eq!(ours.1.len(), theirs.1.len(), "{what}: image length");
    let first = ours.1.iter().zip(&theirs.1).position(|(a, b)| a != b);
    assert_eq!(first, None, "{what}: first differing byte");
}

#[test]
fn elf_files_from_gcc_iar_keil_and_mcuxpresso_match_objcopy_and_bincopy() {
    let dir = workspace();
    let d = dir.path();
    // (file, objcopy agrees, bincopy's own flat binary of the same build)
    let files = [
        ("gcc.elf.gz", true, Some("gcc.bin")),
        ("iar.out.gz", true, Some("iar.bin")),
        // Arm Compiler stores RW data in the load region of the segment; objcopy puts it at its
        // run address in RAM (0x2028_0000) instead: bincopy and its binary only.
        ("keil.out.gz", false, Some("keil.bin")),
        ("evkbimxrt1050_iled_blinky_sdram.axf.gz", true, None),
        ("headers-in-segment.elf", true, None),
        ("app.elf", true, None),
    ];
    for (name, objcopy_agrees, bin) in files {
        let elf = fixture(d, name);
        let ours = sbsfu_view(d, &elf, &[]);
        same(name, &ours, &python_view(d, "bincopy", &elf, None));
        if objcopy_agrees {
            same(name, &ours, &objcopy_view(d, &elf, None));
        }
        if let Some(bin) = bin {
            assert!(
                ours.1 == fs::read(fixture(d, bin)).unwrap(),
                "{name}: {bin}"
            );
        }
    }
    // The ELF header inside the first PT_LOAD stays out: the MCUXpresso image starts at its
    // vector table (0x8000_2000), not at the segment (0x8000_0000), and so does ours.
    let axf = fixture(d, "evkbimxrt1050_iled_blinky_sdram.axf.gz");
    assert_eq!(sbsfu_view(d, &axf, &[]).0, 0x8000_2000);
    let ours = fixture(d, "headers-in-segment.elf");
    let (address, image) = sbsfu_view(d, &ours, &[]);
    assert_eq!(address, 0x0800_0200);
    assert_eq!(
        &image[..4],
        &0x2000_4000u32.to_le_bytes(),
        "initial stack pointer first"
    );
    // The S-records MCUXpresso wrote for the same build hold the same image.
    let s19 = fixture(d, "evkbimxrt1050_iled_blinky_sdram.s19");
    same(
        "axf vs its s19",
        &sbsfu_view(d, &s19, &[]),
        &sbsfu_view(d, &axf, &[]),
    );
}

#[test]
fn hex_and_s_record_files_match_objcopy_bincopy_and_intelhex() {
    let dir = workspace();
    let d = dir.path();
    // objcopy reads no blank lines between records: those files are the same data as in.hex and
    // in.s19 with blank lines added.
    for name in ["in.hex", "in_blank_lines.hex", "empty_main.hex", "app.hex"] {
        let hex = fixture(d, name);
        let ours = sbsfu_view(d, &hex, &[]);
        let plain = if name == "in_blank_lines.hex" {
            fixture(d, "in.hex")
        } else {
            hex.clone()
        };
        same(name, &ours, &objcopy_view(d, &plain, Some("ihex")));
        same(name, &ours, &python_view(d, "bincopy", &hex, None));
        same(name, &ours, &python_view(d, "intelhex", &hex, None));
    }
    for name in [
        "in.s19",
        "in_blank_lines.s19",
        "empty_main.s19",
        "non_sorted_segments.s19",
        "evkbimxrt1050_iled_blinky_sdram.s19",
    ] {
        let srec = fixture(d, name);
        let ours = sbsfu_view(d, &srec, &[]);
        let plain = if name == "in_blank_lines.s19" {
            fixture(d, "in.s19")
        } else {
            srec.clone()
        };
        same(name, &ours, &objcopy_view(d, &plain, Some("srec")));
        same(name, &ours, &python_view(d, "bincopy", &srec, None));
    }
    // One build, two text formats: the same image.
    same(
        "empty_main",
        &sbsfu_view(d, &fixture(d, "empty_main.hex"), &[]),
        &sbsfu_view(d, &fixture(d, "empty_main.s19"), &[]),
    );
}

#[test]
fn a_stray_record_far_from_the_code_is_refused_or_windowed() {
    // MicroPython for the BBC micro:bit: 230 KiB of code from 0, and a UICR record at
    // 0x1000_10C0, 256 MiB up.
    let dir = workspace();
    let d = dir.path();
    let hex = fixture(d, "microbit-micropython.hex.gz");
    let mut args = sign_args(false, hex.to_str().unwrap(), "x.sfu");
    args.retain(|a| *a != "--load-address" && *a != "0x08020000");
    let err = fails(d, &args, 1);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(
        err.contains("data at 0x100010c0 lies 255.") && err.contains("--address-range 0x0.."),
        "{err}"
    );
    assert!(!d.join("x.sfu").exists());
    for window in [(0, 0x1000_0000), (0x1000_0000, 0x1001_0000)] {
        let range = format!("{:#x}..{:#x}", window.0, window.1);
        let mut args = sign_args(false, hex.to_str().unwrap(), "w.sfu");
        args.retain(|a| *a != "--load-address" && *a != "0x08020000");
        args.extend(["--address-range", &range]);
        let out = sbsfu(d, &args);
        assert!(out.status.success());
        let note = String::from_utf8_lossy(&out.stderr);
        assert!(note.starts_with("sbsfu: note: "), "{note}");
        assert!(note.contains("outside --address-range"), "{note}");
        let ours = sbsfu_view(d, &hex, &["--address-range", &range]);
        same(
            &range,
            &ours,
            &python_view(d, "bincopy", &hex, Some(window)),
        );
        same(
            &range,
            &ours,
            &python_view(d, "intelhex", &hex, Some(window)),
        );
    }
}

/// An Intel HEX record with its checksum.
fn record(kind: u8, address: u16, data: &[u8]) -> String {
    let mut bytes = vec![data.len() as u8];
    bytes.extend(address.to_be_bytes());
    bytes.push(kind);
    bytes.extend(data);
    let sum = bytes.iter().fold(0u8, |s, b| s.wrapping_add(*b));
    let hex: String = bytes.iter().map(|b| format!("{b:02X}")).collect();
    format!(":{hex}{:02X}\n", sum.wrapping_neg())
}

#[test]
fn a_sparse_hex_signs_in_memory_bounded_by_its_data() {
    // 100 bytes at 0x0800_0000 and 16 at 0x1800_0000: a 256 MiB image from 116 bytes of data,
    // signed and verified under a 48 MiB address-space limit.
    let dir = workspace();
    let d = dir.path();
    let mut hex = record(4, 0, &[0x08, 0x00]);
    for i in 0..5u16 {
        hex += &record(0, i * 20, &[i as u8; 20]);
    }
    hex += &record(4, 0, &[0x18, 0x00]);
    hex += &record(0, 0, &[0xAB; 16]);
    hex += &record(1, 0, &[]);
    fs::write(d.join("sparse.hex"), hex).unwrap();
    let bin = env!("CARGO_BIN_EXE_sbsfu");
    let script = format!(
        "ulimit -v 49152 && {bin} sign --key signing.pem --version 1.0.0 --security-counter 1 \
         --target t --in sparse.hex --max-span 1G --out sparse.sfu --json && \
         {bin} verify --pubkey signing.pub.pem sparse.sfu >/dev/null"
    );
    let out = run_ok(Command::new("sh").current_dir(d).args(["-c", &script]));
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(json["load_address"], 0x0800_0000);
    assert_eq!(json["image_len"], 0x1000_0010);
    // Without --max-span, the stray record is named.
    let err = fails(
        d,
        &words(
            "sign --key signing.pem --version 1.0.0 --security-counter 1 --target t --in sparse.hex --out no.sfu",
        ),
        1,
    );
    assert!(err.contains("line 8: data at 0x18000000 lies"));
}

#[test]
fn malformed_inputs_fail_in_one_line_and_leave_no_file() {
    let dir = workspace();
    let d = dir.path();
    let read = |name: &str| fs::read(fixture(d, name)).unwrap();
    let text = |name: &str| String::from_utf8(read(name)).unwrap();
    let hex = text("app.hex");
    let srec = text("in.s19");
    let elf = read("headers-in-segment.elf");
    let lines = |t: &str| t.lines().map(|l| format!("{l}\n")).collect::<Vec<String>>();
    let (h, s) = (lines(&hex), lines(&srec));
    let mut shoff_past = elf.clone();
    shoff_past[32..36].copy_from_slice(&0x00FF_0000u32.to_le_bytes());
    let mut phoff_past = elf.clone();
    phoff_past[28..32].copy_from_slice(&0x00FF_0000u32.to_le_bytes());
    let cases: Vec<(&str, Vec<u8>, &str)> = vec![
        (
            "bad-checksum.hex",
            hex.replacen("0040002009", "0040002008", 1).into(),
            "invalid checksum",
        ),
        (
            "no-eof.hex",
            h[..h.len() - 1].concat().into(),
            "no end-of-file record",
        ),
        (
            "truncated.hex",
            hex.as_bytes()[..hex.len() / 2].to_vec(),
            "line ",
        ),
        (
            "overlap.hex",
            [h[..3].concat(), h[1..].concat()].concat().into(),
            "overlaps",
        ),
        (
            "after-eof.hex",
            [hex.clone(), h[1].clone()].concat().into(),
            "data after the end-of-file",
        ),
        (
            "at-2-32.hex",
            [
                record(4, 0, &[0xFF, 0xFF]),
                record(0, 0xFFF0, &[1; 16]),
                record(1, 0, &[]),
            ]
            .concat()
            .into(),
            "data ends at 0x100000000",
        ),
        ("bad_crc.s19", read("bad_crc.s19"), "invalid checksum"),
        (
            "no-end.s19",
            s[..s.len() - 1].concat().into(),
            "no termination record",
        ),
        (
            "truncated.s19",
            srec.as_bytes()[..srec.len() / 2].to_vec(),
            "line ",
        ),
        (
            "overlap.s19",
            // (without its S5 count, which would catch the repeated record first)
            [s[..2].concat(), s[1..].concat()]
                .concat()
                .replace("S5030003F9\n", "")
                .into(),
            "overlaps",
        ),
        ("truncated.elf", elf[..elf.len() * 3 / 4].to_vec(), "ELF: "),
        ("shoff-past.elf", shoff_past, "ELF: "),
        ("phoff-past.elf", phoff_past, "ELF: "),
        // An x86-64 (or any hosted) Linux program.
        ("hosted.elf", fs::read("/bin/true").unwrap(), "PT_INTERP"),
        (
            "notes.txt",
            b"\n\nbuild 42: ok\n".to_vec(),
            "looks like text",
        ),
        ("empty.bin", Vec::new(), "is empty"),
    ];
    let before = files(d);
    for (name, bytes, want) in cases {
        let path = d.join(name);
        fs::write(&path, &bytes).unwrap();
        // Without --load-address: a raw binary fails on its content before it needs one.
        let mut args = sign_args(false, name, "bad.sfu");
        args.retain(|a| *a != "--load-address" && *a != "0x08020000");
        let err = fails(d, &args, 1);
        assert_eq!(err.lines().count(), 1, "{name}: {err}");
        assert!(
            err.starts_with(&format!("sbsfu: error: {name}: ")),
            "{name}: {err}"
        );
        assert!(err.contains(want), "{name}: {err}");
        fs::remove_file(path).unwrap();
        assert_eq!(files(d), before, "{name}: no file left behind");
    }
}

#[test]
fn a_failure_after_the_output_was_written_leaves_no_file() {
    // The container is sealed into a temporary file; the rename onto a directory fails, and
    // nothing is left. With --pubkey, the .tbs already renamed into place is removed again.
    let dir = app_workspace(100_000);
    let d = dir.path();
    fs::create_dir(d.join("taken")).unwrap();
    let before = files(d);
    let err = fails(d, &sign_args(true, "app.bin", "taken"), 1);
    assert_eq!(err.lines().count(), 1);
    assert_eq!(files(d), before);
    assert_eq!(fs::read_dir(d.join("taken")).unwrap().count(), 0);
    fails(
        d,
        &words(
            "sign --pubkey signing.pub.pem --version 1.0.0 --security-counter 1 --target t --load-address 0 --in app.bin --tbs-out app.tbs --unsigned-out taken",
        ),
        1,
    );
    assert_eq!(files(d), before);
}

#[test]
fn keys_as_openssl_writes_them() {
    // PBES2 with the HMAC-SHA1 PRF (OpenSSL 1.1's default), any base64 line width, one line;
    // unsupported schemes named, never called malformed.
    assert!(openssl_available(), "openssl is needed for this test");
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    fs::write(d.join("pass"), "correct horse battery\n").unwrap();
    let openssl = |args: &[&str]| run_ok(Command::new("openssl").current_dir(d).args(args));
    openssl(&["genpkey", "-algorithm", "ed25519", "-out", "plain.pem"]);
    let public = openssl(&["pkey", "-in", "plain.pem", "-pubout"]).stdout;
    let pkcs8 = |out: &str, scheme: &[&str]| {
        let mut args = vec![
            "pkcs8",
            "-topk8",
            "-in",
            "plain.pem",
            "-passout",
            "file:pass",
            "-out",
            out,
        ];
        args.extend(scheme);
        Command::new("openssl")
            .current_dir(d)
            .args(&args)
            .output()
            .unwrap()
    };
    assert!(
        pkcs8(
            "sha1.pem",
            &["-v2", "aes-256-cbc", "-v2prf", "hmacWithSHA1"]
        )
        .status
        .success()
    );
    let pem = fs::read_to_string(d.join("plain.pem")).unwrap();
    let b64: String = pem.lines().filter(|l| !l.starts_with("-----")).collect();
    let rewrap = |width: usize| {
        let body: Vec<String> = b64
            .as_bytes()
            .chunks(width)
            .map(|c| String::from_utf8(c.to_vec()).unwrap())
            .collect();
        format!(
            "-----BEGIN PRIVATE KEY-----\n{}\n-----END PRIVATE KEY-----\n",
            body.join("\n")
        )
    };
    fs::write(d.join("one-line.pem"), rewrap(1000)).unwrap();
    fs::write(d.join("width-76.pem"), rewrap(76)).unwrap();
    fs::write(d.join("width-16.pem"), rewrap(16)).unwrap();
    for key in ["sha1.pem", "one-line.pem", "width-76.pem", "width-16.pem"] {
        let out = sbsfu(d, &["--passphrase-file", "pass", "pubkey", "--key", key]);
        assert!(
            out.status.success(),
            "{key}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert_eq!(out.stdout, public, "{key}");
    }
    // 3DES in PBES2, and PKCS#12's 3DES scheme; PKCS#5 v1 where OpenSSL still writes it.
    assert!(pkcs8("des3.pem", &["-v2", "des3"]).status.success());
    assert!(pkcs8("p12.pem", &["-v1", "PBE-SHA1-3DES"]).status.success());
    let mut refused = vec![("des3.pem", "3DES"), ("p12.pem", "PKCS#12")];
    let v1 = pkcs8(
        "v1.pem",
        &words("-v1 PBE-MD5-DES -provider legacy -provider default"),
    );
    if v1.status.success() {
        refused.push(("v1.pem", "PKCS#5 v1 pbeWithMD5AndDES-CBC"));
    }
    for (key, what) in refused {
        let err = fails(d, &["--passphrase-file", "pass", "pubkey", "--key", key], 4);
        assert_eq!(err.lines().count(), 1);
        assert!(err.contains(&format!("is encrypted with {what}")), "{err}");
        assert!(
            err.contains("openssl pkcs8 -topk8 -v2 aes-256-cbc"),
            "{err}"
        );
        assert!(!err.contains("malformed"), "{err}");
    }
}

#[test]
fn export_key_prints_the_device_key_and_writes_it_privately() {
    let dir = workspace();
    let d = dir.path();
    let pem = fs::read_to_string(d.join("device.key")).unwrap();
    let b64: String = pem.lines().filter(|l| !l.starts_with("-----")).collect();
    let raw = sbsfu(d, &["export-key", "--key", "device.key", "--format", "raw"]);
    assert!(raw.status.success());
    assert_eq!(raw.stdout.len(), 32);
    let decoded = run_ok(
        Command::new("sh")
            .current_dir(d)
            .args(["-c", &format!("echo {b64} | base64 -d")]),
    )
    .stdout;
    assert_eq!(raw.stdout, decoded);
    let rust = ok(
        d,
        &["export-key", "--key", "device.key", "--format", "rust"],
    );
    assert!(
        rust.contains("pub const SBSFU_DEVICE_KEY: [u8; 32] = ["),
        "{rust}"
    );
    let listed: Vec<u8> = rust
        .split("0x")
        .skip(1)
        .map(|h| u8::from_str_radix(&h[..2], 16).unwrap())
        .collect();
    assert_eq!(listed, raw.stdout);
    let c = ok(d, &["export-key", "--key", "device.key", "--format", "c"]);
    assert!(
        c.contains("static const unsigned char sbsfu_device_key[32] = {"),
        "{c}"
    );
    ok(
        d,
        &words("export-key --key device.key --format c --out key.h"),
    );
    assert_eq!(fs::read_to_string(d.join("key.h")).unwrap(), c);
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = fs::metadata(d.join("key.h")).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
    }
    let help = ok(d, &["export-key", "--help"]);
    assert!(help.contains("SECRET"), "{help}");
    // A signing key is not a device key.
    fails(
        d,
        &["export-key", "--key", "signing.pem", "--format", "raw"],
        4,
    );
}
