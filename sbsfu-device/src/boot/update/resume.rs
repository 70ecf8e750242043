//! A transfer that resumes after a cut or a reset: begin (or find where to continue), erase
//! step by step, write at an offset, and the progress recorded in the boot state.

use super::{Resumable, STAGE_BUFFER, Stager, Staging, container_id};
use crate::Error;
use crate::boot::state::Phase;
use crate::flash::{SequentialWriter, is_blank};
use crate::install::check_container_len;
use crate::install::head::HeadReader;

/// What [`Stager::begin`] found in the slot (the type a data region's installer returns too).
pub type Begun = crate::install::RegionBegun;

impl<'s, const N: usize> Stager<'s, N> {
    /// Starts (or resumes) a container whose whole head is `head` and whose length is
    /// `container_len`, for a link that resumes after a cut or a reset. The head is verified
    /// before anything is written. Then:
    ///
    /// - the container already pending (the same head in the slot): nothing to do, the
    ///   returned `resume_from` is its length and [`Stager::commit`] confirms it;
    /// - the container this stager is storing (a dropped link): it continues where it is;
    /// - the container partly stored before a reset (the boot state says so, and the slot
    ///   begins with the same head): it continues from the durable length recorded, or from
    ///   the start of that sector if anything was written after the record (a write torn by
    ///   the reset is never programmed over: the sector is erased again);
    /// - any other container: the slot is abandoned (recorded before anything is erased) and
    ///   the container starts at 0.
    ///
    /// Then [`Stager::erase_step`] until done, [`Stager::write`] in order, [`Stager::commit`].
    pub fn begin(&mut self, head: &[u8], container_len: u32) -> Result<Begun, Error> {
        let mut reader = HeadReader::new();
        let used = reader.push(head)?;
        if !reader.is_complete() {
            return Err(Error::Truncated);
        }
        if used != head.len() {
            return Err(Error::TrailingBytes);
        }
        let (header, expected) = self.check_head(&reader)?;
        check_container_len(container_len, expected)?;
        let id = container_id(&reader);
        let head_len = u32::try_from(head.len()).map_err(|_| Error::TrailingBytes)?;
        if let (Some(r), Staging::Storing { .. } | Staging::Done { .. }) =
            (self.resumable, self.phase)
            && r.id == id
        {
            let resume_from = match self.phase {
                Staging::Done { .. } => expected,
                _ => self.received(),
            };
            return Ok(Begun {
                id,
                resume_from,
                erase_total: r.erase_end.saturating_sub(r.erase_start),
            });
        }
        let slot_holds_it = self.slot_begins_with(head)?;
        self.pending_len = 0;
        self.head = reader;
        if slot_holds_it && self.state.phase == (Phase::Pending { slot: self.index }) {
            self.phase = Staging::Done { header };
            self.resumable = Some(Resumable {
                id,
                erase_next: 0,
                erase_start: 0,
                erase_end: 0,
                recorded: expected,
            });
            return Ok(Begun {
                id,
                resume_from: expected,
                erase_total: 0,
            });
        }
        let (recorded, durable) = match self.state.phase {
            Phase::Receiving { slot, durable }
                if slot == self.index && slot_holds_it && durable >= head_len =>
            {
                (durable, self.resume_point(durable.min(expected))?)
            }
            _ => (0, 0),
        };
        if durable == 0 || durable != recorded {
            // Abandon whatever the slot held (or, going back to a sector's start, the bytes
            // after it) before erasing any of it: the record never claims erased bytes.
            self.record(durable)?;
        }
        let sector_end = |at: u32| self.slot.sector(at).map_or(at, |s| s.end);
        // A resume point inside a sector has a blank rest of it: erasing starts after it.
        let erase_start = match self.slot.sector(durable) {
            Some(s) if s.start < durable => s.end,
            _ => durable,
        };
        let erase_end = sector_end(expected.saturating_sub(1)).max(erase_start);
        self.written = durable;
        self.writer = SequentialWriter::erased_to(erase_start);
        self.phase = Staging::Storing { header, expected };
        self.resumable = Some(Resumable {
            id,
            erase_next: erase_start,
            erase_start,
            erase_end,
            recorded: durable,
        });
        Ok(Begun {
            id,
            resume_from: durable,
            erase_total: erase_end.saturating_sub(erase_start),
        })
    }

    /// Whether the slot starts with `head`.
    fn slot_begins_with(&mut self, head: &[u8]) -> Result<bool, Error> {
        let stored = self
            .pending
            .get_mut(..head.len())
            .ok_or(Error::TrailingBytes)?;
        Ok(self.slot.read(0, stored).is_ok() && *stored == *head)
    }

