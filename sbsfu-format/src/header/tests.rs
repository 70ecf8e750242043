use super::*;
use proptest::prelude::*;

pub(crate) fn sample(protection: Protection) -> Header {
    Header {
        signer: KeyId([1, 2, 3, 4, 5, 6, 7, 8]),
        target: Name::new("stm32f405").unwrap(),
        version: Version {
            major: 1,
            minor: 2,
            patch: 3,
        },
        security_counter: 7,
        region: Name::new("app").unwrap(),
        load_address: 0x0802_0000,
        image_len: 300,
        chunk_size: 128,
        digest: [0xd1; 32],
        protection,
    }
}

pub(crate) fn encrypted() -> Protection {
    Protection::Aes256Gcm(Encryption {
        device_key: KeyId([9; 8]),
        wrap_nonce: [0xa0; 12],
        wrapped_key: [0xb0; 32],
        wrap_tag: [0xc0; 16],
        nonce_prefix: [0xe0; 7],
    })
}

/// Known-answer postcard encoding of `sample(SignedOnly { chain_head: [0xcc; 32] })`:
/// fixed-size arrays are raw bytes, integers are LEB128 varints, strings are varint length
/// plus bytes, the enum tag is a varint.
const SIGNED_ONLY_KAT: &[u8] = &hex_literal::hex!(
    "0102030405060708"                  // signer
    "09 73746d3332663430 35"            // target "stm32f405"
    "01 02 03"                          // version
    "07"                                // security counter
    "03 617070"                         // region "app"
    "80808840"                          // load address 0x0802_0000
    "ac02"                              // image length 300
    "8001"                              // chunk size 128
    "d1d1d1d1d1d1d1d1d1d1d1d1d1d1d1d1d1d1d1d1d1d1d1d1d1d1d1d1d1d1d1d1" // digest
    "00"                                // SignedOnly
    "cccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccc" // chain head
);

#[test]
fn encoding_matches_known_answer() {
    let h = sample(Protection::SignedOnly {
        chain_head: [0xcc; 32],
    });
    let mut buf = [0u8; MAX_HEADER_LEN];
    assert_eq!(h.encode(&mut buf).unwrap(), SIGNED_ONLY_KAT);
    assert_eq!(Header::parse(SIGNED_ONLY_KAT), Ok(h));
}

pub(crate) fn hpke(n: usize) -> Protection {
    let ids: std::vec::Vec<KeyId> = (0..n).map(|i| KeyId([i as u8 + 1; 8])).collect();
    Protection::Hpke(HpkeEncryption {
        recipients: RecipientIds::new(&ids).unwrap(),
        nonce_prefix: [0xe0; 7],
    })
}

/// Entries for the recipients of `h`, with wraps made of `seed`.
pub(crate) fn entries(h: &Header, seed: u8) -> std::vec::Vec<Recipient> {
    h.recipient_key_ids()
        .enumerate()
        .map(|(i, key_id)| Recipient {
            key_id,
            enc: [seed ^ 0xe1 ^ i as u8; 32],
            wrapped_key: [seed ^ 0xb1; 32],
            wrap_tag: [seed ^ 0xc1 ^ (i as u8) << 4; 16],
        })
        .collect()
}

/// The entries of every recipient of `h`, read from its encoding `bytes`.
pub(crate) fn read_entries(h: &Header, bytes: &[u8]) -> std::vec::Vec<Recipient> {
    (0..h.recipient_key_ids().count())
        .map(|i| h.recipient(bytes, i).unwrap())
        .collect()
}

#[test]
fn largest_header_fits_the_bound() {
    let mut h = sample(hpke(MAX_RECIPIENTS));
    h.target = Name::new("abcdefghijklmnopqrstuvwxyz012345").unwrap();
    h.region = Name::new("abcdefghijklmnop").unwrap();
    h.version = Version {
        major: u32::MAX,
        minor: u32::MAX,
        patch: u32::MAX,
    };
    h.security_counter = u32::MAX;
    h.load_address = u32::MAX - MAX_IMAGE_LEN;
    h.image_len = MAX_IMAGE_LEN;
    h.chunk_size = MAX_CHUNK_SIZE;
    let mut buf = [0u8; MAX_HEADER_LEN];
    let n = h.encode_with(&entries(&h, 1), &mut buf).unwrap().len();
    // The bound is the largest header exactly: it grows only as far as four recipients need.
    assert_eq!(n, MAX_HEADER_LEN);
    assert_eq!(Header::parse(&buf[..n]), Ok(h));
    assert_eq!(read_entries(&h, &buf[..n]), entries(&h, 1));
    h.protection = encrypted();
    assert!(h.encode(&mut buf).unwrap().len() <= 200);
}

