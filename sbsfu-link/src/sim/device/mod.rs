//! A test double of the device's storage that honours the [`Target`] contract on a simulated
//! NOR flash, with the STM32F4's timings, and that can lose power at any flash operation.
//!
//! It stands in for the `Stager`: one container slot, written in units of `write_unit` bytes
//! (the Stager's 1 KiB buffer), a progress record kept "in flash" (it survives power cuts), and
//! RAM state that does not. Its head check is a keyed CRC in place of Ed25519 and its commit
//! check a CRC of the payload in place of the image digest: enough to tell an altered head or a
//! corrupted container from the real one, not security.

mod containers;
mod timing;

pub use containers::container;
pub use timing::FlashTiming;

use containers::{SIM_HEADER_LEN, check_head};
use std::format;
use std::string::String;
use std::vec;
use std::vec::Vec;

use sbsfu_format::Name;
use sbsfu_format::PREFIX_LEN;
use sbsfu_format::SIGNATURE_LEN;

use crate::ContainerId;
use crate::frame::crc32c;
use crate::hello::{Description, Installed, Partial, RegionInfo, Regions};
use crate::message::Outcome;
use crate::target::{Begun, EraseProgress, Target};
use crate::{ErrorCode, Refusal};

/// What survives a power cut: the progress record the Stager would keep in flash.
#[derive(Debug, Clone, Copy, Default)]
struct Record {
    container: Option<(ContainerId, u32)>,
    /// Every byte below it is stored.
    durable: u32,
    /// Every sector below it is erased (or holds stored bytes).
    erased_until: u32,
}

/// What a power cut loses.
#[derive(Debug, Clone)]
struct Ram {
    /// The container is the one already pending: nothing to receive, commit confirms it.
    already_pending: bool,
    expected: u32,
    buffer: Vec<u8>,
    erase_end: u32,
    erase_start: u32,
}

/// The device's storage, simulated. See the module documentation.
#[derive(Debug, Clone)]
pub struct SimTarget {
    flash: Vec<u8>,
    programmed: Vec<bool>,
    /// (start, length) of each sector of the slot.
    sectors: Vec<(u32, u32)>,
    write_unit: usize,
    timing: FlashTiming,
    busy_ns: u64,
    record: Record,
    pending: Option<(ContainerId, u32)>,
    ram: Option<Ram>,
    ops: u64,
    cut_at: Option<u64>,
    dead: bool,
    rng: u64,
    accepts_reset: bool,
    violations: Vec<String>,
    erased_ns: u64,
}

fn power_lost() -> Refusal {
    Refusal::new(ErrorCode::FLASH, "power lost")
}

impl SimTarget {
    /// A slot made of `sectors` (their sizes, in order), programmed in units of `write_unit`
    /// bytes.
    pub fn new(sectors: &[u32], write_unit: usize, timing: FlashTiming) -> Self {
        let mut start = 0;
        let sectors: Vec<(u32, u32)> = sectors
            .iter()
            .map(|&len| {
                let s = (start, len);
                start += len;
                s
            })
            .collect();
        let size = start as usize;
        Self {
            flash: vec![0xFF; size],
            programmed: vec![false; size],
            sectors,
            write_unit: write_unit.max(1),
            timing,
            busy_ns: 0,
            record: Record::default(),
            pending: None,
            ram: None,
            ops: 0,
            cut_at: None,
            dead: false,
            rng: 0x2545_F491_4F6C_DD1D,
            accepts_reset: false,
            violations: Vec::new(),
            erased_ns: 0,
        }
    }

    /// A small slot for tests: 12 sectors of 4 KiB, 256-byte write units, no flash time.
    pub fn small() -> Self {
        Self::new(&[4096; 12], 256, FlashTiming::INSTANT)
    }

    /// The F405 slot of the benchmark: sectors 8 to 11 (4 x 128 KiB), 1 KiB write units.
    pub fn f405_slot(timing: FlashTiming) -> Self {
        Self::new(&[0x2_0000; 4], 1024, timing)
    }

