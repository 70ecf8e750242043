//! The application side: staging a download into the free container slot, confirming a trial
//! image.

use sbsfu_format::Header;
use sbsfu_format::PayloadLayout;
use sbsfu_format::SignedHeader;

use super::config::BootConfig;
use super::layout::BootRegions;
use super::state::{BootState, Phase, StateLog};
use crate::Error;
use crate::flash::{MAX_WRITE_SIZE, Region, SequentialWriter};
use crate::install::head::HeadReader;
use crate::store::CounterStore;

/// Bytes the stager buffers per program operation (a whole number of any write size up to
/// [`MAX_WRITE_SIZE`]).
pub(crate) const STAGE_BUFFER: usize = 1024;

/// Marks the running trial image as good: it becomes the confirmed image and the anti-rollback
/// floor rises to its security counter, in one record; the `counter` then follows (and the boot
/// manager makes it catch up if power is lost in between). Returns `false` if there was nothing
/// to confirm. Called by the application once it has checked itself.
///
/// A counter that would have to advance but has no advance left refuses the confirmation
/// ([`Error::CounterExhausted`]) before anything is written: the image stays on trial (and is
/// reverted at the next reset) rather than run above a floor the counter cannot hold.
pub fn confirm(
    log: &mut StateLog<'_>,
    mut counter: Option<&mut dyn CounterStore>,
) -> Result<bool, Error> {
    let mut state = log.load()?;
    let Phase::Trial { slot, .. } = state.phase else {
        return match state.phase {
            Phase::Idle | Phase::Receiving { .. } => Ok(false),
            _ => Err(Error::Busy),
        };
    };
    let head = state.active().ok_or(Error::CorruptState)?;
    let image_counter = SignedHeader::parse(head)?.0.header.security_counter;
    let mut floor = state.floor.max(image_counter);
    if let Some(c) = counter.as_deref_mut() {
        let held = c.read()?;
        if floor > held && c.remaining()? == 0 {
            return Err(Error::CounterExhausted);
        }
        floor = floor.max(held);
    }
    state.floor = floor;
    state.confirmed = Some(slot);
    state.phase = Phase::Idle;
    log.save(&state)?;
    // The state is the record of truth; the counter follows.
    if let Some(c) = counter {
        c.advance(state.floor)?;
    }
    Ok(true)
}

/// Streams a new container into the free container slot, from the running application. The
/// head is verified (signature, target, floor, destination, size) before the slot is erased;
/// the container is stored exactly as received (encrypted containers stay encrypted).
/// [`Stager::finish`] marks it pending for the next reset.
pub struct Stager<'s, const N: usize> {
    log: StateLog<'s>,
    slot: &'s mut dyn Region,
    index: u8,
    state: BootState,
    /// Where the active slot is seen, and its size: what a staged image must fit.
    active: (u32, u32),
    config: &'s BootConfig<'s>,
    head: HeadReader,
    phase: Staging,
    written: u32,
    writer: SequentialWriter,
    pending: [u8; STAGE_BUFFER],
    pending_len: usize,
    /// A resumable transfer ([`Stager::begin`]): its container id, what its erase has left
    /// (`next..end`), and the durable length last recorded in the state log.
    resumable: Option<Resumable>,
}

/// Bytes stored between two progress records of a resumable transfer: what a reset may cost on
/// top of the sector a torn write makes the stager erase again.
pub const PROGRESS_STEP: u32 = 8 * 1024;

#[derive(Clone, Copy)]
struct Resumable {
    id: [u8; 32],
    erase_next: u32,
    erase_start: u32,
    erase_end: u32,
    recorded: u32,
}

/// What [`Stager::begin`] found in the slot.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Begun {
    /// The container's id: SHA-256 of its signed head (prefix, header, signature).
    pub id: [u8; 32],
    /// The offset of the first byte the stager needs: every byte before it is stored. Equal to
    /// the container's length when it is already pending.
    pub resume_from: u32,
    /// Bytes [`Stager::erase_step`] will erase (or find blank) before data may flow.
    pub erase_total: u32,
}

/// Where staging is, with what it knows there.
// Inline, no heap: the header is the large variant, and the stager needs it while storing.
#[allow(clippy::large_enum_variant)]
#[derive(Clone, Copy)]
enum Staging {
    /// Receiving the head (into the stager's [`HeadReader`]): nothing written yet.
    Head,
    /// The head verified: the container is being stored; it is `expected` bytes long.
    Storing { header: Header, expected: u32 },
    /// The container is pending (stored and checked), by `finish`, `commit`, or found so by
    /// `begin`.
    Done { header: Header },
    /// The first error, returned again by every later call.
    Failed(Error),
}