#[test]
fn recipients_are_one_to_four_distinct_keys() {
    for n in 1..=MAX_RECIPIENTS {
        let h = sample(hpke(n));
        let mut buf = [0u8; MAX_HEADER_LEN];
        let wraps = entries(&h, 3);
        let bytes = h.encode_with(&wraps, &mut buf).unwrap().to_vec();
        assert_eq!(Header::parse(&bytes), Ok(h));
        assert_eq!(h.recipient_key_ids().count(), n);
        assert_eq!(read_entries(&h, &bytes), wraps);
        assert_eq!(h.recipient(&bytes, n), None);
        // The count sits right after the protection tag (2): 0 and 5 are refused.
        let at = bytes.len() - 7 - n * RECIPIENT_LEN - 1;
        assert_eq!((bytes[at - 1], bytes[at]), (2, n as u8));
        for bad in [0u8, 5, 0x80] {
            let mut v = bytes.clone();
            v[at] = bad;
            assert_eq!(Header::parse(&v), Err(Error::MalformedHeader), "{bad}");
        }
        if n > 1 {
            // The second recipient named by the first one's key id.
            let mut v = bytes.clone();
            let second = at + 1 + RECIPIENT_LEN;
            v.copy_within(at + 1..at + 9, second);
            assert_eq!(Header::parse(&v), Err(Error::MalformedHeader));
            // An entry is read only where its key id is.
            assert_eq!(h.recipient(&v, 1), None);
        }
    }
    let one = KeyId::default();
    assert!(RecipientIds::new(&[]).is_none());
    assert!(RecipientIds::new(&[one; 5]).is_none());
    assert!(RecipientIds::new(&[one, one]).is_none());
    // Entries must name the header's recipients, in order.
    let h = sample(hpke(2));
    let mut wraps = entries(&h, 0);
    wraps.swap(0, 1);
    let mut buf = [0u8; MAX_HEADER_LEN];
    assert_eq!(
        h.encode_with(&wraps, &mut buf),
        Err(Error::InvalidRecipients)
    );
    assert_eq!(
        h.encode_with(&wraps[..1], &mut buf),
        Err(Error::InvalidRecipients)
    );
    let aes = sample(encrypted());
    assert_eq!(
        aes.encode_with(&wraps, &mut buf),
        Err(Error::InvalidRecipients)
    );
    assert_eq!(aes.recipient(aes.encode(&mut buf).unwrap(), 0), None);
}

#[test]
fn the_digest_offset_is_where_the_digest_is() {
    for p in [
        Protection::SignedOnly {
            chain_head: [0xcc; 32],
        },
        encrypted(),
        hpke(1),
        hpke(MAX_RECIPIENTS),
    ] {
        let h = sample(p);
        let mut buf = [0u8; MAX_HEADER_LEN];
        let bytes = h.encode_with(&entries(&h, 9), &mut buf).unwrap();
        let at = h.digest_offset(bytes.len()).unwrap();
        assert_eq!(bytes[at..at + 32], h.digest);
        // The field before it is the chunk size (128: varint 80 01).
        assert_eq!(bytes[at - 2..at], [0x80, 0x01]);
    }
}

#[test]
fn overlong_varint_is_not_canonical() {
    // Security counter 7 re-encoded as the two-byte varint 0x87 0x00.
    let mut v = SIGNED_ONLY_KAT.to_vec();
    let pos = 8 + 10 + 3;
    assert_eq!(v[pos], 0x07);
    v.splice(pos..=pos, [0x87, 0x00]);
    assert_eq!(Header::parse(&v), Err(Error::NonCanonicalHeader));
}

#[test]
fn trailing_bytes_inside_the_header_are_rejected() {
    let mut v = SIGNED_ONLY_KAT.to_vec();
    v.push(0);
    assert_eq!(Header::parse(&v), Err(Error::TrailingHeaderBytes));
}

#[test]
fn every_truncation_is_rejected() {
    for n in 0..SIGNED_ONLY_KAT.len() {
        assert!(Header::parse(&SIGNED_ONLY_KAT[..n]).is_err(), "{n}");
    }
}

#[test]
fn a_four_gib_image_fails_at_once() {
    let mut h = sample(encrypted());
    h.image_len = u32::MAX;
    h.load_address = 0;
    let mut buf = [0u8; MAX_HEADER_LEN];
    let n = h.encode(&mut buf).unwrap().len();
    assert_eq!(
        Header::parse(&buf[..n]),
        Err(Error::ImageTooLarge(u32::MAX))
    );
}

#[test]
fn chunk_size_and_address_are_range_checked() {
    for bad in [0, 1, 63, 100, 96, MAX_CHUNK_SIZE * 2, u32::MAX] {
        let mut h = sample(encrypted());
        h.chunk_size = bad;
        assert_eq!(h.validate(), Err(Error::InvalidChunkSize(bad)));
    }
    let mut h = sample(encrypted());
    h.load_address = u32::MAX - 10;
    assert_eq!(h.validate(), Err(Error::AddressOverflow));
}

