//! Simulated NOR flashes for tests and the host CLI (feature `sim`).
//!
//! [`SimFlash`] keeps the whole content and models NOR strictly: erase sets whole sectors to
//! `0xFF`, programming a byte that is not erased is an error, misaligned or out-of-bounds
//! operations are errors. It counts operations and logs them, so tests can assert that nothing
//! was erased or written before a signature was checked.
//!
//! Power can be cut at any operation ([`SimFlash::arm`]): before or after it, or in the middle
//! of it ([`Tear`]): a write that programmed only a prefix, a byte only partly programmed, an
//! erase that erased only part of a sector. From then on every operation fails until
//! [`SimFlash::revive`], which is what a reset looks like to the code under test.
//!
//! Real NOR flash does worse when power fails, and the simulation can too: a cut can leave cells
//! **weak** ([`Tear::Weak`], [`Tear::WeakTail`]): marginally programmed bits, or a whole sector
//! weakly erased, that read as done at first and decay later, or read differently from read to
//! read ([`Decay`]). In **ECC mode** ([`SimFlash::with_ecc`], like an STM32L4/G4/H7) a word a cut
//! left half done is not read at all: the read fails ([`SimError::Ecc`]). An optional
//! **one-time-programmable area** ([`SimFlash::with_otp`]) is programmed through the same
//! controller, so power cuts reach it too: its bits only ever go from 1 to 0, nothing erases it.

// A host-side test double, never built for firmware: the no-panic lints of the crate do not
// apply, and a panic here is a failing test.
#![allow(
    clippy::indexing_slicing,
    clippy::arithmetic_side_effects,
    clippy::panic,
    clippy::unwrap_used,
    clippy::expect_used
)]

use std::vec;
use std::vec::Vec;

use embedded_storage::nor_flash::{
    ErrorType, NorFlash, NorFlashError, NorFlashErrorKind, ReadNorFlash,
};

use crate::Error;
use crate::flash::{STM32F405_SECTORS, SectorMap, Sectors};
use crate::store::OtpMemory;

mod cells;
mod fault;
pub mod kit;

use cells::Cells;
pub use fault::{Cut, Decay, Tear, each_power_cut};

/// One flash operation, as logged.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    /// Erase of `from..to`.
    Erase {
        /// Start offset.
        from: u32,
        /// End offset.
        to: u32,
    },
    /// Program of `len` bytes at `offset`.
    Write {
        /// Offset.
        offset: u32,
        /// Length.
        len: u32,
    },
    /// Program of one word of the OTP area.
    OtpProgram {
        /// Word index.
        word: u32,
    },
}

/// What kind of operation the `k`-th counted one was ([`SimFlash::op_kind`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OpKind {
    /// A sector erase.
    Erase,
    /// A program operation of the main flash.
    Write,
    /// A program operation of the OTP area.
    OtpProgram,
}

/// Why a simulated operation failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SimError {
    /// Offset or length not a multiple of the write size, or an erase not on sector boundaries.
    NotAligned,
    /// Past the end of the flash.
    OutOfBounds,
    /// Programming a byte that is not erased (`0xFF`).
    NotErased {
        /// Offset of the first such byte.
        offset: u32,
    },
    /// ECC mode: the word read was left torn by a power cut (an uncorrectable ECC error).
    Ecc,
    /// Power was lost (see [`SimFlash::arm`]); nothing works until [`SimFlash::revive`].
    PowerLost,
}

impl NorFlashError for SimError {
    fn kind(&self) -> NorFlashErrorKind {
        match self {
            SimError::NotAligned => NorFlashErrorKind::NotAligned,
            SimError::OutOfBounds => NorFlashErrorKind::OutOfBounds,
            _ => NorFlashErrorKind::Other,
        }
    }
}

/// Owned sector sizes of a [`SimFlash`], usable as a [`SectorMap`].
#[derive(Debug, Clone)]
pub struct Geometry(pub Vec<u32>);

impl SectorMap for Geometry {
    fn sector(&self, offset: u32) -> Option<core::ops::Range<u32>> {
        Sectors(&self.0).sector(offset)
    }
}

/// An in-memory NOR flash with write size `W` and smallest erase unit `E`.
#[derive(Clone)]
pub struct SimFlash<const W: usize = 4, const E: usize = 16384> {
    data: Cells,
    otp: Cells,
    geometry: Geometry,
    log: Vec<Op>,
    kinds: Vec<OpKind>,
    erases: usize,
    writes: usize,
    bytes_written: usize,
    ops: usize,
    armed: Option<Cut>,
    dead: bool,
}