/// The SHA-256 of a verified head: the container's id.
fn container_id(head: &HeadReader) -> [u8; 32] {
    use sha2::{Digest, Sha256};
    Sha256::new()
        .chain_update(head.message().container_bytes())
        .chain_update(head.signature())
        .finalize()
        .into()
}

impl<'s, const N: usize> Stager<'s, N> {
    /// Starts staging into whichever container slot of `regions` (built from the boot layout:
    /// [`BootLayout::regions`]) does not hold the confirmed image's container. Refused
    /// ([`Error::Busy`]) while an installed image is on trial or being installed.
    ///
    /// [`BootLayout::regions`]: super::BootLayout::regions
    pub fn new<A: Region, S: Region>(
        config: &'s BootConfig<'s>,
        regions: &'s mut BootRegions<A, S>,
    ) -> Result<Self, Error> {
        let (active, [s0, s1], mut log) = regions.open()?;
        let state = log.load()?;
        if !matches!(
            state.phase,
            Phase::Idle | Phase::Pending { .. } | Phase::Receiving { .. }
        ) {
            return Err(Error::Busy);
        }
        let index = match state.confirmed {
            Some(0) => 1u8,
            _ => 0u8,
        };
        let slot = if index == 0 { s0 } else { s1 };
        if usize::try_from(slot.write_size()).unwrap_or(usize::MAX) > MAX_WRITE_SIZE {
            return Err(Error::InvalidLayout);
        }
        Ok(Self {
            log,
            slot,
            index,
            state,
            active: (active.address(), active.capacity()),
            config,
            head: HeadReader::new(),
            phase: Staging::Head,
            written: 0,
            writer: SequentialWriter::default(),
            pending: [0xFF; STAGE_BUFFER],
            pending_len: 0,
            resumable: None,
        })
    }

