//! Every way of damaging or abusing a container fails with the expected error, and no flash
//! operation happens before the signature was checked.

use sbsfu_device::Error;
use sbsfu_format::Error as F;
use sbsfu_tests::*;

const CHUNK: u32 = 128;

/// A small container of three full chunks and a partial one.
fn small(kind: Kind) -> Vec<u8> {
    kind.spec(CHUNK).seal(&image(3 * CHUNK as usize + 40, 1))
}

fn expect(c: &[u8], cfg: &DeviceConfig, want: Error) {
    for split in [Split::Every(1), Split::Whole] {
        let out = install(cfg, c, split);
        assert_eq!(out.error(), Some(want), "{split:?}");
        out.assert_nothing_before_signature();
    }
}

#[test]
fn every_bit_flip_is_rejected() {
    let cfg = DeviceConfig::default();
    for kind in Kind::ALL {
        let c = small(kind);
        let head_len = install(&cfg, &c, Split::Whole).head_len.unwrap();
        let header_end = head_len - 64;
        for i in 0..c.len() {
            for bit in 0..8 {
                let mut bad = c.clone();
                bad[i] ^= 1 << bit;
                let out = install(&cfg, &bad, Split::Whole);
                let e = out
                    .error()
                    .unwrap_or_else(|| panic!("flip {i}.{bit} accepted"));
                out.assert_nothing_before_signature();
                if i < head_len {
                    assert!(out.ops_at.is_empty(), "flip {i}.{bit} touched flash");
                }
                let ok = match i {
                    0..8 => e == Error::Format(F::BadMagic),
                    8..10 => matches!(e, Error::Format(F::UnsupportedVersion(_))),
                    10..12 => matches!(e, Error::Format(_) | Error::Truncated),
                    // A header that ends inside a field is `Truncated` (one variant, whichever
                    // crate finds it).
                    _ if i < header_end => matches!(
                        e,
                        Error::Format(_)
                            | Error::Truncated
                            | Error::UnknownSigner(_)
                            | Error::Authentication
                    ),
                    _ => e == Error::Authentication,
                };
                assert!(ok, "flip at {i}.{bit}: {e:?}");
            }
        }
    }
}

#[test]
fn every_truncation_is_rejected_as_truncated() {
    let cfg = DeviceConfig::default();
    for kind in Kind::ALL {
        let c = small(kind);
        for n in 0..c.len() {
            let out = install(&cfg, &c[..n], Split::Whole);
            assert_eq!(out.error(), Some(Error::Truncated), "truncated to {n}");
            out.assert_nothing_before_signature();
        }
        assert!(install(&cfg, &c, Split::Whole).result.is_ok());
    }
}

/// Rebuilds the container's payload from the given chunk indices (by wire span).
fn rechunk(c: &[u8], order: &[usize], from: Option<&[u8]>) -> Vec<u8> {
    let spans = chunk_spans(c);
    let head = spans[0].0;
    let mut out = c[..head].to_vec();
    for &i in order {
        let (s, _, e) = spans[i];
        out.extend_from_slice(&c[s..e]);
    }
    if let Some(other) = from {
        // Replace chunk 1 with the other container's chunk 1.
        let (s, _, e) = chunk_spans(other)[1];
        let (ms, _, me) = spans[1];
        let start = head + (ms - head);
        out.splice(start..start + (me - ms), other[s..e].iter().copied());
    }
    out
}

#[test]
fn chunks_cannot_be_reordered_duplicated_dropped_or_spliced() {
    let cfg = DeviceConfig::default();
    for kind in Kind::ALL {
        let c = small(kind);
        assert_eq!(chunk_spans(&c).len(), 4);
        // Identity rebuild installs (the tests below change only what they say).
        assert!(
            install(&cfg, &rechunk(&c, &[0, 1, 2, 3], None), Split::Whole)
                .result
                .is_ok()
        );
        expect(
            &rechunk(&c, &[1, 0, 2, 3], None),
            &cfg,
            Error::Authentication,
        );
        expect(
            &rechunk(&c, &[0, 2, 1, 3], None),
            &cfg,
            Error::Authentication,
        );
        expect(
            &rechunk(&c, &[0, 0, 1, 2, 3], None),
            &cfg,
            Error::Authentication,
        );
        expect(
            &rechunk(&c, &[0, 1, 1, 2, 3], None),
            &cfg,
            Error::Authentication,
        );
        expect(&rechunk(&c, &[0, 2, 3], None), &cfg, Error::Authentication);
        // Dropping the final chunk leaves a stream that simply ends early.
        expect(&rechunk(&c, &[0, 1, 2], None), &cfg, Error::Truncated);
        // The same image sealed under other randomness: chunk 1 from there does not fit here.
        let other = Spec {
            randomness: 4,
            ..kind.spec(CHUNK)
        }
        .seal(&image(3 * CHUNK as usize + 40, 1));
        if kind.encrypted() {
            expect(
                &rechunk(&c, &[0, 1, 2, 3], Some(&other)),
                &cfg,
                Error::Authentication,
            );
        }
        // A different image under the same keys: its chunk 1 does not fit either.
        let different = kind.spec(CHUNK).seal(&image(3 * CHUNK as usize + 40, 2));
        expect(
            &rechunk(&c, &[0, 1, 2, 3], Some(&different)),
            &cfg,
            Error::Authentication,
        );
    }
}

