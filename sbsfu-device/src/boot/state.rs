//! The boot state: what is installed, what is confirmed, what is in progress, and the

use core::fmt;

use sbsfu_format::MAX_HEAD_LEN;

use crate::Error;
use crate::flash::Region;
use crate::install::head::HeadCopy;
use crate::store::record_log::{MAX_PAYLOAD, RecordLog};

/// Where the update stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// Nothing in progress: the active image, if any, is the confirmed one.
    Idle,
    /// A container was staged in `slot`; the boot manager verifies and installs it at reset.
    Pending {
        /// Container slot.
        slot: u8,
    },
    /// The active slot is being overwritten from `slot` (restarted from scratch after a cut).
    Installing {
        /// Container slot.
        slot: u8,
    },
    /// The image from `slot` is installed and on trial; it must confirm itself. `boots_left`
    /// more boots are allowed before it is reverted.
    Trial {
        /// Container slot.
        slot: u8,
        /// Boots left before revert.
        boots_left: u8,
    },
    /// The active slot is being restored from the confirmed container in `slot`.
    Reverting {
        /// Container slot.
        slot: u8,
    },
    /// A container is being received into `slot` by a link that resumes
    /// ([`Stager::begin`](super::Stager::begin)); its first `durable` bytes are stored. The
    /// boot manager treats it as `Idle`.
    Receiving {
        /// Container slot.
        slot: u8,
        /// Bytes of the container stored in the slot, from its first.
        durable: u32,
    },
}

/// The whole boot state, as one record.
#[derive(Clone, PartialEq, Eq)]
pub struct BootState {
    /// Images with a lower security counter are refused. Raised only by a confirmation.
    pub floor: u32,
    /// Container slot holding the confirmed image's container, once there is one.
    pub confirmed: Option<u8>,
    /// Where the update stands.
    pub phase: Phase,
    active: HeadCopy,
}

impl fmt::Debug for BootState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BootState")
            .field("floor", &self.floor)
            .field("confirmed", &self.confirmed)
            .field("phase", &self.phase)
            .field("active_head_len", &self.active.as_bytes().len())
            .finish()
    }
}

impl Default for BootState {
    /// A device that never booted: nothing installed, floor 0.
    fn default() -> Self {
        Self {
            floor: 0,
            confirmed: None,
            phase: Phase::Idle,
            active: HeadCopy::EMPTY,
        }
    }
}

const VERSION: u8 = 1;
const NONE: u8 = 0xFF;
const FIXED: usize = 11;

impl BootState {
    /// The signed head (prefix, header, signature) of the image fully installed and verified in
    /// the active slot; `None` while the active slot is being written.
    pub fn active(&self) -> Option<&[u8]> {
        Some(self.active.as_bytes()).filter(|h| !h.is_empty())
    }

    /// Sets (or clears) the active image's head.
    pub fn set_active(&mut self, head: Option<&[u8]>) -> Result<(), Error> {
        self.set_active_parts(head.unwrap_or(&[]), &[])
    }

    /// Sets the active image's head from its two parts (prefix and header, then signature).
    pub(crate) fn set_active_parts(&mut self, body: &[u8], signature: &[u8]) -> Result<(), Error> {
        self.active.set(body, signature).ok_or(Error::CorruptState)
    }

