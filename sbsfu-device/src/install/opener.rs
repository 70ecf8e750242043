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
//! every later call returns it again. The reader's state is its phase, which carries what that
//! phase has (the verified header, the chunking, the chunk authenticator): nothing is optional.

use sbsfu_format::Header;
use sbsfu_format::PayloadLayout;
use sbsfu_format::{LINK_LEN, SIGNATURE_LEN, SignedMessage};
use zeroize::Zeroize;

use super::digest::{ImageHasher, ImageSha256, image_sha256};
use super::head::{HeadReader, fill};
use super::payload::{MAX_TAIL, Payload};
use crate::Error;
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

/// Where the reader is, with what it knows there.
// One instance lives inline in the opener; boxing is not an option without a heap.
#[allow(clippy::large_enum_variant)]
enum Phase {
    /// Buffering the head (in the opener's [`HeadReader`]).
    Head,
    /// The head verified, and where its payload stands.
    Open { header: Header, payload: Stream },
    /// The first error, returned again by every later call.
    Failed(Error),
}

/// The payload of a verified head. (Nested, so that the header stays where it is when the last
/// chunk is released.)
#[allow(clippy::large_enum_variant)]
enum Stream {
    /// Chunk `index` is arriving.
    Chunks {
        layout: PayloadLayout,
        auth: Payload,
        index: u32,
    },
    /// The last chunk was released: the container is complete and authentic.
    Done,
}

