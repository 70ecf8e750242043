//! The double's containers: an sbsfu prefix, a header of the double's own and a stand-in
//! signature (a keyed CRC), and how its `begin` checks them.

use std::vec::Vec;

use sbsfu_format::{MAGIC, PREFIX_LEN, Prefix, SIGNATURE_LEN};

use crate::ContainerId;
use crate::frame::crc32c;
use crate::{ErrorCode, Refusal};

/// The key of the double's stand-in signature.
const SIM_KEY: &[u8] = b"sbsfu-link test double";

/// Header bytes the double's containers carry: container length, payload CRC, filler.
pub(super) const SIM_HEADER_LEN: usize = 24;

fn fake_signature(prefix_and_header: &[u8]) -> [u8; SIGNATURE_LEN] {
    let mut sig = [0u8; SIGNATURE_LEN];
    for (i, word) in sig.chunks_mut(4).enumerate() {
        let mut input = Vec::with_capacity(prefix_and_header.len() + SIM_KEY.len() + 4);
        input.extend_from_slice(&(i as u32).to_be_bytes());
        input.extend_from_slice(SIM_KEY);
        input.extend_from_slice(prefix_and_header);
        word.copy_from_slice(&crc32c(&input).to_be_bytes());
    }
    sig
}

/// A container the double accepts: an sbsfu prefix, a header holding the length and the
/// payload's CRC, the stand-in signature, and `len` bytes in all of pseudo-random payload
/// (from `seed`, so that two seeds give two different containers).
pub fn container(len: usize, seed: u64) -> Vec<u8> {
    let head_len = PREFIX_LEN + SIM_HEADER_LEN + SIGNATURE_LEN;
    assert!(len >= head_len, "a container is at least its head");
    let mut rng = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let payload: Vec<u8> = (0..len - head_len)
        .map(|_| {
            rng ^= rng << 13;
            rng ^= rng >> 7;
            rng ^= rng << 17;
            rng as u8
        })
        .collect();
    let mut c = Vec::with_capacity(len);
    c.extend_from_slice(
        &Prefix {
            header_len: SIM_HEADER_LEN as u16,
        }
        .encode(),
    );
    c.extend_from_slice(&(len as u32).to_be_bytes());
    c.extend_from_slice(&crc32c(&payload).to_be_bytes());
    c.extend_from_slice(&seed.to_be_bytes());
    c.extend_from_slice(&[0x5A; SIM_HEADER_LEN - 16]);
    let sig = fake_signature(&c);
    c.extend_from_slice(&sig);
    c.extend_from_slice(&payload);
    c
}

/// Checks a head the way the double's `begin` does: returns its id and declared length.
pub(super) fn check_head(head: &[u8]) -> Result<(ContainerId, u32, u32), Refusal> {
    let format = |t| Refusal::new(ErrorCode::FORMAT, t);
    if !head.starts_with(&MAGIC) {
        return Err(format("not an sbsfu container"));
    }
    let prefix = Prefix::parse(head).map_err(|e| format(e.as_str()))?;
    let header_len = usize::from(prefix.header_len);
    if head.len() != PREFIX_LEN + header_len + SIGNATURE_LEN || header_len < 8 {
        return Err(format("head length does not match its prefix"));
    }
    let (signed, sig) = head.split_at(PREFIX_LEN + header_len);
    if fake_signature(signed) != sig {
        return Err(Refusal::new(
            ErrorCode::AUTHENTICATION,
            "authentication failed (signature, chunk or digest)",
        ));
    }
    let header = &signed[PREFIX_LEN..];
    let len = u32::from_be_bytes(header[..4].try_into().unwrap());
    let payload_crc = u32::from_be_bytes(header[4..8].try_into().unwrap());
    // The id is the real one: it names, it proves nothing, so the double needs no stand-in.
    Ok((ContainerId::of(head, &[]), len, payload_crc))
}
