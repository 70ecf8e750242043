//! Simulated NOR flashes for tests and the host CLI (feature `sim`).
//!
//! [`SimFlash`] keeps the whole content and models NOR strictly: erase sets whole sectors to
//! `0xFF`, programming a byte that is not erased is an error, misaligned or out-of-bounds
//! operations are errors. It counts operations and logs them, so tests can assert that nothing
//! was erased or written before a signature was checked.
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
    data: Vec<u8>,
    geometry: Geometry,
    log: Vec<Op>,
    erases: usize,
    writes: usize,
    bytes_written: usize,
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
        }
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
