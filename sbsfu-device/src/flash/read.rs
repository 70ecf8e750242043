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
