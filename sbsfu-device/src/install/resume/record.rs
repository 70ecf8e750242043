//! The install log's record: which container the region is receiving, and how far, or which
//! one it holds installed (module documentation of [`super`]).

use sbsfu_format::{ContainerId, Header, LINK_LEN, PayloadLayout, SignedHeader};

use crate::Error;
use crate::install::head::HeadCopy;
use crate::store::record_log::MAX_PAYLOAD;

/// The signed head of the container being received, held in RAM.
#[derive(Clone, Copy)]
pub(super) struct Head(HeadCopy);

impl Head {
    pub(super) fn new(head: &[u8]) -> Result<Self, Error> {
        HeadCopy::new(head).map(Self).ok_or(Error::TrailingBytes)
    }

    pub(super) fn as_bytes(&self) -> &[u8] {
        self.0.as_bytes()
    }

    pub(super) fn id(&self) -> [u8; 32] {
        ContainerId::of(self.as_bytes(), &[]).0
    }

    /// The header, parsed but not verified: it names, it proves nothing.
    pub(super) fn header(&self) -> Option<Header> {
        Some(SignedHeader::parse(self.as_bytes()).ok()?.0.header)
    }

    /// The container offset where chunk `index` starts: where an install resumed at that
    /// chunk goes on (0 for chunk 0: the sender sends the head again, it is checked to be
    /// the one verified).
    pub(super) fn offset_of(&self, index: u32) -> u32 {
        if index == 0 {
            return 0;
        }
        let wire = self
            .header()
            .and_then(|h| PayloadLayout::of(&h).ok())
            .map_or(0, |l| l.wire_offset(index));
        u32::try_from(wire)
            .unwrap_or(u32::MAX)
            .saturating_add(u32::try_from(self.as_bytes().len()).unwrap_or(u32::MAX))
    }
}

/// What the install log says about the region.
#[derive(Clone, Copy)]
pub(super) enum Stored {
    /// Nothing valid (a blank log, or a container refused at commit).
    Empty,
    /// Receiving the container `head`: every chunk before `chunk` is programmed; `link` is the
    /// link chunk `chunk` must hash to (signed-only payloads).
    Receiving {
        head: Head,
        chunk: u32,
        link: [u8; LINK_LEN],
    },
    /// The container `head` is installed and was verified from flash.
    Installed { head: Head },
}

const EMPTY: u8 = 0;
const RECEIVING: u8 = 1;
const INSTALLED: u8 = 2;
/// kind, chunk (LE), link, head length (LE).
pub(super) const FIXED: usize = 1 + 4 + LINK_LEN + 2;

impl Stored {
    pub(super) fn encode(&self, out: &mut [u8; MAX_PAYLOAD]) -> Result<usize, Error> {
        let (kind, head, chunk, link) = match self {
            Stored::Empty => (EMPTY, None, 0, [0; LINK_LEN]),
            Stored::Receiving { head, chunk, link } => (RECEIVING, Some(head), *chunk, *link),
            Stored::Installed { head } => (INSTALLED, Some(head), 0, [0; LINK_LEN]),
        };
        let head = head.map_or(&[][..], Head::as_bytes);
        let len = FIXED.saturating_add(head.len());
        let buf = out.get_mut(..len).ok_or(Error::CorruptState)?;
        let (fixed, rest) = buf.split_at_mut(FIXED);
        let (k, fixed) = fixed.split_at_mut(1);
        let (c, fixed) = fixed.split_at_mut(4);
        let (l, h) = fixed.split_at_mut(LINK_LEN);
        k.copy_from_slice(&[kind]);
        c.copy_from_slice(&chunk.to_le_bytes());
        l.copy_from_slice(&link);
        let head_len = u16::try_from(head.len()).map_err(|_| Error::CorruptState)?;
        h.copy_from_slice(&head_len.to_le_bytes());
        rest.copy_from_slice(head);
        Ok(len)
    }

    pub(super) fn decode(payload: &[u8]) -> Result<Self, Error> {
        let (fixed, head) = payload.split_at_checked(FIXED).ok_or(Error::CorruptState)?;
        let (kind, fixed) = fixed.split_first().ok_or(Error::CorruptState)?;
        let (chunk, fixed) = fixed.split_first_chunk::<4>().ok_or(Error::CorruptState)?;
        let (link, len) = fixed
            .split_first_chunk::<LINK_LEN>()
            .ok_or(Error::CorruptState)?;
        let len = len.first_chunk::<2>().ok_or(Error::CorruptState)?;
        if usize::from(u16::from_le_bytes(*len)) != head.len() {
            return Err(Error::CorruptState);
        }
        Ok(match *kind {
            EMPTY if head.is_empty() => Stored::Empty,
            RECEIVING => Stored::Receiving {
                head: Head::new(head)?,
                chunk: u32::from_le_bytes(*chunk),
                link: *link,
            },
            INSTALLED => Stored::Installed {
                head: Head::new(head)?,
            },
            _ => return Err(Error::CorruptState),
        })
    }
}
