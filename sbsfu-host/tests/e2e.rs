//! End-to-end tests of the `sbsfu` binary, as a release engineer uses it: fresh keys, real files,
//! exit codes, OpenSSL interoperability, atomic outputs, flat memory, no panic on any input.

use std::fs;

use std::process::Command;

mod common;
use common::*;

#[test]
fn keys_are_private_and_openssl_reads_them() {
    let dir = workspace();
    let d = dir.path();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        for f in ["signing.pem", "device.key"] {
            let mode = fs::metadata(d.join(f)).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode, 0o600, "{f}");
        }
    }
    assert!(
        openssl_available(),
        "openssl is needed for the interoperability tests"
    );
    let pubout = openssl(d, "pkey -in signing.pem -pubout");
    assert_eq!(pubout.stdout, fs::read(d.join("signing.pub.pem")).unwrap());
    // And we read what OpenSSL generates.
    openssl(d, "genpkey -algorithm ed25519 -out ossl.pem");
    ok(d, &["pubkey", "--key", "ossl.pem", "--out", "ossl.pub.pem"]);
}

#[test]
fn keygen_never_overwrites_without_force() {
    let dir = workspace();
    let d = dir.path();
    let before = fs::read(d.join("signing.pem")).unwrap();
    fails(
        d,
        &["keygen", "--type", "ed25519", "--out", "signing.pem"],
        1,
    );
    assert_eq!(fs::read(d.join("signing.pem")).unwrap(), before);
    ok(d, &words("keygen --type ed25519 --out signing.pem --force"));
    assert_ne!(fs::read(d.join("signing.pem")).unwrap(), before);
}

#[test]
fn sign_verify_decrypt_round_trips() {
    let dir = workspace();
    let d = dir.path();
    for len in [1usize, 4095, 4096, 4097, 3 * 1024 * 1024 + 5] {
        let img = pattern(len);
        fs::write(d.join("app.bin"), &img).unwrap();
        for encrypted in [true, false] {
            ok(d, &sign_args(encrypted, "app.bin", "app.sfu"));
            let mut verify = vec!["verify", "--pubkey", "signing.pub.pem", "app.sfu"];
            if encrypted {
                verify.extend(["--decrypt-key", "device.key"]);
            }
            let out = ok(d, &verify);
            assert!(out.starts_with("OK: app.sfu would install"), "{out}");
            let mut decrypt = words("decrypt --pubkey signing.pub.pem app.sfu --out out.bin");
            if encrypted {
                decrypt.extend(["--decrypt-key", "device.key"]);
            }
            ok(d, &decrypt);
            assert_eq!(fs::read(d.join("out.bin")).unwrap(), img, "len {len}");
            fs::remove_file(d.join("out.bin")).unwrap();
        }
    }
}

#[test]
fn sign_refuses_an_empty_input() {
    // A 0-byte image would install and leave the old image's vector table in place.
    let dir = workspace();
    let d = dir.path();
    fs::write(d.join("empty.bin"), b"").unwrap();
    let before = files(d);
    for encrypted in [false, true] {
        assert_eq!(
            fails(d, &sign_args(encrypted, "empty.bin", "empty.sfu"), 1),
            "sbsfu: error: empty.bin: is empty: there is no image to sign\n"
        );
        assert_eq!(files(d), before);
    }
}

#[test]
fn decrypt_writes_the_image_privately() {
    // The plaintext of an encrypted container is as private as the keys: mode 0600, also when
    // it replaces a file that was readable by others.
    let dir = signed_app(5000, true);
    let d = dir.path();
    fs::write(d.join("out.bin"), b"old").unwrap();
    for _ in 0..2 {
        ok(
            d,
            &words(
                "decrypt --pubkey signing.pub.pem --decrypt-key device.key app.sfu --out out.bin",
            ),
        );
        assert_eq!(fs::read(d.join("out.bin")).unwrap(), pattern(5000));
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = fs::metadata(d.join("out.bin"))
                .unwrap()
                .permissions()
                .mode()
                & 0o777;
            assert_eq!(mode, 0o600);
        }
        fs::remove_file(d.join("out.bin")).unwrap();
    }
}

