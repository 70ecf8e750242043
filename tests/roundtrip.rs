//! Round trips through the host sealer and the device installer: every size edge, all three
//! protections (signed only, AES device key, HPKE to an X25519 device key), every way of cutting the stream, verified again from flash as at boot.

use proptest::prelude::*;
use sbsfu_tests::*;

const CHUNK: u32 = 256;

fn sizes() -> [usize; 6] {
    let c = CHUNK as usize;
    [0, 1, c - 1, c, c + 1, 1024 * 1024]
}

fn round_trip(kind: Kind, len: usize, split: Split) {
    let img = image(len, len as u8);
    let spec = kind.spec(if len >= 1 << 20 { 4096 } else { CHUNK });
    let c = spec.seal(&img);
    let cfg = DeviceConfig::default();
    let mut out = install(&cfg, &c, split);
    assert!(
        out.result.is_ok(),
        "{kind:?} len={len} {split:?}: {:?}",
        out.error()
    );
    assert_eq!(out.installed_image(), &img[..], "len={len} {split:?}");
    out.assert_nothing_before_signature();
    let installed = out.result.as_ref().unwrap();
    assert_eq!(installed.header().image_len as usize, len);
    assert_eq!(installed.signed_head(), &c[..out.head_len.unwrap()]);
    boot_verify(&cfg, &mut out).expect("boot verification from flash");
}

#[test]
fn every_size_one_byte_at_a_time() {
    for kind in Kind::ALL {
        for len in sizes() {
            round_trip(kind, len, Split::Every(1));
        }
    }
}

#[test]
fn every_size_seven_bytes_at_a_time() {
    for kind in Kind::ALL {
        for len in sizes() {
            round_trip(kind, len, Split::Every(7));
        }
    }
}

#[test]
fn every_size_random_splits() {
    for kind in Kind::ALL {
        for len in sizes() {
            for seed in 1..4 {
                round_trip(kind, len, Split::Random(seed));
            }
            round_trip(kind, len, Split::Whole);
        }
    }
}

#[test]
fn boot_verification_catches_any_change_in_flash() {
    let img = image(3000, 9);
    let cfg = DeviceConfig::default();
    for kind in Kind::ALL {
        let c = kind.spec(CHUNK).seal(&img);
        let mut out = install(&cfg, &c, Split::Whole);
        for pos in [0, 1499, 2999] {
            out.flash.data_mut()[APP_OFFSET as usize + pos] ^= 0x10;
            assert_eq!(
                boot_verify(&cfg, &mut out),
                Err(sbsfu_device::Error::Authentication)
            );
            out.flash.data_mut()[APP_OFFSET as usize + pos] ^= 0x10;
            assert_eq!(boot_verify(&cfg, &mut out), Ok(()));
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    /// The installer's result does not depend on how the bytes are cut.
    #[test]
    fn result_is_independent_of_the_split(
        len in 0usize..3000,
        kind in proptest::sample::select(Kind::ALL.to_vec()),
        cuts in proptest::collection::vec(1usize..400, 1..40),
        flip in proptest::option::of((any::<prop::sample::Index>(), 1u8..)),
    ) {
        let img = image(len, 7);
        let mut c = kind.spec(CHUNK).seal(&img);
        if let Some((at, x)) = flip {
            let i = at.index(c.len());
            c[i] ^= x;
        }
        let cfg = DeviceConfig::default();
        let whole = install(&cfg, &c, Split::Whole);
        let mut pieces = Vec::new();
        let mut rest = &c[..];
        for n in cuts.iter().cycle() {
            if rest.is_empty() { break; }
            let (a, b) = rest.split_at((*n).min(rest.len()));
            pieces.push(a);
            rest = b;
        }
        let mut flash: sbsfu_device::sim::SimFlash = sbsfu_device::sim::SimFlash::new(&dual_bank_sectors());
        let map = flash.geometry();
        let signers = trusted(&[1]);
        let dks = [device_key(2), x25519_key(6)];
        let policy = sbsfu_device::Policy {
            target: "stm32f405", signers: &signers, device_keys: &dks,
            min_security_counter: 10, require_encryption: false,
        };
        let cut_result = {
            let mut region = sbsfu_device::FlashRegion::new(
                "app", &mut flash, map, APP_ADDRESS, APP_OFFSET, APP_LEN).unwrap();
            let mut regions: [&mut dyn sbsfu_device::Region; 1] = [&mut region];
            let mut inst = Box::new(sbsfu_device::Installer::<BUF>::new(&policy, &mut regions));
            pieces.iter().try_for_each(|p| inst.feed(p)).and_then(|()| inst.finish())
        };
        prop_assert_eq!(whole.error(), cut_result.as_ref().err().copied());
        prop_assert_eq!(whole.flash.data(), flash.data());
        if flip.is_none() {
            prop_assert!(cut_result.is_ok());
        }
    }
}
