//! Known-answer containers checked into `tests/vectors/`: the format cannot drift silently.
//!
//! Inputs (see `tests/vectors/README.md`): signing key seed `01 x 32`, device key `02 x 32`,
//! content key `03 x 32`, wrap nonce `59 x 12`, nonce prefix `a6 x 7`, target `stm32f405`,
//! version 2.0.1, security counter 10, region `app` at 0x0802_0000, chunks of 256 bytes, the
//! 700-byte `image.bin`. Ed25519 signatures are deterministic, so the bytes are too.
//! Regenerate deliberately with `SBSFU_BLESS=1 cargo test -p sbsfu-tests --test vectors`.

use std::path::PathBuf;

use sbsfu_tests::*;

fn vector(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("vectors")
        .join(name)
}

fn check(name: &str, encrypted: bool) {
    let img = image(700, 0x42);
    let sealed = Spec::new(encrypted, 256).seal(&img);
    if std::env::var_os("SBSFU_BLESS").is_some() {
        std::fs::write(vector("image.bin"), &img).unwrap();
        std::fs::write(vector(name), &sealed).unwrap();
    }
    assert_eq!(
        std::fs::read(vector("image.bin")).unwrap(),
        img,
        "image.bin"
    );
    let kat = std::fs::read(vector(name)).unwrap();
    assert!(
        kat == sealed,
        "{name}: the sealer no longer produces the checked-in bytes (format drift)"
    );
    let cfg = DeviceConfig::default();
    let out = install(&cfg, &kat, Split::Every(3));
    assert!(out.result.is_ok(), "{name}: {:?}", out.error());
    assert_eq!(out.installed_image(), &img[..]);
}

#[test]
fn encrypted_known_answer() {
    check("kat-encrypted.sfu", true);
}

#[test]
fn signed_only_known_answer() {
    check("kat-signed.sfu", false);
}

/// The key set: root key seed `04 x 32`, epoch 7, target `stm32f405`, trusting the signer
/// (`01 x 32`) and seed `05 x 32`, in that order.
#[test]
fn keyset_known_answer() {
    use sbsfu_format::{KeySet, MAX_KEYSET_LEN, SignedKeySet};
    let root = signing_key(4);
    let keys = [
        signing_key(1).verifying_key().to_bytes(),
        signing_key(5).verifying_key().to_bytes(),
    ];
    let set = KeySet::new(7, "stm32f405", root.verifying_key().as_bytes(), &keys).unwrap();
    let mut buf = [0u8; MAX_KEYSET_LEN];
    let signed = SignedKeySet::sign(set, &root).unwrap();
    let bytes = signed.encode(&mut buf);
    if std::env::var_os("SBSFU_BLESS").is_some() {
        std::fs::write(vector("kat-keyset.sks"), bytes).unwrap();
    }
    let kat = std::fs::read(vector("kat-keyset.sks")).unwrap();
    assert!(
        kat == bytes,
        "kat-keyset.sks: the key-set encoder no longer produces the checked-in bytes"
    );
    let parsed = SignedKeySet::parse(&kat).unwrap();
    parsed.verify(&root.verifying_key()).unwrap();
    assert_eq!(parsed.set.keys(), &keys);
}
