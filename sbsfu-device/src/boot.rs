//! Power-safe updates: staging, install at reset, trial boot, confirmation, revert.
//!
//! The strategy (docs/BOOT.md has the rationale, the state machine and the flash cost): images
//! run from one **active** slot; two **container slots** hold signed (and usually encrypted)
//! containers exactly as received. The confirmed image's container stays in its slot; an update
//! is staged into the other one. Installing means streaming a container through the verifying
//! [`Installer`] into the active slot, and reverting means installing the confirmed container
//! again. Both are the same idempotent operation, restarted from scratch after a power cut, so
//! no swap, no scratch sector and no per-sector journal are needed, and the plaintext image and
//! content key never leave the MCU (the container slots may be external flash).
//!
//! Every transition is one record in the [`BootStore`]; nothing is trusted from an earlier boot:
//! a staged container is verified in full from flash before the active slot is touched, the
//! installed image is verified again from flash after the install, and the active image is
//! verified (signature and digest) before every boot, its vector table checked inside the
//! verified bytes ([`VectorTable`]).
//!
//! The anti-rollback floor is the maximum of the state log's records and of the optional
//! [`CounterStore`] (OTP on the STM32F4: [`crate::otp_counter::OtpCounter`]); whatever the log
//! says, no image below it is installed, reverted to or booted. Writing state is never what
//! stops a boot: a record that cannot be written is noted ([`BootManager::first_error`]) and the
//! device boots what verifies.

use sbsfu_format::Header;
use sbsfu_format::layout::Layout as PayloadLayout;
use sbsfu_format::signed::{MAX_HEAD_LEN, SignedHeader};

use crate::boot_state::{BootState, BootStore, Phase};
use crate::counter::CounterStore;
use crate::flash::{MAX_WRITE_SIZE, Region, SectorMap};
use crate::head::HeadReader;
use crate::install::{Installed, Installer};
use crate::journal::RECORD_SIZE;
use crate::keys::{Policy, TrustedKey};
use crate::stream::{Event, Opener};
use crate::vector_table::{VECTOR_TABLE_CHECKED, VectorTable};
use crate::verify::verify_region;
use crate::{Error, format::DeviceKey};

/// Bytes read from flash at a time when streaming a stored container (small: it sits on the
/// stack under the installer).
const READ_CHUNK: usize = 128;
/// Bytes the stager buffers per program operation (a whole number of any write size up to
/// [`MAX_WRITE_SIZE`]).
pub const STAGE_BUFFER: usize = 1024;
/// A boot settles in at most this many transitions (the longest path is
/// Pending, Installing, failed, Reverting, Idle).
const MAX_TRANSITIONS: usize = 8;

/// A range of the CPU's address space.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Area {
    /// First address.
    pub address: u32,
    /// Length in bytes.
    pub len: u32,
}

impl Area {
    /// The area `address..address + len`.
    pub const fn new(address: u32, len: u32) -> Self {
        Self { address, len }
    }

    fn end(&self) -> u64 {
        u64::from(self.address).saturating_add(u64::from(self.len))
    }

    fn overlaps(&self, other: &Area) -> bool {
        u64::from(self.address) < other.end() && u64::from(other.address) < self.end()
    }

    /// Whether `region` is this area.
    pub fn is(&self, region: &dyn Region) -> bool {
        region.address() == self.address && region.capacity() == self.len
    }
}

/// A flash device as the CPU sees it, for checking a [`BootLayout`]. External flash that is
/// not memory-mapped gets an address range of its own choosing (say `0x9000_0000`).
pub struct FlashMap<'a> {
    /// Address of its first byte.
    pub address: u32,
    /// Size in bytes.
    pub size: u32,
    /// Its sectors, by offset from `address`.
    pub sectors: &'a dyn SectorMap,
}

/// Where the boot manager keeps things: a plain value, built from constants or linker symbols.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BootLayout {
    /// Where images run from.
    pub active: Area,
    /// The two container slots.
    pub slots: [Area; 2],
    /// The two banks of the boot state log.
    pub meta: [Area; 2],
}

