//! The release engineer's workflow, end to end with the `sbsfu` binary: HEX and ELF inputs,
//! signing in an HSM (here `openssl pkeyutl`), passphrase-protected keys in CI and at a terminal,
//! key rotation, data payloads, shell completions.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

mod common;
use common::*;

/// The linked test image (see tests/images/build.sh) as ELF, HEX and 0xFF-gap-filled binary.
fn image(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/images")
        .join(name)
}

fn json(s: &str) -> serde_json::Value {
    serde_json::from_str(s).unwrap()
}

fn signed_only(d: &Path, input: &Path, out: &str, extra: &[&str]) -> std::process::Output {
    let line = format!(
        "sign --key signing.pem --version 1.0.0 --security-counter 1 --target stm32f405 \
         --in {} --out {out} --json",
        input.display()
    );
    let mut args = words(&line);
    args.extend(extra);
    sbsfu(d, &args)
}

#[test]
fn bin_hex_and_elf_of_one_build_give_the_same_container() {
    let dir = workspace();
    let d = dir.path();
    // Signed-only containers are deterministic: the three inputs must give identical bytes.
    let bin = signed_only(
        d,
        &image("app.bin"),
        "bin.sfu",
        &["--load-address", "0x08020000"],
    );
    let hex = signed_only(d, &image("app.hex"), "hex.sfu", &[]);
    let elf = signed_only(
        d,
        &image("app.elf"),
        "elf.sfu",
        &["--load-address", "0x8020000"],
    );
    for (out, kind) in [(&bin, "bin"), (&hex, "hex"), (&elf, "elf")] {
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let j = json(&String::from_utf8_lossy(&out.stdout));
        assert_eq!(j["input_format"], kind);
        assert_eq!(j["load_address"], 0x0802_0000);
        assert_eq!(j["image_len"], 84);
    }
    let c = fs::read(d.join("bin.sfu")).unwrap();
    assert_eq!(fs::read(d.join("hex.sfu")).unwrap(), c);
    assert_eq!(fs::read(d.join("elf.sfu")).unwrap(), c);
    // And what a device installs is objcopy's image: code, 0xFF gap, .data's load image; no .bss.
    ok(
        d,
        &words("decrypt --pubkey signing.pub.pem elf.sfu --out installed.bin"),
    );
    assert_eq!(
        fs::read(d.join("installed.bin")).unwrap(),
        fs::read(image("app.bin")).unwrap()
    );
}

#[test]
fn a_load_address_that_disagrees_with_the_file_is_an_error() {
    let dir = workspace();
    let d = dir.path();
    for f in ["app.hex", "app.elf"] {
        let out = signed_only(d, &image(f), "x.sfu", &["--load-address", "0x08000000"]);
        assert_eq!(code(&out), 2);
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            err.contains("--load-address 0x08000000 disagrees with")
                && err.contains("which loads at 0x08020000"),
            "{err}"
        );
        assert!(!d.join("x.sfu").exists());
    }
    // --input-format overrides detection: the HEX text itself becomes the image.
    let out = signed_only(
        d,
        &image("app.hex"),
        "raw.sfu",
        &["--input-format", "bin", "--load-address", "0x08020000"],
    );
    assert!(out.status.success());
    let j = json(&String::from_utf8_lossy(&out.stdout));
    assert_eq!(
        j["image_len"],
        fs::metadata(image("app.hex")).unwrap().len()
    );
    // A damaged HEX file is refused with its line number.
    let mut text = fs::read_to_string(image("app.hex")).unwrap();
    text = text.replacen(":1000000000400020", ":1000000000410020", 1);
    fs::write(d.join("bad.hex"), text).unwrap();
    let out = signed_only(d, &d.join("bad.hex"), "x.sfu", &[]);
    assert_eq!(code(&out), 1);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("Intel HEX: line 2: invalid checksum"), "{err}");
}

