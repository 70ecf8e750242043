//! Chunk protection: AES-256-GCM in the STREAM construction, or a SHA-256 hash chain.
//!
//! STREAM (Hoang, Reyhanitabar, Rogaway, Vizár; as in age and aead-stream's `StreamBE32`): chunk
//! `i` is sealed under the content key with nonce `prefix(7) || BE32(i) || last(1)` and
//! [`payload_aad`] of the signed header as associated data. Reordering changes `i`, dropping or truncating loses
//! the final flag, extending adds a chunk after the final one, and splicing from another container
//! changes the key and the associated data: each fails to authenticate.
//!
//! Signed-only payloads have no secret to authenticate with, so each chunk carries the link of the
//! next one, and the link of chunk 0 is signed in the header: a receiver checks every chunk against
//! a hash it already trusts before using a byte of it.

use aes_gcm::aead::{AeadInOut, KeyInit};
use aes_gcm::{Aes256Gcm, Nonce, Tag};
use sha2::{Digest, Sha256};

use crate::Error;
use crate::header::Header;
use crate::keys::ContentKey;
use crate::signed::SignedMessage;

/// Length of a GCM tag.
pub const TAG_LEN: usize = 16;
/// Length of a hash-chain link.
pub const LINK_LEN: usize = 32;
/// Length of the STREAM nonce prefix.
pub const NONCE_PREFIX_LEN: usize = 7;
/// Domain separation for hash-chain links.
pub const CHAIN_CONTEXT: &[u8] = b"sbsfu/v1/chain-link";

/// The associated data of every chunk: SHA-256 of the signed message of `header` (`message`,
/// as signed) with its digest field set to zero.
///
/// This binds each chunk to every header field (target, version, region, wrapped key, nonce
/// prefix, ...) while letting a signer seal chunks in the same pass that computes the digest;
/// the digest itself is checked against the whole plaintext at the end. It is hashed from the
/// signed bytes, which hold what a [`Header`] does not (an HPKE header's wraps).
pub fn payload_aad(header: &Header, message: &SignedMessage) -> Result<[u8; 32], Error> {
    message.digest_zeroing(header, false)
}

/// The STREAM nonce of chunk `index`.
pub fn stream_nonce(prefix: &[u8; NONCE_PREFIX_LEN], index: u32, last: bool) -> [u8; 12] {
    let mut n = [0u8; 12];
    let (p, rest) = n.split_at_mut(NONCE_PREFIX_LEN);
    p.copy_from_slice(prefix);
    let (i, flag) = rest.split_at_mut(4);
    i.copy_from_slice(&index.to_be_bytes());
    flag.iter_mut().for_each(|f| *f = u8::from(last));
    n
}

/// Seals and opens the chunks of one encrypted payload.
///
/// Holds the expanded content key; it is wiped when dropped (aes-gcm's `zeroize` feature).
pub struct ChunkCipher {
    aead: Aes256Gcm,
    prefix: [u8; NONCE_PREFIX_LEN],
    aad: [u8; 32],
}

impl ChunkCipher {
    /// A cipher for the payload under `key`, bound to a header by `aad` ([`payload_aad`]).
    pub fn new(key: &ContentKey, prefix: [u8; NONCE_PREFIX_LEN], aad: [u8; 32]) -> Self {
        Self {
            aead: Aes256Gcm::new(key.as_bytes().into()),
            prefix,
            aad,
        }
    }

    /// Encrypts chunk `index` in place and returns its tag.
    pub fn seal(&self, index: u32, last: bool, buf: &mut [u8]) -> Result<[u8; TAG_LEN], Error> {
        let nonce = stream_nonce(&self.prefix, index, last);
        self.aead
            .encrypt_inout_detached(&Nonce::from(nonce), &self.aad, buf.into())
            .map(Into::into)
            .map_err(|_| Error::BufferTooSmall)
    }

