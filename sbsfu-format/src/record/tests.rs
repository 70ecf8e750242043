use proptest::prelude::*;
use std::string::String;

use super::*;

const KEY: [u8; 32] = [0x42; 32];

fn sample(key: &DeviceKey) -> RecordFields<'_> {
    RecordFields {
        serial: "SN-0001",
        target: "stm32f405",
        key,
        calibration: &[1, 2, 3],
        fields: &[("hw", "rev B"), ("batch", "")],
    }
}

fn encoded() -> ([u8; MAX_RECORD_LEN], usize) {
    let key = DeviceKey::from_bytes(KEY);
    let mut out = [0u8; MAX_RECORD_LEN];
    let len = sample(&key).encode(&mut out).unwrap();
    (out, len)
}

/// The sample record, byte by byte (its checksum checked independently with Python's hashlib).
const SAMPLE_HEX: &str = concat!(
    "5342534655524543",      // magic
    "0001",                  // version
    "007d",                  // length 125
    "07534e2d30303031",      // serial
    "0973746d3332663430350", // target (and the kind byte: AES-256)
    "1",
    "af007ebc994efa7f", // key id: SHA-256("sbsfu/v1/key-id/aes256" || key)[..8]
    "4242424242424242424242424242424242424242424242424242424242424242",
    "0003010203",                       // calibration
    "02026877057265762042056261746368", // two fields: hw=rev B, batch=
    "00",
    "46f1bf6010f5fce645d4913b7e73481fc9aa2d1c69fccba0d1102d7a8cfb19b4", // SHA-256
);

fn hex(bytes: &[u8]) -> std::string::String {
    bytes.iter().map(|b| std::format!("{b:02x}")).collect()
}

#[test]
fn record_known_answer() {
    let (out, len) = encoded();
    assert_eq!(hex(&out[..len]), SAMPLE_HEX);
    let record = DeviceRecord::parse(&out[..len]).unwrap();
    assert_eq!(record.serial(), "SN-0001");
    assert_eq!(record.target(), "stm32f405");
    assert_eq!(record.device_key().as_bytes(), &KEY);
    assert_eq!(record.key_id(), DeviceKey::from_bytes(KEY).id());
    assert_eq!(record.calibration(), &[1, 2, 3]);
    assert_eq!(record.field("hw"), Some("rev B"));
    assert_eq!(record.field("batch"), Some(""));
    assert_eq!(record.field("nope"), None);
    assert_eq!(record.fields().count(), 2);
}

#[test]
fn record_every_truncation_is_refused() {
    let (out, len) = encoded();
    for cut in 0..len {
        assert!(DeviceRecord::parse(&out[..cut]).is_err(), "cut at {cut}");
    }
    assert_eq!(
        DeviceRecord::parse(&out[..len - 1]).err(),
        Some(Error::Truncated)
    );
}

#[test]
fn record_trailing_bytes_are_refused() {
    let (out, len) = encoded();
    assert_eq!(
        DeviceRecord::parse(&out[..len + 1]).err(),
        Some(Error::RecordLength)
    );
}

#[test]
fn record_blank_torn_foreign() {
    let (mut out, len) = encoded();
    assert_eq!(
        DeviceRecord::parse(&[0xFF; 64]).err(),
        Some(Error::BlankRecord)
    );
    // Every single flipped byte after the prefix is a torn record; in the prefix, a precise error.
    for i in 0..len {
        out[i] ^= 0x01;
        let err = DeviceRecord::parse(&out[..len]).err();
        match i {
            0..8 => assert_eq!(err, Some(Error::NotARecord)),
            8..10 => assert_eq!(
                err,
                Some(Error::UnsupportedVersion(
                    RECORD_VERSION ^ if i == 8 { 0x100 } else { 0x001 }
                ))
            ),
            10..12 => assert!(matches!(err, Some(Error::RecordLength | Error::Truncated))),
            _ => assert_eq!(err, Some(Error::TornRecord), "byte {i}"),
        }
        out[i] ^= 0x01;
    }
    // A record written half-way: the rest of its region still erased.
    let mut half = out;
    half[len / 2..len].fill(0xFF);
    assert_eq!(
        DeviceRecord::parse(&half[..len]).err(),
        Some(Error::TornRecord)
    );
}

