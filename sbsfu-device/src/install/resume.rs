//! A resumable install into a data region (a resource or asset region, external flash): the
//! streaming installer as a link delivers to it, a container at a time, surviving dropped links
//! and resets mid-transfer.
//!
//! What is durable lives in an **install log** of its own (a power-safe record log on two
//! banks, each record one program operation with its hash last: a torn record is never read as
//! one): which container the region is receiving (its signed head), and how far: the next
//! chunk, and for a signed-only payload the link that chunk must hash to. Progress is recorded
//! only where a chunk boundary is a sector boundary of the region, after everything before it
//! was programmed, so everything from the recorded point on can be erased again: a write torn
//! by a reset, or written after the record, is never programmed over. When a container has
//! been verified in full from flash the log records it `installed`; before anything of another
//! container is erased the log records that container `receiving`, so nothing half written is
//! ever marked valid.
//!
//! Resuming restores the reader exactly: the head is verified again (it is what the sender
//! sent), the STREAM position is the chunk index, the chain link comes from the record, and the
//! image digest is recomputed from the plaintext already in flash. The chunks before the resume
//! point are not authenticated again (their ciphertext is gone): the signed digest covers them,
//! and the commit re-reads and verifies the whole image from flash, for a resumed install as
//! for a fresh one, before recording it installed. What a chunk's authentication proves is
//! unchanged: with a device key shared by a class, chunks sealed by whoever extracted the key
//! pass it and reach the region, but the image then fails the digest and is never recorded
//! installed ([`crate::Installer`] has the details; stage where that matters).

use sbsfu_format::Header;
use sbsfu_format::{LINK_LEN, MAX_HEAD_LEN, PREFIX_LEN, PayloadLayout, SIGNATURE_LEN};
use sbsfu_format::{SignedHeader, Version};
use sha2::{Digest, Sha256};

use super::Event;
use super::check_region;
use super::opener::Opener;
use crate::Error;
use crate::boot::verify::verify_region;
use crate::flash::{Region, SequentialWriter};
use crate::keys::Policy;
use crate::store::record_log::{MAX_PAYLOAD, RecordLog};

/// Plaintext bytes programmed between two progress records (at the first chunk boundary that
/// is also a sector boundary this far past the last record): what a reset may cost at most,
/// besides the rest of a sector.
pub const INSTALL_PROGRESS_STEP: u32 = 8 * 1024;

/// What [`RegionInstaller::begin`] found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RegionBegun {
    /// The container's id: SHA-256 of its signed head.
    pub id: [u8; 32],
    /// Offset (in the container) of the first byte needed; every byte before it is installed.
    pub resume_from: u32,
    /// Bytes of the region [`RegionInstaller::erase_step`] will erase (or find blank).
    pub erase_total: u32,
}

/// A signed head, held in RAM.
#[derive(Clone, Copy)]
struct Head {
    bytes: [u8; MAX_HEAD_LEN],
    len: usize,
}

impl Head {
    fn new(head: &[u8]) -> Result<Self, Error> {
        let mut bytes = [0u8; MAX_HEAD_LEN];
        bytes
            .get_mut(..head.len())
            .ok_or(Error::TrailingBytes)?
            .copy_from_slice(head);
        Ok(Self {
            bytes,
            len: head.len(),
        })
    }

    fn as_bytes(&self) -> &[u8] {
        self.bytes.get(..self.len).unwrap_or(&[])
    }

    fn id(&self) -> [u8; 32] {
        Sha256::digest(self.as_bytes()).into()
    }

    /// The header, parsed but not verified: it names, it proves nothing.
    fn header(&self) -> Option<Header> {
        Some(SignedHeader::parse(self.as_bytes()).ok()?.0.header)
    }

    /// The container offset where chunk `index` starts: where an install resumed at that
    /// chunk goes on (0 for chunk 0: the sender sends the head again, it is checked to be
    /// the one verified).
    fn offset_of(&self, index: u32) -> u32 {
        if index == 0 {
            return 0;
        }
        let wire = self
            .header()
            .and_then(|h| PayloadLayout::of(&h).ok())
            .map_or(0, |l| l.wire_offset(index));
        u32::try_from(wire)
            .unwrap_or(u32::MAX)
            .saturating_add(u32::try_from(self.len).unwrap_or(u32::MAX))
    }
}