#[test]
fn extending_the_stream_is_rejected() {
    let cfg = DeviceConfig::default();
    for kind in Kind::ALL {
        let c = small(kind);
        let spans = chunk_spans(&c);
        let mut extended = c.clone();
        extended.push(0);
        expect(&extended, &cfg, Error::TrailingBytes);
        // Appending a whole valid-looking chunk.
        let (s, _, e) = spans[0];
        let mut extended = c.clone();
        extended.extend_from_slice(&c[s..e]);
        expect(&extended, &cfg, Error::TrailingBytes);
        // Feeding trailing bytes in a later call is caught too.
        let out = {
            let mut two = c.clone();
            two.extend_from_slice(b"xyz");
            install(&cfg, &two, Split::Every(c.len()))
        };
        assert_eq!(out.error(), Some(Error::TrailingBytes));
    }
}

#[test]
fn policy_violations_have_precise_errors() {
    let cfg = DeviceConfig::default();
    for kind in Kind::ALL {
        let img = image(1000, 5);
        let base = kind.spec(CHUNK);

        // The base container with one field changed.
        let with = |change: fn(&mut Spec)| {
            let mut spec = base.clone();
            change(&mut spec);
            spec.seal(&img)
        };

        let other_signer = with(|s| s.signer = 9);
        let id = sbsfu_format::KeyId::of_ed25519(signing_key(9).verifying_key().as_bytes());
        expect(&other_signer, &cfg, Error::UnknownSigner(id));

        // Signed by key 9 but naming the trusted key 1: the signature does not verify.
        let forged = resign(
            &base.seal(&img),
            |h| {
                h.signer =
                    sbsfu_format::KeyId::of_ed25519(signing_key(1).verifying_key().as_bytes())
            },
            9,
        );
        expect(&forged, &cfg, Error::Authentication);

        let wrong_target = with(|s| s.target = "stm32f407");
        expect(&wrong_target, &cfg, Error::WrongTarget);

        let downgrade = with(|s| s.security_counter = 9);
        expect(
            &downgrade,
            &cfg,
            Error::Rollback {
                counter: 9,
                minimum: 10,
            },
        );

        let other_region = with(|s| s.region = "data");
        expect(&other_region, &cfg, Error::UnknownRegion);

        let other_address = with(|s| s.load_address = 0x0801_0000);
        expect(
            &other_address,
            &cfg,
            Error::WrongLoadAddress {
                expected: APP_ADDRESS,
                found: 0x0801_0000,
            },
        );

        let big_chunks = with(|s| s.chunk_size = 8192);
        expect(
            &big_chunks,
            &cfg,
            Error::ChunkTooLarge {
                chunk_size: 8192,
                capacity: BUF as u32,
            },
        );

        if kind == Kind::Hpke {
            // Encrypted to other devices' keys (7 and 8) only: refused at the head.
            expect(
                &Spec::hpke(&[7, 8], CHUNK).seal(&img),
                &cfg,
                Error::NotARecipient,
            );
            let aes_only = DeviceConfig {
                x25519_keys: vec![],
                ..cfg.clone()
            };
            expect(&base.seal(&img), &aes_only, Error::NotARecipient);
            // A rotation: encrypted to the old key 6 and the new key 9; either device opens it.
            let rotation = Spec::hpke(&[9, 6], CHUNK).seal(&img);
            for keys in [vec![6], vec![9], vec![8, 9]] {
                let device = DeviceConfig {
                    x25519_keys: keys,
                    ..cfg.clone()
                };
                let out = install(&device, &rotation, Split::Whole);
                assert!(out.result.is_ok(), "{:?}", out.error());
                assert_eq!(out.installed_image(), &img[..]);
            }
        } else if kind == Kind::Aes {
            let other_device = with(|s| s.device = 7);
            expect(
                &other_device,
                &cfg,
                Error::UnknownDeviceKey(device_key(7).id()),
            );
            let no_device_keys = DeviceConfig {
                device_keys: vec![],
                ..cfg.clone()
            };
            expect(
                &base.seal(&img),
                &no_device_keys,
                Error::UnknownDeviceKey(device_key(2).id()),
            );
        } else {
            let strict = DeviceConfig {
                require_encryption: true,
                ..cfg.clone()
            };
            expect(&base.seal(&img), &strict, Error::EncryptionRequired);
        }
    }
}

