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
//! [`SinkFlash`] is the same contract for images too large to keep: it accepts sequential
//! programming only, streams the programmed bytes to a writer and keeps O(1) state, so the host
//! runs the device installer on a 1 GiB image in flat memory.

// A host-side test double, never built for firmware: the no-panic lints of the crate do not
// apply, and a panic here is a failing test.
#![allow(
    clippy::indexing_slicing,
    clippy::arithmetic_side_effects,
    clippy::panic,
    clippy::unwrap_used,
    clippy::expect_used
)]

use std::io::Write;
use std::vec;
use std::vec::Vec;

use embedded_storage::nor_flash::{
    ErrorType, NorFlash, NorFlashError, NorFlashErrorKind, ReadNorFlash,
};

use crate::flash::{STM32F405_SECTORS, SectorMap, Sectors, Uniform};

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
    /// Reading is not supported (a [`SinkFlash`]).
    Unsupported,
    /// The sink's writer failed.
    Io,
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

/// What the operation that power is lost in leaves behind.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tear {
    /// Nothing: the operation never started.
    Before,
    /// Everything: it completed, and power was lost right after.
    After,
    /// Only the first `n` bytes of its range took effect.
    Prefix(usize),
    /// The first `n` bytes took effect, and byte `n` only partly: of the bits the operation would
    /// change in it, only those in `mask` changed.
    PartialByte {
        /// Bytes fully done.
        n: usize,
        /// Bits of byte `n` that changed.
        mask: u8,
    },
}

/// A power cut: during the `op`-th erase or write (counting from 1) after [`SimFlash::arm`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cut {
    /// Which operation.
    pub op: usize,
    /// What it leaves behind.
    pub tear: Tear,
}

/// An in-memory NOR flash with write size `W` and smallest erase unit `E`.
#[derive(Clone)]
pub struct SimFlash<const W: usize = 4, const E: usize = 16384> {
    data: Vec<u8>,
    geometry: Geometry,
    log: Vec<Op>,
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
            data: vec![0xFF; total as usize],
            geometry: Geometry(sector_sizes.to_vec()),
            log: Vec::new(),
            erases: 0,
            writes: 0,
            bytes_written: 0,
            ops: 0,
            armed: None,
            dead: false,
        }
    }

    /// Cuts power as `cut` says, counting erases and writes from now.
    pub fn arm(&mut self, cut: Cut) {
        self.ops = 0;
        self.armed = Some(cut);
    }

    /// Counts erases and writes from now, without a cut (to measure a scenario).
    pub fn count_from_here(&mut self) {
        self.ops = 0;
        self.armed = None;
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
    fn next_op(&mut self) -> Result<Option<Tear>, SimError> {
        if self.dead {
            return Err(SimError::PowerLost);
        }
        self.ops += 1;
        Ok(match self.armed {
            Some(cut) if cut.op == self.ops => Some(cut.tear),
            _ => None,
        })
    }

    /// Applies `tear` of an operation that would turn `range` into `target`; power is then off.
    fn tear(&mut self, start: usize, target: &[u8], tear: Tear) -> SimError {
        let dst = &mut self.data[start..start + target.len()];
        match tear {
            Tear::Before => {}
            Tear::After => dst.copy_from_slice(target),
            Tear::Prefix(n) => {
                let n = n.min(target.len());
                dst[..n].copy_from_slice(&target[..n]);
            }
            Tear::PartialByte { n, mask } => {
                let n = n.min(target.len());
                dst[..n].copy_from_slice(&target[..n]);
                if let (Some(d), Some(t)) = (dst.get_mut(n), target.get(n)) {
                    let changing = *d ^ *t;
                    *d ^= changing & mask;
                }
            }
        }
        self.dead = true;
        SimError::PowerLost
    }

    /// The sector map, to build regions with.
    pub fn geometry(&self) -> Geometry {
        self.geometry.clone()
    }

    /// The whole content.
    pub fn data(&self) -> &[u8] {
        &self.data
    }

    /// The whole content, for tests that plant or corrupt bytes directly.
    pub fn data_mut(&mut self) -> &mut [u8] {
        &mut self.data
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
        let start = offset as usize;
        let src = self
            .data
            .get(start..start + bytes.len())
            .ok_or(SimError::OutOfBounds)?;
        bytes.copy_from_slice(src);
        Ok(())
    }

    fn capacity(&self) -> usize {
        self.data.len()
    }
}