#[test]
fn record_encoder_refuses_out_of_bounds_fields() {
    let key = DeviceKey::from_bytes(KEY);
    let mut out = [0u8; MAX_RECORD_LEN];
    let long_serial = "S".repeat(MAX_SERIAL_LEN + 1);
    let long_value = "v".repeat(MAX_FIELD_VALUE_LEN + 1);
    let cal = [0u8; MAX_CALIBRATION_LEN + 1];
    let many: std::vec::Vec<(&str, &str)> = (0..=MAX_FIELDS).map(|_| ("a", "b")).collect();
    let cases: [RecordFields<'_>; 7] = [
        RecordFields {
            serial: "",
            ..sample(&key)
        },
        RecordFields {
            serial: &long_serial,
            ..sample(&key)
        },
        RecordFields {
            serial: "has space",
            ..sample(&key)
        },
        RecordFields {
            calibration: &cal,
            ..sample(&key)
        },
        RecordFields {
            fields: &[("x", &long_value)],
            ..sample(&key)
        },
        RecordFields {
            fields: &[("a", "1"), ("a", "2")],
            ..sample(&key)
        },
        RecordFields {
            fields: &many,
            ..sample(&key)
        },
    ];
    for case in cases {
        assert_eq!(case.encode(&mut out), Err(Error::InvalidRecord));
    }
    assert_eq!(
        sample(&key).encode(&mut out[..40]),
        Err(Error::BufferTooSmall)
    );
}

#[test]
fn record_largest_fits_max_record_len() {
    let key = DeviceKey::from_bytes(KEY);
    let serial = "S".repeat(MAX_SERIAL_LEN);
    let target = "t".repeat(MAX_TARGET_LEN);
    let names: std::vec::Vec<std::string::String> = (0..MAX_FIELDS)
        .map(|i| std::format!("{i}{}", "n".repeat(MAX_FIELD_NAME_LEN - 1)))
        .collect();
    let value = "v".repeat(MAX_FIELD_VALUE_LEN);
    let fields: std::vec::Vec<(&str, &str)> =
        names.iter().map(|n| (n.as_str(), value.as_str())).collect();
    let mut out = [0u8; MAX_RECORD_LEN];
    let fields = RecordFields {
        serial: &serial,
        target: &target,
        key: &key,
        calibration: &[7; MAX_CALIBRATION_LEN],
        fields: &fields,
    };
    let len = fields.encode(&mut out).unwrap();
    assert_eq!(len, LARGEST_RECORD);
    assert!(DeviceRecord::parse(&out[..len]).is_ok());
}

#[test]
fn record_holds_an_x25519_key_and_its_id() {
    // RFC 7748 section 6.1's Alice.
    let secret =
        hex_literal::hex!("77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a");
    let public =
        hex_literal::hex!("8520f0098930a754748b7ddcb43ef75a0dbf3a0d26381af4eba4a98eaa9b4e6a");
    let key = DeviceKey::x25519(secret);
    let mut out = [0u8; MAX_RECORD_LEN];
    let len = sample(&key).encode(&mut out).unwrap();
    assert_eq!(out[12 + 8 + 10], 2, "key kind X25519");
    let record = DeviceRecord::parse(&out[..len]).unwrap();
    assert_eq!(record.device_key().kind(), crate::DeviceKeyKind::X25519);
    assert_eq!(record.device_key().public_key(), Some(public));
    assert_eq!(record.key_id(), KeyId::of_x25519(&public));
    // An unknown kind is refused, even under a valid checksum.
    out[12 + 8 + 10] = 3;
    let digest = Sha256::digest(&out[..len - 32]);
    out[len - 32..len].copy_from_slice(&digest);
    assert_eq!(
        DeviceRecord::parse(&out[..len]).err(),
        Some(Error::InvalidRecord)
    );
}

proptest! {
    #[test]
    fn record_roundtrips(
        serial in "[!-~]{1,32}",
        target in "[a-z0-9][a-z0-9._-]{0,31}",
        secret in any::<[u8; 32]>(),
        calibration in proptest::collection::vec(any::<u8>(), 0..=MAX_CALIBRATION_LEN),
        values in proptest::collection::vec("[ -~]{0,48}", 0..=MAX_FIELDS),
    ) {
        let key = DeviceKey::from_bytes(secret);
        let names: std::vec::Vec<std::string::String> =
            (0..values.len()).map(|i| std::format!("f{i}")).collect();
        let fields: std::vec::Vec<(&str, &str)> =
            names.iter().map(String::as_str).zip(values.iter().map(String::as_str)).collect();
        let mut out = [0u8; MAX_RECORD_LEN];
        let len = RecordFields { serial: &serial, target: &target, key: &key, calibration: &calibration, fields: &fields }
            .encode(&mut out)
            .unwrap();
        let record = DeviceRecord::parse(&out[..len]).unwrap();
        prop_assert_eq!(record.serial(), serial.as_str());
        prop_assert_eq!(record.target(), target.as_str());
        prop_assert_eq!(record.device_key().as_bytes(), &secret);
        prop_assert_eq!(record.calibration(), &calibration[..]);
        let back: std::vec::Vec<(&str, &str)> = record.fields().collect();
        prop_assert_eq!(back, fields);
    }

    #[test]
    fn record_parser_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..1100)) {
        let _ = DeviceRecord::parse(&bytes);
    }
}