#[test]
fn every_encrypted_container_has_fresh_keys_and_nonces() {
    let dir = app_workspace(10_000);
    let d = dir.path();
    ok(d, &sign_args(true, "app.bin", "a.sfu"));
    ok(d, &sign_args(true, "app.bin", "b.sfu"));
    let json = |f: &str| -> serde_json::Value {
        serde_json::from_str(&ok(d, &["inspect", "--json", f])).unwrap()
    };
    let (a, b) = (
        fs::read(d.join("a.sfu")).unwrap(),
        fs::read(d.join("b.sfu")).unwrap(),
    );
    assert_eq!(a.len(), b.len());
    assert_ne!(a, b);
    // Same image, same digest; but no 16-byte window of ciphertext in common.
    assert_eq!(json("a.sfu")["image_sha256"], json("b.sfu")["image_sha256"]);
    let head = 12 + json("a.sfu")["header_len"].as_u64().unwrap() as usize + 64;
    let windows: std::collections::HashSet<&[u8]> = a[head..].chunks(16).collect();
    assert!(b[head..].chunks(16).all(|w| !windows.contains(w)));
}

#[test]
fn signatures_verify_with_openssl() {
    // The container's signature is plain Ed25519 over context || prefix || header.
    let dir = signed_app(1000, false);
    let d = dir.path();
    let c = fs::read(d.join("app.sfu")).unwrap();
    let header_len = u16::from_be_bytes([c[10], c[11]]) as usize;
    let mut tbs = b"sbsfu/v1/container-header\0".to_vec();
    tbs.extend_from_slice(&c[..12 + header_len]);
    fs::write(d.join("tbs"), &tbs).unwrap();
    fs::write(d.join("sig"), &c[12 + header_len..12 + header_len + 64]).unwrap();
    openssl(
        d,
        "pkeyutl -verify -pubin -inkey signing.pub.pem -rawin -in tbs -sigfile sig",
    );
}

#[test]
fn failed_commands_leave_no_file() {
    let dir = signed_app(50_000, true);
    let d = dir.path();
    let before = files(d);

    // A bad argument discovered after parsing.
    let mut bad = sign_args(true, "app.bin", "new.sfu");
    bad[8] = "Not-A-Target";
    fails(d, &bad, 2);
    // A missing input.
    fails(d, &sign_args(true, "missing.bin", "new.sfu"), 1);
    // A container that fails half-way through decryption.
    let mut c = fs::read(d.join("app.sfu")).unwrap();
    let n = c.len();
    c[n - 100] ^= 1;
    fs::write(d.join("tampered.sfu"), &c).unwrap();
    let before_tampered = files(d);
    let err = fails(
        d,
        &words(
            "decrypt --pubkey signing.pub.pem --decrypt-key device.key tampered.sfu --out out.bin",
        ),
        3,
    );
    assert_eq!(err.lines().count(), 1);
    assert_eq!(files(d), before_tampered);
    // Replacing an existing output with a failed decrypt keeps the old file.
    fs::write(d.join("out.bin"), b"old").unwrap();
    sbsfu(
        d,
        &words(
            "decrypt --pubkey signing.pub.pem --decrypt-key device.key tampered.sfu --out out.bin",
        ),
    );
    assert_eq!(fs::read(d.join("out.bin")).unwrap(), b"old");
    fs::remove_file(d.join("out.bin")).unwrap();
    fs::remove_file(d.join("tampered.sfu")).unwrap();
    assert_eq!(files(d), before, "no new or temporary file left behind");
}