impl<const W: usize, const E: usize> NorFlash for SimFlash<W, E> {
    const WRITE_SIZE: usize = W;
    const ERASE_SIZE: usize = E;

    fn erase(&mut self, from: u32, to: u32) -> Result<(), SimError> {
        let tear = self.next_op()?;
        if from > to || to as usize > self.data.len() {
            return Err(SimError::OutOfBounds);
        }
        let first = self.geometry.sector(from).ok_or(SimError::OutOfBounds)?;
        let on_boundary = |o: u32| {
            o as usize == self.data.len() || self.geometry.sector(o).is_some_and(|s| s.start == o)
        };
        if first.start != from || !on_boundary(to) {
            return Err(SimError::NotAligned);
        }
        if let Some(t) = tear {
            let erased = vec![0xFF; (to - from) as usize];
            return Err(self.tear(from as usize, &erased, t));
        }
        let mut at = from;
        while at < to {
            let s = self.geometry.sector(at).ok_or(SimError::OutOfBounds)?;
            self.data[s.start as usize..s.end as usize].fill(0xFF);
            self.erases += 1;
            at = s.end;
        }
        self.log.push(Op::Erase { from, to });
        Ok(())
    }

    fn write(&mut self, offset: u32, bytes: &[u8]) -> Result<(), SimError> {
        let tear = self.next_op()?;
        if !(offset as usize).is_multiple_of(W) || !bytes.len().is_multiple_of(W) {
            return Err(SimError::NotAligned);
        }
        let start = offset as usize;
        let dst = self
            .data
            .get_mut(start..start + bytes.len())
            .ok_or(SimError::OutOfBounds)?;
        if let Some(i) = dst.iter().position(|b| *b != 0xFF) {
            return Err(SimError::NotErased {
                offset: offset + i as u32,
            });
        }
        if let Some(t) = tear {
            return Err(self.tear(start, bytes, t));
        }
        let dst = &mut self.data[start..start + bytes.len()];
        dst.copy_from_slice(bytes);
        self.writes += 1;
        self.bytes_written += bytes.len();
        self.log.push(Op::Write {
            offset,
            len: bytes.len() as u32,
        });
        Ok(())
    }
}

/// Cuts power at every erase or write of a scenario, in each of `tears`, and checks the outcome.
///
/// `steps` runs the scenario on `flash`, step by step, stopping at the first failed step, and
/// returns how many steps were acknowledged. It is first run once without a cut to count the
/// operations; then, for each operation and tear, on a fresh flash from `fresh` with that cut
/// armed, after which power comes back and `check(flash, acknowledged, cut)` judges the state.
/// Returns the number of cut points run.
pub fn each_power_cut<const W: usize, const E: usize>(
    tears: &[Tear],
    mut fresh: impl FnMut() -> SimFlash<W, E>,
    mut steps: impl FnMut(&mut SimFlash<W, E>) -> usize,
    mut check: impl FnMut(&mut SimFlash<W, E>, usize, Cut),
) -> usize {
    let mut probe = fresh();
    probe.count_from_here();
    steps(&mut probe);
    let n = probe.ops();
    let mut points = 0;
    for op in 1..=n {
        for tear in tears {
            let cut = Cut { op, tear: *tear };
            let mut flash = fresh();
            flash.arm(cut);
            let acknowledged = steps(&mut flash);
            flash.revive();
            check(&mut flash, acknowledged, cut);
            points += 1;
        }
    }
    points
}