#[test]
fn invalid_names_are_reported_as_such() {
    let mut v = SIGNED_ONLY_KAT.to_vec();
    v[9] = b'S';
    assert_eq!(Header::parse(&v), Err(Error::InvalidName));
}

#[test]
fn unknown_protection_tag_is_malformed() {
    let mut v = SIGNED_ONLY_KAT.to_vec();
    let tag = v.len() - 33;
    v[tag] = 3;
    assert_eq!(Header::parse(&v), Err(Error::MalformedHeader));
}

#[test]
fn version_parses_strictly() {
    assert_eq!(
        "1.2.3".parse(),
        Ok(Version {
            major: 1,
            minor: 2,
            patch: 3
        })
    );
    for bad in [
        "",
        "1",
        "1.2",
        "1.2.3.4",
        "1.2.-3",
        "1.2.+3",
        "a.b.c",
        "1..3",
        "4294967296.0.0",
    ] {
        assert!(bad.parse::<Version>().is_err(), "{bad}");
    }
}

fn arb_name<const N: usize>() -> impl Strategy<Value = Name<N>> {
    proptest::string::string_regex(&std::format!("[a-z0-9][a-z0-9._-]{{0,{}}}", N - 1))
        .unwrap()
        .prop_map(|s| Name::new(&s).unwrap())
}

prop_compose! {
    fn arb_header()(
        signer in any::<[u8; 8]>(),
        target in arb_name::<MAX_TARGET_LEN>(),
        v in any::<(u32, u32, u32)>(),
        security_counter in any::<u32>(),
        region in arb_name::<MAX_REGION_LEN>(),
        image_len in 0..=MAX_IMAGE_LEN,
        load in any::<u32>(),
        shift in 6u32..=16,
        digest in any::<[u8; 32]>(),
        enc in any::<Option<([u8; 8], [u8; 12], [u8; 32], [u8; 16], [u8; 7])>>(),
        hpke_n in 0..=MAX_RECIPIENTS,
    ) -> Header {
        Header {
            signer: KeyId(signer),
            target,
            version: Version { major: v.0, minor: v.1, patch: v.2 },
            security_counter,
            region,
            load_address: load.min(u32::MAX - image_len),
            image_len,
            chunk_size: 1 << shift,
            digest,
            protection: match enc {
                None if hpke_n > 0 => {
                    let ids: std::vec::Vec<KeyId> =
                        (0..hpke_n).map(|i| KeyId([i as u8; 8])).collect();
                    Protection::Hpke(HpkeEncryption {
                        recipients: RecipientIds::new(&ids).unwrap(),
                        nonce_prefix: [digest[0]; 7],
                    })
                }
                None => Protection::SignedOnly { chain_head: digest },
                Some((k, n, w, t, p)) => Protection::Aes256Gcm(Encryption {
                    device_key: KeyId(k), wrap_nonce: n, wrapped_key: w, wrap_tag: t, nonce_prefix: p,
                }),
            },
        }
    }
}

/// A header with its recipients' entries (wraps from `seed`).
fn arb_encoded() -> impl Strategy<Value = (Header, std::vec::Vec<Recipient>)> {
    (arb_header(), any::<u8>()).prop_map(|(h, seed)| {
        let wraps = entries(&h, seed);
        (h, wraps)
    })
}

proptest! {
    #[test]
    fn encode_parse_round_trip((h, wraps) in arb_encoded()) {
        let mut buf = [0u8; MAX_HEADER_LEN];
        let bytes = h.encode_with(&wraps, &mut buf).unwrap();
        prop_assert_eq!(Header::parse(bytes), Ok(h));
        prop_assert_eq!(read_entries(&h, bytes), wraps);
    }

    #[test]
    fn encoded_len_is_the_encoders((h, wraps) in arb_encoded()) {
        let mut buf = [0u8; MAX_HEADER_LEN];
        prop_assert_eq!(h.encoded_len(), Some(h.encode_with(&wraps, &mut buf).unwrap().len()));
    }

    #[test]
    fn parse_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..600)) {
        let _ = Header::parse(&bytes);
    }

    #[test]
    fn single_byte_changes_never_parse_to_the_same_header((h, wraps) in arb_encoded(), pos in any::<usize>(), x in 1u8..) {
        // The same header means the same fields and the same recipients' entries.
        let mut buf = [0u8; MAX_HEADER_LEN];
        let mut bytes = h.encode_with(&wraps, &mut buf).unwrap().to_vec();
        let i = pos % bytes.len();
        bytes[i] ^= x;
        let parsed = Header::parse(&bytes).ok().map(|p| (p, read_entries(&p, &bytes)));
        prop_assert_ne!(parsed, Some((h, wraps)));
    }
}
