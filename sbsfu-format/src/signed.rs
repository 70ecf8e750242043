//! What the Ed25519 signature covers, and the parsed signed head of a container.
//!
//! The signed message is [`SIGNATURE_CONTEXT`] followed by the exact prefix and header bytes as
//! they appear in the container: the bytes are never re-serialized before verifying. The context
//! keeps a container signature from being valid for anything else signed by the same key.

use ed25519_dalek::{Signature, Signer, SigningKey, VerifyingKey};
use sha2::{Digest, Sha256};

use crate::Error;
use crate::header::{
    DIGEST_LEN, EntryTable, Header, MAX_HEADER_LEN, MAX_RECIPIENTS, Recipient, WRAP_LEN,
};
use crate::hex::hex_id_fmt;
use crate::prefix::{PREFIX_LEN, Prefix};
use crate::reader::Reader;
use crate::writer::Writer;

/// Domain separation prepended to the signed bytes (25 bytes plus a NUL).
pub const SIGNATURE_CONTEXT: &[u8; 26] = b"sbsfu/v1/container-header\0";
/// Length of an Ed25519 signature.
pub const SIGNATURE_LEN: usize = 64;
/// Upper bound on the signed message.
pub const MAX_SIGNED_MESSAGE_LEN: usize = SIGNATURE_CONTEXT.len() + PREFIX_LEN + MAX_HEADER_LEN;
/// Upper bound on prefix, header and signature together: the most a device buffers before the
/// payload starts.
pub const MAX_HEAD_LEN: usize = PREFIX_LEN + MAX_HEADER_LEN + SIGNATURE_LEN;

/// A container's id: the SHA-256 of its signed head (prefix, header, signature). It names a
/// container across a link, a resumed transfer and a stager's slot; it proves nothing (anyone
/// can hash a head). Displayed in lowercase hex.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct ContainerId(pub [u8; 32]);

impl ContainerId {
    /// The id of the head `body` (prefix and header) followed by `signature`, given in the two
    /// parts a head reader holds (or the whole head as `body` and an empty `signature`).
    pub fn of(body: &[u8], signature: &[u8]) -> Self {
        ContainerId(
            Sha256::new()
                .chain_update(body)
                .chain_update(signature)
                .finalize()
                .into(),
        )
    }
}

hex_id_fmt!(ContainerId);

/// A domain-separation context followed by appended bytes, in one fixed buffer: what an
/// Ed25519 signature covers, verifiable with `verify_strict` without a copy.
#[derive(Clone)]
pub(crate) struct ContextBuf<const N: usize> {
    buf: [u8; N],
    context_len: usize,
    len: usize,
}

impl<const N: usize> ContextBuf<N> {
    /// A buffer holding only `context` (which must fit).
    pub(crate) fn new(context: &[u8]) -> Self {
        let mut buf = [0u8; N];
        buf.iter_mut()
            .zip(context.iter())
            .for_each(|(o, c)| *o = *c);
        let len = context.len().min(N);
        Self {
            buf,
            context_len: len,
            len,
        }
    }

    /// Appends bytes.
    pub(crate) fn extend(&mut self, bytes: &[u8]) -> Result<(), Error> {
        let mut w = Writer::at(&mut self.buf, self.len);
        w.put(bytes)?;
        self.len = w.at;
        Ok(())
    }

    /// Everything: context and appended bytes.
    pub(crate) fn as_bytes(&self) -> &[u8] {
        self.buf.get(..self.len).unwrap_or(&[])
    }

    /// The appended bytes alone.
    pub(crate) fn body(&self) -> &[u8] {
        self.buf.get(self.context_len..self.len).unwrap_or(&[])
    }
}

/// The signed message: context, prefix, header, held in one fixed buffer so that it can be
/// verified with `verify_strict` without a copy.
#[derive(Clone)]
pub struct SignedMessage {
    inner: ContextBuf<MAX_SIGNED_MESSAGE_LEN>,
}

impl Default for SignedMessage {
    fn default() -> Self {
        Self::new()
    }
}

impl SignedMessage {
    /// A message holding only the context; append the prefix and header with [`Self::extend`].
    pub fn new() -> Self {
        Self {
            inner: ContextBuf::new(SIGNATURE_CONTEXT),
        }
    }