/// `openssl pkeyutl -sign -rawin`: how an HSM or signing service signs, without sbsfu.
fn openssl_sign(d: &Path, key: &str, tbs: &str, sig: &str) {
    assert!(openssl_available(), "openssl is needed for this test");
    openssl(
        d,
        &format!("pkeyutl -sign -rawin -inkey {key} -in {tbs} -out {sig}"),
    );
}

#[test]
fn external_signing_with_openssl_completes_the_container() {
    let dir = app_workspace(10_000);
    let d = dir.path();
    ok(
        d,
        &words(
            "sign --pubkey signing.pub.pem --encrypt-key device.key --version 2.0.0 --security-counter 3 --target stm32f405 --load-address 0x08020000 --in app.bin --unsigned-out app.unsigned --tbs-out app.tbs",
        ),
    );
    // The .tbs is the context and the container's prefix and header, exactly.
    let unsigned = fs::read(d.join("app.unsigned")).unwrap();
    let tbs = fs::read(d.join("app.tbs")).unwrap();
    let context = b"sbsfu/v1/container-header\0";
    assert!(tbs.starts_with(context));
    let head = &tbs[context.len()..];
    assert_eq!(&unsigned[..head.len()], head);
    assert_eq!(&unsigned[head.len()..head.len() + 64], &[0u8; 64]);
    // Unsigned, it is rejected.
    fails(
        d,
        &["verify", "--pubkey", "signing.pub.pem", "app.unsigned"],
        3,
    );

    openssl_sign(d, "signing.pem", "app.tbs", "app.sig");
    let msg = ok(
        d,
        &words(
            "attach-signature --pubkey signing.pub.pem --sig app.sig app.unsigned --out app.sfu",
        ),
    );
    assert!(msg.starts_with("wrote app.sfu (signed container"), "{msg}");
    let v = ok(
        d,
        &words("verify --pubkey signing.pub.pem --decrypt-key device.key app.sfu"),
    );
    assert!(v.starts_with("OK: app.sfu would install"), "{v}");

    // A signature of anything else is refused, and no output appears.
    fs::write(d.join("other.tbs"), b"something else").unwrap();
    openssl_sign(d, "signing.pem", "other.tbs", "other.sig");
    let err = fails(
        d,
        &words(
            "attach-signature --pubkey signing.pub.pem --sig other.sig app.unsigned --out bad.sfu",
        ),
        3,
    );
    assert!(err.contains("does not verify under"));
    assert!(!d.join("bad.sfu").exists());
}

#[test]
fn passphrase_protected_keys_in_ci_and_with_openssl() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    fs::write(d.join("pass"), "a long CI secret\n").unwrap();
    fs::write(d.join("wrong"), "not it\n").unwrap();
    ok(
        d,
        &words("keygen --type ed25519 --passphrase-file pass --out signing.pem"),
    );
    ok(
        d,
        &words("keygen --type aes256 --passphrase-file pass --out device.key"),
    );
    let pem = fs::read_to_string(d.join("signing.pem")).unwrap();
    assert!(pem.starts_with("-----BEGIN ENCRYPTED PRIVATE KEY-----"));
    // OpenSSL reads it with the same passphrase file.
    assert!(openssl_available(), "openssl is needed for this test");
    let pubout = openssl(d, "pkey -in signing.pem -passin file:pass -pubout");
    let ours = ok(d, &words("pubkey --passphrase-file pass --key signing.pem"));
    assert_eq!(String::from_utf8(pubout.stdout).unwrap(), ours);
    fs::write(d.join("signing.pub.pem"), &ours).unwrap();

    fs::write(d.join("app.bin"), pattern(5000)).unwrap();
    let args = sign_args(true, "app.bin", "app.sfu");
    // The environment variable, as CI sets it.
    let out = sbsfu_with(d, &args, &[("SBSFU_KEY_PASSPHRASE", "a long CI secret")]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    ok(
        d,
        &words(
            "verify --passphrase-file pass --pubkey signing.pub.pem --decrypt-key device.key app.sfu",
        ),
    );
    // A wrong passphrase: a clean key error, and no output.
    let mut wrong = sign_args(true, "app.bin", "wrong.sfu");
    wrong.extend(["--passphrase-file", "wrong"]);
    let err = fails(d, &wrong, 4);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.contains("wrong passphrase"), "{err}");
    assert!(!d.join("wrong.sfu").exists());
    // No passphrase anywhere and no terminal: an error at once, never a hang.
    let err = fails(d, &["pubkey", "--key", "signing.pem"], 4);
    assert!(err.contains(
        "is passphrase-protected: give --passphrase-file FILE or set SBSFU_KEY_PASSPHRASE"
    ));
    // And a key OpenSSL encrypted is read too.
    openssl(
        d,
        "genpkey -algorithm ed25519 -aes-256-cbc -pass file:pass -out ossl.pem",
    );
    ok(
        d,
        &["pubkey", "--passphrase-file", "pass", "--key", "ossl.pem"],
    );
}