    /// Authenticates and decrypts chunk `index` in place. On failure the buffer holds no
    /// plaintext (GCM checks the tag before decrypting).
    pub fn open(
        &self,
        index: u32,
        last: bool,
        buf: &mut [u8],
        tag: &[u8; TAG_LEN],
    ) -> Result<(), Error> {
        let nonce = stream_nonce(&self.prefix, index, last);
        self.aead
            .decrypt_inout_detached(&Nonce::from(nonce), &self.aad, buf.into(), &Tag::from(*tag))
            .map_err(|_| Error::Authentication)
    }
}

/// The link of chunk `index` in a signed-only payload:
/// `SHA-256(CHAIN_CONTEXT || BE32(index) || BE32(len) || last || data || next)`, where `next`
/// is the link of chunk `index + 1`, absent for the last chunk.
pub fn chain_link(index: u32, data: &[u8], next: Option<&[u8; LINK_LEN]>) -> [u8; LINK_LEN] {
    let len = u32::try_from(data.len()).unwrap_or(u32::MAX);
    let mut h = Sha256::new()
        .chain_update(CHAIN_CONTEXT)
        .chain_update(index.to_be_bytes())
        .chain_update(len.to_be_bytes())
        .chain_update([u8::from(next.is_none())])
        .chain_update(data);
    if let Some(next) = next {
        h.update(next);
    }
    h.finalize().into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nonce_layout() {
        let n = stream_nonce(&[1, 2, 3, 4, 5, 6, 7], 0x0a0b0c0d, true);
        assert_eq!(n, [1, 2, 3, 4, 5, 6, 7, 0x0a, 0x0b, 0x0c, 0x0d, 1]);
        assert_eq!(stream_nonce(&[0; 7], 1, false)[11], 0);
    }

    /// AES-256-GCM known answer (key 00..1f, nonce prefix a0..a6, chunk 0 last, AAD 32 x 0x5a,
    /// plaintext "sbsfu"), computed independently with Python's `cryptography` package.
    const KAT_CIPHERTEXT: [u8; 5] = hex_literal::hex!("04033a78cd");
    const KAT_TAG: [u8; 16] = hex_literal::hex!("f5fc862e8a24aebbb6c0fc2c253caec9");

    #[test]
    fn seal_known_answer_and_open() {
        let key = ContentKey::from_bytes(core::array::from_fn(|i| i as u8));
        let prefix = [0xa0, 0xa1, 0xa2, 0xa3, 0xa4, 0xa5, 0xa6];
        let c = ChunkCipher::new(&key, prefix, [0x5a; 32]);
        let mut buf = *b"sbsfu";
        let tag = c.seal(0, true, &mut buf).unwrap();
        assert_eq!(buf, KAT_CIPHERTEXT);
        assert_eq!(tag, KAT_TAG);
        // Wrong index, wrong flag, wrong tag: all fail and leave no plaintext.
        for (i, last) in [(1, true), (0, false)] {
            let mut b = buf;
            assert_eq!(c.open(i, last, &mut b, &tag), Err(Error::Authentication));
            assert_eq!(b, KAT_CIPHERTEXT);
        }
        let other = ChunkCipher::new(&key, prefix, [0x5b; 32]);
        assert_eq!(
            other.open(0, true, &mut buf.clone(), &tag),
            Err(Error::Authentication)
        );
        c.open(0, true, &mut buf, &tag).unwrap();
        assert_eq!(&buf, b"sbsfu");
    }

    #[test]
    fn chain_links_commit_to_index_data_and_next() {
        let a = chain_link(0, b"x", None);
        assert_ne!(a, chain_link(1, b"x", None));
        assert_ne!(a, chain_link(0, b"y", None));
        assert_ne!(a, chain_link(0, b"x", Some(&[0; 32])));
        assert_ne!(
            chain_link(0, b"x", Some(&[0; 32])),
            chain_link(0, b"x", Some(&[1; 32]))
        );
        // Known answer, computed independently with Python's hashlib.
        assert_eq!(
            a,
            hex_literal::hex!("b11dcdc7aef652588fccf03823b4379708de71daf545f1a6e6ff3f86854247f1")
        );
    }
}
