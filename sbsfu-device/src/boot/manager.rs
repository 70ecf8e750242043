//! The bootloader side: the boot manager that runs at every reset and says what to boot.

use sbsfu_format::Header;
use sbsfu_format::MAX_HEAD_LEN;

use super::config::BootConfig;
use super::container::{READ_CHUNK, install_into};
use super::layout::BootRegions;
use super::state::{BootState, Phase, StateLog};
use super::vector_table::{VECTOR_TABLE_CHECKED, VectorTable};
use super::verify::verify_region;
use crate::Error;
use crate::flash::Region;
use crate::store::CounterStore;

/// A boot settles in at most this many transitions (the longest path is
/// Pending, Installing, failed, Reverting, Idle).
const MAX_TRANSITIONS: usize = 8;

/// What to boot.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Boot {
    /// The verified header of the image in the active slot, whose vector table is at
    /// `header.load_address`.
    pub header: Header,
    /// The image is on trial: it must call [`confirm`](super::confirm), or the next reset reverts it.
    pub trial: bool,
    /// Its initial stack pointer and reset vector, read from the verified image and checked:
    /// load the one, jump to the other.
    pub vectors: VectorTable,
    /// The anti-rollback floor in force for this boot (the highest of the state log and the
    /// counter).
    pub floor: u32,
}

/// The boot manager: runs at every reset, before anything else, and says what to boot.
pub struct BootManager<'a, const N: usize> {
    config: &'a BootConfig<'a>,
    active: &'a mut dyn Region,
    slots: [&'a mut dyn Region; 2],
    log: StateLog<'a>,
    counter: Option<&'a mut dyn CounterStore>,
    first_error: Option<Error>,
}

impl<'a, const N: usize> BootManager<'a, N> {
    /// A boot manager over the regions of a boot layout ([`BootLayout::regions`]). An optional
    /// `counter` (OTP: [`OtpCounter`]; a secure element; [`FlashCounter`]) keeps the floor where
    /// the state log's writers cannot lower it.
    ///
    /// [`BootLayout::regions`]: super::BootLayout::regions
    /// [`OtpCounter`]: crate::store::OtpCounter
    /// [`FlashCounter`]: crate::store::FlashCounter
    pub fn new<A: Region, S: Region>(
        config: &'a BootConfig<'a>,
        regions: &'a mut BootRegions<A, S>,
        counter: Option<&'a mut dyn CounterStore>,
    ) -> Result<Self, Error> {
        // Not `regions.open()`: the tuple it returns costs the bootloader's main frame 8 bytes.
        let BootRegions {
            active,
            slots: [s0, s1],
            state_log: [l0, l1],
        } = regions;
        Ok(Self {
            config,
            active,
            slots: [s0, s1],
            log: StateLog::mount([l0, l1])?,
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
        let r = self.log.save(state);
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
        let (mut state, durable) = self.log.load_checked();
        let floor = self.settle_floor(&mut state, durable)?;
        let trial_boots = self.config.trial_boots.max(1);
        for _ in 0..MAX_TRANSITIONS {
            match state.phase {
                // A partly received container waits for its sender: the active image runs.
                Phase::Idle | Phase::Receiving { .. } => {
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