/// Runs `sbsfu ARGS` on a pseudo-terminal (`script`, util-linux), typing each line a second
/// after the last; returns what the terminal showed, after checking that sbsfu succeeded.
fn at_a_terminal(d: &Path, args: &str, lines: &[&str]) -> String {
    let cmd = format!("{} {args}", env!("CARGO_BIN_EXE_sbsfu"));
    let typing: String = lines
        .iter()
        .map(|l| format!("sleep 1; printf '%s\\n' '{l}'; "))
        .collect();
    let out = Command::new("sh")
        .current_dir(d)
        .arg("-c")
        .arg(format!("({typing}) | script -qec '{cmd}' /dev/null"))
        .env_remove("SBSFU_KEY_PASSPHRASE")
        .output()
        .expect("sh and script (util-linux) are needed for this test");
    let text = String::from_utf8_lossy(&out.stdout).replace('\r', "");
    assert!(out.status.success(), "{text}");
    text
}

#[test]
fn the_passphrase_is_asked_for_on_a_terminal() {
    // `script` (util-linux) gives sbsfu a pseudo-terminal; the passphrase is typed into it.
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    fs::write(d.join("pass"), "typed at the prompt\n").unwrap();
    ok(
        d,
        &words("keygen --type ed25519 --passphrase-file pass --out k.pem"),
    );
    let expected = ok(
        d,
        &["pubkey", "--passphrase-file", "pass", "--key", "k.pem"],
    );
    let text = at_a_terminal(d, "pubkey --key k.pem", &["typed at the prompt"]);
    assert!(text.contains("Passphrase for k.pem: "), "{text}");
    assert!(text.contains(&expected), "{text}");
}

#[test]
fn keygen_protect_asks_twice_on_a_terminal() {
    // As the README shows it: on a terminal `--protect` asks for the new passphrase twice.
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let text = at_a_terminal(
        d,
        "keygen --type ed25519 --protect --out new.pem",
        &["typed twice", "typed twice"],
    );
    assert!(text.contains("New passphrase for new.pem: "), "{text}");
    assert!(text.contains("Repeat it: "), "{text}");
    // The key is protected by what was typed.
    fs::write(d.join("pass"), "typed twice\n").unwrap();
    ok(
        d,
        &["pubkey", "--passphrase-file", "pass", "--key", "new.pem"],
    );
    let pem = fs::read_to_string(d.join("new.pem")).unwrap();
    assert!(
        pem.starts_with("-----BEGIN ENCRYPTED PRIVATE KEY-----"),
        "{pem}"
    );
}

