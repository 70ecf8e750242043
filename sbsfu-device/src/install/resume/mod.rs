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

mod begin;
mod record;

use sbsfu_format::Header;
use sbsfu_format::Version;

use super::Event;
use super::opener::Opener;
use crate::Error;
use crate::boot::verify::verify_region;
use crate::flash::{Region, SequentialWriter};
use crate::keys::Policy;
use crate::store::record_log::{MAX_PAYLOAD, RecordLog};
use record::{Head, Stored};

/// Plaintext bytes programmed between two progress records (at the first chunk boundary that
/// is also a sector boundary this far past the last record): what a reset may cost at most,
/// besides the rest of a sector.
pub const INSTALL_PROGRESS_STEP: u32 = 8 * 1024;

/// What a resumable transfer's `begin` found: [`RegionInstaller::begin`]'s, and the
/// `Stager`'s (`boot::Begun`, the same type).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RegionBegun {
    /// The container's id: SHA-256 of its signed head (prefix, header, signature).
    pub id: [u8; 32],
    /// The offset of the first byte needed: every byte before it is stored. Equal to the
    /// container's length when it is already pending or installed.
    pub resume_from: u32,
    /// Bytes the transfer's `erase_step` will erase (or find blank) before data may flow.
    pub erase_total: u32,
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
mod tests;
