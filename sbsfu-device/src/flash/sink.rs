//! A flash that is not there: [`SinkFlash`] takes what the installer programs and streams it to
//! a writer (feature `std`). The host runs the device installer into it (`sbsfu verify`,
//! `sbsfu decrypt`), on images of any size in flat memory.

use std::io::Write;

use embedded_storage::nor_flash::{
    ErrorType, NorFlash, NorFlashError, NorFlashErrorKind, ReadNorFlash,
};

use super::Uniform;

/// Why a [`SinkFlash`] operation failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SinkError {
    /// An erase not on sector boundaries, or not where erasing stopped last.
    NotAligned,
    /// Past the end of the sink.
    OutOfBounds,
    /// Programming before what was programmed already, or where nothing was erased.
    NotErased {
        /// Offset of the first such byte.
        offset: u32,
    },
    /// Reading: a sink keeps nothing to read back.
    Unsupported,
    /// The writer failed.
    Io,
}

impl NorFlashError for SinkError {
    fn kind(&self) -> NorFlashErrorKind {
        match self {
            SinkError::NotAligned => NorFlashErrorKind::NotAligned,
            SinkError::OutOfBounds => NorFlashErrorKind::OutOfBounds,
            _ => NorFlashErrorKind::Other,
        }
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
        }
    }

    /// Its sector map.
    pub fn sectors(&self) -> Uniform {
        Uniform {
            size: Self::SECTOR,
            capacity: self.capacity,
        }
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
    type Error = SinkError;
}

impl<Wr: Write> ReadNorFlash for SinkFlash<Wr> {
    const READ_SIZE: usize = 1;

    fn read(&mut self, _offset: u32, _bytes: &mut [u8]) -> Result<(), SinkError> {
        Err(SinkError::Unsupported)
    }

    fn capacity(&self) -> usize {
        usize::try_from(self.capacity).unwrap_or(usize::MAX)
    }
}

impl<Wr: Write> NorFlash for SinkFlash<Wr> {
    const WRITE_SIZE: usize = 1;
    const ERASE_SIZE: usize = Self::SECTOR as usize;

    fn erase(&mut self, from: u32, to: u32) -> Result<(), SinkError> {
        if from > to || to > self.capacity {
            return Err(SinkError::OutOfBounds);
        }
        if !from.is_multiple_of(Self::SECTOR)
            || (!to.is_multiple_of(Self::SECTOR) && to != self.capacity)
        {
            return Err(SinkError::NotAligned);
        }
        // Only the high-water mark is tracked: re-erasing programmed space is not supported.
        if from != self.erased_until {
            return Err(SinkError::NotAligned);
        }
        let sectors = to.saturating_sub(from).div_ceil(Self::SECTOR);
        self.erases = self.erases.saturating_add(u64::from(sectors));
        self.erased_until = to;
        Ok(())
    }

    fn write(&mut self, offset: u32, bytes: &[u8]) -> Result<(), SinkError> {
        let end = u32::try_from(bytes.len())
            .ok()
            .and_then(|n| offset.checked_add(n))
            .ok_or(SinkError::OutOfBounds)?;
        if end > self.capacity {
            return Err(SinkError::OutOfBounds);
        }
        if offset < self.written_until {
            return Err(SinkError::NotErased { offset });
        }
        if end > self.erased_until {
            return Err(SinkError::NotErased {
                offset: self.erased_until.max(offset),
            });
        }
        // What was never programmed reads as erased.
        let fill = [0xFFu8; 256];
        let mut gap = offset.saturating_sub(self.written_until);
        while gap > 0 {
            let n = gap.min(256);
            let piece = fill.get(..n as usize).unwrap_or(&fill);
            self.out.write_all(piece).map_err(|_| SinkError::Io)?;
            gap = gap.saturating_sub(n);
        }
        self.out.write_all(bytes).map_err(|_| SinkError::Io)?;
        self.written_until = end;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::vec;
    use std::vec::Vec;

    #[test]
    fn sink_is_sequential_and_streams() {
        let mut s = SinkFlash::new(Vec::new(), 200_000);
        assert_eq!(s.write(0, &[1]), Err(SinkError::NotErased { offset: 0 }));
        s.erase(0, 65536).unwrap();
        s.write(0, &[1, 2]).unwrap();
        assert_eq!(s.write(1, &[3]), Err(SinkError::NotErased { offset: 1 }));
        s.write(4, &[5]).unwrap();
        assert_eq!(
            s.write(65535, &[0, 0]),
            Err(SinkError::NotErased { offset: 65536 })
        );
        assert_eq!(s.erase(0, 65536), Err(SinkError::NotAligned));
        s.erase(65536, 200_000).unwrap();
        assert_eq!(s.erase_count(), 4);
        assert_eq!(s.into_inner(), vec![1, 2, 0xFF, 0xFF, 5]);
    }
}