#[test]
fn key_rotation_with_an_offline_root() {
    let dir = workspace();
    let d = dir.path();
    ok(d, &["keygen", "--type", "ed25519", "--out", "root.pem"]);
    ok(d, &["pubkey", "--key", "root.pem", "--out", "root.pub.pem"]);
    ok(d, &["keygen", "--type", "ed25519", "--out", "next.pem"]);
    ok(d, &["pubkey", "--key", "next.pem", "--out", "next.pub.pem"]);
    fs::write(d.join("app.bin"), pattern(3000)).unwrap();
    ok(d, &sign_args(false, "app.bin", "old.sfu"));

    // Epoch 1 trusts both keys; the root key signs it in an HSM (openssl here).
    ok(
        d,
        &words(
            "keyset create --root-pubkey root.pub.pem --epoch 1 --target stm32f405 --signer signing.pub.pem --signer next.pub.pem --unsigned-out k1.unsigned --tbs-out k1.tbs",
        ),
    );
    openssl_sign(d, "root.pem", "k1.tbs", "k1.sig");
    ok(
        d,
        &words("attach-signature --pubkey root.pub.pem --sig k1.sig k1.unsigned --out k1.sks"),
    );
    let trust = |set: &str, container: &str| {
        sbsfu(
            d,
            &[
                "verify",
                "--keyset",
                set,
                "--root",
                "root.pub.pem",
                container,
            ],
        )
    };
    assert!(trust("k1.sks", "old.sfu").status.success());

    // Epoch 2 revokes the old key.
    let j = json(&ok(
        d,
        &words(
            "keyset create --root-key root.pem --epoch 2 --target stm32f405 --signer next.pub.pem --out k2.sks --json",
        ),
    ));
    assert_eq!(j["epoch"], 2);
    assert_eq!(j["signer_key_ids"].as_array().unwrap().len(), 1);
    let out = trust("k2.sks", "old.sfu");
    assert_eq!(code(&out), 3);
    assert!(String::from_utf8_lossy(&out.stderr).contains("signed by untrusted key"));
    let mut args = sign_args(false, "app.bin", "new.sfu");
    args[2] = "next.pem";
    ok(d, &args);
    assert!(trust("k2.sks", "new.sfu").status.success());

    // A device at epoch 2 refuses epoch 1 again.
    let err = fails(
        d,
        &words("keyset verify --root root.pub.pem k1.sks --current-epoch 2"),
        3,
    );
    assert!(err.contains("is not newer than the epoch 2"));
    // A firmware key cannot sign a key set: it is not the root the device holds.
    ok(
        d,
        &words(
            "keyset create --root-key signing.pem --epoch 3 --target stm32f405 --signer next.pub.pem --out k3.sks",
        ),
    );
    fails(
        d,
        &["keyset", "verify", "--root", "root.pub.pem", "k3.sks"],
        3,
    );
    // And the root key cannot be listed as a firmware signer.
    let err = fails(
        d,
        &words(
            "keyset create --root-key root.pem --epoch 3 --target stm32f405 --signer root.pub.pem --out k3.sks",
        ),
        2,
    );
    assert!(err.contains("never firmware"));
}

#[test]
fn data_payloads_name_their_region() {
    let dir = workspace();
    let d = dir.path();
    fs::write(d.join("calibration.bin"), pattern(700)).unwrap();
    let mut args = sign_args(false, "calibration.bin", "data.sfu");
    args.extend(["--region", "data", "--json"]);
    // sign_args gives the app's address; a data region has its own.
    let at = args.iter().position(|a| *a == "0x08020000").unwrap();
    args[at] = "0x080E0000";
    let j = json(&ok(d, &args));
    assert_eq!(j["region"], "data");
    assert_eq!(j["load_address"], 0x080E_0000u32);
    let v = json(&ok(
        d,
        &words("verify --json --pubkey signing.pub.pem data.sfu"),
    ));
    assert_eq!(v["region"], "data");
    let mut bad_region = sign_args(false, "calibration.bin", "x.sfu");
    bad_region.extend(["--region", "Data!"]);
    assert!(fails(d, &bad_region, 2).contains("invalid header"));
}

#[test]
fn completions_for_every_shell() {
    let dir = tempfile::tempdir().unwrap();
    for shell in ["bash", "zsh", "fish", "elvish", "powershell"] {
        let script = ok(dir.path(), &["completions", shell]);
        for word in [
            "attach-signature",
            "keyset",
            "passphrase-file",
            "input-format",
        ] {
            assert!(script.contains(word), "{shell} completion lacks {word}");
        }
    }
    fails(dir.path(), &["completions", "tcsh"], 2);
}