#[test]
fn random_mutants_never_panic_and_fail_in_one_line() {
    let dir = signed_app(3000, true);
    let d = dir.path();
    let good = fs::read(d.join("app.sfu")).unwrap();
    let mut x = 0x2545F4914F6CDD1Du64;
    let mut next = move || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    for round in 0..150 {
        let mut m = good.clone();
        match round % 5 {
            0 => {
                let i = next() as usize % m.len();
                m[i] ^= 1 + (next() % 255) as u8;
            }
            1 => m.truncate(next() as usize % m.len()),
            2 => m.extend((0..next() % 40).map(|_| next() as u8)),
            3 => {
                let i = next() as usize % m.len();
                let n = (next() as usize % 64).min(m.len() - i);
                m.drain(i..i + n);
            }
            _ => m = (0..next() % 400).map(|_| next() as u8).collect(),
        }
        fs::write(d.join("m.sfu"), &m).unwrap();
        for args in [
            words("verify --pubkey signing.pub.pem --decrypt-key device.key m.sfu"),
            vec!["inspect", "m.sfu"],
        ] {
            let out = sbsfu(d, &args);
            let stderr = String::from_utf8_lossy(&out.stderr);
            assert!(!stderr.contains("panicked"), "round {round}: {stderr}");
            let c = code(&out);
            if m == good {
                assert_eq!(c, 0);
            } else if args[0] == "verify" {
                assert_eq!(
                    c, 3,
                    "round {round}: mutant accepted or wrong code: {stderr}"
                );
                assert_eq!(stderr.lines().count(), 1, "{stderr}");
                assert!(
                    stderr.starts_with("sbsfu: error: m.sfu: rejected: "),
                    "{stderr}"
                );
            } else {
                assert!(c == 0 || c == 3, "round {round}: {c} {stderr}");
            }
        }
    }
}

#[test]
fn memory_stays_flat_for_large_images() {
    // A 256 MiB image under a 48 MiB address-space limit: sign and verify must stream.
    let dir = workspace();
    let d = dir.path();
    let f = fs::File::create(d.join("big.bin")).unwrap();
    f.set_len(256 << 20).unwrap();
    let bin = env!("CARGO_BIN_EXE_sbsfu");
    let script = format!(
        "ulimit -v 49152 && {bin} sign --key signing.pem --encrypt-key device.key --version 1.0.0 \
         --security-counter 1 --target big --load-address 0 --in big.bin --out big.sfu >/dev/null && \
         {bin} verify --pubkey signing.pub.pem --decrypt-key device.key big.sfu >/dev/null"
    );
    run_ok(Command::new("sh").current_dir(d).args(["-c", &script]));
}

#[test]
fn json_output_has_the_documented_fields() {
    let dir = app_workspace(5000);
    let d = dir.path();
    let mut args = sign_args(true, "app.bin", "app.sfu");
    args.push("--json");
    let sign: serde_json::Value = serde_json::from_str(&ok(d, &args)).unwrap();
    let verify: serde_json::Value = serde_json::from_str(&ok(
        d,
        &words("verify --json --pubkey signing.pub.pem --decrypt-key device.key app.sfu"),
    ))
    .unwrap();
    for field in [
        "format_version",
        "header_len",
        "signer_key_id",
        "target",
        "version",
        "security_counter",
        "region",
        "load_address",
        "image_len",
        "image_sha256",
        "chunk_size",
        "chunk_count",
        "protection",
        "device_key_id",
        "container_len",
        "file",
    ] {
        assert!(sign.get(field).is_some(), "sign lacks {field}");
        assert_eq!(sign[field].is_null(), verify[field].is_null(), "{field}");
    }
    assert_eq!(verify["verified"], true);
    assert_eq!(verify["payload_checked"], true);
    assert_eq!(sign["load_address"], 0x0802_0000);
    assert_eq!(sign["protection"], "aes-256-gcm");
    assert_eq!(
        sign["container_len"].as_u64().unwrap(),
        fs::metadata(d.join("app.sfu")).unwrap().len()
    );
}

/// An X25519 device key pair: sbsfu's, as OpenSSL reads it (plain and passphrase-protected),
/// and OpenSSL's, as sbsfu reads it.
fn x25519_keys(d: &std::path::Path) {
    ok(d, &["keygen", "--type", "x25519", "--out", "device.pem"]);
    ok(
        d,
        &["pubkey", "--key", "device.pem", "--out", "device.pub.pem"],
    );
    let pubout = openssl(d, "pkey -in device.pem -pubout");
    assert_eq!(pubout.stdout, fs::read(d.join("device.pub.pem")).unwrap());
    openssl(d, "genpkey -algorithm x25519 -out ossl.pem");
    openssl(d, "pkey -in ossl.pem -pubout -out ossl.pub.pem");
}

