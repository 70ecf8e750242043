//! The sans-IO container reader: bytes in, verified events out.
//!
//! [`Opener::push`] takes any slice of the container and consumes bytes up to the next event:
//!
//! 1. [`Event::Header`] once the prefix, header and signature are in and the header is verified:
//!    strict parse, signer found by key id, `verify_strict`, then target, security counter, chunk
//!    size against the buffer, encryption policy and content-key unwrap. Nothing before this event
//!    may touch flash, and a caller sees no header field before the signature checked out.
//! 2. [`Event::Chunk`] for each chunk, only after it authenticated (GCM tag, or hash-chain link).
//!    The last chunk is released only after the SHA-256 of the whole image also matched.
//!
//! After the last chunk any further byte is [`Error::TrailingBytes`]. The first error is latched:
//! every later call returns it again.

use sbsfu_format::Header;
use sbsfu_format::chunk::{ChunkCipher, LINK_LEN, TAG_LEN, chain_link, payload_aad};
use sbsfu_format::header::Protection;
use sbsfu_format::layout::Layout;
use sbsfu_format::signed::{SIGNATURE_LEN, SignedMessage};
use sbsfu_format::wrap::unwrap_content_key;

use crate::install::digest::{ImageHasher, ImageSha256, image_sha256};
use zeroize::Zeroize;

use crate::Error;
use crate::install::head::{HeadReader, fill};
use crate::keys::Policy;

/// What a [`Opener::push`] produced.
pub enum Event<'a> {
    /// The head is complete and verified; the header can be trusted.
    Header(&'a Header),
    /// An authenticated chunk of plaintext, to be placed at `offset` in the image.
    Chunk {
        /// Offset of `data` in the image.
        offset: u32,
        /// The plaintext, valid until the next call.
        data: &'a [u8],
        /// Whether this is the last chunk (the image digest has matched).
        last: bool,
    },
}

#[derive(Clone, Copy)]
enum EventKind {
    Header,
    Chunk { offset: u32, len: usize, last: bool },
}

// One instance lives inline in the opener; boxing is not an option without a heap.
#[allow(clippy::large_enum_variant)]
enum Payload {
    Chain { expected: [u8; LINK_LEN] },
    Gcm(ChunkCipher),
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Phase {
    Head,
    Chunks,
    Done,
    Failed(Error),
}

/// Streaming, verifying reader of one container, with a chunk buffer of `N` bytes; the image
/// digest is computed by `H` (SHA-256 in line unless given another [`ImageHasher`]).
pub struct Opener<'p, const N: usize, H: ImageHasher = ImageSha256> {
    policy: &'p Policy<'p>,
    phase: Phase,
    head: HeadReader,
    header: Option<Header>,
    layout: Option<Layout>,
    payload: Option<Payload>,
    hasher: H,
    index: u32,
    body: [u8; N],
    body_have: usize,
    tail: [u8; LINK_LEN],
    tail_have: usize,
    wipe: usize,
}

impl<'p, const N: usize> Opener<'p, N> {
    /// A reader that enforces `policy`.
    pub fn new(policy: &'p Policy<'p>) -> Self {
        Self::with_hasher(policy, image_sha256())
    }
}

impl<'p, const N: usize, H: ImageHasher> Opener<'p, N, H> {
    /// A reader that enforces `policy` and computes the image digest with `hasher`.
    // Never inlined: the reader is mostly its chunk buffer, and built inline it went through a
    // temporary, another copy on a bootloader's stack (1.6 KB measured); out of line, it is
    // built in place, in the caller's slot.
    #[inline(never)]
    pub fn with_hasher(policy: &'p Policy<'p>, hasher: H) -> Self {
        Self {
            policy,
            phase: Phase::Head,
            head: HeadReader::new(),
            header: None,
            layout: None,
            payload: None,
            hasher,
            index: 0,
            body: [0; N],
            body_have: 0,
            tail: [0; LINK_LEN],
            tail_have: 0,
            wipe: 0,
        }
    }

    /// The verified header, once [`Event::Header`] has been produced.
    pub fn header(&self) -> Option<&Header> {
        self.header.as_ref()
    }

    /// The verified head (prefix, header, signature) as signed: for storing next to the image so
    /// that it can be verified again at boot.
    pub fn signed_message(&self) -> Option<(&SignedMessage, &[u8; SIGNATURE_LEN])> {
        self.header
            .as_ref()
            .map(|_| (self.head.message(), self.head.signature()))
    }

    /// True once the last chunk was released: the container is complete and authentic.
    pub fn is_done(&self) -> bool {
        self.phase == Phase::Done
    }

    /// Consumes bytes of `input` up to the next event. Returns how many bytes were used and the
    /// event, if one is ready. Call again with the rest (or an empty slice) until it returns no
    /// event and has used all the input.
    pub fn push(&mut self, input: &[u8]) -> Result<(usize, Option<Event<'_>>), Error> {
        if let Phase::Failed(e) = self.phase {
            return Err(e);
        }
        // The last chunk's plaintext has been handed out: wipe it. (Any other chunk's plaintext
        // is overwritten by the next chunk, which is at least as long, as it arrives; a wipe per
        // chunk would cost a volatile write per byte, 15 % of a host verify.)
        if let Some(b) = self.body.get_mut(..self.wipe) {
            b.zeroize();
        }
        self.wipe = 0;
        let (used, kind) = match self.step(input) {
            Ok(r) => r,
            Err(e) => {
                self.fail(e);
                return Err(e);
            }
        };
        let event = match kind {
            None => None,
            Some(EventKind::Header) => self.header.as_ref().map(Event::Header),
            Some(EventKind::Chunk { offset, len, last }) => {
                if last {
                    self.wipe = len;
                }
                Some(Event::Chunk {
                    offset,
                    data: self.body.get(..len).unwrap_or(&[]),
                    last,
                })
            }
        };
        Ok((used, event))
    }

