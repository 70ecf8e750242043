//! Per-device X25519 keys (HPKE): a container encrypted to one device opens on that device only,
//! and the key extracted from one device forges chunks for no other.

use sbsfu_device::Error;
use sbsfu_format::{
    ChunkCipher, Protection, SignedHeader, hpke_wrap_aad, payload_aad, unwrap_from_recipient,
};
use sbsfu_tests::*;

const CHUNK: u32 = 256;

/// Device `seed`: it holds its own X25519 key only.
fn device(seed: u8) -> DeviceConfig {
    DeviceConfig {
        device_keys: vec![],
        x25519_keys: vec![seed],
        ..DeviceConfig::default()
    }
}

/// `c` with every chunk's plaintext replaced by `fill`, sealed under the content key that the
/// X25519 key `stolen` unwraps from `c`: what whoever extracted that key can make, if anything.
fn forge_with(stolen: u8, c: &[u8], fill: u8) -> Option<Vec<u8>> {
    let signed = SignedHeader::parse(c).unwrap().0;
    let header = signed.header;
    let Protection::Hpke(hpke) = header.protection else {
        panic!("an HPKE container")
    };
    let key = x25519_key(stolen);
    let public = key.public_key().unwrap();
    let aad = hpke_wrap_aad(&header, &signed.message).unwrap();
    // The stolen key opens the wrap of its own device's recipient entry, and no other.
    let content_key = (0..hpke.recipients.as_slice().len())
        .map(|i| header.recipient(signed.message.header_bytes(), i).unwrap())
        .find_map(|r| unwrap_from_recipient(&key, &public, &r, &aad).ok())?;
    let cipher = ChunkCipher::new(
        &content_key,
        hpke.nonce_prefix,
        payload_aad(&header, &signed.message).unwrap(),
    );
    Some(reseal_chunks(c, &cipher, fill))
}

#[test]
fn a_container_for_one_device_opens_on_that_device_only() {
    let img = image(3000, 11);
    let for_a = Spec::hpke(&[0x31], CHUNK).seal(&img);
    let on_a = install(&device(0x31), &for_a, Split::Every(5));
    assert!(on_a.result.is_ok(), "{:?}", on_a.error());
    assert_eq!(on_a.installed_image(), &img[..]);
    for other in [0x32, 0x33] {
        let out = install(&device(other), &for_a, Split::Every(5));
        assert_eq!(out.error(), Some(Error::NotARecipient));
        // Refused at the head: not a byte of flash erased or written.
        assert!(out.ops_at.is_empty(), "device {other:#x} touched flash");
    }
    // A fleet update is one container per device (or up to four recipients in one).
    let for_b_and_c = Spec::hpke(&[0x32, 0x33], CHUNK).seal(&img);
    for (seed, ok) in [(0x31, false), (0x32, true), (0x33, true)] {
        let out = install(&device(seed), &for_b_and_c, Split::Whole);
        assert_eq!(
            out.result.is_ok(),
            ok,
            "device {seed:#x}: {:?}",
            out.error()
        );
    }
}

#[test]
fn a_key_extracted_from_one_device_forges_chunks_for_no_other() {
    let img = image(3000, 12);
    let for_a = Spec::hpke(&[0x31], CHUNK).seal(&img);
    let for_b = Spec::hpke(&[0x32], CHUNK).seal(&img);

    // With device A's key, chunks of A's container can be forged: they authenticate on A, and
    // only the signed digest stops them (why the staged path verifies a whole container first).
    let forged_a = forge_with(0x31, &for_a, 0xA5).expect("A's key opens A's container");
    let out = install(&device(0x31), &forged_a, Split::Whole);
    assert_eq!(out.error(), Some(Error::Authentication));
    let first = &out.flash.data()[APP_OFFSET as usize..][..CHUNK as usize];
    assert!(
        first.iter().all(|b| *b == 0xA5),
        "A's forged chunk 0 passed on A"
    );

    // The same key opens nothing made for device B...
    assert!(forge_with(0x31, &for_b, 0xA5).is_none());
    // ...and the chunks it can forge (under A's content key) fail on B from the first chunk.
    let spans_a = chunk_spans(&forged_a);
    let spans_b = chunk_spans(&for_b);
    let mut spliced = for_b[..spans_b[0].0].to_vec();
    for (s, _, e) in &spans_a {
        spliced.extend_from_slice(&forged_a[*s..*e]);
    }
    let out = install(&device(0x32), &spliced, Split::Whole);
    assert_eq!(out.error(), Some(Error::Authentication));
    let app = &out.flash.data()[APP_OFFSET as usize..][..img.len()];
    assert!(
        app.iter().all(|b| *b == 0xFF),
        "a chunk forged with A's key reached B's flash"
    );
}