/// Streaming, verifying reader of one container, with a chunk buffer of `N` bytes; the image
/// digest is computed by `H` (SHA-256 in line unless given another [`ImageHasher`]).
pub struct Opener<'p, const N: usize, H: ImageHasher = ImageSha256> {
    policy: &'p Policy<'p>,
    phase: Phase,
    head: HeadReader,
    hasher: H,
    body: [u8; N],
    body_have: usize,
    tail: [u8; MAX_TAIL],
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
            hasher,
            body: [0; N],
            body_have: 0,
            tail: [0; MAX_TAIL],
            tail_have: 0,
            wipe: 0,
        }
    }

    /// The verified header, once [`Event::Header`] has been produced (and until an error).
    pub fn header(&self) -> Option<&Header> {
        match &self.phase {
            Phase::Open { header, .. } => Some(header),
            Phase::Head | Phase::Failed(_) => None,
        }
    }

    /// Once the last chunk was released (the container is complete and authentic): the
    /// verified header, and the head as signed (prefix and header, then the signature), to store
    /// next to the image and verify both again at boot. Until then the latched error, or
    /// [`Error::Truncated`] while the container has not ended.
    pub fn finished(&self) -> Result<(&Header, &SignedMessage, &[u8; SIGNATURE_LEN]), Error> {
        match &self.phase {
            Phase::Open {
                header,
                payload: Stream::Done,
            } => Ok((header, self.head.message(), self.head.signature())),
            Phase::Failed(e) => Err(*e),
            Phase::Head | Phase::Open { .. } => Err(Error::Truncated),
        }
    }

    /// Where the payload stands once the head verified: the chunk arriving next and, for a
    /// signed-only payload, the link that chunk must hash to. `None` before the head, after
    /// the last chunk, after an error, or while part of a chunk is buffered (a resumable
    /// install records its progress only between chunks).
    pub(crate) fn position(&self) -> Option<(u32, [u8; LINK_LEN])> {
        let Phase::Open {
            payload: Stream::Chunks { auth, index, .. },
            ..
        } = &self.phase
        else {
            return None;
        };
        if self.body_have > 0 || self.tail_have > 0 {
            return None;
        }
        let link = match auth {
            Payload::Chain { expected } => *expected,
            Payload::Gcm(_) => [0; LINK_LEN],
        };
        Some((*index, link))
    }

    /// Moves a reader whose head verified (and which has read no payload byte) to chunk
    /// `index`, as a resumed install does: the STREAM position is the chunk index, a
    /// signed-only payload's next `link` was recorded with the progress, and `plaintext`
    /// feeds the image digest with every byte before that chunk (read back from flash).
    /// Chunks before `index` are not authenticated again (their ciphertext is gone): the image
    /// digest, checked when the last chunk arrives, covers them.
    pub(crate) fn resume_at<F>(
        &mut self,
        index: u32,
        link: [u8; LINK_LEN],
        plaintext: F,
    ) -> Result<(), Error>
    where
        F: FnOnce(&mut dyn FnMut(&[u8])) -> Result<(), Error>,
    {
        let Phase::Open {
            payload:
                Stream::Chunks {
                    layout,
                    auth,
                    index: at,
                },
            ..
        } = &mut self.phase
        else {
            return Err(Error::Truncated);
        };
        if *at != 0 || self.body_have > 0 || self.tail_have > 0 || index >= layout.chunk_count() {
            return Err(Error::Truncated);
        }
        if let Payload::Chain { expected } = auth
            && index > 0
        {
            *expected = link;
        }
        *at = index;
        let hasher = &mut self.hasher;
        plaintext(&mut |bytes| hasher.update(bytes))
    }

    /// The layout of the payload, once the head verified.
    pub(crate) fn layout(&self) -> Option<PayloadLayout> {
        match &self.phase {
            Phase::Open {
                payload: Stream::Chunks { layout, .. },
                ..
            } => Some(*layout),
            _ => None,
        }
    }

    /// Latches `e` (an error of whoever drives the reader, programming flash say): every later
    /// call returns it, and the plaintext buffer and the payload keys are wiped.
    pub fn fail(&mut self, e: Error) -> Error {
        if let Phase::Failed(first) = self.phase {
            return first;
        }
        self.set_phase(Phase::Failed(e));
        self.body.zeroize();
        e
    }

    /// Consumes bytes of `input` up to the next event. Returns how many bytes were used and the
    /// event, if one is ready. Call again with the rest (or an empty slice) until it returns no
    /// event and has used all the input.
    pub fn push(&mut self, input: &[u8]) -> Result<(usize, Option<Event<'_>>), Error> {
        // The last chunk's plaintext has been handed out: wipe it. (Any other chunk's plaintext
        // is overwritten by the next chunk, which is at least as long, as it arrives; a wipe per
        // chunk would cost a volatile write per byte, 15 % of a host verify.)
        if let Some(b) = self.body.get_mut(..self.wipe) {
            b.zeroize();
        }
        self.wipe = 0;
        let (used, kind) = self.step(input).map_err(|e| self.fail(e))?;
        let event = match kind {
            None => None,
            Some(EventKind::Header) => self.header().map(Event::Header),
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

    fn step(&mut self, input: &[u8]) -> Result<(usize, Option<EventKind>), Error> {
        let mut used = 0usize;
        loop {
            let rest = input.get(used..).unwrap_or(&[]);
            let (header, payload) = match &mut self.phase {
                Phase::Failed(e) => return Err(*e),
                Phase::Head => {
                    used = used.saturating_add(self.head.push(rest)?);
                    if !self.head.is_complete() {
                        return Ok((used, None));
                    }
                    self.verify_head()?;
                    return Ok((used, Some(EventKind::Header)));
                }
                Phase::Open { header, payload } => (header, payload),
            };
            let Stream::Chunks {
                layout,
                auth,
                index,
            } = payload
            else {
                return if rest.is_empty() {
                    Ok((used, None))
                } else {
                    Err(Error::TrailingBytes)
                };
            };
            let want_body = usize::try_from(layout.plain_len(*index)).unwrap_or(usize::MAX);
            let want_tail = layout.tail_len(*index);
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
                // The chunk is in: authenticate it; on success its plaintext is in `body`.
                let i = *index;
                let last = layout.is_last(i);
                let len = self.body_have;
                let body = self.body.get_mut(..len).unwrap_or_default();
                auth.open(i, last, body, &self.tail)?;
                self.hasher.update(body);
                let offset = layout.plain_offset(i);
                *index = i.saturating_add(1);
                self.body_have = 0;
                self.tail_have = 0;
                if last {
                    if self.hasher.finalize_reset() != header.digest {
                        return Err(Error::Authentication);
                    }
                    *payload = Stream::Done;
                }
                return Ok((used, Some(EventKind::Chunk { offset, len, last })));
            }
            if n == 0 {
                return Ok((used, None));
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
        self.set_phase(Phase::Open {
            payload: Stream::Chunks {
                auth: Payload::for_header(&header, self.head.message(), self.policy)?,
                layout: PayloadLayout::of(&header)?,
                index: 0,
            },
            header,
        });
        Ok(())
    }

    /// Moves to `phase`, dropping (and so wiping) what the last one held. Out of line: one copy
    /// of that, for a bootloader's flash.
    #[inline(never)]
    fn set_phase(&mut self, phase: Phase) {
        self.phase = phase;
    }
}

impl<const N: usize, H: ImageHasher> Drop for Opener<'_, N, H> {
    fn drop(&mut self) {
        self.body.zeroize();
    }
}