    /// The message for `header`: context, prefix, canonical header encoding (an HPKE header's
    /// wraps zero: [`Header::encode`]).
    pub fn for_header(header: &Header) -> Result<Self, Error> {
        Self::for_header_with(header, &[])
    }

    /// The message for `header` with its recipients' entries `wraps` ([`Header::encode_with`]).
    pub fn for_header_with(header: &Header, wraps: &[Recipient]) -> Result<Self, Error> {
        let mut enc = [0u8; MAX_HEADER_LEN];
        let bytes = header.encode_with(wraps, &mut enc)?;
        let header_len = u16::try_from(bytes.len()).map_err(|_| Error::BufferTooSmall)?;
        let mut m = Self::new();
        m.extend(&Prefix { header_len }.encode())?;
        m.extend(bytes)?;
        Ok(m)
    }

    /// Appends bytes (a streaming receiver adds the prefix and header as they arrive).
    pub fn extend(&mut self, bytes: &[u8]) -> Result<(), Error> {
        self.inner.extend(bytes)
    }

    /// Bytes appended after the context so far (prefix and header).
    pub fn body_len(&self) -> usize {
        self.inner.body().len()
    }

    /// The whole message, as signed: the "to be signed" bytes for an external signer.
    pub fn as_bytes(&self) -> &[u8] {
        self.inner.as_bytes()
    }

    /// The prefix and header, as they appear in the container.
    pub fn container_bytes(&self) -> &[u8] {
        self.inner.body()
    }

    /// The header bytes alone.
    pub fn header_bytes(&self) -> &[u8] {
        self.container_bytes().get(PREFIX_LEN..).unwrap_or(&[])
    }

    /// SHA-256 of the whole signed message.
    pub fn digest(&self) -> [u8; 32] {
        Sha256::digest(self.as_bytes()).into()
    }

    /// SHA-256 of the whole message with `header`'s digest field, and with `wraps` also every
    /// recipient's wrap (all but the key id of each HPKE entry), read as zeros: the associated
    /// data of the chunks and of the HPKE wraps, hashed from the bytes as signed, without a
    /// copy. `header` must be the header of this message: if its digest is not where it says,
    /// [`Error::MalformedHeader`].
    pub(crate) fn digest_zeroing(&self, header: &Header, wraps: bool) -> Result<[u8; 32], Error> {
        const ZEROS: [u8; WRAP_LEN] = [0; WRAP_LEN];
        let bad = Error::MalformedHeader;
        let all = self.as_bytes();
        let len = self.header_bytes().len();
        let base = all.len().checked_sub(len).ok_or(bad)?;
        let at = |offset: Option<usize>| offset.and_then(|o| o.checked_add(base)).ok_or(bad);
        let digest = at(header.digest_offset(len))?;
        let found = all
            .get(digest..)
            .and_then(|d| d.first_chunk::<DIGEST_LEN>());
        if found != Some(&header.digest) {
            return Err(bad);
        }
        // What is read as zeros, in message order: the digest, then each wrap.
        let mut zeros = [(digest, DIGEST_LEN); 1 + MAX_RECIPIENTS];
        let mut n = 1usize;
        if let Some(t) = EntryTable::of(header, len).filter(|_| wraps) {
            for (i, z) in zeros.iter_mut().skip(1).take(t.count()).enumerate() {
                *z = (at(t.wrap(i))?, WRAP_LEN);
                n = n.saturating_add(1);
            }
        }
        // One call site of the hash update (a bootloader's flash).
        #[inline(never)]
        fn absorb(h: &mut Sha256, bytes: &[u8]) {
            h.update(bytes);
        }
        let mut h = Sha256::new();
        let mut from = 0usize;
        let last = (all.len(), 0);
        for (start, zero_len) in zeros.get(..n).unwrap_or_default().iter().chain([&last]) {
            absorb(&mut h, all.get(from..*start).ok_or(bad)?);
            absorb(&mut h, ZEROS.get(..*zero_len).ok_or(bad)?);
            from = start.saturating_add(*zero_len);
        }
        Ok(h.finalize().into())
    }

    /// Signs the message (host side).
    pub fn sign(&self, key: &SigningKey) -> [u8; SIGNATURE_LEN] {
        key.sign(self.as_bytes()).to_bytes()
    }

