//! Key-set updates: the strict parser never panics and accepts only canonical files; the device
//! key store accepts an update only if the root key really signed it, and never panics.
#![no_main]

use libfuzzer_sys::fuzz_target;
use sbsfu_device::{FlashRegion, Shared};
use sbsfu_device::sim::SimFlash;
use sbsfu_device::{KeyStore, TrustedKey, TrustedSet};
use sbsfu_format::{MAX_KEYSET_LEN, SignedKeySet};

fuzz_target!(|data: &[u8]| {
    let parsed = SignedKeySet::parse(data);
    if let Ok(s) = &parsed {
        let mut buf = [0u8; MAX_KEYSET_LEN];
        assert_eq!(s.encode(&mut buf), data, "non-canonical key set accepted");
        assert!(!s.set.keys().is_empty());
    }

    let root = TrustedKey::from_bytes(&sbsfu_f4::keys::ROOT_KEY).expect("example root key");
    let factory = TrustedSet::factory(
        &root,
        &[TrustedKey::from_bytes(&sbsfu_f4::keys::SIGNING_KEY).expect("example key")],
    )
    .expect("factory set");
    let mut flash = SimFlash::<4, 1024>::new(&[1024; 8]);
    let map = flash.geometry();
    let cell = core::cell::RefCell::new(&mut flash);
    let mut a = FlashRegion::new("a", Shared(&cell), map.clone(), 0, 0, 0x1000).expect("bank a");
    let mut b = FlashRegion::new("b", Shared(&cell), map, 0, 0x1000, 0x1000).expect("bank b");
    let mut store = KeyStore::mount([&mut a, &mut b]).expect("blank store mounts");
    if let Ok(set) = store.apply(data, &root, sbsfu_f4::keys::TARGET, &factory) {
        let s = parsed.expect("applied, so it parses");
        s.verify(root.verifying_key()).expect("applied, so the root signed it");
        assert!(set.epoch() > 0);
        let again = store
            .current(&root, sbsfu_f4::keys::TARGET, &factory)
            .expect("an applied set loads");
        assert_eq!(again.epoch(), set.epoch());
    }
});