impl SimFlash<4, 16384> {
    /// The STM32F405/407 main flash: 1 MiB in 4 x 16K, 64K, 7 x 128K sectors, programmed in
    /// 32-bit words (x32 parallelism).
    pub fn stm32f405() -> Self {
        Self::new(&STM32F405_SECTORS)
    }
}

impl<const W: usize, const E: usize> SimFlash<W, E> {
    /// An erased flash with the given sector sizes (each a multiple of `E`).
    pub fn new(sector_sizes: &[u32]) -> Self {
        let total: u32 = sector_sizes.iter().sum();
        assert!(
            sector_sizes
                .iter()
                .all(|s| (*s as usize).is_multiple_of(E) && *s > 0)
        );
        Self {
            data: Cells::new(vec![0xFF; total as usize]),
            otp: Cells::new(Vec::new()),
            geometry: Geometry(sector_sizes.to_vec()),
            log: Vec::new(),
            kinds: Vec::new(),
            erases: 0,
            writes: 0,
            bytes_written: 0,
            ops: 0,
            armed: None,
            dead: false,
        }
    }

    /// ECC mode: reading a word (`W` bytes) that a power cut left half done fails with
    /// [`SimError::Ecc`], and such a word cannot be programmed until erased.
    pub fn with_ecc(mut self) -> Self {
        self.data.enable_ecc(W);
        self
    }

    /// Adds a one-time-programmable area of `words` 32-bit words, blank (`0xFFFF_FFFF`): see
    /// [`OtpMemory`]. Its program operations count, and can be cut, like the flash's.
    pub fn with_otp(mut self, words: usize) -> Self {
        self.otp = Cells::new(vec![0xFF; words * 4]);
        self
    }

    /// The OTP area, as bytes (little-endian words).
    pub fn otp(&self) -> &[u8] {
        &self.otp.bytes
    }

    /// Programs OTP bytes directly, clearing bits only (what anyone with access to the flash
    /// controller can do), without counting an operation.
    pub fn otp_program_raw(&mut self, at: usize, bytes: &[u8]) {
        self.otp.program(at, bytes);
    }

    /// Whether weak or torn cells remain anywhere.
    pub fn is_marginal(&self) -> bool {
        self.data.is_marginal() || self.otp.is_marginal()
    }

    /// Cuts power as `cut` says, counting erases and writes from now.
    pub fn arm(&mut self, cut: Cut) {
        self.ops = 0;
        self.kinds.clear();
        self.armed = Some(cut);
    }

    /// Counts erases and writes from now, without a cut (to measure a scenario).
    pub fn count_from_here(&mut self) {
        self.ops = 0;
        self.kinds.clear();
        self.armed = None;
    }

    /// The kind of the `k`-th operation counted since [`Self::arm`] or
    /// [`Self::count_from_here`] (from 1).
    pub fn op_kind(&self, k: usize) -> Option<OpKind> {
        k.checked_sub(1).and_then(|i| self.kinds.get(i)).copied()
    }

    /// Erases and writes since [`Self::arm`] or [`Self::count_from_here`].
    pub fn ops(&self) -> usize {
        self.ops
    }

    /// Whether power is off.
    pub fn is_dead(&self) -> bool {
        self.dead
    }

    /// Power comes back (a reset): operations work again, no cut is armed.
    pub fn revive(&mut self) {
        self.dead = false;
        self.armed = None;
    }

    /// Counts one operation; returns the tear to apply if power is lost in it.
    fn next_op(&mut self, kind: OpKind) -> Result<Option<Tear>, SimError> {
        if self.dead {
            return Err(SimError::PowerLost);
        }
        self.ops += 1;
        self.kinds.push(kind);
        Ok(match self.armed {
            Some(cut) if cut.op == self.ops => Some(cut.tear),
            _ => None,
        })
    }

    /// The sector map, to build regions with.
    pub fn geometry(&self) -> Geometry {
        self.geometry.clone()
    }

    /// The whole content (weak cells as they read before they decay).
    pub fn data(&self) -> &[u8] {
        &self.data.bytes
    }

    /// The whole content, for tests that plant or corrupt bytes directly.
    pub fn data_mut(&mut self) -> &mut [u8] {
        &mut self.data.bytes
    }

    /// Every erase and program so far, in order.
    pub fn log(&self) -> &[Op] {
        &self.log
    }

    /// Forgets the log and counters.
    pub fn clear_log(&mut self) {
        self.log.clear();
        self.erases = 0;
        self.writes = 0;
        self.bytes_written = 0;
    }