    /// Where a transfer recorded `durable` bytes long before a reset continues: there, if the
    /// rest of its sector is blank; otherwise (something, maybe a torn write, followed the
    /// record) at the start of that sector, which is erased again; 0 if that leaves no head.
    fn resume_point(&mut self, durable: u32) -> Result<u32, Error> {
        let Some(sector) = self.slot.sector(durable) else {
            return Ok(durable);
        };
        let mut at = durable;
        while at < sector.end {
            let n = STAGE_BUFFER.min(usize::try_from(sector.end.saturating_sub(at)).unwrap_or(0));
            let piece = self.pending.get_mut(..n).ok_or(Error::InvalidLayout)?;
            let blank = self.slot.read(at, piece).is_ok() && piece.iter().all(|b| *b == 0xFF);
            if !blank {
                let head_len = u32::try_from(self.head.message().container_bytes().len())
                    .unwrap_or(u32::MAX)
                    .saturating_add(64);
                return Ok(if sector.start >= head_len {
                    sector.start
                } else {
                    0
                });
            }
            at = at.saturating_add(u32::try_from(n).unwrap_or(u32::MAX));
        }
        Ok(durable)
    }

    /// Records in the boot state that the slot holds the first `durable` bytes of the
    /// container being received.
    pub(super) fn record(&mut self, durable: u32) -> Result<(), Error> {
        self.state.phase = Phase::Receiving {
            slot: self.index,
            durable,
        };
        self.log.save(&self.state)?;
        if let Some(r) = self.resumable.as_mut() {
            r.recorded = durable;
        }
        Ok(())
    }

    /// Erases the next sector of the destination (or finds it blank); returns the bytes done
    /// and the total, as [`Begun::erase_total`] announced.
    pub fn erase_step(&mut self) -> Result<(u32, u32), Error> {
        self.erase_next()
            .inspect_err(|e| self.phase = Staging::Failed(*e))
    }

    fn erase_next(&mut self) -> Result<(u32, u32), Error> {
        if let Staging::Failed(e) = self.phase {
            return Err(e);
        }
        let mut r = self.resumable.ok_or(Error::Truncated)?;
        if r.erase_next < r.erase_end {
            let end = self
                .slot
                .sector(r.erase_next)
                .map_or(r.erase_end, |s| s.end);
            if !is_blank(&mut *self.slot, r.erase_next, end) {
                self.slot.erase_sector_at(r.erase_next)?;
            }
            r.erase_next = end;
            self.writer = SequentialWriter::erased_to(end);
            self.resumable = Some(r);
        }
        Ok((
            r.erase_next.saturating_sub(r.erase_start),
            r.erase_end.saturating_sub(r.erase_start),
        ))
    }

    /// Stores `bytes` at `offset` of the container begun with [`Stager::begin`]: `offset` must be
    /// where the bytes received so far end.
    pub fn write(&mut self, offset: u32, bytes: &[u8]) -> Result<(), Error> {
        if let Staging::Failed(e) = self.phase {
            return Err(e);
        }
        if offset != self.received() {
            return Err(Error::Truncated);
        }
        self.feed(bytes)
    }

    /// Bytes of the container received so far (stored, or buffered for the next write).
    pub(super) fn received(&self) -> u32 {
        self.written
            .saturating_add(u32::try_from(self.pending_len).unwrap_or(u32::MAX))
    }

    /// Bytes of a container begun with [`Stager::begin`] that survive a reset.
    pub fn durable(&self) -> u32 {
        self.resumable.map_or(0, |r| r.recorded)
    }

    /// The id of the container in the slot, its head and how many bytes of it are durable,
    /// when the boot state records a partly received container there.
    pub fn partial(&mut self) -> Option<([u8; 32], u32)> {
        if let Some(r) = self.resumable
            && matches!(self.phase, Staging::Storing { .. })
        {
            return Some((r.id, r.recorded));
        }
        let Phase::Receiving { slot, durable } = self.state.phase else {
            return None;
        };
        (slot == self.index)
            .then(|| self.stored_id())
            .flatten()
            .map(|id| (id, durable))
    }

    /// The id of the container pending for the next reset, if any.
    pub fn pending(&mut self) -> Option<[u8; 32]> {
        match self.state.phase {
            Phase::Pending { slot } if slot == self.index => self.stored_id(),
            _ => None,
        }
    }

    /// The id of the container whose head begins the slot, read back (its head unverified:
    /// an id names, it proves nothing).
    fn stored_id(&mut self) -> Option<[u8; 32]> {
        let mut reader = HeadReader::new();
        let mut at = 0u32;
        let mut buf = [0u8; 64];
        while !reader.is_complete() && at < 1024 {
            self.slot.read(at, &mut buf).ok()?;
            reader.push(&buf).ok()?;
            at = at.saturating_add(64);
        }
        reader.is_complete().then(|| container_id(&reader))
    }
}
