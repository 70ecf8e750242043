//! The application side: staging a download into the free container slot, confirming a trial
//! image.

mod resume;

pub use resume::Begun;

use sbsfu_format::PayloadLayout;
use sbsfu_format::SignedHeader;
use sbsfu_format::{ContainerId, Header};

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

/// The id of a buffered head.
fn container_id(head: &HeadReader) -> [u8; 32] {
    ContainerId::of(head.message().container_bytes(), head.signature()).0
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
