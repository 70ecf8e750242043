//! Where the container comes from, and the frames that carry its bytes.

use crate::Error;
use crate::frame::{FrameWriter, Put};
use crate::message::Request;

/// Where the container comes from: memory, a file, external flash.
pub trait Source {
    /// Its length in bytes.
    fn len(&self) -> u32;

    /// Whether it is empty.
    fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Fills `buf` with the bytes at `offset` (`offset + buf.len() <= len()`).
    fn read(&mut self, offset: u32, buf: &mut [u8]) -> Result<(), Error>;
}

impl Source for &[u8] {
    fn len(&self) -> u32 {
        u32::try_from(<[u8]>::len(self)).unwrap_or(u32::MAX)
    }

    fn read(&mut self, offset: u32, buf: &mut [u8]) -> Result<(), Error> {
        let start = usize::try_from(offset).map_err(|_| Error::Source)?;
        let end = start.checked_add(buf.len()).ok_or(Error::Source)?;
        buf.copy_from_slice(self.get(start..end).ok_or(Error::Source)?);
        Ok(())
    }
}

/// Copies `len` bytes of `source` from `offset` into a frame, through a small stack buffer.
fn put_source<S: Source>(
    w: &mut FrameWriter<'_>,
    source: &mut S,
    offset: u32,
    len: u32,
) -> Result<(), Error> {
    let mut buf = [0u8; 64];
    let mut at = offset;
    let end = offset.saturating_add(len);
    while at < end {
        let n = usize::try_from(end.saturating_sub(at))
            .unwrap_or(buf.len())
            .min(buf.len());
        let piece = buf.get_mut(..n).ok_or(Error::Source)?;
        source.read(at, piece)?;
        w.put(piece);
        at = at.saturating_add(u32::try_from(n).unwrap_or(u32::MAX));
    }
    Ok(())
}

/// A request that carries bytes of the source.
pub(super) enum Carrying {
    /// A `Begin`: the head, the first `head_len` bytes.
    Begin { container_len: u32, head_len: u16 },
    /// A `Data`: `len` bytes from `offset`.
    Data { offset: u32, len: u32 },
}

/// One frame: the request's fields, then the source's bytes straight after them.
pub(super) fn encode<S: Source>(
    out: &mut [u8],
    source: &mut S,
    session: u16,
    request: Carrying,
) -> Result<usize, Error> {
    let mut w = FrameWriter::new(out);
    let (offset, len) = match request {
        Carrying::Begin {
            container_len,
            head_len,
        } => {
            Request::begin_header(&mut w, session, container_len, usize::from(head_len));
            (0, u32::from(head_len))
        }
        Carrying::Data { offset, len } => {
            Request::data_header(&mut w, session, offset, usize::try_from(len).unwrap_or(0));
            (offset, len)
        }
    };
    put_source(&mut w, source, offset, len)?;
    w.finish().ok_or(Error::FrameTooSmall)
}
