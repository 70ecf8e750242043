//! The strict parser on raw bytes: never panics; whatever it accepts is canonical, in range,
//! and re-encodes to the same bytes.
#![no_main]

use libfuzzer_sys::fuzz_target;
use sbsfu_format::{
    Header, MAX_HEADER_LEN, MAX_IMAGE_LEN, PayloadLayout, Prefix, SIGNATURE_LEN, SignedHeader,
};

fuzz_target!(|data: &[u8]| {
    let _ = Prefix::parse(data);
    if let Ok(h) = Header::parse(data) {
        let mut buf = [0u8; MAX_HEADER_LEN];
        // With an HPKE header's recipients' entries, which the header leaves in the bytes.
        let wraps: Vec<_> = (0..).map_while(|i| h.recipient(data, i)).collect();
        assert_eq!(wraps.len(), h.recipient_key_ids().count());
        assert_eq!(h.encode_with(&wraps, &mut buf).expect("re-encodes"), data, "non-canonical header accepted");
        assert!(h.image_len <= MAX_IMAGE_LEN);
        let layout = PayloadLayout::of(&h).expect("an accepted header has a layout");
        // Bounded work: the payload a header declares is bounded by the image bound.
        assert!(layout.payload_len() <= u64::from(MAX_IMAGE_LEN) * 2);
    }
    if let Ok((head, used)) = SignedHeader::parse(data) {
        assert!(used <= data.len());
        assert_eq!(head.message.container_bytes().len() + SIGNATURE_LEN, used);
        assert_eq!(Header::parse(head.message.header_bytes()), Ok(head.header));
    }
});
