//! Embeds the trusted signing key, the root key (signs key-set updates) and the device key as raw
//! bytes. Defaults to the published development keys in keys-example/; a production build sets
//! SBSFU_SIGNING_PUB and SBSFU_ROOT_PUB (SPKI PEMs), SBSFU_DEVICE_KEY (an sbsfu device key PEM)
//! and SBSFU_DEVICE_X25519_KEY (the device's X25519 private key, PKCS#8 PEM).

use std::env;
use std::fs;
use std::path::{Path, PathBuf};

fn base64(text: &str) -> Vec<u8> {
    let mut out = Vec::new();
    let mut acc = 0u32;
    let mut bits = 0;
    for c in text.bytes() {
        let v = match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' => 62,
            b'/' => 63,
            _ => continue,
        };
        acc = (acc << 6) | u32::from(v);
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
        }
    }
    out
}

fn pem_body(path: &Path, label: &str) -> Vec<u8> {
    let text = fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let begin = format!("-----BEGIN {label}-----");
    let end = format!("-----END {label}-----");
    let start = text
        .find(&begin)
        .unwrap_or_else(|| panic!("{}: no {label}", path.display()));
    let stop = text
        .find(&end)
        .unwrap_or_else(|| panic!("{}: no end of {label}", path.display()));
    base64(&text[start + begin.len()..stop])
}

/// An Ed25519 SPKI: 12 bytes of DER prefix and the 32-byte key.
fn ed25519_spki(path: &Path) -> Vec<u8> {
    let spki = pem_body(path, "PUBLIC KEY");
    assert!(
        spki.len() == 44
            && spki.starts_with(&[0x30, 0x2a, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70]),
        "{}: not an Ed25519 public key",
        path.display()
    );
    spki
}

fn main() {
    let root = PathBuf::from(env::var("CARGO_MANIFEST_DIR").unwrap()).join("../../keys-example");
    let signing = env::var_os("SBSFU_SIGNING_PUB")
        .map(PathBuf::from)
        .unwrap_or(root.join("signing.pub.pem"));
    let root_pub = env::var_os("SBSFU_ROOT_PUB")
        .map(PathBuf::from)
        .unwrap_or(root.join("root.pub.pem"));
    let device = env::var_os("SBSFU_DEVICE_KEY")
        .map(PathBuf::from)
        .unwrap_or(root.join("device.key"));
    println!("cargo:rerun-if-env-changed=SBSFU_SIGNING_PUB");
    println!("cargo:rerun-if-env-changed=SBSFU_DEVICE_KEY");
    println!("cargo:rerun-if-env-changed=SBSFU_ROOT_PUB");
    println!("cargo:rerun-if-env-changed=SBSFU_DEVICE_X25519_KEY");
    let x25519 = env::var_os("SBSFU_DEVICE_X25519_KEY")
        .map(PathBuf::from)
        .unwrap_or(root.join("device-x25519.pem"));
    println!("cargo:rerun-if-changed={}", x25519.display());
    // PKCS#8 of an X25519 key (RFC 8410): 16 bytes of DER prefix, then the 32-byte key.
    let x25519_der = pem_body(&x25519, "PRIVATE KEY");
    assert!(
        x25519_der.len() == 48
            && x25519_der.starts_with(&[
                0x30, 0x2e, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x6e, 0x04, 0x22,
                0x04, 0x20
            ]),
        "{}: not an unencrypted X25519 private key",
        x25519.display()
    );
    println!("cargo:rerun-if-changed={}", signing.display());
    println!("cargo:rerun-if-changed={}", root_pub.display());
    println!("cargo:rerun-if-changed={}", device.display());
    let spki = ed25519_spki(&signing);
    let root_spki = ed25519_spki(&root_pub);
    let key = pem_body(&device, "SBSFU AES256 DEVICE KEY");
    assert_eq!(key.len(), 32, "{}: not a device key", device.display());
    let firmware = env::var("CARGO_CFG_TARGET_OS").as_deref() == Ok("none");
    if firmware
        && (env::var_os("SBSFU_SIGNING_PUB").is_none() || env::var_os("SBSFU_DEVICE_KEY").is_none())
    {
        println!(
            "cargo:warning=this firmware trusts the PUBLISHED development keys of keys-example/: \
             never ship it (set SBSFU_SIGNING_PUB and SBSFU_DEVICE_KEY to your keys)"
        );
    }
    let out = PathBuf::from(env::var("OUT_DIR").unwrap());
    fs::write(out.join("signing.pub.raw"), &spki[12..]).unwrap();
    fs::write(out.join("root.pub.raw"), &root_spki[12..]).unwrap();
    fs::write(out.join("device.key.raw"), &key).unwrap();
    fs::write(out.join("device-x25519.key.raw"), &x25519_der[16..]).unwrap();
}