    /// Number of sector erases.
    pub fn erase_count(&self) -> usize {
        self.erases
    }

    /// Number of program operations.
    pub fn write_count(&self) -> usize {
        self.writes
    }

    /// Bytes programmed.
    pub fn bytes_written(&self) -> usize {
        self.bytes_written
    }
}

impl<const W: usize, const E: usize> ErrorType for SimFlash<W, E> {
    type Error = SimError;
}

impl<const W: usize, const E: usize> ReadNorFlash for SimFlash<W, E> {
    const READ_SIZE: usize = 1;

    fn read(&mut self, offset: u32, bytes: &mut [u8]) -> Result<(), SimError> {
        if self.dead {
            return Err(SimError::PowerLost);
        }
        self.data.read(offset as usize, bytes)
    }

    fn capacity(&self) -> usize {
        self.data.bytes.len()
    }
}

impl<const W: usize, const E: usize> NorFlash for SimFlash<W, E> {
    const WRITE_SIZE: usize = W;
    const ERASE_SIZE: usize = E;

    fn erase(&mut self, from: u32, to: u32) -> Result<(), SimError> {
        let tear = self.next_op(OpKind::Erase)?;
        let size = self.data.bytes.len();
        if from > to || to as usize > size {
            return Err(SimError::OutOfBounds);
        }
        let first = self.geometry.sector(from).ok_or(SimError::OutOfBounds)?;
        let on_boundary =
            |o: u32| o as usize == size || self.geometry.sector(o).is_some_and(|s| s.start == o);
        if first.start != from || !on_boundary(to) {
            return Err(SimError::NotAligned);
        }
        if let Some(t) = tear {
            let erased = vec![0xFF; (to - from) as usize];
            return Err(self.tear(false, from as usize, &erased, t));
        }
        let mut at = from;
        while at < to {
            let s = self.geometry.sector(at).ok_or(SimError::OutOfBounds)?;
            self.data.erase(s.start as usize, s.end as usize);
            self.erases += 1;
            at = s.end;
        }
        self.log.push(Op::Erase { from, to });
        Ok(())
    }

    fn write(&mut self, offset: u32, bytes: &[u8]) -> Result<(), SimError> {
        let tear = self.next_op(OpKind::Write)?;
        if !(offset as usize).is_multiple_of(W) || !bytes.len().is_multiple_of(W) {
            return Err(SimError::NotAligned);
        }
        let start = offset as usize;
        self.data.check_blank(start, start + bytes.len())?;
        if let Some(t) = tear {
            return Err(self.tear(false, start, bytes, t));
        }
        self.data.program(start, bytes);
        self.writes += 1;
        self.bytes_written += bytes.len();
        self.log.push(Op::Write {
            offset,
            len: bytes.len() as u32,
        });
        Ok(())
    }
}

impl<const W: usize, const E: usize> SimFlash<W, E> {
    fn otp_range(&self, index: u32) -> Result<usize, SimError> {
        let at = index as usize * 4;
        if at + 4 > self.otp.bytes.len() {
            return Err(SimError::OutOfBounds);
        }
        Ok(at)
    }
}

impl<const W: usize, const E: usize> OtpMemory for SimFlash<W, E> {
    fn words(&self) -> u32 {
        (self.otp.bytes.len() / 4) as u32
    }

    fn read_word(&mut self, index: u32) -> Result<u32, Error> {
        if self.dead {
            return Err(Error::Flash(SimError::PowerLost.kind()));
        }
        let at = self.otp_range(index).map_err(|e| Error::Flash(e.kind()))?;
        let mut word = [0u8; 4];
        self.otp
            .read(at, &mut word)
            .map_err(|e| Error::Flash(e.kind()))?;
        Ok(u32::from_le_bytes(word))
    }

    /// Clears the bits that are 0 in `value` (programming never sets a bit).
    fn program_word(&mut self, index: u32, value: u32) -> Result<(), Error> {
        let flash_err = |e: SimError| Error::Flash(e.kind());
        let tear = self.next_op(OpKind::OtpProgram).map_err(flash_err)?;
        let at = self.otp_range(index).map_err(flash_err)?;
        let mut target = [0u8; 4];
        for (t, (old, new)) in target
            .iter_mut()
            .zip(self.otp.bytes[at..at + 4].iter().zip(value.to_le_bytes()))
        {
            *t = old & new;
        }
        if let Some(t) = tear {
            return Err(flash_err(self.tear(true, at, &target, t)));
        }
        self.otp.program(at, &target);
        self.log.push(Op::OtpProgram { word: index });
        Ok(())
    }
}

#[cfg(test)]
mod tests;