impl BootLayout {
    /// Checks that every area lies in one flash and starts and ends on its sector boundaries,
    /// that no two areas overlap, that each state bank holds at least two records and each slot
    /// at least a container head.
    pub fn check(&self, flashes: &[FlashMap<'_>]) -> Result<(), Error> {
        let areas = [
            self.active,
            self.slots[0],
            self.slots[1],
            self.meta[0],
            self.meta[1],
        ];
        for (i, a) in areas.iter().enumerate() {
            if a.len == 0 || !flashes.iter().any(|f| on_sectors(f, a)) {
                return Err(Error::InvalidLayout);
            }
            if areas
                .iter()
                .skip(i.saturating_add(1))
                .any(|b| a.overlaps(b))
            {
                return Err(Error::InvalidLayout);
            }
        }
        let records = u32::try_from(2 * RECORD_SIZE).unwrap_or(u32::MAX);
        let head = u32::try_from(MAX_HEAD_LEN).unwrap_or(u32::MAX);
        if self.meta.iter().any(|m| m.len < records) || self.slots.iter().any(|s| s.len < head) {
            return Err(Error::InvalidLayout);
        }
        Ok(())
    }
}

fn on_sectors(flash: &FlashMap<'_>, a: &Area) -> bool {
    let (Some(start), Some(end)) = (
        a.address.checked_sub(flash.address),
        a.address
            .checked_add(a.len)
            .and_then(|e| e.checked_sub(flash.address)),
    ) else {
        return false;
    };
    end <= flash.size
        && flash
            .sectors
            .sector(start)
            .is_some_and(|s| s.start == start)
        && end
            .checked_sub(1)
            .and_then(|l| flash.sectors.sector(l))
            .is_some_and(|s| s.end == end)
}

/// What a device trusts and how it runs trials.
pub struct BootConfig<'a> {
    /// The device class.
    pub target: &'a str,
    /// Keys trusted to sign images.
    pub signers: &'a [TrustedKey],
    /// Device keys (to unwrap content keys).
    pub device_keys: &'a [DeviceKey],
    /// Refuse signed-only images.
    pub require_encryption: bool,
    /// Boots a new image gets to confirm itself (at least 1).
    pub trial_boots: u8,
    /// The RAM an image's initial stack pointer must point into (checked with its reset vector
    /// before it boots: [`VectorTable::check`]).
    pub ram: Area,
}

impl BootConfig<'_> {
    fn policy(&self, floor: u32) -> Policy<'_> {
        Policy {
            target: self.target,
            signers: self.signers,
            device_keys: self.device_keys,
            min_security_counter: floor,
            require_encryption: self.require_encryption,
        }
    }

    /// Verifies the container stored in `region` in full, as [`check_container`] does, and the
    /// vector table at the start of its image.
    fn check<const N: usize>(&self, region: &mut dyn Region, floor: u32) -> Result<Header, Error> {
        let (header, first) = open_stored::<N>(region, &self.policy(floor))?;
        VectorTable::check(&first, header.load_address, header.image_len, self.ram)?;
        Ok(header)
    }
}

/// What to boot.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Boot {
    /// The verified header of the image in the active slot, whose vector table is at
    /// `header.load_address`.
    pub header: Header,
    /// The image is on trial: it must call [`confirm`], or the next reset reverts it.
    pub trial: bool,
    /// Its initial stack pointer and reset vector, read from the verified image and checked:
    /// load the one, jump to the other.
    pub vectors: VectorTable,
    /// The anti-rollback floor in force for this boot (the highest of the state log and the
    /// counter).
    pub floor: u32,
}