    /// Verifies `signature` with `verify_strict` (rejects small-order keys and points and
    /// non-canonical scalars). Every failure is [`Error::Authentication`].
    pub fn verify(&self, key: &VerifyingKey, signature: &[u8; SIGNATURE_LEN]) -> Result<(), Error> {
        key.verify_strict(self.as_bytes(), &Signature::from_bytes(signature))
            .map_err(|_| Error::Authentication)
    }
}

/// The head of a container: its signed message, parsed header and signature.
#[derive(Clone)]
pub struct SignedHeader {
    /// Context, prefix and header bytes.
    pub message: SignedMessage,
    /// The parsed header. Not to be trusted before [`SignedHeader::verify`] succeeds.
    pub header: Header,
    /// The Ed25519 signature.
    pub signature: [u8; SIGNATURE_LEN],
}

impl SignedHeader {
    /// Parses the head at the start of `bytes`, returning it and how many bytes it spans.
    /// The payload that follows is not looked at.
    pub fn parse(bytes: &[u8]) -> Result<(Self, usize), Error> {
        let mut r = Reader::new(bytes);
        let prefix_bytes = r.take(PREFIX_LEN.min(bytes.len()))?;
        let prefix = Prefix::parse(prefix_bytes)?;
        let header_bytes = r.take(usize::from(prefix.header_len))?;
        let header = Header::parse(header_bytes)?;
        let signature = r.take_array::<SIGNATURE_LEN>()?;
        let mut message = SignedMessage::new();
        message.extend(prefix_bytes)?;
        message.extend(header_bytes)?;
        let used = bytes.len().saturating_sub(r.rest().len());
        Ok((
            Self {
                message,
                header,
                signature,
            },
            used,
        ))
    }

    /// Verifies the signature under `key`.
    pub fn verify(&self, key: &VerifyingKey) -> Result<(), Error> {
        self.message.verify(key, &self.signature)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::header::Protection;
    use crate::header::tests::sample;

    fn header() -> Header {
        sample(Protection::SignedOnly {
            chain_head: [0; 32],
        })
    }

    #[test]
    fn a_container_id_is_the_sha256_of_the_whole_head_and_prints_as_hex() {
        let head = [7u8; 200];
        let whole = ContainerId::of(&head, &[]);
        assert_eq!(whole.0, <[u8; 32]>::from(Sha256::digest(head)));
        assert_eq!(ContainerId::of(&head[..136], &head[136..]), whole);
        let mut id = [0u8; 32];
        id[0] = 0xAB;
        id[31] = 0x01;
        let s = std::format!("{}", ContainerId(id));
        assert_eq!(s.len(), 64);
        assert!(s.starts_with("ab00") && s.ends_with("0001"));
        assert_eq!(
            std::format!("{:?}", ContainerId(id)),
            std::format!("ContainerId({s})")
        );
    }

    #[test]
    fn message_is_context_prefix_header() {
        let h = header();
        let m = SignedMessage::for_header(&h).unwrap();
        let mut enc = [0u8; MAX_HEADER_LEN];
        let hb = h.encode(&mut enc).unwrap();
        assert!(m.as_bytes().starts_with(SIGNATURE_CONTEXT));
        assert_eq!(m.header_bytes(), hb);
        assert_eq!(
            &m.container_bytes()[..PREFIX_LEN],
            &Prefix {
                header_len: hb.len() as u16
            }
            .encode()
        );
    }

    #[test]
    fn sign_verify_and_any_flip_fails() {
        let key = SigningKey::from_bytes(&[7u8; 32]);
        let (m, sig) = {
            let m = SignedMessage::for_header(&header()).unwrap();
            let s = m.sign(&key);
            (m, s)
        };
        assert!(m.verify(&key.verifying_key(), &sig).is_ok());
        for i in 0..SIGNATURE_LEN {
            let mut bad = sig;
            bad[i] ^= 1;
            assert_eq!(
                m.verify(&key.verifying_key(), &bad),
                Err(Error::Authentication)
            );
        }
        let other = SigningKey::from_bytes(&[8u8; 32]).verifying_key();
        assert_eq!(m.verify(&other, &sig), Err(Error::Authentication));
    }
}
