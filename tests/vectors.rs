//! Known-answer containers checked into `tests/vectors/`: the format cannot drift silently.
//!
//! Inputs (see `tests/vectors/README.md`): signing key seed `01 x 32`, device key `02 x 32`,
//! content key `03 x 32`, wrap nonce `59 x 12`, nonce prefix `a6 x 7`, target `stm32f405`,
//! version 2.0.1, security counter 10, region `app` at 0x0802_0000, chunks of 256 bytes, the
//! 700-byte `image.bin`. The HPKE container: recipients X25519 `06 x 32` then `07 x 32`,
//! ephemeral keys `3f x 32` and `2f x 32`, content key `03 x 32`, nonce prefix `a6 x 7`. Ed25519 signatures are deterministic, so the bytes are too.
//! Regenerate deliberately with `SBSFU_BLESS=1 cargo test -p sbsfu-tests --test vectors`.

use std::path::PathBuf;

use sbsfu_tests::*;

fn vector(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("vectors")
        .join(name)
}

fn check(name: &str, kind: Kind) {
    let img = image(700, 0x42);
    let sealed = match kind {
        // To the X25519 keys of seeds 06 and 07 (the lab key beside production).
        Kind::Hpke => Spec::hpke(&[6, 7], 256),
        _ => kind.spec(256),
    }
    .seal(&img);
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
    check("kat-encrypted.sfu", Kind::Aes);
}

#[test]
fn signed_only_known_answer() {
    check("kat-signed.sfu", Kind::Signed);
}

#[test]
fn hpke_known_answer() {
    check("kat-hpke.sfu", Kind::Hpke);
    // Either recipient opens it alone.
    let kat = std::fs::read(vector("kat-hpke.sfu")).unwrap();
    for seed in [6, 7] {
        let cfg = DeviceConfig {
            device_keys: vec![],
            x25519_keys: vec![seed],
            ..DeviceConfig::default()
        };
        let out = install(&cfg, &kat, Split::Whole);
        assert!(out.result.is_ok(), "recipient {seed}: {:?}", out.error());
    }
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