    /// Loses power at the `n`-th flash operation from now (erase, program, record write):
    /// that operation is torn, and every call fails until [`reboot`](Self::reboot).
    pub fn cut_power_at(&mut self, n: u64) {
        self.cut_at = Some(self.ops + n);
    }

    /// Power returns: RAM state is gone, flash and the progress record are what they are.
    pub fn reboot(&mut self) {
        self.ram = None;
        self.dead = false;
        self.cut_at = None;
    }

    /// Loses power now (between flash operations) and comes back.
    pub fn power_cut(&mut self) {
        self.reboot();
    }

    /// Whether power is lost (until [`reboot`](Self::reboot)).
    pub fn is_dead(&self) -> bool {
        self.dead
    }

    /// Accept `Reset` requests (the simulated device "resets": a power cycle).
    pub fn set_accepts_reset(&mut self, yes: bool) {
        self.accepts_reset = yes;
    }

    /// Flash operations so far.
    pub fn flash_ops(&self) -> u64 {
        self.ops
    }

    /// Simulated time spent in flash operations since the last call, in nanoseconds.
    pub fn take_busy_ns(&mut self) -> u64 {
        std::mem::take(&mut self.busy_ns)
    }

    /// Total time spent erasing, in nanoseconds.
    pub fn erase_ns(&self) -> u64 {
        self.erased_ns
    }

    /// Breaches of the contract seen so far (a byte programmed twice, a write at the wrong
    /// offset, flash touched without a verified head...). Tests assert it is empty.
    pub fn violations(&self) -> &[String] {
        &self.violations
    }

    /// The container committed and pending for the next reset, as stored.
    pub fn pending(&self) -> Option<&[u8]> {
        self.pending.map(|(_, len)| &self.flash[..len as usize])
    }

    /// The progress record: the partly received container and its durable length.
    pub fn partial(&self) -> Option<(ContainerId, u32)> {
        self.record
            .container
            .map(|(id, _)| (id, self.record.durable))
    }

    fn next_rand(&mut self) -> u64 {
        self.rng ^= self.rng << 13;
        self.rng ^= self.rng >> 7;
        self.rng ^= self.rng << 17;
        self.rng
    }

    /// Counts a flash operation; `true` if power is lost during it.
    fn op(&mut self) -> bool {
        if self.ram.is_none() {
            self.violations
                .push(String::from("flash operation without a verified head"));
        }
        self.ops += 1;
        if self.cut_at == Some(self.ops) {
            self.dead = true;
        }
        self.dead
    }

    fn sector_start(&self, offset: u32) -> u32 {
        self.sectors
            .iter()
            .rev()
            .find(|(s, _)| *s <= offset)
            .map_or(0, |(s, _)| *s)
    }

    /// End of the sector that holds byte `len - 1`: where erasing for `len` bytes stops.
    fn sectors_end(&self, len: u32) -> u32 {
        self.sectors
            .iter()
            .map(|(s, l)| s + l)
            .find(|end| *end >= len)
            .unwrap_or(len)
    }

    fn program(&mut self, at: u32, data: &[u8]) -> Result<(), Refusal> {
        let torn = self.op();
        let start = at as usize;
        let n = if torn {
            (self.next_rand() as usize) % (data.len() + 1)
        } else {
            data.len()
        };
        for (i, &b) in data[..n].iter().enumerate() {
            let a = start + i;
            if self.programmed[a] {
                self.violations.push(format!("byte {a} programmed twice"));
            }
            self.flash[a] &= b;
            self.programmed[a] = true;
        }
        self.busy_ns += self.timing.program_ns(n);
        if torn { Err(power_lost()) } else { Ok(()) }
    }

    fn erase_sector(&mut self, start: u32) -> Result<(), Refusal> {
        let torn = self.op();
        let (s, len) = *self.sectors.iter().find(|(s, _)| *s == start).unwrap();
        for a in s as usize..(s + len) as usize {
            // A torn erase leaves some bytes erased and the others as they were.
            if !torn || self.next_rand().is_multiple_of(2) {
                self.flash[a] = 0xFF;
                self.programmed[a] = false;
            }
        }
        let t = self.timing.erase_ns(len);
        self.busy_ns += t;
        self.erased_ns += t;
        if torn { Err(power_lost()) } else { Ok(()) }
    }

