//! Structured input for header fields and payload: what is sealed and signed parses back to the
//! same header, verifies, and installs byte-exact.
#![no_main]

use arbitrary::Arbitrary;
use ed25519_dalek::SigningKey;
use libfuzzer_sys::fuzz_target;
use sbsfu_device::{Policy, TrustedKey};
use sbsfu_format::{Header, MAX_HEADER_LEN};
use sbsfu_format::{EncryptParams, RecipientKey, SealParams, Wrap, seal_to_vec};
use sbsfu_format::SignedHeader;
use sbsfu_format::{ContentKey, DeviceKey, Version};

#[derive(Debug, Arbitrary)]
struct Input {
    target: String,
    region_is_app: bool,
    version: (u32, u32, u32),
    counter: u32,
    chunk_shift: u8,
    encrypted: bool,
    /// With `encrypted`: HPKE to an X25519 device key instead of an AES-256 one.
    hpke: bool,
    randomness: [u8; 32],
    payload: Vec<u8>,
}

fuzz_target!(|input: Input| {
    let key = SigningKey::from_bytes(&[7; 32]);
    let device = DeviceKey::from_bytes([9; 32]);
    let x25519 = DeviceKey::x25519([10; 32]);
    let wrap = if input.hpke {
        Wrap::Recipients(vec![RecipientKey {
            public_key: x25519.public_key().unwrap(),
            ephemeral: zeroize::Zeroizing::new(input.randomness),
        }])
    } else {
        Wrap::DeviceKey { key: &device, nonce: input.randomness[..12].try_into().unwrap() }
    };
    let region = if input.region_is_app { "app" } else { "data" };
    let params = SealParams {
        signer: key.verifying_key().to_bytes(),
        target: &input.target,
        version: Version { major: input.version.0, minor: input.version.1, patch: input.version.2 },
        security_counter: input.counter,
        region,
        load_address: sbsfu_fuzz::APP_ADDRESS,
        chunk_size: 1 << (6 + input.chunk_shift % 5),
        encryption: input.encrypted.then(|| EncryptParams {
            wrap,
            content_key: ContentKey::from_bytes(input.randomness),
            nonce_prefix: input.randomness[12..19].try_into().unwrap(),
        }),
    };
    let payload = &input.payload[..input.payload.len().min(60 * 1024)];
    let Ok(template) = params.prepare(payload.len() as u32).map(|p| *p.header()) else {
        // Invalid names and the like are refused before anything is written: nothing to check.
        return;
    };
    let container = seal_to_vec(&params, &key, payload).expect("valid parameters seal");

    // Parse back: the same fields, a verifying signature, a canonical header.
    let (head, _) = SignedHeader::parse(&container).expect("parses");
    let h: Header = head.header;
    assert_eq!(h.target, template.target);
    assert_eq!((h.version, h.security_counter, h.region), (template.version, template.security_counter, template.region));
    assert_eq!((h.image_len, h.chunk_size, h.protection.clone_kind()), (template.image_len, template.chunk_size, template.protection.clone_kind()));
    head.verify(&key.verifying_key()).expect("verifies");
    let mut buf = [0u8; MAX_HEADER_LEN];
    let hb = head.message.header_bytes();
    let wraps: Vec<_> = (0..).map_while(|i| h.recipient(hb, i)).collect();
    assert_eq!(h.encode_with(&wraps, &mut buf).unwrap(), hb);

    // And it installs byte-exact on a device that trusts the key (and has the region).
    if region == "app" && h.chunk_size as usize <= sbsfu_fuzz::BUF {
        let signers = [TrustedKey::from_bytes(key.verifying_key().as_bytes()).unwrap()];
        let device_keys = [device.clone(), x25519.clone()];
        let policy = Policy {
            target: h.target.as_str(),
            signers: &signers,
            device_keys: &device_keys,
            min_security_counter: 0,
            require_encryption: false,
        };
        let installed = sbsfu_fuzz::install_checked(&policy, &[&container]).expect("installs");
        assert_eq!(installed.header().digest, h.digest);
    }
});

/// Which protection, without its contents.
trait Kind {
    fn clone_kind(&self) -> u8;
}

impl Kind for sbsfu_format::Protection {
    fn clone_kind(&self) -> u8 {
        match self {
            sbsfu_format::Protection::SignedOnly { .. } => 0,
            sbsfu_format::Protection::Aes256Gcm(_) => 1,
            sbsfu_format::Protection::Hpke(_) => 2,
        }
    }
}