    fn encode(&self, out: &mut [u8; MAX_PAYLOAD]) -> Result<usize, Error> {
        let (tag, slot, boots) = match self.phase {
            Phase::Idle => (0, NONE, 0),
            Phase::Pending { slot } => (1, slot, 0),
            Phase::Installing { slot } => (2, slot, 0),
            Phase::Trial { slot, boots_left } => (3, slot, boots_left),
            Phase::Reverting { slot } => (4, slot, 0),
            Phase::Receiving { slot, .. } => (5, slot, 0),
        };
        let active = self.active.as_bytes();
        let len = u16::try_from(active.len()).map_err(|_| Error::CorruptState)?;
        let mut fixed = [0u8; FIXED];
        fixed[0] = VERSION;
        fixed[1..5].copy_from_slice(&self.floor.to_le_bytes());
        fixed[5] = self.confirmed.unwrap_or(NONE);
        fixed[6] = tag;
        fixed[7] = slot;
        fixed[8] = boots;
        fixed[9..11].copy_from_slice(&len.to_le_bytes());
        let total = FIXED.saturating_add(active.len());
        out.get_mut(..FIXED)
            .ok_or(Error::CorruptState)?
            .copy_from_slice(&fixed);
        out.get_mut(FIXED..total)
            .ok_or(Error::CorruptState)?
            .copy_from_slice(active);
        // Only a receiving state has more: its durable length.
        let Phase::Receiving { durable, .. } = self.phase else {
            return Ok(total);
        };
        let end = total.saturating_add(4);
        out.get_mut(total..end)
            .ok_or(Error::CorruptState)?
            .copy_from_slice(&durable.to_le_bytes());
        Ok(end)
    }

    fn decode(bytes: &[u8]) -> Result<Self, Error> {
        let fixed: &[u8; FIXED] = bytes.first_chunk().ok_or(Error::CorruptState)?;
        let [version, f0, f1, f2, f3, confirmed, tag, slot, boots, l0, l1] = *fixed;
        let len = usize::from(u16::from_le_bytes([l0, l1]));
        let rest = bytes.get(FIXED..).ok_or(Error::CorruptState)?;
        let extra = if tag == 5 { 4 } else { 0 };
        if version != VERSION || rest.len() != len.saturating_add(extra) || len > MAX_HEAD_LEN {
            return Err(Error::CorruptState);
        }
        let (head, tail) = rest.split_at(len);
        let phase = match tag {
            0 => Phase::Idle,
            1 => Phase::Pending { slot },
            2 => Phase::Installing { slot },
            3 => Phase::Trial {
                slot,
                boots_left: boots,
            },
            4 => Phase::Reverting { slot },
            5 => Phase::Receiving {
                slot,
                durable: tail
                    .first_chunk::<4>()
                    .map(|d| u32::from_le_bytes(*d))
                    .ok_or(Error::CorruptState)?,
            },
            _ => return Err(Error::CorruptState),
        };
        let mut state = Self {
            floor: u32::from_le_bytes([f0, f1, f2, f3]),
            confirmed: (confirmed != NONE).then_some(confirmed),
            phase,
            ..Self::default()
        };
        state.set_active(Some(head))?;
        Ok(state)
    }
}

/// The state log: the boot state's records, in a power-safe record log of two banks.
///
/// anti-rollback floor, kept in a power-safe record log. Every transition is one record, so a
/// power cut leaves either the state before or the state after it.
///
/// The state in force is the newest record that verifies and decodes; its floor is the
/// **maximum** over every record that does, so a record appended by whoever can program the
/// flash (the record hash has no key) cannot lower it, and neither can the newest record
/// decaying after a power cut, once a second record (or a counter) holds the same floor.
pub struct StateLog<'r> {
    log: RecordLog<'r>,
}