/// Length of the container stored at the start of `region`, from its head.
fn stored_len(region: &mut dyn Region) -> Result<u32, Error> {
    let mut head = [0u8; MAX_HEAD_LEN];
    let n = MAX_HEAD_LEN.min(usize::try_from(region.capacity()).unwrap_or(usize::MAX));
    let head = head.get_mut(..n).ok_or(Error::Truncated)?;
    region.read(0, head)?;
    let (signed, _) = SignedHeader::parse(head)?;
    let len = PayloadLayout::of(&signed.header)?.container_len(signed.message.header_bytes().len());
    u32::try_from(len)
        .ok()
        .filter(|l| *l <= region.capacity())
        .ok_or(Error::Truncated)
}

/// Streams the container stored at the start of `region` to `sink`, in small pieces.
fn stream_stored(
    region: &mut dyn Region,
    mut sink: impl FnMut(&[u8]) -> Result<(), Error>,
) -> Result<(), Error> {
    let len = stored_len(region)?;
    let mut buf = [0u8; READ_CHUNK];
    let mut offset = 0u32;
    while offset < len {
        let n = usize::try_from(len.saturating_sub(offset))
            .unwrap_or(READ_CHUNK)
            .min(READ_CHUNK);
        let piece = buf.get_mut(..n).ok_or(Error::Truncated)?;
        region.read(offset, piece)?;
        sink(piece)?;
        offset = offset.saturating_add(u32::try_from(n).unwrap_or(u32::MAX));
    }
    Ok(())
}

/// Verifies the container stored in `region` in full, without writing anything: head, every
/// chunk, digest, exact length. Decrypted plaintext is discarded (and wiped).
pub fn check_container<const N: usize>(
    region: &mut dyn Region,
    policy: &Policy<'_>,
) -> Result<Header, Error> {
    open_stored::<N>(region, policy).map(|(header, _)| header)
}

/// [`check_container`], also returning the first bytes of the image (its vector table).
///
/// Never inlined: its chunk buffer and the installer's then share the same stack.
#[inline(never)]
fn open_stored<const N: usize>(
    region: &mut dyn Region,
    policy: &Policy<'_>,
) -> Result<(Header, [u8; VECTOR_TABLE_CHECKED]), Error> {
    let mut opener = Opener::<N>::new(policy);
    let mut first = [0u8; VECTOR_TABLE_CHECKED];
    stream_stored(region, |mut bytes| {
        loop {
            let (used, event) = opener.push(bytes)?;
            bytes = bytes.get(used..).unwrap_or(&[]);
            if let Some(Event::Chunk {
                offset: 0, data, ..
            }) = event
            {
                let n = data.len().min(VECTOR_TABLE_CHECKED);
                if let (Some(d), Some(s)) = (first.get_mut(..n), data.get(..n)) {
                    d.copy_from_slice(s);
                }
            }
            if event.is_none() && bytes.is_empty() {
                return Ok(());
            }
        }
    })?;
    // A final zero-length chunk completes without input.
    while opener.push(&[])?.1.is_some() {}
    match (opener.is_done(), opener.header()) {
        (true, Some(h)) => Ok((*h, first)),
        _ => Err(Error::Truncated),
    }
}

/// Installs the container stored in `from` into `to` with the verifying installer, erases every
/// sector of `to` after the image that is not blank (so that nothing of an older image stays
/// behind it), then verifies what landed in `to`, reading it back.
pub fn install_container<const N: usize>(
    from: &mut dyn Region,
    to: &mut dyn Region,
    policy: &Policy<'_>,
) -> Result<Installed, Error> {
    let mut state = BootState::default();
    let header = install_into::<N>(from, to, policy, &mut state)?;
    Installed::from_head(header, state.active().unwrap_or(&[]))
}

/// [`install_container`], recording the signed head of what it installed as `state`'s active
/// head (cleared if anything fails): no copy of the head travels up the stack.
fn install_into<const N: usize>(
    from: &mut dyn Region,
    to: &mut dyn Region,
    policy: &Policy<'_>,
    state: &mut BootState,
) -> Result<Header, Error> {
    let erased_until = run_installer::<N>(from, to, policy, state)?;
    let mut scratch = [0u8; READ_CHUNK];
    let checked = erase_after(to, erased_until, &mut scratch)
        .and_then(|()| verify_region(to, state.active().unwrap_or(&[]), policy, &mut scratch));
    if checked.is_err() {
        state.set_active(None)?;
    }
    checked
}