#[test]
fn x25519_keys_interoperate_with_openssl_and_hpke_round_trips() {
    let dir = workspace();
    let d = dir.path();
    x25519_keys(d);
    // A passphrase-protected X25519 key, as OpenSSL reads it.
    fs::write(d.join("pass"), "correct horse battery\n").unwrap();
    ok(
        d,
        &[
            "--passphrase-file",
            "pass",
            "keygen",
            "--type",
            "x25519",
            "--out",
            "locked.pem",
        ],
    );
    let text = openssl(d, "pkey -in locked.pem -passin file:pass -pubout");
    ok(
        d,
        &[
            "--passphrase-file",
            "pass",
            "pubkey",
            "--key",
            "locked.pem",
            "--out",
            "locked.pub.pem",
        ],
    );
    assert_eq!(text.stdout, fs::read(d.join("locked.pub.pem")).unwrap());

    fs::write(d.join("app.bin"), pattern(5000)).unwrap();
    let mut sign = sign_args(false, "app.bin", "app.sfu");
    sign.extend([
        "--encrypt-to",
        "device.pub.pem",
        "--encrypt-to",
        "ossl.pub.pem",
    ]);
    sign.extend(["--encrypt-to", "locked.pub.pem"]);
    ok(d, &sign);
    for key in ["device.pem", "ossl.pem", "locked.pem"] {
        let out = format!("{key}.bin");
        let decrypt = format!("--passphrase-file pass {}", decrypt_line(key, &out));
        ok(d, &words(&decrypt));
        assert_eq!(fs::read(d.join(&out)).unwrap(), pattern(5000), "{key}");
    }
    // Another device's key, or the AES key: refused, exit 3, nothing written.
    ok(d, &["keygen", "--type", "x25519", "--out", "other.pem"]);
    for key in ["other.pem", "device.key"] {
        let err = fails(d, &words(&decrypt_line(key, "never.bin")), 3);
        assert!(err.contains("other devices' keys"));
        assert!(!d.join("never.bin").exists());
    }
}

#[test]
fn hpke_containers_have_fresh_ephemeral_keys() {
    let dir = workspace();
    let d = dir.path();
    x25519_keys(d);
    fs::write(d.join("app.bin"), pattern(3000)).unwrap();
    for out in ["a.sfu", "b.sfu"] {
        let mut sign = sign_args(false, "app.bin", out);
        sign.extend([
            "--encrypt-to",
            "device.pub.pem",
            "--encrypt-to",
            "ossl.pub.pem",
        ]);
        ok(d, &sign);
    }
    let (a, b) = (
        fs::read(d.join("a.sfu")).unwrap(),
        fs::read(d.join("b.sfu")).unwrap(),
    );
    // Every 32-byte window of the header's recipients (key ids aside) differs between the two
    // containers and between the two recipients: fresh ephemeral keys, fresh content keys.
    let header_len = u16::from_be_bytes([a[10], a[11]]) as usize;
    let recipients = |c: &[u8]| -> Vec<Vec<u8>> {
        let end = 12 + header_len - 7;
        (0..2)
            .map(|i| {
                let at = end - (2 - i) * 88;
                c[at + 8..at + 88].to_vec()
            })
            .collect()
    };
    let (ra, rb) = (recipients(&a), recipients(&b));
    let encs: std::collections::HashSet<&[u8]> = ra.iter().chain(&rb).map(|r| &r[..32]).collect();
    assert_eq!(encs.len(), 4, "an ephemeral key was used twice");
    assert_ne!(ra[0][32..], rb[0][32..]);
    let head = 12 + header_len + 64;
    let windows: std::collections::HashSet<&[u8]> = a[head..].chunks(16).collect();
    assert!(b[head..].chunks(16).all(|w| !windows.contains(w)));
}

/// `sbsfu decrypt` of app.sfu (signed by signing.pem) with the device key `key`, into `out`.
fn decrypt_line(key: &str, out: &str) -> String {
    format!("decrypt --pubkey signing.pub.pem --decrypt-key {key} app.sfu --out {out}")
}