/// What the install log says about the region.
#[derive(Clone, Copy)]
enum Stored {
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
const FIXED: usize = 1 + 4 + LINK_LEN + 2;

impl Stored {
    fn encode(&self, out: &mut [u8; MAX_PAYLOAD]) -> Result<usize, Error> {
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

    fn decode(payload: &[u8]) -> Result<Self, Error> {
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

/// What the installer is doing with the container begun last (RAM only).
#[derive(Clone, Copy)]
enum Run {
    /// No container begun since power-on (or since the last one ended).
    Idle,
    /// Receiving: `received` container bytes in so far, of `len`; the erase has `erase_next`
    /// to `erase_end` left.
    Storing {
        head: Head,
        len: u32,
        received: u32,
        erase_start: u32,
        erase_next: u32,
        erase_end: u32,
    },
    /// The container is installed (by this run's commit, or found so by `begin`: the commit
    /// then verifies it from flash again).
    Done {
        head: Head,
        len: u32,
        verified: bool,
    },
    /// The first error of this container, returned again by every later call.
    Failed(Error),
}

/// Installs containers into one data region, resumably (the module documentation has how):
/// [`RegionInstaller::begin`] verifies the head before anything is erased,
/// [`RegionInstaller::erase_step`] erases ahead of the data, [`RegionInstaller::write`] takes the
/// container's bytes in order (each chunk authenticated before its plaintext is programmed),
/// [`RegionInstaller::commit`] verifies the whole image from flash and records it installed.
/// `N` is the chunk buffer: the largest chunk size it takes.
pub struct RegionInstaller<'a, const N: usize> {
    policy: &'a Policy<'a>,
    region: &'a mut dyn Region,
    log: RecordLog<'a>,
    stored: Stored,
    opener: Opener<'a, N>,
    writer: SequentialWriter,
    run: Run,
}

impl<'a, const N: usize> RegionInstaller<'a, N> {
    /// The installer of `region`, its install log on `log_banks` (two banks of at least two
    /// records each, on any flash), enforcing `policy`.
    pub fn new(
        policy: &'a Policy<'a>,
        region: &'a mut dyn Region,
        log_banks: [&'a mut dyn Region; 2],
    ) -> Result<Self, Error> {
        let mut log = RecordLog::mount(log_banks)?;
        let mut newest: Option<(u32, Stored)> = None;
        log.for_each(&mut |seq, payload| {
            if let Ok(s) = Stored::decode(payload)
                && newest.as_ref().is_none_or(|(n, _)| seq > *n)
            {
                newest = Some((seq, s));
            }
        })?;
        Ok(Self {
            policy,
            region,
            log,
            stored: newest.map_or(Stored::Empty, |(_, s)| s),
            opener: Opener::new(policy),
            writer: SequentialWriter::default(),
            run: Run::Idle,
        })
    }

    /// The region's name (what headers name).
    pub fn region_name(&self) -> &str {
        self.region.name()
    }

    /// The region's size: the largest image it takes.
    pub fn capacity(&self) -> u32 {
        self.region.capacity()
    }

    /// The lowest security counter it accepts.
    pub fn floor(&self) -> u32 {
        self.policy.min_security_counter
    }

    /// Version and security counter of the image installed in the region, if the log records
    /// one (as recorded: its header is checked again when it is used).
    pub fn installed(&self) -> Option<(Version, u32)> {
        let head = match (self.run, self.stored) {
            (Run::Storing { .. }, _) => return None,
            (_, Stored::Installed { head }) => head,
            _ => return None,
        };
        head.header().map(|h| (h.version, h.security_counter))
    }

    /// The id of the container partly received, and how many of its bytes are durable.
    pub fn partial(&self) -> Option<([u8; 32], u32)> {
        match self.stored {
            Stored::Receiving { head, chunk, .. } => Some((head.id(), head.offset_of(chunk))),
            _ => None,
        }
    }

    /// Bytes of the container begun last that survive a reset.
    pub fn durable(&self) -> u32 {
        match (self.run, self.stored) {
            (Run::Storing { head, .. }, Stored::Receiving { head: h, chunk, .. })
                if h.as_bytes() == head.as_bytes() =>
            {
                head.offset_of(chunk)
            }
            (Run::Done { head, len, .. }, Stored::Installed { head: h })
                if h.as_bytes() == head.as_bytes() =>
            {
                len
            }
            _ => 0,
        }
    }

    fn record(&mut self, stored: Stored) -> Result<(), Error> {
        let mut buf = [0u8; MAX_PAYLOAD];
        let n = stored.encode(&mut buf)?;
        self.log.append(buf.get(..n).ok_or(Error::CorruptState)?)?;
        self.stored = stored;
        Ok(())
    }

    /// Verifies `head` (signature, target, floor, encryption policy, chunk size, region, load
    /// address, size, and that `container_len` is the length its header implies) before
    /// anything is erased or written, then starts or resumes the container:
    ///
    /// - the one this installer is receiving (a dropped link): it goes on from where it is;
    /// - the one installed: nothing to receive, `resume_from` is its length and
    ///   [`Self::commit`] verifies it from flash again;
    /// - the one the log records as partly received (a reset): from the recorded chunk, the
    ///   image digest recomputed from the plaintext in flash, the rest of the region erased
    ///   again from there;
    /// - any other: recorded as the container being received (the region holds nothing valid
    ///   from then on) before anything is erased, from 0.
    pub fn begin(&mut self, head: &[u8], container_len: u32) -> Result<RegionBegun, Error> {
        let mut opener = Opener::<N>::new(self.policy);
        let (used, header) = match opener.push(head)? {
            (used, Some(Event::Header(h))) => (used, *h),
            _ => return Err(Error::Truncated),
        };
        if used != head.len() {
            return Err(Error::TrailingBytes);
        }
        check_region(&*self.region, &header)?;
        let layout = PayloadLayout::of(&header)?;
        let header_len = head
            .len()
            .saturating_sub(PREFIX_LEN.saturating_add(SIGNATURE_LEN));
        let expected = u32::try_from(layout.container_len(header_len)).unwrap_or(u32::MAX);
        if container_len != expected {
            return Err(if container_len < expected {
                Error::Truncated
            } else {
                Error::TrailingBytes
            });
        }
        let new = Head::new(head)?;
        let id = new.id();
        let same = |h: &Head| h.as_bytes() == head;
        match self.run {
            Run::Storing {
                head: h,
                received,
                erase_start,
                erase_end,
                ..
            } if same(&h) => {
                return Ok(RegionBegun {
                    id,
                    resume_from: received,
                    erase_total: erase_end.saturating_sub(erase_start),
                });
            }
            Run::Done { head: h, .. } if same(&h) => {
                return Ok(RegionBegun {
                    id,
                    resume_from: container_len,
                    erase_total: 0,
                });
            }
            _ => {}
        }
        self.run = Run::Idle;
        if let Stored::Installed { head: h } = self.stored
            && same(&h)
        {
            self.run = Run::Done {
                head: new,
                len: container_len,
                verified: false,
            };
            return Ok(RegionBegun {
                id,
                resume_from: container_len,
                erase_total: 0,
            });
        }
        let resume = match self.stored {
            Stored::Receiving {
                head: h,
                chunk,
                link,
            } if same(&h) && chunk > 0 => Some((chunk, link)),
            _ => None,
        };
        let chunk = match resume {
            // Records are made on sector boundaries only; anything else starts over.
            Some((chunk, link))
                if self
                    .region
                    .sector(layout.plain_offset(chunk))
                    .is_some_and(|s| s.start == layout.plain_offset(chunk)) =>
            {
                let at = layout.plain_offset(chunk);
                let region = &mut *self.region;
                let resumed = opener.resume_at(chunk, link, |hash| {
                    let mut buf = [0u8; 256];
                    crate::flash::read_pieces(region, at, &mut buf, &mut |piece| {
                        hash(piece);
                        Ok(())
                    })
                });
                // An unreadable region starts over.
                if resumed.is_ok() { chunk } else { 0 }
            }
            _ => 0,
        };
        if chunk == 0 {
            opener = Opener::<N>::new(self.policy);
            opener.push(head)?;
            let (_, link) = opener.position().ok_or(Error::Truncated)?;
            // Before anything is erased: the region holds nothing valid from here on.
            self.record(Stored::Receiving {
                head: new,
                chunk: 0,
                link,
            })?;
        }
        let start = layout.plain_offset(chunk);
        let image_end = layout
            .image_len()
            .checked_next_multiple_of(self.region.write_size())
            .unwrap_or(u32::MAX);
        let erase_end = match image_end.checked_sub(1) {
            Some(last) if image_end > start => self.region.sector(last).map_or(start, |s| s.end),
            _ => start,
        };
        let resume_from = new.offset_of(chunk);
        self.opener = opener;
        self.writer = SequentialWriter::erased_to(start);
        self.run = Run::Storing {
            head: new,
            len: container_len,
            received: resume_from,
            erase_start: start,
            erase_next: start,
            erase_end,
        };
        Ok(RegionBegun {
            id,
            resume_from,
            erase_total: erase_end.saturating_sub(start),
        })
    }

    /// Erases the next sector the image will occupy (or finds it blank); returns the bytes
    /// done and the total, as [`RegionBegun::erase_total`] announced.
    pub fn erase_step(&mut self) -> Result<(u32, u32), Error> {
        let r = self.erase_next();
        if let Err(e) = r {
            self.fail(e);
        }
        r
    }

    fn erase_next(&mut self) -> Result<(u32, u32), Error> {
        let (start, next, end) = match self.run {
            Run::Storing {
                erase_start,
                erase_next,
                erase_end,
                ..
            } => (erase_start, erase_next, erase_end),
            Run::Done { .. } => return Ok((0, 0)),
            Run::Failed(e) => return Err(e),
            Run::Idle => return Err(Error::Truncated),
        };
        let mut done = next;
        if next < end {
            let sector_end = self.region.sector(next).map_or(end, |s| s.end);
            if !self.is_blank(next, sector_end)? {
                self.region.erase_sector_at(next)?;
            }
            done = sector_end;
            self.writer = SequentialWriter::erased_to(done);
            if let Run::Storing { erase_next, .. } = &mut self.run {
                *erase_next = done;
            }
        }
        Ok((done.saturating_sub(start), end.saturating_sub(start)))
    }

    /// Whether `from..to` of the region reads blank (an unreadable piece is not).
    fn is_blank(&mut self, from: u32, to: u32) -> Result<bool, Error> {
        let mut buf = [0u8; 64];
        let mut at = from;
        while at < to {
            let n = buf
                .len()
                .min(usize::try_from(to.saturating_sub(at)).unwrap_or(0));
            let piece = buf.get_mut(..n).ok_or(Error::InvalidLayout)?;
            if self.region.read(at, piece).is_err() || piece.iter().any(|b| *b != 0xFF) {
                return Ok(false);
            }
            at = at.saturating_add(u32::try_from(n).unwrap_or(u32::MAX));
        }
        Ok(true)
    }

    fn fail(&mut self, e: Error) {
        if !matches!(self.run, Run::Failed(_)) {
            self.run = Run::Failed(e);
        }
    }

    /// Takes the container's bytes at `offset`, where the bytes received so far end: each
    /// chunk is authenticated, then its plaintext programmed; progress is recorded at sector
    /// boundaries.
    pub fn write(&mut self, offset: u32, bytes: &[u8]) -> Result<(), Error> {
        let r = self.take(offset, bytes);
        if let Err(e) = r {
            self.fail(e);
        }
        r
    }

    fn take(&mut self, offset: u32, bytes: &[u8]) -> Result<(), Error> {
        let (received, len, erase_next, erase_end) = match self.run {
            Run::Storing {
                received,
                len,
                erase_next,
                erase_end,
                ..
            } => (received, len, erase_next, erase_end),
            Run::Failed(e) => return Err(e),
            Run::Done { .. } => return Err(Error::TrailingBytes),
            Run::Idle => return Err(Error::Truncated),
        };
        if offset != received || erase_next < erase_end {
            return Err(Error::Truncated);
        }
        let n = u32::try_from(bytes.len()).map_err(|_| Error::TrailingBytes)?;
        if received.saturating_add(n) > len {
            return Err(Error::TrailingBytes);
        }
        // The head again (a container sent from its start): it must be the one verified.
        let verified = match self.run {
            Run::Storing { head, .. } => head,
            _ => return Err(Error::Truncated),
        };
        let at = usize::try_from(received).unwrap_or(usize::MAX);
        let head = verified.as_bytes().get(at..).unwrap_or(&[]);
        let n_head = head.len().min(bytes.len());
        let (repeated, payload) = bytes.split_at(n_head);
        if head.get(..n_head) != Some(repeated) {
            return Err(Error::Authentication);
        }
        self.drive(payload)?;
        if let Run::Storing { received, .. } = &mut self.run {
            *received = received.saturating_add(n);
        }
        Ok(())
    }

    /// Feeds the reader, programming each authenticated chunk and recording progress.
    fn drive(&mut self, bytes: &[u8]) -> Result<(), Error> {
        let mut rest = bytes;
        loop {
            let (used, chunk) = match self.opener.push(rest)? {
                (used, Some(Event::Chunk { offset, data, last })) => {
                    self.writer.program(&mut *self.region, offset, data)?;
                    let end = offset.saturating_add(u32::try_from(data.len()).unwrap_or(0));
                    (used, (!last).then_some(end))
                }
                (_, Some(Event::Header(_))) => return Err(Error::Truncated),
                (used, None) => (used, None),
            };
            rest = rest.get(used..).unwrap_or(&[]);
            if let Some(end) = chunk {
                self.progress(end)?;
            } else if rest.is_empty() {
                return Ok(());
            }
        }
    }

    /// Records the progress if the plaintext programmed so far ends on a sector boundary far
    /// enough past the last record.
    fn progress(&mut self, programmed: u32) -> Result<(), Error> {
        let (Stored::Receiving { head, chunk, .. }, Some((next, link)), Some(layout)) =
            (self.stored, self.opener.position(), self.opener.layout())
        else {
            return Ok(());
        };
        let recorded = layout.plain_offset(chunk);
        let on_sector = self
            .region
            .sector(programmed)
            .is_some_and(|s| s.start == programmed);
        if on_sector && programmed.saturating_sub(recorded) >= INSTALL_PROGRESS_STEP {
            self.record(Stored::Receiving {
                head,
                chunk: next,
                link,
            })?;
        }
        Ok(())
    }

    /// Ends the container: every byte must be in, the last chunk authenticated and the image
    /// digest matched. The image is then read back and verified in full from flash (signature
    /// and digest, as at boot), for a resumed install as for a fresh one, and only then
    /// recorded installed. If anything fails the log records nothing valid, so the next
    /// `begin` starts at 0.
    pub fn commit(&mut self) -> Result<Header, Error> {
        let (head, len) = match self.run {
            Run::Storing {
                head,
                received,
                len,
                ..
            } => {
                if received != len {
                    return Err(Error::Truncated);
                }
                (head, len)
            }
            Run::Done {
                head,
                len,
                verified,
            } => {
                if verified {
                    return head.header().ok_or(Error::CorruptState);
                }
                (head, len)
            }
            Run::Failed(e) => return Err(e),
            Run::Idle => return Err(Error::Truncated),
        };
        match self.check(&head) {
            Ok(header) => {
                if !matches!(self.stored, Stored::Installed { head: h } if h.as_bytes() == head.as_bytes())
                {
                    self.record(Stored::Installed { head })?;
                }
                self.run = Run::Done {
                    head,
                    len,
                    verified: true,
                };
                Ok(header)
            }
            Err(e) => {
                self.run = Run::Failed(e);
                self.record(Stored::Empty)?;
                Err(e)
            }
        }
    }

    /// The stream ended complete (if this run received it) and the image verifies from flash.
    fn check(&mut self, head: &Head) -> Result<Header, Error> {
        if matches!(self.run, Run::Storing { .. }) {
            self.drive(&[])?;
            self.opener.finished()?;
        }
        let mut scratch = [0u8; 256];
        verify_region(
            &mut *self.region,
            head.as_bytes(),
            self.policy,
            &mut scratch,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_round_trip() {
        let head = Head::new(&[7u8; 140]).unwrap();
        for s in [
            Stored::Empty,
            Stored::Receiving {
                head,
                chunk: 0x0102_0304,
                link: [9; LINK_LEN],
            },
            Stored::Installed { head },
        ] {
            let mut buf = [0u8; MAX_PAYLOAD];
            let n = s.encode(&mut buf).unwrap();
            let back = Stored::decode(&buf[..n]).unwrap();
            let mut again = [0u8; MAX_PAYLOAD];
            assert_eq!(back.encode(&mut again).unwrap(), n);
            assert_eq!(buf[..n], again[..n]);
            assert!(Stored::decode(&buf[..n - 1]).is_err() || n == FIXED);
        }
        assert!(Stored::decode(&[3; FIXED]).is_err());
    }
}
