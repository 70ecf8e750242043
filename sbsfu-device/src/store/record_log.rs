//! A power-safe record log: the newest valid record wins.
//!
//! Two banks (each one or more whole sectors) hold fixed-size slots of [`RECORD_SIZE`] bytes. A
//! record is written in one program operation, into a slot that is verified blank first:
//!
//! ```text
//! "SBRL" | seq: u32 LE | len: u16 LE | payload | 0xFF padding | SHA-256(context || all before)
//! ```
//!
//! The hash comes last, so a write cut short (a prefix programmed, a byte half programmed) leaves
//! a slot whose hash cannot match: it is never mistaken for a record, and the previous record
//! stays the newest. A slot that is neither blank nor valid is skipped, never written over.
//! When the current bank is full, the other bank is erased and the new record goes there: a cut
//! during that erase leaves the newest record untouched in the full bank, and the erase is simply
//! done again. Records are single writes and compaction copies nothing, so every append is atomic.
//!
//! A cut at the very end of a write can also leave **marginal** cells: the record verifies at
//! first and decays later (the F4 has no ECC), or verifies on one read and not the next. Records
//! are therefore checked again whenever they are used, never trusted from the mount, and a slot
//! that cannot be read at all (an ECC error on flash that has ECC) is just a dirty slot. When the
//! newest record no longer verifies, the newest that still does is used and written again as a
//! fresh record, so that the decaying one stops being the newest for good (the state log does
//! that: `boot::state::StateLog::load`). Callers that keep a value that must never go back (the
//! anti-rollback floor, the key-set epoch) take its maximum over every valid record
//! ([`RecordLog::for_each`]) rather than trust the newest alone.

use sha2::{Digest, Sha256};

use crate::Error;
use crate::flash::Region;

/// Size of a record slot.
pub const RECORD_SIZE: usize = 1024;
/// Domain separation of the record hash.
pub const RECORD_CONTEXT: &[u8] = b"sbsfu/v1/record";
const MAGIC: [u8; 4] = *b"SBRL";
const HASH_LEN: usize = 32;
const HEAD_LEN: usize = 4 + 4 + 2;
/// Largest payload of a record.
pub const MAX_PAYLOAD: usize = RECORD_SIZE - HEAD_LEN - HASH_LEN;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Slot {
    Blank,
    Valid { seq: u32 },
    Dirty,
}

fn record_hash(body: &[u8]) -> [u8; HASH_LEN] {
    Sha256::new()
        .chain_update(RECORD_CONTEXT)
        .chain_update(body)
        .finalize()
        .into()
}

/// The little-endian `u16` at `at`, if there.
fn le_u16(bytes: &[u8], at: usize) -> Option<u16> {
    let b = bytes.get(at..)?.first_chunk::<2>()?;
    Some(u16::from_le_bytes(*b))
}

/// The little-endian `u32` at `at`, if there.
fn le_u32(bytes: &[u8], at: usize) -> Option<u32> {
    let b = bytes.get(at..)?.first_chunk::<4>()?;
    Some(u32::from_le_bytes(*b))
}

/// The payload of a slot that classified as valid (empty if its length is out of range).
fn payload(slot: &[u8; RECORD_SIZE]) -> &[u8] {
    let len = le_u16(slot, 8).map_or(0, usize::from);
    slot.get(HEAD_LEN..HEAD_LEN.saturating_add(len))
        .unwrap_or(&[])
}

fn classify(slot: &[u8; RECORD_SIZE]) -> Slot {
    if slot.iter().all(|b| *b == 0xFF) {
        return Slot::Blank;
    }
    let (body, hash) = slot.split_at(RECORD_SIZE - HASH_LEN);
    let magic_ok = body.get(..4) == Some(MAGIC.as_slice());
    let len = le_u16(body, 8).map_or(usize::MAX, usize::from);
    if !magic_ok || len > MAX_PAYLOAD || record_hash(body).as_slice() != hash {
        return Slot::Dirty;
    }
    match le_u32(body, 4) {
        Some(seq) => Slot::Valid { seq },
        None => Slot::Dirty,
    }
}

/// The log over two banks.
pub struct RecordLog<'r> {
    banks: [&'r mut dyn Region; 2],
    current: usize,
    next: u32,
    seq: u32,
    latest: Option<(usize, u32)>,
}