/// The install pass alone: records the head in `state`, returns the end of the last sector it
/// erased. Never inlined: the read-back above then does not reserve its stack on
/// top of the installer's (which holds the chunk buffer while Ed25519 runs).
#[inline(never)]
fn run_installer<const N: usize>(
    from: &mut dyn Region,
    to: &mut dyn Region,
    policy: &Policy<'_>,
    state: &mut BootState,
) -> Result<u32, Error> {
    let mut regions: [&mut dyn Region; 1] = [to];
    let mut installer = Installer::<N>::new(policy, &mut regions);
    stream_stored(from, |bytes| installer.feed(bytes))?;
    installer.finish_header()?;
    let (message, signature) = installer.signed_head().ok_or(Error::Truncated)?;
    state.set_active_parts(message, signature)?;
    Ok(installer.erased_until())
}

/// Erases every sector of `region` from offset `from` (a sector boundary) on that does not read
/// blank; a sector that cannot be read (an ECC error) is erased too.
fn erase_after(region: &mut dyn Region, from: u32, scratch: &mut [u8]) -> Result<(), Error> {
    let end = region.capacity();
    let mut at = from;
    if scratch.is_empty() {
        return Err(Error::Source);
    }
    while at < end {
        let n = usize::try_from(end.saturating_sub(at))
            .unwrap_or(usize::MAX)
            .min(scratch.len());
        let piece = scratch.get_mut(..n).ok_or(Error::Source)?;
        let blank = region.read(at, piece).is_ok() && piece.iter().all(|b| *b == 0xFF);
        at = if blank {
            at.saturating_add(u32::try_from(n).unwrap_or(u32::MAX))
        } else {
            region.erase_sector_at(at)?
        };
    }
    Ok(())
}

/// The boot manager: runs at every reset, before anything else, and says what to boot.
pub struct BootManager<'a, const N: usize> {
    config: &'a BootConfig<'a>,
    active: &'a mut dyn Region,
    slots: [&'a mut dyn Region; 2],
    store: BootStore<'a>,
    counter: Option<&'a mut dyn CounterStore>,
    first_error: Option<Error>,
}