    /// Verifies the head (signature, target, floor, destination, size) and that it fits the
    /// slot; returns the header and the container's length.
    fn check_head(&self, head: &HeadReader) -> Result<(Header, u32), Error> {
        let header = head.verify(&self.config.policy(self.state.floor))?;
        let (address, capacity) = self.active;
        if header.load_address != address {
            return Err(Error::WrongLoadAddress {
                expected: address,
                found: header.load_address,
            });
        }
        if header.image_len > capacity {
            return Err(Error::RegionTooSmall {
                image_len: header.image_len,
                capacity,
            });
        }
        let total = PayloadLayout::of(&header)?.container_len(head.message().header_bytes().len());
        let expected = u32::try_from(total)
            .ok()
            .filter(|t| *t <= self.slot.capacity())
            .ok_or(Error::RegionTooSmall {
                image_len: u32::try_from(total).unwrap_or(u32::MAX),
                capacity: self.slot.capacity(),
            })?;
        Ok((header, expected))
    }

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
        if container_len != expected {
            return Err(if container_len < expected {
                Error::Truncated
            } else {
                Error::TrailingBytes
            });
        }
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
    fn record(&mut self, durable: u32) -> Result<(), Error> {
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
            if !self.is_blank(r.erase_next, end)? {
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

    /// Whether `from..to` of the slot reads blank (an unreadable piece is not).
    fn is_blank(&mut self, from: u32, to: u32) -> Result<bool, Error> {
        let mut buf = [0u8; 64];
        let mut at = from;
        while at < to {
            let n = buf
                .len()
                .min(usize::try_from(to.saturating_sub(at)).unwrap_or(0));
            let piece = buf.get_mut(..n).ok_or(Error::InvalidLayout)?;
            if self.slot.read(at, piece).is_err() || piece.iter().any(|b| *b != 0xFF) {
                return Ok(false);
            }
            at = at.saturating_add(u32::try_from(n).unwrap_or(u32::MAX));
        }
        Ok(true)
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
    fn received(&self) -> u32 {
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

    /// The largest container the slot takes.
    pub fn capacity(&self) -> u32 {
        self.slot.capacity()
    }

    /// The boot state the stager started from (kept up to date by what it records).
    pub fn state(&self) -> &BootState {
        &self.state
    }

    /// Feeds the next bytes of the container, in any slice size.
    pub fn feed(&mut self, bytes: &[u8]) -> Result<(), Error> {
        self.take(bytes)
            .inspect_err(|e| self.phase = Staging::Failed(*e))
    }

    fn take(&mut self, bytes: &[u8]) -> Result<(), Error> {
        let mut rest = bytes;
        let expected = match self.phase {
            Staging::Storing { expected, .. } => expected,
            Staging::Failed(e) => return Err(e),
            Staging::Done { .. } => return Err(Error::TrailingBytes),
            Staging::Head => {
                let used = self.head.push(rest)?;
                rest = rest.get(used..).unwrap_or(&[]);
                if !self.head.is_complete() {
                    return Ok(());
                }
                let (header, expected) = self.check_head(&self.head)?;
                self.phase = Staging::Storing { header, expected };
                // Only now, with an authentic head, is the slot touched.
                let head = self.head.clone();
                self.program(head.message().container_bytes(), expected)?;
                self.program(head.signature(), expected)?;
                expected
            }
        };
        self.program(rest, expected)
    }

    /// Appends raw container bytes to the slot in writes of [`STAGE_BUFFER`] bytes, erasing
    /// sectors as writing reaches them; more than the `expected` length of the container is
    /// [`Error::TrailingBytes`].
    fn program(&mut self, mut bytes: &[u8], expected: u32) -> Result<(), Error> {
        let total = self
            .written
            .saturating_add(u32::try_from(self.pending_len).unwrap_or(u32::MAX))
            .saturating_add(u32::try_from(bytes.len()).unwrap_or(u32::MAX));
        if total > expected {
            return Err(Error::TrailingBytes);
        }
        while !bytes.is_empty() {
            let n = STAGE_BUFFER
                .saturating_sub(self.pending_len)
                .min(bytes.len());
            let (head, tail) = bytes.split_at(n);
            self.pending
                .get_mut(self.pending_len..self.pending_len.saturating_add(n))
                .ok_or(Error::InvalidLayout)?
                .copy_from_slice(head);
            self.pending_len = self.pending_len.saturating_add(n);
            bytes = tail;
            if self.pending_len == STAGE_BUFFER {
                self.flush()?;
            }
        }
        Ok(())
    }

    /// Writes the buffered bytes, padded with `0xFF` to a whole number of write units.
    fn flush(&mut self) -> Result<(), Error> {
        self.written = self.writer.program_buffer(
            &mut *self.slot,
            self.written,
            &mut self.pending,
            self.pending_len,
        )?;
        self.pending_len = 0;
        if let Some(r) = self.resumable
            && self.written.saturating_sub(r.recorded) >= PROGRESS_STEP
            && matches!(self.phase, Staging::Storing { .. })
        {
            self.record(self.written)?;
        }
        Ok(())
    }

    /// Ends the container: it must be complete. It is then read back and verified in full when
    /// this side can (signed-only, or encrypted and the device keys are here), its vector table
    /// included, and marked pending: the next reset installs it. Returns its header.
    pub fn finish(mut self) -> Result<Header, Error> {
        self.commit()
    }

    /// [`Stager::finish`] without giving the stager up: a link keeps it for the next container.
    /// A container found already pending by [`Stager::begin`] is only confirmed. If the
    /// verification fails, nothing is pending and the partial copy is abandoned (the next
    /// `begin` starts at 0).
    pub fn commit(&mut self) -> Result<Header, Error> {
        let r = self.complete();
        if let Err(e) = r {
            self.phase = Staging::Failed(e);
        }
        r
    }

    fn complete(&mut self) -> Result<Header, Error> {
        let (header, expected) = match self.phase {
            Staging::Storing { header, expected } => (header, expected),
            Staging::Done { header } => return Ok(header),
            Staging::Failed(e) => return Err(e),
            Staging::Head => return Err(Error::Truncated),
        };
        if self.received() != expected {
            return Err(Error::Truncated);
        }
        if self.pending_len > 0 {
            self.flush()?;
        }
        let floor = self.state.floor;
        let can_decrypt = self.config.policy(floor).can_decrypt(&header);
        if can_decrypt && let Err(e) = self.config.check::<N>(&mut *self.slot, floor) {
            if self.resumable.is_some() {
                self.state.phase = Phase::Idle;
                self.log.save(&self.state)?;
            }
            return Err(e);
        }
        self.state.phase = Phase::Pending { slot: self.index };
        self.log.save(&self.state)?;
        self.phase = Staging::Done { header };
        Ok(header)
    }
}