/// A write-once, sequential NOR flash that streams what is programmed to `out`.
///
/// Erasing is tracked as a high-water mark over uniform sectors of [`SinkFlash::SECTOR`] bytes;
/// programming must land in erased space at or after everything programmed so far (gaps read
/// as `0xFF` and are emitted as such). Reading is unsupported.
pub struct SinkFlash<Wr> {
    out: Wr,
    capacity: u32,
    erased_until: u32,
    written_until: u32,
    erases: u64,
    bytes_written: u64,
}

impl<Wr: Write> SinkFlash<Wr> {
    /// Erase unit of the sink.
    pub const SECTOR: u32 = 64 * 1024;

    /// A sink of `capacity` bytes writing to `out`.
    pub fn new(out: Wr, capacity: u32) -> Self {
        Self {
            out,
            capacity,
            erased_until: 0,
            written_until: 0,
            erases: 0,
            bytes_written: 0,
        }
    }

    /// Its sector map.
    pub fn sectors(&self) -> Uniform {
        Uniform {
            size: Self::SECTOR,
            capacity: self.capacity,
        }
    }

    /// Bytes programmed so far.
    pub fn bytes_written(&self) -> u64 {
        self.bytes_written
    }

    /// Sector erases so far.
    pub fn erase_count(&self) -> u64 {
        self.erases
    }

    /// Gives the writer back.
    pub fn into_inner(self) -> Wr {
        self.out
    }
}

impl<Wr: Write> ErrorType for SinkFlash<Wr> {
    type Error = SimError;
}

impl<Wr: Write> ReadNorFlash for SinkFlash<Wr> {
    const READ_SIZE: usize = 1;

    fn read(&mut self, _offset: u32, _bytes: &mut [u8]) -> Result<(), SimError> {
        Err(SimError::Unsupported)
    }

    fn capacity(&self) -> usize {
        self.capacity as usize
    }
}

impl<Wr: Write> NorFlash for SinkFlash<Wr> {
    const WRITE_SIZE: usize = 1;
    const ERASE_SIZE: usize = Self::SECTOR as usize;

    fn erase(&mut self, from: u32, to: u32) -> Result<(), SimError> {
        if from > to || to > self.capacity {
            return Err(SimError::OutOfBounds);
        }
        if !from.is_multiple_of(Self::SECTOR)
            || (!to.is_multiple_of(Self::SECTOR) && to != self.capacity)
        {
            return Err(SimError::NotAligned);
        }
        // Only the high-water mark is tracked: re-erasing programmed space is not supported.
        if from != self.erased_until {
            return Err(SimError::NotAligned);
        }
        self.erases += u64::from((to - from).div_ceil(Self::SECTOR));
        self.erased_until = to;
        Ok(())
    }