    fn fail(&mut self, e: Error) {
        self.phase = Phase::Failed(e);
        self.payload = None;
        self.body.zeroize();
    }

    fn step(&mut self, input: &[u8]) -> Result<(usize, Option<EventKind>), Error> {
        let mut used = 0usize;
        loop {
            let rest = input.get(used..).unwrap_or(&[]);
            match self.phase {
                Phase::Failed(e) => return Err(e),
                Phase::Done => {
                    return if rest.is_empty() {
                        Ok((used, None))
                    } else {
                        Err(Error::TrailingBytes)
                    };
                }
                Phase::Head => {
                    used = used.saturating_add(self.head.push(rest)?);
                    if !self.head.is_complete() {
                        return Ok((used, None));
                    }
                    self.verify_head()?;
                    self.phase = Phase::Chunks;
                    return Ok((used, Some(EventKind::Header)));
                }
                Phase::Chunks => {
                    let layout = self.layout.ok_or(Error::Truncated)?;
                    let want_body =
                        usize::try_from(layout.plain_len(self.index)).unwrap_or(usize::MAX);
                    let want_tail = layout.tail_len(self.index);
                    let mut n = fill(&mut self.body, &mut self.body_have, want_body, rest);
                    if self.body_have == want_body {
                        let tail_src = rest.get(n..).unwrap_or(&[]);
                        n = n.saturating_add(fill(
                            &mut self.tail,
                            &mut self.tail_have,
                            want_tail,
                            tail_src,
                        ));
                    }
                    used = used.saturating_add(n);
                    if self.body_have == want_body && self.tail_have == want_tail {
                        return self.open_chunk(layout).map(|k| (used, Some(k)));
                    }
                    if n == 0 {
                        return Ok((used, None));
                    }
                }
            }
        }
    }

    /// Everything that must hold before a single byte may be written anywhere.
    ///
    /// Not inlined, and split in two: the signature check runs Ed25519, the deepest stack of a
    /// bootloader, and the payload set-up builds the cipher; neither frame then sits on top of
    /// the other, nor on top of `push`.
    #[inline(never)]
    fn verify_head(&mut self) -> Result<(), Error> {
        let header = self.head.verify(self.policy)?;
        self.prepare_payload(header)
    }

    #[inline(never)]
    fn prepare_payload(&mut self, header: Header) -> Result<(), Error> {
        let capacity = u32::try_from(N).unwrap_or(u32::MAX);
        if header.chunk_size > capacity {
            return Err(Error::ChunkTooLarge {
                chunk_size: header.chunk_size,
                capacity,
            });
        }
        let payload = match &header.protection {
            Protection::SignedOnly { chain_head } => Payload::Chain {
                expected: *chain_head,
            },
            Protection::Aes256Gcm(enc) => {
                let device_key = self.policy.device_key(enc.device_key)?;
                let content_key = unwrap_content_key(device_key, enc)?;
                Payload::Gcm(ChunkCipher::new(
                    &content_key,
                    enc.nonce_prefix,
                    payload_aad(&header)?,
                ))
            }
        };
        self.layout = Some(Layout::of(&header)?);
        self.payload = Some(payload);
        self.header = Some(header);
        Ok(())
    }

    /// Authenticates the buffered chunk; on success its plaintext is in `body`.
    fn open_chunk(&mut self, layout: Layout) -> Result<EventKind, Error> {
        let index = self.index;
        let last = layout.is_last(index);
        let len = self.body_have;
        let body = self.body.get_mut(..len).ok_or(Error::Truncated)?;
        match self.payload.as_mut().ok_or(Error::Truncated)? {
            Payload::Chain { expected } => {
                let next = if last { None } else { Some(&self.tail) };
                if chain_link(index, body, next) != *expected {
                    return Err(Error::Authentication);
                }
                *expected = self.tail;
            }
            Payload::Gcm(cipher) => {
                let mut tag = [0u8; TAG_LEN];
                tag.copy_from_slice(self.tail.get(..TAG_LEN).ok_or(Error::Truncated)?);
                cipher.open(index, last, body, &tag)?;
            }
        }
        self.hasher.update(body);
        if last {
            let digest = self.hasher.finalize_reset();
            let expected = self.header.as_ref().map(|h| h.digest);
            if Some(digest) != expected {
                return Err(Error::Authentication);
            }
            self.phase = Phase::Done;
            self.payload = None;
        }
        self.index = index.saturating_add(1);
        self.body_have = 0;
        self.tail_have = 0;
        Ok(EventKind::Chunk {
            offset: layout.plain_offset(index),
            len,
            last,
        })
    }
}

impl<const N: usize, H: ImageHasher> Drop for Opener<'_, N, H> {
    fn drop(&mut self) {
        self.body.zeroize();
    }
}
