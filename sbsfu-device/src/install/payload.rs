//! How the chunks of a payload are authenticated: the one place that knows the protection
//! schemes. A new scheme (a crypto suite: HPKE, say) is a new `Protection` in the format, a
//! variant here, and the lookup of its key in [`Policy`].

use sbsfu_format::Protection;
use sbsfu_format::{ChunkCipher, LINK_LEN, TAG_LEN, chain_link, payload_aad};
use sbsfu_format::{Header, SignedMessage};
use sbsfu_format::{hpke_wrap_aad, unwrap_content_key, unwrap_from_recipient};

use crate::Error;
use crate::keys::Policy;

/// The longest wire tail of a chunk: a GCM tag or the next chunk's link.
pub(super) const MAX_TAIL: usize = if TAG_LEN > LINK_LEN {
    TAG_LEN
} else {
    LINK_LEN
};

/// What authenticates the chunks of one payload.
// One instance lives inline in the opener; boxing is not an option without a heap.
#[allow(clippy::large_enum_variant)]
pub(super) enum Payload {
    /// Signed only: each chunk must hash to the link the previous one (or the header) gave.
    Chain { expected: [u8; LINK_LEN] },
    /// AES-256-GCM STREAM under the content key.
    Gcm(ChunkCipher),
}

impl Payload {
    /// The scheme `header` names, with its key: for an encrypted payload, the content key
    /// unwrapped with the device key the header names (by key id) among `policy`'s, or
    /// decapsulated (HPKE) with the X25519 key of the recipient that names this device, its
    /// entry read from `message` (the signed bytes of `header`).
    pub(super) fn for_header(
        header: &Header,
        message: &SignedMessage,
        policy: &Policy<'_>,
    ) -> Result<Self, Error> {
        Ok(match &header.protection {
            Protection::SignedOnly { chain_head } => Payload::Chain {
                expected: *chain_head,
            },
            Protection::Aes256Gcm(enc) => {
                let device_key = policy.device_key(enc.device_key)?;
                let content_key = unwrap_content_key(device_key, enc)?;
                Payload::Gcm(ChunkCipher::new(
                    &content_key,
                    enc.nonce_prefix,
                    payload_aad(header, message)?,
                ))
            }
            Protection::Hpke(hpke) => {
                // This device's recipient entry by key id, then HPKE decapsulation: the same
                // payload from here on.
                let (device_key, public, index) = policy.recipient(hpke)?;
                let recipient = header
                    .recipient(message.header_bytes(), index)
                    .ok_or(Error::Format(sbsfu_format::Error::MalformedHeader))?;
                let aad = hpke_wrap_aad(header, message)?;
                let content_key = unwrap_from_recipient(device_key, &public, &recipient, &aad)?;
                Payload::Gcm(ChunkCipher::new(
                    &content_key,
                    hpke.nonce_prefix,
                    payload_aad(header, message)?,
                ))
            }
        })
    }

    /// Authenticates chunk `index` (`body`, followed on the wire by `tail`): on success `body`
    /// holds its plaintext; on failure, no plaintext.
    // Never inlined: the hash-chain link's frame then stays off the path to Ed25519 (through
    // the opener's `push`), the deepest stack of a bootloader.
    #[inline(never)]
    pub(super) fn open(
        &mut self,
        index: u32,
        last: bool,
        body: &mut [u8],
        tail: &[u8; MAX_TAIL],
    ) -> Result<(), Error> {
        match self {
            Payload::Chain { expected } => {
                let next = tail.first_chunk::<LINK_LEN>().filter(|_| !last);
                if chain_link(index, body, next) != *expected {
                    return Err(Error::Authentication);
                }
                *expected = next.copied().unwrap_or_default();
            }
            Payload::Gcm(cipher) => {
                let tag = tail.first_chunk::<TAG_LEN>().ok_or(Error::Authentication)?;
                cipher.open(index, last, body, tag)?;
            }
        }
        Ok(())
    }
}