    fn write(&mut self, offset: u32, bytes: &[u8]) -> Result<(), SimError> {
        let end = offset
            .checked_add(bytes.len() as u32)
            .ok_or(SimError::OutOfBounds)?;
        if end > self.capacity {
            return Err(SimError::OutOfBounds);
        }
        if offset < self.written_until {
            return Err(SimError::NotErased { offset });
        }
        if end > self.erased_until {
            return Err(SimError::NotErased {
                offset: self.erased_until.max(offset),
            });
        }
        let gap = (offset - self.written_until) as usize;
        let fill = [0xFFu8; 256];
        let mut left = gap;
        while left > 0 {
            let n = left.min(fill.len());
            self.out.write_all(&fill[..n]).map_err(|_| SimError::Io)?;
            left -= n;
        }
        self.out.write_all(bytes).map_err(|_| SimError::Io)?;
        self.written_until = end;
        self.bytes_written += bytes.len() as u64;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nor_semantics() {
        let mut f = SimFlash::stm32f405();
        assert!(f.data().iter().all(|b| *b == 0xFF));
        f.write(0, &[1, 2, 3, 4]).unwrap();
        assert_eq!(
            f.write(0, &[1, 2, 3, 4]),
            Err(SimError::NotErased { offset: 0 })
        );
        assert_eq!(f.write(2, &[0; 4]), Err(SimError::NotAligned));
        assert_eq!(f.write(4, &[0; 3]), Err(SimError::NotAligned));
        assert_eq!(f.write(0x10_0000, &[0; 4]), Err(SimError::OutOfBounds));
        assert_eq!(f.erase(0x1000, 0x4000), Err(SimError::NotAligned));
        assert_eq!(f.erase(0, 0x2000), Err(SimError::NotAligned));
        assert_eq!(f.erase(0x10000, 0x18000), Err(SimError::NotAligned));
        f.erase(0, 0x4000).unwrap();
        f.write(0, &[1, 2, 3, 4]).unwrap();
        assert_eq!(f.erase_count(), 1);
        assert_eq!(f.write_count(), 2);
        assert_eq!(
            f.log(),
            &[
                Op::Write { offset: 0, len: 4 },
                Op::Erase {
                    from: 0,
                    to: 0x4000
                },
                Op::Write { offset: 0, len: 4 }
            ]
        );
        // Erasing the whole 1 MiB counts twelve sectors.
        f.clear_log();
        f.erase(0, 0x10_0000).unwrap();
        assert_eq!(f.erase_count(), 12);
    }

    #[test]
    fn power_cuts_tear_operations_and_stop_everything() {
        let mut f = SimFlash::stm32f405();
        f.arm(Cut {
            op: 2,
            tear: Tear::Prefix(3),
        });
        f.write(0, &[1, 2, 3, 4]).unwrap();
        assert_eq!(f.write(4, &[5, 6, 7, 8]), Err(SimError::PowerLost));
        assert_eq!(&f.data()[..8], &[1, 2, 3, 4, 5, 6, 7, 0xFF]);
        assert!(f.is_dead());
        assert_eq!(f.read(0, &mut [0; 4]), Err(SimError::PowerLost));
        assert_eq!(f.erase(0, 0x4000), Err(SimError::PowerLost));
        f.revive();
        f.arm(Cut {
            op: 1,
            tear: Tear::PartialByte { n: 1, mask: 0x0F },
        });
        assert_eq!(f.write(8, &[0x00, 0x00, 0, 0]), Err(SimError::PowerLost));
        assert_eq!(&f.data()[8..12], &[0x00, 0xF0, 0xFF, 0xFF]);
        f.revive();
        f.write(0x2000, &[0; 4]).unwrap();
        f.arm(Cut {
            op: 1,
            tear: Tear::Prefix(0x2000),
        });
        assert_eq!(f.erase(0, 0x4000), Err(SimError::PowerLost));
        assert!(f.data()[..0x2000].iter().all(|b| *b == 0xFF));
        assert_eq!(&f.data()[0x2000..0x2001], &[0x00]);
        f.revive();
        f.arm(Cut {
            op: 1,
            tear: Tear::Before,
        });
        assert_eq!(f.erase(0, 0x4000), Err(SimError::PowerLost));
        assert_eq!(f.data()[0x2000], 0);
        f.revive();
        f.count_from_here();
        f.erase(0, 0x4000).unwrap();
        f.write(0, &[9; 4]).unwrap();
        assert_eq!(f.ops(), 2);
    }

    #[test]
    fn sink_is_sequential_and_streams() {
        let mut s = SinkFlash::new(Vec::new(), 200_000);
        assert_eq!(s.write(0, &[1]), Err(SimError::NotErased { offset: 0 }));
        s.erase(0, 65536).unwrap();
        s.write(0, &[1, 2]).unwrap();
        assert_eq!(s.write(1, &[3]), Err(SimError::NotErased { offset: 1 }));
        s.write(4, &[5]).unwrap();
        assert_eq!(
            s.write(65535, &[0, 0]),
            Err(SimError::NotErased { offset: 65536 })
        );
        assert_eq!(s.erase(0, 65536), Err(SimError::NotAligned));
        s.erase(65536, 200_000).unwrap();
        assert_eq!(s.erase_count(), 4);
        assert_eq!(s.into_inner(), vec![1, 2, 0xFF, 0xFF, 5]);
    }
}