impl<'r> StateLog<'r> {
    /// Mounts the store on two banks.
    #[inline]
    pub fn mount(banks: [&'r mut dyn Region; 2]) -> Result<Self, Error> {
        Ok(Self {
            log: RecordLog::mount(banks)?,
        })
    }

    /// The current state ([`BootState::default`] on a device that never wrote one): the newest
    /// record that verifies and decodes, with the floor raised to the maximum over all of them.
    /// If that record is not the newest the log found at mount (the newest decayed, or does not
    /// decode), it is written again as a fresh record (best effort).
    pub fn load(&mut self) -> Result<BootState, Error> {
        Ok(self.load_checked().0)
    }

    /// [`Self::load`], and whether the floor is held by at least two records (so that one of
    /// them decaying cannot lower it). Never inlined: its buffers are not on the stack while
    /// the boot manager installs.
    #[inline(never)]
    pub(crate) fn load_checked(&mut self) -> (BootState, bool) {
        let mut newest: Option<(u32, BootState)> = None;
        let (mut floor, mut holders) = (0u32, 0u32);
        let scanned = self.log.for_each(&mut |seq, payload| {
            let Ok(state) = BootState::decode(payload) else {
                return;
            };
            if state.floor > floor {
                (floor, holders) = (state.floor, 0);
            }
            if state.floor == floor {
                holders = holders.saturating_add(1);
            }
            if newest.as_ref().is_none_or(|(s, _)| seq > *s) {
                newest = Some((seq, state));
            }
        });
        let Some((seq, mut state)) = newest.filter(|_| scanned.is_ok()) else {
            return (BootState::default(), floor == 0);
        };
        state.floor = floor;
        if Some(seq) != self.log.latest_seq() && self.save(&state).is_ok() {
            holders = holders.saturating_add(1);
        }
        (state, holders >= 2 || floor == 0)
    }

    /// Makes `state` the current state, atomically.
    pub fn save(&mut self, state: &BootState) -> Result<(), Error> {
        let mut buf = [0u8; MAX_PAYLOAD];
        let n = state.encode(&mut buf)?;
        self.log.append(buf.get(..n).ok_or(Error::CorruptState)?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sim::SimFlash;
    use crate::store::record_log::RECORD_SIZE;
    use crate::testkit::with_banks;

    #[test]
    fn encoding_round_trips_every_phase() {
        let phases = [
            Phase::Idle,
            Phase::Pending { slot: 1 },
            Phase::Installing { slot: 0 },
            Phase::Trial {
                slot: 1,
                boots_left: 3,
            },
            Phase::Reverting { slot: 0 },
            Phase::Receiving {
                slot: 1,
                durable: 0x1234_5678,
            },
        ];
        for phase in phases {
            for head in [&[][..], &[7u8; MAX_HEAD_LEN][..]] {
                let mut s = BootState {
                    floor: 0xDEAD_BEEF,
                    confirmed: Some(1),
                    phase,
                    ..BootState::default()
                };
                s.set_active(Some(head)).unwrap();
                let mut buf = [0u8; MAX_PAYLOAD];
                let n = s.encode(&mut buf).unwrap();
                assert_eq!(BootState::decode(&buf[..n]).unwrap(), s);
                assert!(BootState::decode(&buf[..n - 1]).is_err() || head.is_empty());
            }
        }
        let mut buf = [0u8; MAX_PAYLOAD];
        let n = BootState::default().encode(&mut buf).unwrap();
        buf[6] = 9;
        assert_eq!(BootState::decode(&buf[..n]), Err(Error::CorruptState));
    }

    #[test]
    fn a_newest_record_that_stops_verifying_falls_back_and_is_written_again() {
        // Two 16K banks (sectors 2 and 3 of an F405); states told apart by their boots left.
        let state = |i: u8| BootState {
            floor: 3,
            confirmed: Some(0),
            phase: Phase::Trial {
                slot: 1,
                boots_left: i,
            },
            ..BootState::default()
        };
        let mut flash = SimFlash::stm32f405();
        with_banks(&mut flash, |[a, b], flash| {
            let mut log = StateLog::mount([&mut *a, &mut *b]).unwrap();
            for i in 0..3 {
                log.save(&state(i)).unwrap();
            }
            let newest = 0x8000 + 2 * RECORD_SIZE + 200;
            let mut log = StateLog::mount([&mut *a, &mut *b]).unwrap();
            // One bit of the newest record flips between the mount and the read.
            flash.0.borrow_mut().data_mut()[newest] ^= 0x04;
            assert_eq!(log.load(), Ok(state(1)));
            // The record before it was written again: it stays the newest even when the
            // unstable bit reads as programmed again.
            flash.0.borrow_mut().data_mut()[newest] ^= 0x04;
            let mut log = StateLog::mount([a, b]).unwrap();
            assert_eq!(log.load(), Ok(state(1)));
            assert_eq!(log.log.latest_seq(), Some(4));
        });
    }
}
