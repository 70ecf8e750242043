//! Where the image digest is computed: SHA-256 in line by default, or elsewhere (a hash
//! peripheral such as the STM32F41x/F43x HASH processor, or another core on a host) through
//! [`ImageHasher`].
//!
//! The in-line SHA-256 is [`ImageSha256`]: sha2's, or with the `fast-sha256` feature an unrolled
//! implementation (`hmac-sha256`). Firmware that builds sha2 with its compact backend, to keep
//! Ed25519's SHA-512 small, would otherwise also get sha2's compact SHA-256, the slow part of
//! verifying an image at boot (on a Cortex-M4: 67 instructions per byte against 38).

use sha2::{Digest, Sha256};

/// Computes SHA-256 over the plaintext as the installer releases it, chunk by chunk, in image
/// order. An implementation must compute exactly SHA-256 of the bytes it is given: the
/// installer's "the image matched its signed digest" rests on it.
pub trait ImageHasher {
    /// Adds the next plaintext bytes.
    fn update(&mut self, bytes: &[u8]);
    /// SHA-256 of everything added since the last call, starting over afterwards.
    fn finalize_reset(&mut self) -> [u8; 32];
}

impl ImageHasher for Sha256 {
    fn update(&mut self, bytes: &[u8]) {
        Digest::update(self, bytes);
    }

    fn finalize_reset(&mut self) -> [u8; 32] {
        Digest::finalize_reset(self).into()
    }
}

/// The SHA-256 the installer and [`verify_region`](crate::boot::verify::verify_region) use unless
/// given another [`ImageHasher`].
#[cfg(not(feature = "fast-sha256"))]
pub type ImageSha256 = Sha256;

/// The SHA-256 the installer and [`verify_region`](crate::boot::verify::verify_region) use unless
/// given another [`ImageHasher`].
#[cfg(feature = "fast-sha256")]
pub type ImageSha256 = UnrolledSha256;

/// A new [`ImageSha256`].
pub fn image_sha256() -> ImageSha256 {
    ImageSha256::default()
}

/// SHA-256 from `hmac-sha256`, whose rounds are unrolled whatever sha2's backend.
#[cfg(feature = "fast-sha256")]
#[derive(Default)]
pub struct UnrolledSha256(hmac_sha256::Hash);

#[cfg(feature = "fast-sha256")]
impl ImageHasher for UnrolledSha256 {
    fn update(&mut self, bytes: &[u8]) {
        self.0.update(bytes);
    }

    // Out of line: the installer and boot verification share one copy (flash, on a bootloader).
    #[inline(never)]
    fn finalize_reset(&mut self) -> [u8; 32] {
        core::mem::take(&mut self.0).finalize()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// FIPS 180-4 examples: "abc" and the two-block message.
    const ABC: [u8; 32] = [
        0xba, 0x78, 0x16, 0xbf, 0x8f, 0x01, 0xcf, 0xea, 0x41, 0x41, 0x40, 0xde, 0x5d, 0xae, 0x22,
        0x23, 0xb0, 0x03, 0x61, 0xa3, 0x96, 0x17, 0x7a, 0x9c, 0xb4, 0x10, 0xff, 0x61, 0xf2, 0x00,
        0x15, 0xad,
    ];
    const TWO_BLOCKS: [u8; 32] = [
        0x24, 0x8d, 0x6a, 0x61, 0xd2, 0x06, 0x38, 0xb8, 0xe5, 0xc0, 0x26, 0x93, 0x0c, 0x3e, 0x60,
        0x39, 0xa3, 0x3c, 0xe4, 0x59, 0x64, 0xff, 0x21, 0x67, 0xf6, 0xec, 0xed, 0xd4, 0x19, 0xdb,
        0x06, 0xc1,
    ];

    /// [`image_sha256`] of `parts` fed in turn, through the [`ImageHasher`] interface only.
    fn hash<'a>(h: &mut ImageSha256, parts: impl IntoIterator<Item = &'a [u8]>) -> [u8; 32] {
        for part in parts {
            ImageHasher::update(h, part);
        }
        ImageHasher::finalize_reset(h)
    }

    #[test]
    fn image_sha256_matches_the_fips_examples_and_resets() {
        let mut h = image_sha256();
        assert_eq!(hash(&mut h, [&b"abc"[..]]), ABC);
        let two = b"abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq";
        assert_eq!(hash(&mut h, [&two[..]]), TWO_BLOCKS);
        assert_eq!(hash(&mut h, [&b"ab"[..], b"c"]), ABC);
    }

    proptest! {
        /// Whichever implementation is built in, it computes sha2's SHA-256, however the input
        /// is split.
        #[test]
        fn image_sha256_is_sha2s_sha256(
            data in proptest::collection::vec(any::<u8>(), 0..700),
            cuts in proptest::collection::vec(any::<usize>(), 0..6),
        ) {
            let mut parts = std::vec::Vec::new();
            let mut rest = data.as_slice();
            for cut in cuts {
                let (a, b) = rest.split_at(cut % (rest.len() + 1));
                parts.push(a);
                rest = b;
            }
            parts.push(rest);
            let expected: [u8; 32] = Sha256::digest(&data).into();
            prop_assert_eq!(hash(&mut image_sha256(), parts), expected);
        }
    }
}
