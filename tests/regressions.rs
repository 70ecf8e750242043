//! Replays tests/fuzz-regressions/ (inputs the fuzzers failed on, and parser edge cases) and the
//! fuzz seed corpus through the parser and the installer with the example keys.

use std::path::Path;

use sbsfu_device::TrustedKey;
use sbsfu_device::sim::kit::policy;
use sbsfu_format::SignedHeader;
use sbsfu_format::{DeviceKey, Header};
use sbsfu_tests::*;

fn files(dir: &str) -> Vec<(String, Vec<u8>)> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join(dir);
    let mut v: Vec<_> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_none_or(|x| x != "md"))
        .map(|p| {
            (
                p.file_name().unwrap().to_string_lossy().into_owned(),
                std::fs::read(&p).unwrap(),
            )
        })
        .collect();
    v.sort();
    v
}

fn example_install(bytes: &[u8]) -> Outcome {
    let signers = [TrustedKey::from_bytes(&sbsfu_f4::keys::SIGNING_KEY).unwrap()];
    let device_keys = [
        DeviceKey::from_bytes(sbsfu_f4::keys::DEVICE_KEY),
        DeviceKey::x25519(sbsfu_f4::keys::DEVICE_X25519_KEY),
    ];
    let policy = policy("stm32f405", &signers, &device_keys);
    install_with(&policy, bytes, Split::Every(13))
}

#[test]
fn regressions_are_rejected_without_panic() {
    let inputs = files("fuzz-regressions");
    assert!(inputs.len() >= 7);
    for (name, bytes) in inputs {
        let _ = Header::parse(&bytes);
        let _ = SignedHeader::parse(&bytes);
        let out = example_install(&bytes);
        assert!(out.result.is_err(), "{name} accepted");
        out.assert_nothing_before_signature();
    }
}

#[test]
fn the_fuzz_seeds_install() {
    let seeds = files("../fuzz/seeds");
    assert!(seeds.len() >= 7);
    for (name, bytes) in seeds {
        let out = example_install(&bytes);
        assert!(out.result.is_ok(), "{name}: {:?}", out.error());
        out.assert_nothing_before_signature();
    }
}