impl<'r> RecordLog<'r> {
    /// Scans both banks and finds the newest record. Each bank must hold at least two slots and
    /// be programmable in slot-sized writes.
    #[inline(never)]
    pub fn mount(banks: [&'r mut dyn Region; 2]) -> Result<Self, Error> {
        for b in &banks {
            let ws = b.write_size() as usize;
            if (b.capacity() as usize) < 2 * RECORD_SIZE
                || ws == 0
                || !RECORD_SIZE.is_multiple_of(ws)
            {
                return Err(Error::InvalidLayout);
            }
        }
        let mut log = Self {
            banks,
            current: 0,
            next: 0,
            seq: 0,
            latest: None,
        };
        let mut buf = [0u8; RECORD_SIZE];
        let mut last_used = [None::<u32>; 2];
        for (bank, last) in last_used.iter_mut().enumerate() {
            for slot in 0..log.slots(bank) {
                match log.read_slot(bank, slot, &mut buf)? {
                    Slot::Blank => {}
                    Slot::Dirty => *last = Some(slot),
                    Slot::Valid { seq } => {
                        *last = Some(slot);
                        if log.latest.is_none() || seq > log.seq {
                            log.seq = seq;
                            log.latest = Some((bank, slot));
                        }
                    }
                }
            }
        }
        log.current = log.latest.map_or(0, |(b, _)| b);
        log.next = last_used
            .get(log.current)
            .copied()
            .flatten()
            .map_or(0, |s| s.saturating_add(1));
        Ok(log)
    }

    fn slots(&self, bank: usize) -> u32 {
        self.banks
            .get(bank)
            .and_then(|b| b.capacity().checked_div(RECORD_SIZE as u32))
            .unwrap_or(0)
    }

    fn bank(&mut self, bank: usize) -> Result<&mut &'r mut dyn Region, Error> {
        self.banks.get_mut(bank).ok_or(Error::InvalidLayout)
    }

    /// Reads and classifies a slot; a slot that cannot be read (an ECC error) is dirty.
    fn read_slot(
        &mut self,
        bank: usize,
        slot: u32,
        buf: &mut [u8; RECORD_SIZE],
    ) -> Result<Slot, Error> {
        let offset = slot.saturating_mul(RECORD_SIZE as u32);
        if self.bank(bank)?.read(offset, buf).is_err() {
            return Ok(Slot::Dirty);
        }
        Ok(classify(buf))
    }

    /// Sequence number of the newest record found at mount (or since appended).
    pub fn latest_seq(&self) -> Option<u32> {
        self.latest.map(|_| self.seq)
    }

    /// Calls `visit(seq, payload)` for every record that verifies now (each read from flash
    /// again), in no particular order.
    pub fn for_each(&mut self, visit: &mut dyn FnMut(u32, &[u8])) -> Result<(), Error> {
        let mut buf = [0u8; RECORD_SIZE];
        for bank in 0..2 {
            for slot in 0..self.slots(bank) {
                if let Slot::Valid { seq } = self.read_slot(bank, slot, &mut buf)? {
                    visit(seq, payload(&buf));
                }
            }
        }
        Ok(())
    }

    /// Appends a record; once this returns `Ok`, it is the newest record, durably.
    pub fn append(&mut self, payload: &[u8]) -> Result<(), Error> {
        let len = u16::try_from(payload.len())
            .ok()
            .filter(|l| usize::from(*l) <= MAX_PAYLOAD)
            .ok_or(Error::CorruptState)?;
        let seq = self.seq.checked_add(1).ok_or(Error::CorruptState)?;
        let mut record = [0xFFu8; RECORD_SIZE];
        {
            let (body, hash) = record.split_at_mut(RECORD_SIZE - HASH_LEN);
            body.get_mut(..4)
                .ok_or(Error::CorruptState)?
                .copy_from_slice(&MAGIC);
            body.get_mut(4..8)
                .ok_or(Error::CorruptState)?
                .copy_from_slice(&seq.to_le_bytes());
            body.get_mut(8..10)
                .ok_or(Error::CorruptState)?
                .copy_from_slice(&len.to_le_bytes());
            body.get_mut(HEAD_LEN..HEAD_LEN.saturating_add(payload.len()))
                .ok_or(Error::CorruptState)?
                .copy_from_slice(payload);
            hash.copy_from_slice(&record_hash(body));
        }
        let mut check = [0u8; RECORD_SIZE];
        // A slot found dirty, or a write that does not read back, costs one slot; give up after
        // a whole bank's worth of attempts (the flash is failing).
        for _ in 0..=self
            .slots(self.current)
            .saturating_add(self.slots(1usize.saturating_sub(self.current)))
        {
            if self.next >= self.slots(self.current) {
                self.compact()?;
            }
            let (bank, slot) = (self.current, self.next);
            self.next = slot.saturating_add(1);
            if self.read_slot(bank, slot, &mut check)? != Slot::Blank {
                continue;
            }
            let offset = slot.saturating_mul(RECORD_SIZE as u32);
            self.bank(bank)?.write(offset, &record)?;
            if self.read_slot(bank, slot, &mut check)? == (Slot::Valid { seq }) {
                self.seq = seq;
                self.latest = Some((bank, slot));
                return Ok(());
            }
        }
        Err(Error::CorruptState)
    }

