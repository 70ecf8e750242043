//! Programming a region front to back, as the installer writes an image and the stager a
//! container: each sector is erased once, when writing first reaches it, and a final partial
//! write unit is padded with the erased value `0xFF`.

use embedded_storage::nor_flash::NorFlashErrorKind;

use super::{MAX_WRITE_SIZE, Region};
use crate::Error;

/// The erased value of NOR flash: what padding reads as had it never been programmed.
const ERASED: u8 = 0xFF;

/// Where writing has erased up to; everything after it is as it was before.
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct SequentialWriter {
    erased_until: u32,
}

impl SequentialWriter {
    /// A writer for a region already erased up to `end` (from where writing starts).
    pub(crate) fn erased_to(end: u32) -> Self {
        Self { erased_until: end }
    }

    /// End of the last sector erased so far.
    pub(crate) fn erased_until(&self) -> u32 {
        self.erased_until
    }

    /// Erases every sector that writing up to `end` reaches and that is not erased yet.
    fn erase_to(&mut self, region: &mut dyn Region, end: u32) -> Result<(), Error> {
        while self.erased_until < end {
            self.erased_until = region.erase_sector_at(self.erased_until)?;
        }
        Ok(())
    }

    /// Programs `data` at `offset` (a multiple of the write size): the whole write units in one
    /// operation, a final partial unit padded with `0xFF` in a second.
    pub(crate) fn program(
        &mut self,
        region: &mut dyn Region,
        offset: u32,
        data: &[u8],
    ) -> Result<(), Error> {
        let unit = write_size(region);
        let whole = data
            .len()
            .saturating_sub(data.len().checked_rem(unit).unwrap_or(0));
        let (aligned, partial) = data.split_at(whole);
        let at = offset.saturating_add(u32::try_from(whole).unwrap_or(u32::MAX));
        let mut pad = [ERASED; MAX_WRITE_SIZE];
        let tail = pad.get_mut(..unit).ok_or(Error::InvalidRegion)?;
        tail.get_mut(..partial.len())
            .ok_or(Error::InvalidRegion)?
            .copy_from_slice(partial);
        let end = if partial.is_empty() {
            at
        } else {
            at.checked_add(region.write_size()).ok_or(OUT_OF_BOUNDS)?
        };
        self.erase_to(region, end)?;
        if !aligned.is_empty() {
            region.write(offset, aligned)?;
        }
        if !partial.is_empty() {
            region.write(at, tail)?;
        }
        Ok(())
    }

    /// Programs `buf[..len]` at `offset` in one operation, padding it with `0xFF` to a whole
    /// number of write units in `buf` itself. Returns where the written units end.
    pub(crate) fn program_buffer(
        &mut self,
        region: &mut dyn Region,
        offset: u32,
        buf: &mut [u8],
        len: usize,
    ) -> Result<u32, Error> {
        let padded = len
            .checked_next_multiple_of(write_size(region))
            .ok_or(Error::InvalidRegion)?;
        buf.get_mut(len..padded)
            .ok_or(Error::InvalidRegion)?
            .fill(ERASED);
        let unit = buf.get(..padded).ok_or(Error::InvalidRegion)?;
        let end = offset
            .checked_add(u32::try_from(padded).map_err(|_| OUT_OF_BOUNDS)?)
            .ok_or(OUT_OF_BOUNDS)?;
        self.erase_to(region, end)?;
        region.write(offset, unit)?;
        Ok(end)
    }
}

const OUT_OF_BOUNDS: Error = Error::Flash(NorFlashErrorKind::OutOfBounds);

/// The region's write size, as a length (regions are built with one of at most
/// [`MAX_WRITE_SIZE`]).
fn write_size(region: &dyn Region) -> usize {
    usize::try_from(region.write_size()).unwrap_or(MAX_WRITE_SIZE)
}

/// Erases every sector of `region` from offset `from` (a sector boundary) on that does not read
/// blank, so that nothing of an older image stays behind a new one; a sector that cannot be
/// read (an ECC error) is erased too.
pub(crate) fn erase_dirty_after(
    region: &mut dyn Region,
    from: u32,
    scratch: &mut [u8],
) -> Result<(), Error> {
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
        let blank = region.read(at, piece).is_ok() && piece.iter().all(|b| *b == ERASED);
        at = if blank {
            at.saturating_add(u32::try_from(n).unwrap_or(u32::MAX))
        } else {
            region.erase_sector_at(at)?
        };
    }
    Ok(())
}