impl<'a, const N: usize> BootManager<'a, N> {
    /// A boot manager over the areas of `layout`: `active` and `slots` must be exactly those
    /// areas, and `meta` the state banks. An optional `counter` (OTP:
    /// [`crate::otp_counter::OtpCounter`]; a secure element; [`crate::counter::FlashCounter`])
    /// keeps the floor where the state log's writers cannot lower it.
    pub fn new(
        layout: &BootLayout,
        config: &'a BootConfig<'a>,
        active: &'a mut dyn Region,
        slots: [&'a mut dyn Region; 2],
        meta: [&'a mut dyn Region; 2],
        counter: Option<&'a mut dyn CounterStore>,
    ) -> Result<Self, Error> {
        let matches = layout.active.is(&*active)
            && layout
                .slots
                .iter()
                .zip(slots.iter())
                .all(|(a, r)| a.is(&**r))
            && layout.meta.iter().zip(meta.iter()).all(|(a, r)| a.is(&**r));
        if !matches {
            return Err(Error::InvalidLayout);
        }
        Ok(Self {
            config,
            active,
            slots,
            store: BootStore::mount(meta)?,
            counter,
            first_error: None,
        })
    }

    /// The first check that failed during [`Self::run`] (the active image not verifying, a
    /// staged container refused, an install failing, a state record or counter that could not
    /// be written), for the bootloader to report why it did what it did.
    pub fn first_error(&self) -> Option<Error> {
        self.first_error
    }

    fn note<T>(&mut self, result: Result<T, Error>) -> Option<T> {
        match result {
            Ok(v) => Some(v),
            Err(e) => {
                self.first_error.get_or_insert(e);
                None
            }
        }
    }

    /// Writes `state`; a failure is noted, never fatal: booting what verifies matters more, and
    /// every transition is safe to redo from the previous record.
    fn save(&mut self, state: &BootState) {
        let r = self.store.save(state);
        self.note(r);
    }

    fn slot(&mut self, slot: u8) -> Result<&mut (dyn Region + 'a), Error> {
        self.slots
            .get_mut(usize::from(slot))
            .map(|r| &mut **r)
            .ok_or(Error::CorruptState)
    }

    /// The floor in force: the highest of the state log's records and of the counter. The one
    /// that is behind catches up: the counter is advanced; without a counter, a floor held by a
    /// single record is written again, so that this record decaying cannot lower it.
    fn settle_floor(&mut self, state: &mut BootState, durable: bool) -> Result<u32, Error> {
        let Some(counter) = self.counter.as_deref_mut() else {
            if !durable {
                self.save(state);
            }
            return Ok(state.floor);
        };
        let held = counter.read()?;
        let floor = state.floor.max(held);
        // A confirmation cut short before the counter followed the state, or a counter that
        // holds its value in one place only (an OTP word a cut may have left marginal): advance
        // it to the floor, which writes only what is missing.
        let r = counter.advance(floor);
        self.note(r);
        state.floor = floor;
        Ok(floor)
    }

    /// The vector table of the image now in the active slot, checked against its header.
    fn vectors(&mut self, header: &Header) -> Result<VectorTable, Error> {
        let mut first = [0u8; VECTOR_TABLE_CHECKED];
        let n = usize::try_from(header.image_len)
            .unwrap_or(usize::MAX)
            .min(VECTOR_TABLE_CHECKED);
        self.active
            .read(0, first.get_mut(..n).ok_or(Error::Truncated)?)?;
        VectorTable::check(
            &first,
            header.load_address,
            header.image_len,
            self.config.ram,
        )
    }

    /// Verifies container `slot` in full when `check` says so, then installs it into the active
    /// slot; on success records its signed head in `state`. If the install fails before it
    /// completed, the old head stays (the digest exposes an active slot it touched); if it fails
    /// after (the read-back, the vector table), no head is left.
    fn install(
        &mut self,
        slot: u8,
        floor: u32,
        state: &mut BootState,
        check: bool,
    ) -> Result<(Header, VectorTable), Error> {
        let config = self.config;
        if check {
            // Verify the whole container from flash before the active slot is touched: a bad
            // container then costs no erase of the running image.
            config.check::<N>(self.slot(slot)?, floor)?;
        }
        let from = self
            .slots
            .get_mut(usize::from(slot))
            .ok_or(Error::CorruptState)?;
        let header =
            install_into::<N>(&mut **from, &mut *self.active, &config.policy(floor), state)?;
        let vectors = self.vectors(&header).inspect_err(|_| {
            let _ = state.set_active(None);
        })?;
        Ok((header, vectors))
    }

    /// The active image, if it verifies (signature, floor, digest, vector table).
    fn boot_active(&mut self, state: &BootState, floor: u32, trial: bool) -> Option<Boot> {
        let head = state.active()?;
        let config = self.config;
        let policy = config.policy(floor);
        let mut scratch = [0u8; READ_CHUNK];
        let verified = verify_region(&mut *self.active, head, &policy, &mut scratch)
            .and_then(|header| Ok((header, self.vectors(&header)?)));
        self.note(verified).map(|(header, vectors)| Boot {
            header,
            trial,
            vectors,
            floor,
        })
    }

    /// The container slot whose container starts with the active image's head.
    fn slot_holding_active(&mut self, state: &BootState) -> Option<u8> {
        let head = state.active()?;
        let mut buf = [0u8; MAX_HEAD_LEN];
        let stored = buf.get_mut(..head.len())?;
        (0u8..2).find(|i| {
            self.slot(*i)
                .and_then(|r| r.read(0, &mut *stored))
                .is_ok_and(|()| *stored == *head)
        })
    }

    /// The valid container with the highest security counter at or above the floor, to install
    /// when there is no confirmed image to go back to (a device without state, or whose
    /// confirmed container is unusable).
    fn find_image(&mut self, floor: u32) -> Result<Phase, Error> {
        let config = self.config;
        let mut best: Option<(u8, u32)> = None;
        for (i, region) in (0u8..).zip(self.slots.iter_mut()) {
            if let Ok(h) = config.check::<N>(&mut **region, floor)
                && best.is_none_or(|(_, c)| h.security_counter > c)
            {
                best = Some((i, h.security_counter));
            }
        }
        best.map(|(slot, _)| Phase::Installing { slot })
            .ok_or(Error::NoImage)
    }

    /// Brings the device to a bootable state and returns what to boot. Call at every reset;
    /// safe to interrupt at any point (the next call carries on).
    ///
    /// The state's active head changes only when an install completed and was verified; at any
    /// other time the active slot may hold a partly written image, which its digest exposes.
    /// So every fallback is the same question: does the active image verify?
    pub fn run(&mut self) -> Result<Boot, Error> {
        let (mut state, durable) = self.store.load_checked();
        let floor = self.settle_floor(&mut state, durable)?;
        let trial_boots = self.config.trial_boots.max(1);
        for _ in 0..MAX_TRANSITIONS {
            match state.phase {
                Phase::Idle => {
                    if let Some(boot) = self.boot_active(&state, floor, false) {
                        return Ok(boot);
                    }
                    // Damaged, half written, or never installed: restore or install.
                    state.phase = match state.confirmed {
                        Some(slot) => Phase::Reverting { slot },
                        None => self.find_image(floor)?,
                    };
                }
                Phase::Pending { slot } => {
                    let config = self.config;
                    let ok = state.confirmed != Some(slot) && {
                        let r = self.slot(slot).and_then(|r| config.check::<N>(r, floor));
                        self.note(r).is_some()
                    };
                    state.phase = if ok {
                        Phase::Installing { slot }
                    } else {
                        Phase::Idle
                    };
                }
                // Checked in full when it was pending (or found); after a cut the install
                // simply starts again, verifying every chunk as it goes.
                Phase::Installing { slot } => match self.install(slot, floor, &mut state, false) {
                    Err(e) => {
                        self.first_error.get_or_insert(e);
                        // The container went bad since it was checked, or the flash fails. If
                        // the active slot was not touched, Idle boots it as it is; otherwise
                        // Idle finds it damaged and restores the confirmed image.
                        state.phase = Phase::Idle;
                    }
                    Ok((header, vectors)) => {
                        if state.confirmed.is_none() {
                            // The first image of a device: nothing to revert to, so it is
                            // confirmed at once.
                            state.confirmed = Some(slot);
                            state.floor = state.floor.max(header.security_counter);
                            state.phase = Phase::Idle;
                        } else {
                            state.phase = Phase::Trial {
                                slot,
                                boots_left: trial_boots.saturating_sub(1),
                            };
                            self.save(&state);
                            return Ok(Boot {
                                header,
                                trial: true,
                                vectors,
                                floor,
                            });
                        }
                    }
                },
                Phase::Trial { slot, boots_left } => {
                    let verified = match boots_left {
                        0 => None,
                        _ => self.boot_active(&state, floor, true),
                    };
                    match (verified, state.confirmed) {
                        (Some(boot), _) => {
                            state.phase = Phase::Trial {
                                slot,
                                boots_left: boots_left.saturating_sub(1),
                            };
                            self.save(&state);
                            return Ok(boot);
                        }
                        // Not confirmed in time, or damaged: back to the confirmed image.
                        (None, Some(c)) => state.phase = Phase::Reverting { slot: c },
                        (None, None) => state.phase = Phase::Idle,
                    }
                }
                Phase::Reverting { slot } => match self.install(slot, floor, &mut state, true) {
                    Ok(_) => {
                        state.confirmed = Some(slot);
                        state.phase = Phase::Idle;
                    }
                    // The confirmed container is unusable (or refused: below the floor, which
                    // only a confirmation, maybe one whose record was lost, can have raised).
                    // If the active image is intact, run it, still unconfirmed, rather than
                    // nothing: it stays on trial, so it can confirm itself, and the next reset
                    // tries the revert again. Otherwise the best valid container left is
                    // installed and confirmed.
                    Err(e) => {
                        self.first_error.get_or_insert(e);
                        if let Some(boot) = self.boot_active(&state, floor, true) {
                            if let Some(slot) = self.slot_holding_active(&state) {
                                state.phase = Phase::Trial {
                                    slot,
                                    boots_left: 0,
                                };
                                self.save(&state);
                            }
                            return Ok(boot);
                        }
                        state.confirmed = None;
                        state.phase = self.find_image(floor)?;
                    }
                },
            }
            self.save(&state);
        }
        Err(Error::NoImage)
    }
}

/// Marks the running trial image as good: it becomes the confirmed image and the anti-rollback
/// floor rises to its security counter, in one record; the `counter` then follows (and the boot
/// manager makes it catch up if power is lost in between). Returns `false` if there was nothing
/// to confirm. Called by the application once it has checked itself.
///
/// A counter that would have to advance but has no advance left refuses the confirmation
/// ([`Error::CounterExhausted`]) before anything is written: the image stays on trial (and is
/// reverted at the next reset) rather than run above a floor the counter cannot hold.
pub fn confirm(
    store: &mut BootStore<'_>,
    mut counter: Option<&mut dyn CounterStore>,
) -> Result<bool, Error> {
    let mut state = store.load()?;
    let Phase::Trial { slot, .. } = state.phase else {
        return match state.phase {
            Phase::Idle => Ok(false),
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
    store.save(&state)?;
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
pub struct Stager<'s, 'r, const N: usize> {
    store: &'s mut BootStore<'r>,
    slot: &'s mut dyn Region,
    index: u8,
    state: BootState,
    layout: BootLayout,
    config: &'s BootConfig<'s>,
    head: HeadReader,
    header: Option<Header>,
    expected: u32,
    written: u32,
    erased_until: u32,
    pending: [u8; STAGE_BUFFER],
    pending_len: usize,
    failed: Option<Error>,
}

impl<'s, 'r, const N: usize> Stager<'s, 'r, N> {
    /// Starts staging into whichever of `slots` does not hold the confirmed image's container.
    /// Refused ([`Error::Busy`]) while an installed image is on trial or being installed.
    pub fn new(
        layout: &BootLayout,
        config: &'s BootConfig<'s>,
        store: &'s mut BootStore<'r>,
        slots: [&'s mut dyn Region; 2],
    ) -> Result<Self, Error> {
        let state = store.load()?;
        if !matches!(state.phase, Phase::Idle | Phase::Pending { .. }) {
            return Err(Error::Busy);
        }
        let index = match state.confirmed {
            Some(0) => 1u8,
            _ => 0u8,
        };
        let [s0, s1] = slots;
        let slot = if index == 0 { s0 } else { s1 };
        let area = layout
            .slots
            .get(usize::from(index))
            .ok_or(Error::InvalidLayout)?;
        if !area.is(&*slot)
            || usize::try_from(slot.write_size()).unwrap_or(usize::MAX) > MAX_WRITE_SIZE
        {
            return Err(Error::InvalidLayout);
        }
        Ok(Self {
            store,
            slot,
            index,
            state,
            layout: *layout,
            config,
            head: HeadReader::new(),
            header: None,
            expected: 0,
            written: 0,
            erased_until: 0,
            pending: [0xFF; STAGE_BUFFER],
            pending_len: 0,
            failed: None,
        })
    }

    /// Which container slot is being written.
    pub fn slot(&self) -> u8 {
        self.index
    }

    /// Feeds the next bytes of the container, in any slice size.
    pub fn feed(&mut self, bytes: &[u8]) -> Result<(), Error> {
        if let Some(e) = self.failed {
            return Err(e);
        }
        let result = self.take(bytes);
        if let Err(e) = result {
            self.failed = Some(e);
        }
        result
    }

    fn take(&mut self, bytes: &[u8]) -> Result<(), Error> {
        let mut rest = bytes;
        if self.header.is_none() {
            let used = self.head.push(rest)?;
            rest = rest.get(used..).unwrap_or(&[]);
            if !self.head.is_complete() {
                return Ok(());
            }
            let header = self.head.verify(&self.config.policy(self.state.floor))?;
            let active = self.layout.active;
            if header.load_address != active.address {
                return Err(Error::WrongLoadAddress {
                    expected: active.address,
                    found: header.load_address,
                });
            }
            if header.image_len > active.len {
                return Err(Error::RegionTooSmall {
                    image_len: header.image_len,
                    capacity: active.len,
                });
            }
            let total =
                PayloadLayout::of(&header)?.container_len(self.head.message().header_bytes().len());
            self.expected = u32::try_from(total)
                .ok()
                .filter(|t| *t <= self.slot.capacity())
                .ok_or(Error::RegionTooSmall {
                    image_len: u32::try_from(total).unwrap_or(u32::MAX),
                    capacity: self.slot.capacity(),
                })?;
            self.header = Some(header);
            // Only now, with an authentic head, is the slot touched.
            let head = self.head.clone();
            self.program(head.message().container_bytes())?;
            self.program(head.signature())?;
        }
        self.program(rest)
    }

    /// Appends raw container bytes to the slot in writes of [`STAGE_BUFFER`] bytes, erasing
    /// sectors as writing reaches them.
    fn program(&mut self, mut bytes: &[u8]) -> Result<(), Error> {
        let total = self
            .written
            .saturating_add(u32::try_from(self.pending_len).unwrap_or(u32::MAX))
            .saturating_add(u32::try_from(bytes.len()).unwrap_or(u32::MAX));
        if total > self.expected {
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
        let ws = usize::try_from(self.slot.write_size()).unwrap_or(MAX_WRITE_SIZE);
        let len = self
            .pending_len
            .checked_next_multiple_of(ws)
            .ok_or(Error::InvalidLayout)?;
        let end = self
            .written
            .saturating_add(u32::try_from(len).unwrap_or(u32::MAX));
        while self.erased_until < end {
            self.erased_until = self.slot.erase_sector_at(self.erased_until)?;
        }
        // Only the padding needs filling: the rest of the buffer is overwritten before the
        // next flush.
        self.pending
            .get_mut(self.pending_len..len)
            .ok_or(Error::InvalidLayout)?
            .fill(0xFF);
        let unit = self.pending.get(..len).ok_or(Error::InvalidLayout)?;
        self.slot.write(self.written, unit)?;
        self.written = end;
        self.pending_len = 0;
        Ok(())
    }

    /// Ends the container: it must be complete. It is then read back and verified in full when
    /// this side can (signed-only, or encrypted and the device keys are here), its vector table
    /// included, and marked pending: the next reset installs it. Returns its header.
    pub fn finish(mut self) -> Result<Header, Error> {
        if let Some(e) = self.failed {
            return Err(e);
        }
        let header = self.header.ok_or(Error::Truncated)?;
        let received = self
            .written
            .saturating_add(u32::try_from(self.pending_len).unwrap_or(u32::MAX));
        if received != self.expected {
            return Err(Error::Truncated);
        }
        if self.pending_len > 0 {
            self.flush()?;
        }
        let floor = self.state.floor;
        let can_decrypt = header
            .device_key()
            .is_none_or(|id| self.config.policy(floor).device_key(id).is_ok());
        if can_decrypt {
            self.config.check::<N>(&mut *self.slot, floor)?;
        }
        self.state.phase = Phase::Pending { slot: self.index };
        self.store.save(&self.state)?;
        Ok(header)
    }
}