#[test]
fn garbage_and_empty_input() {
    let cfg = DeviceConfig::default();
    expect(b"", &cfg, Error::Truncated);
    expect(b"\x89SFU", &cfg, Error::Truncated);
    expect(b"hello, world", &cfg, Error::Format(F::BadMagic));
    expect(&image(5000, 3), &cfg, Error::Format(F::BadMagic));
    let mut v2 = small(Kind::Aes);
    v2[9] = 2;
    expect(&v2, &cfg, Error::Format(F::UnsupportedVersion(2)));
}

#[test]
fn a_signed_four_gib_claim_fails_at_the_head() {
    // Even correctly signed, an absurd length is refused before anything is hashed or written.
    let cfg = DeviceConfig::default();
    let c = resign(&small(Kind::Aes), |h| h.image_len = u32::MAX, 1);
    expect(&c, &cfg, Error::Format(F::ImageTooLarge(u32::MAX)));
    let out = install(&cfg, &c, Split::Whole);
    assert!(out.ops_at.is_empty());
}

#[test]
fn a_signed_but_wrong_digest_never_completes() {
    // A signer bug (or a stolen key used carelessly): chunks authenticate, the digest does not.
    let cfg = DeviceConfig::default();
    for kind in Kind::ALL {
        let c = small(kind);
        let bad = resign(&c, |h| h.digest[0] ^= 1, 1);
        // For encrypted containers the chunks' associated data ignores the digest, so every
        // chunk opens and only the final digest check fails; a signed-only chain is unaffected
        // by the digest as well.
        let out = install(&cfg, &bad, Split::Every(1));
        assert_eq!(out.error(), Some(Error::Authentication));
        // The last chunk is withheld: the image in flash is incomplete.
        let last = chunk_spans(&bad).last().copied().unwrap();
        let last_len = last.1 - last.0;
        let img = image(3 * CHUNK as usize + 40, 1);
        let at = APP_OFFSET as usize + img.len() - last_len;
        assert!(
            out.flash.data()[at..at + last_len]
                .iter()
                .all(|b| *b == 0xFF)
        );
    }
}

#[test]
fn a_corrupt_chunk_never_reaches_flash() {
    // Chunks before the damaged one are programmed (each authenticated); the damaged chunk and
    // everything after it are not: their flash stays erased.
    let cfg = DeviceConfig::default();
    let img = image(3 * CHUNK as usize + 40, 1);
    for kind in Kind::ALL {
        let c = small(kind);
        let spans = chunk_spans(&c);
        for damaged in 0..spans.len() {
            let mut bad = c.clone();
            bad[spans[damaged].0] ^= 0x01;
            let out = install(&cfg, &bad, Split::Every(1));
            assert_eq!(out.error(), Some(Error::Authentication));
            let app = &out.flash.data()[APP_OFFSET as usize..];
            let good_end = damaged * CHUNK as usize;
            assert_eq!(&app[..good_end], &img[..good_end]);
            assert!(
                app[good_end..img.len()].iter().all(|b| *b == 0xFF),
                "plaintext of damaged chunk {damaged} (or later) reached flash"
            );
        }
    }
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig::with_cases(256))]

    /// Any single-byte change of a valid container, anywhere, is rejected.
    #[test]
    fn any_single_byte_change_is_rejected(
        len in 0usize..1500,
        kind in proptest::sample::select(Kind::ALL.to_vec()),
        at in proptest::prelude::any::<proptest::sample::Index>(),
        new in proptest::prelude::any::<u8>(),
    ) {
        let c = kind.spec(CHUNK).seal(&image(len, 9));
        let i = at.index(c.len());
        proptest::prop_assume!(c[i] != new);
        let mut bad = c.clone();
        bad[i] = new;
        let out = install(&DeviceConfig::default(), &bad, Split::Whole);
        proptest::prop_assert!(out.result.is_err(), "byte {} changed to {:#04x} accepted", i, new);
        out.assert_nothing_before_signature();
    }
}
