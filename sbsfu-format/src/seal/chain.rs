//! The backward pass of a signed-only payload: the hash chain, built from the last chunk to the
//! first over what the forward pass wrote.

use std::io::{self, Read, Seek, SeekFrom, Write};
use std::vec;

use super::blocks::{block_lens, chunks_per_block};
use crate::chunk::{LINK_LEN, chain_link};
use crate::layout::PayloadLayout;

/// Signed-only payload, written with empty link slots: reads it back block by block from the
/// last chunk to the first, fills each chunk's slot with the link of the next and writes the
/// block again. Returns the chain head.
pub(super) fn chain_backward<W: Read + Write + Seek>(
    layout: &PayloadLayout,
    out: &mut W,
    payload_start: u64,
) -> io::Result<[u8; LINK_LEN]> {
    let per_block = chunks_per_block(layout);
    let mut wire = vec![0u8; block_lens(layout, per_block).1];
    let mut next: Option<[u8; LINK_LEN]> = None;
    let mut end = layout.chunk_count();
    // Blocks aligned to `per_block` from chunk 0, the last one possibly short.
    while let Some(last) = end.checked_sub(1) {
        let first = last - last % per_block;
        let base = layout.wire_offset(first);
        let wire_at = |i: u32| (layout.wire_offset(i) - base) as usize;
        let block_wire = wire_at(last) + layout.plain_len(last) as usize + layout.tail_len(last);
        let block = &mut wire[..block_wire];
        out.seek(SeekFrom::Start(payload_start + base))?;
        out.read_exact(block)?;
        for i in (first..end).rev() {
            let at = wire_at(i);
            let body_len = layout.plain_len(i) as usize;
            let chunk = &mut block[at..at + body_len + layout.tail_len(i)];
            let (body, tail) = chunk.split_at_mut(body_len);
            if let Some(n) = &next {
                tail.copy_from_slice(n);
            }
            next = Some(chain_link(i, body, next.as_ref()));
        }
        out.seek(SeekFrom::Start(payload_start + base))?;
        out.write_all(block)?;
        end = first;
    }
    Ok(next.unwrap_or_default())
}