    /// Writes the progress record (atomically: a cut during it leaves the old record).
    fn save(&mut self, record: Record) -> Result<(), Refusal> {
        if self.op() {
            return Err(power_lost());
        }
        self.record = record;
        Ok(())
    }

    /// Programs buffered bytes from `ram.expected - buffer.len()` while a whole unit (or, at
    /// the end, everything) is buffered.
    fn flush(&mut self, all: bool) -> Result<(), Refusal> {
        loop {
            let ram = self.ram.as_mut().unwrap();
            let n = if ram.buffer.len() >= self.write_unit {
                self.write_unit
            } else if all && !ram.buffer.is_empty() {
                ram.buffer.len()
            } else {
                return Ok(());
            };
            let unit: Vec<u8> = ram.buffer.drain(..n).collect();
            let at = self.record.durable;
            self.program(at, &unit)?;
            let record = Record {
                durable: at + n as u32,
                ..self.record
            };
            self.save(record)?;
        }
    }
}

impl Target for SimTarget {
    fn describe(&mut self) -> Result<Description, Refusal> {
        if self.dead {
            return Err(power_lost());
        }
        let mut regions = Regions::new();
        regions
            .push(RegionInfo {
                name: Name::new("app").unwrap(),
                capacity: self.flash.len() as u32,
                floor: 1,
                installed: Some(Installed {
                    version: sbsfu_format::Version {
                        major: 1,
                        minor: 0,
                        patch: 0,
                    },
                    security_counter: 1,
                }),
                pending: self.pending.map(|(id, _)| id),
                partial: self.partial().map(|(id, durable)| Partial { id, durable }),
            })
            .unwrap();
        let erase_ms = self
            .sectors
            .iter()
            .map(|(_, l)| self.timing.erase_ns(*l))
            .max();
        let verify_ms = self.timing.verify_ns_per_byte * self.flash.len() as u64 / 1_000_000;
        let busy_ms = (erase_ms.unwrap_or(0) / 1_000_000).max(verify_ms) + 100;
        Ok(Description {
            target: Name::new("sim-f405").unwrap(),
            chunk_size: 1024,
            busy_ms: busy_ms as u32,
            regions,
        })
    }

    fn begin(&mut self, head: &[u8], container_len: u32) -> Result<Begun, Refusal> {
        if self.dead {
            return Err(power_lost());
        }
        let (id, declared, _) = check_head(head)?;
        if declared != container_len {
            return Err(Refusal::new(
                ErrorCode::LENGTH,
                "length does not match the header",
            ));
        }
        if container_len as usize > self.flash.len() {
            return Err(Refusal::new(
                ErrorCode::TOO_LARGE,
                "image does not fit the region",
            ));
        }
        // Verified: from here on the slot may be touched.
        let end = self.sectors_end(container_len);
        if self.pending == Some((id, container_len)) {
            // Already stored and verified (the sender missed our Committed): nothing to send.
            self.ram = Some(Ram {
                already_pending: true,
                expected: container_len,
                buffer: Vec::new(),
                erase_end: end,
                erase_start: end,
            });
            return Ok(Begun {
                id,
                resume_from: container_len,
                erase_total: 0,
            });
        }
        self.ram = Some(Ram {
            already_pending: false,
            expected: 0,
            buffer: Vec::new(),
            erase_end: end,
            erase_start: 0,
        });
        let mut record = self.record;
        if record.container != Some((id, container_len)) {
            // Another container (or none): start over. The slot holds one container at a time.
            self.pending = None;
            record = Record {
                container: Some((id, container_len)),
                durable: 0,
                erased_until: 0,
            };
            self.save(record)?;
        } else if record.erased_until >= end {
            // Resuming: a unit torn by a power cut (or programmed but not yet recorded) sits
            // right after the durable bytes. Programming it again would rewrite bytes, so its
            // sector is erased again and refilled.
            let d = record.durable as usize;
            let unit_end = (d + self.write_unit).min(self.flash.len());
            if self.programmed[d..unit_end].iter().any(|p| *p) {
                let start = self.sector_start(record.durable);
                record.durable = start;
                record.erased_until = start;
                self.save(record)?;
            }
        }
        let ram = self.ram.as_mut().unwrap();
        ram.expected = record.durable;
        ram.erase_start = record.erased_until;
        Ok(Begun {
            id,
            resume_from: record.durable,
            erase_total: end.saturating_sub(record.erased_until),
        })
    }

