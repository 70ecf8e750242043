//! Reading a region front to back in pieces of a caller's buffer: how a stored container is
//! streamed through the verifier and how an installed image is hashed, without either ever being
//! in RAM whole.

use super::Region;
use crate::Error;

/// Reads `len` bytes of `region` from offset 0 in `scratch`-sized pieces, handing each to
/// `visit` in order. (`visit` is a trait object: one copy of this loop serves every reader.)
pub(crate) fn read_pieces(
    region: &mut dyn Region,
    len: u32,
    scratch: &mut [u8],
    visit: &mut dyn FnMut(&[u8]) -> Result<(), Error>,
) -> Result<(), Error> {
    if scratch.is_empty() {
        return Err(Error::Source);
    }
    let mut offset = 0u32;
    while offset < len {
        let n = usize::try_from(len.saturating_sub(offset))
            .unwrap_or(usize::MAX)
            .min(scratch.len());
        let piece = scratch.get_mut(..n).ok_or(Error::Source)?;
        region.read(offset, piece)?;
        visit(piece)?;
        offset = offset.saturating_add(u32::try_from(n).unwrap_or(u32::MAX));
    }
    Ok(())
}

/// Whether `from..to` of `region` reads blank (all `0xFF`), read in 64-byte pieces; a piece
/// that cannot be read is not blank. How a resumable transfer decides whether a sector must
/// be erased again.
pub(crate) fn is_blank(region: &mut dyn Region, from: u32, to: u32) -> bool {
    let mut buf = [0u8; 64];
    let mut at = from;
    while at < to {
        let n = buf
            .len()
            .min(usize::try_from(to.saturating_sub(at)).unwrap_or(0));
        let Some(piece) = buf.get_mut(..n) else {
            return false;
        };
        if region.read(at, piece).is_err() || piece.iter().any(|b| *b != 0xFF) {
            return false;
        }
        at = at.saturating_add(u32::try_from(n).unwrap_or(u32::MAX));
    }
    true
}