    /// Makes the other bank current: erases it whole. The newest record stays where it is until
    /// the next append lands in the fresh bank.
    fn compact(&mut self) -> Result<(), Error> {
        let other = 1usize.saturating_sub(self.current);
        let bank = self.bank(other)?;
        let end = bank.capacity();
        let mut at = 0u32;
        while at < end {
            at = bank.erase_sector_at(at)?;
        }
        self.current = other;
        self.next = 0;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sim::{Cut, SimFlash, Tear};
    use crate::testkit::with_banks;

    /// Two 16K banks (sectors 2 and 3 of an F405).
    fn with_log<T>(flash: &mut SimFlash, f: impl FnOnce(&mut RecordLog<'_>) -> T) -> T {
        with_banks(flash, |banks, _| f(&mut RecordLog::mount(banks).unwrap()))
    }

    /// The newest record that verifies now.
    fn latest(log: &mut RecordLog<'_>) -> Option<std::vec::Vec<u8>> {
        let mut newest: Option<(u32, std::vec::Vec<u8>)> = None;
        log.for_each(&mut |seq, p| {
            if newest.as_ref().is_none_or(|(s, _)| seq > *s) {
                newest = Some((seq, p.to_vec()));
            }
        })
        .unwrap();
        newest.map(|(_, p)| p)
    }

    #[test]
    fn newest_record_wins_across_compactions() {
        let mut flash = SimFlash::stm32f405();
        with_log(&mut flash, |log| assert_eq!(latest(log), None));
        // 32 slots per bank: 100 appends wrap around both banks three times.
        for i in 0u32..100 {
            with_log(&mut flash, |log| {
                log.append(&i.to_le_bytes()).unwrap();
                assert_eq!(latest(log), Some(i.to_le_bytes().to_vec()));
            });
            with_log(&mut flash, |log| {
                assert_eq!(
                    latest(log),
                    Some(i.to_le_bytes().to_vec()),
                    "after remount {i}"
                )
            });
        }
    }

    /// A payload filling the whole slot, so that a torn record would show a wrong payload.
    fn payload(v: u32) -> std::vec::Vec<u8> {
        (0..MAX_PAYLOAD as u32)
            .map(|i| (i.wrapping_mul(31) ^ v) as u8)
            .collect()
    }

    #[test]
    fn every_cut_of_an_append_leaves_the_old_or_the_new_record() {
        // Fill the first bank but one slot, so that appends also exercise the compaction erase.
        let mut base = SimFlash::stm32f405();
        for i in 0u32..31 {
            with_log(&mut base, |log| log.append(&payload(i)).unwrap());
        }
        let tears = [
            Tear::Before,
            Tear::After,
            Tear::Prefix(1),
            Tear::Prefix(100),
            Tear::Prefix(RECORD_SIZE - 1),
            Tear::PartialByte { n: 0, mask: 0x01 },
            Tear::PartialByte { n: 300, mask: 0x5a },
            Tear::PartialByte {
                n: RECORD_SIZE - 1,
                mask: 0x80,
            },
            Tear::Prefix(0x2000),
        ];
        let mut points = 0;
        for appends in 1..4u32 {
            let mut probe = base.clone();
            probe.count_from_here();
            for j in 0..appends {
                with_log(&mut probe, |log| log.append(&payload(1000 + j)).unwrap());
            }
            let n = probe.ops();
            for k in 1..=n {
                for tear in tears {
                    points += 1;
                    let mut f = base.clone();
                    f.arm(Cut { op: k, tear });
                    let mut acknowledged = 30u32;
                    let mut attempted = 30u32;
                    for j in 0..appends {
                        attempted = 1000 + j;
                        if !with_log(&mut f, |log| log.append(&payload(attempted)).is_ok()) {
                            break;
                        }
                        acknowledged = attempted;
                    }
                    f.revive();
                    let got = with_log(&mut f, latest).unwrap();
                    // The last acknowledged record, or the one being written when power was
                    // lost, complete; never a torn one, never an older one.
                    assert!(
                        got == payload(acknowledged) || got == payload(attempted),
                        "cut {k}/{n} {tear:?}: neither record {acknowledged} nor {attempted}"
                    );
                    // And the log keeps working afterwards.
                    with_log(&mut f, |log| log.append(&payload(7777)).unwrap());
                    with_log(&mut f, |log| assert_eq!(latest(log), Some(payload(7777))));
                }
            }
        }
        assert!(points > 50, "{points}");
    }

    #[test]
    fn unreadable_slots_are_dirty_slots() {
        // On flash with ECC a torn record is a read error: skipped, never a failed mount.
        let mut flash = SimFlash::stm32f405().with_ecc();
        with_log(&mut flash, |log| log.append(&payload(1)).unwrap());
        flash.arm(Cut {
            op: 1,
            tear: Tear::Prefix(100),
        });
        assert!(with_log(&mut flash, |log| log.append(&payload(2))).is_err());
        flash.revive();
        with_log(&mut flash, |log| {
            assert_eq!(latest(log), Some(payload(1)));
            log.append(&payload(3)).unwrap();
        });
        with_log(&mut flash, |log| assert_eq!(latest(log), Some(payload(3))));
    }

    #[test]
    fn garbage_banks_are_not_records() {
        let mut flash = SimFlash::stm32f405();
        for (i, b) in flash.data_mut()[0x8000..0x10000].iter_mut().enumerate() {
            *b = (i * 7) as u8;
        }
        with_log(&mut flash, |log| {
            assert_eq!(latest(log), None);
            log.append(b"first").unwrap();
        });
        with_log(&mut flash, |log| {
            assert_eq!(latest(log), Some(b"first".to_vec()))
        });
    }
}