    fn erase_step(&mut self) -> Result<EraseProgress, Refusal> {
        if self.dead {
            return Err(power_lost());
        }
        let Some(ram) = &self.ram else {
            self.violations
                .push(String::from("erase_step without begin"));
            return Err(Refusal::new(ErrorCode::INTERNAL, "no container"));
        };
        let (start, end) = (ram.erase_start, ram.erase_end);
        let at = self.record.erased_until;
        if at < end {
            self.erase_sector(at)?;
            let len = self.sectors.iter().find(|(s, _)| *s == at).unwrap().1;
            let record = Record {
                erased_until: at + len,
                ..self.record
            };
            self.save(record)?;
        }
        Ok(EraseProgress {
            done: self.record.erased_until.min(end) - start,
            total: end - start,
        })
    }

    fn write(&mut self, offset: u32, bytes: &[u8]) -> Result<(), Refusal> {
        if self.dead {
            return Err(power_lost());
        }
        let Some((_, len)) = self.record.container else {
            self.violations.push(String::from("write without begin"));
            return Err(Refusal::new(ErrorCode::INTERNAL, "no container"));
        };
        let Some(ram) = self.ram.as_mut() else {
            self.violations.push(String::from("write without begin"));
            return Err(Refusal::new(ErrorCode::INTERNAL, "no container"));
        };
        if offset != ram.expected || offset as usize + bytes.len() > len as usize {
            self.violations
                .push(format!("write at {offset}, expected {}", ram.expected));
            return Err(Refusal::new(ErrorCode::INTERNAL, "write out of order"));
        }
        if self.record.erased_until < ram.erase_end {
            self.violations
                .push(String::from("write before the erase finished"));
        }
        ram.buffer.extend_from_slice(bytes);
        ram.expected += bytes.len() as u32;
        self.flush(false)
    }

    fn durable(&self) -> u32 {
        self.record.durable
    }

    fn commit(&mut self) -> Result<Outcome, Refusal> {
        if self.dead {
            return Err(power_lost());
        }
        if self.ram.as_ref().is_some_and(|r| r.already_pending) {
            return Ok(Outcome::Pending);
        }
        let Some((id, len)) = self.record.container else {
            return Err(Refusal::new(ErrorCode::INTERNAL, "no container"));
        };
        self.flush(true)?;
        if self.record.durable != len {
            return Err(Refusal::new(ErrorCode::LENGTH, "container is truncated"));
        }
        self.busy_ns += self.timing.verify_ns_per_byte * u64::from(len);
        // Verify what is stored, as a fresh container is verified.
        let stored = &self.flash[..len as usize];
        let verified = check_head(&stored[..PREFIX_LEN + SIM_HEADER_LEN + SIGNATURE_LEN])
            .ok()
            .filter(|(sid, _, crc)| {
                *sid == id && crc32c(&stored[PREFIX_LEN + SIM_HEADER_LEN + SIGNATURE_LEN..]) == *crc
            });
        // Either way the partial copy is done with.
        let done = Record {
            container: None,
            ..self.record
        };
        self.save(done)?;
        self.ram = None;
        match verified {
            Some(_) => {
                self.pending = Some((id, len));
                Ok(Outcome::Pending)
            }
            None => Err(Refusal::new(
                ErrorCode::AUTHENTICATION,
                "authentication failed (signature, chunk or digest)",
            )),
        }
    }

    fn accepts_reset(&self) -> bool {
        self.accepts_reset
    }
}
