//! The forward pass: the image read block by block (each byte once), hashed, and its chunks
//! sealed and written; on two threads, the reading and hashing on the second.

use std::io::{self, IoSlice, Write};
use std::sync::mpsc;
use std::vec;
use std::vec::Vec;

use sha2::{Digest, Sha256};

use super::{ReadAt, Threads, invalid};
use crate::Error;
use crate::chunk::{ChunkCipher, LINK_LEN, TAG_LEN};
use crate::layout::PayloadLayout;

/// Bytes of image read at a time (rounded down to whole chunks, at least one). Small enough that
/// a block is still in the core's cache when it is hashed or sealed: with 1 MiB blocks, copying
/// from the page cache took a third of the time.
pub(super) const BLOCK: usize = 64 << 10;
/// Blocks between the reading and the sealing thread.
const IN_FLIGHT: usize = 4;

/// Chunks per block: whole chunks in about [`BLOCK`] bytes, at least one.
pub(super) fn chunks_per_block(layout: &PayloadLayout) -> u32 {
    (BLOCK / layout.chunk_size() as usize).max(1) as u32
}

/// Buffer sizes for `count` full chunks: plaintext, and plaintext plus tails on the wire.
pub(super) fn block_lens(layout: &PayloadLayout, count: u32) -> (usize, usize) {
    let plain = (count * layout.chunk_size()) as usize;
    (plain, plain + count as usize * TAG_LEN.max(LINK_LEN))
}

/// Where chunk `i` is within the plaintext of the block starting at chunk `first`.
fn chunk_in_block(layout: &PayloadLayout, first: u32, i: u32) -> std::ops::Range<usize> {
    let from = (layout.plain_offset(i) - layout.plain_offset(first)) as usize;
    from..from + layout.plain_len(i) as usize
}

/// The plaintext of chunks `first..end`, read in one go into `buf`.
fn read_chunks<'b, R: ReadAt + ?Sized>(
    layout: &PayloadLayout,
    input: &R,
    first: u32,
    end: u32,
    buf: &'b mut [u8],
) -> io::Result<&'b mut [u8]> {
    let from = layout.plain_offset(first);
    let to = match end.checked_sub(1) {
        Some(last) => layout.plain_offset(last) + layout.plain_len(last),
        None => from,
    };
    let block = &mut buf[..(to - from) as usize];
    input.read_exact_at(block, u64::from(from))?;
    Ok(block)
}

/// The result of a scoped thread, a panic in it turned into an error.
fn joined<T>(r: std::thread::Result<io::Result<T>>) -> io::Result<T> {
    r.unwrap_or_else(|_| Err(io::Error::other("a sealing thread panicked")))
}

/// The payload in order: every chunk sealed in place and written with its tag (encrypted, with
/// `cipher`), or written with an empty link slot (signed only, without). Returns the image digest,
/// of the same reads.
///
/// With [`Threads::Two`], a second thread reads and hashes the blocks and passes them through a
/// bounded channel to this one, which seals and writes them. Sealing a chunk depends only on its
/// index, so whichever thread is idle seals: when the channel is full (this side is behind), the
/// reading thread seals the block itself before passing it on. Each block is read once, and at
/// most [`IN_FLIGHT`] + 2 blocks exist.
pub(super) fn seal_chunks<R: ReadAt + ?Sized, W: Write>(
    layout: &PayloadLayout,
    cipher: Option<&ChunkCipher>,
    input: &R,
    out: &mut W,
    threads: Threads,
) -> io::Result<[u8; 32]> {
    let per_block = chunks_per_block(layout);
    let blocks = (0..layout.chunk_count())
        .step_by(per_block as usize)
        .map(move |first| {
            (
                first,
                first.saturating_add(per_block).min(layout.chunk_count()),
            )
        });
    let new_block = || Block {
        first: 0,
        end: 0,
        plain: vec![0u8; block_lens(layout, per_block).0],
        tags: Vec::with_capacity(per_block as usize),
        sealed: false,
    };
    let mut hasher = Sha256::new();
    match threads {
        Threads::One => {
            let mut block = new_block();
            for (first, end) in blocks {
                block.read(layout, input, first, end, &mut hasher)?;
                block.seal(layout, cipher)?;
                block.write(layout, out)?;
            }
            Ok(hasher.finalize().into())
        }
        Threads::Two => std::thread::scope(|scope| {
            let (full_tx, full_rx) = mpsc::sync_channel::<Block>(IN_FLIGHT);
            let (free_tx, free_rx) = mpsc::channel::<Block>();
            let reader = scope.spawn(move || -> io::Result<[u8; 32]> {
                for (first, end) in blocks {
                    let mut block = free_rx.try_recv().unwrap_or_else(|_| new_block());
                    block.read(layout, input, first, end, &mut hasher)?;
                    let sent = match full_tx.try_send(block) {
                        Err(mpsc::TrySendError::Full(mut block)) => {
                            block.seal(layout, cipher)?;
                            full_tx.send(block).is_ok()
                        }
                        other => other.is_ok(),
                    };
                    if !sent {
                        // The writing side failed; its error is the one reported.
                        break;
                    }
                }
                Ok(hasher.finalize().into())
            });
            let mut written = Ok(());
            for mut block in full_rx.iter() {
                written = block
                    .seal(layout, cipher)
                    .and_then(|()| block.write(layout, out));
                if written.is_err() {
                    break;
                }
                let _ = free_tx.send(block);
            }
            drop(full_rx);
            let digest = joined(reader.join());
            written?;
            digest
        }),
    }
}

/// Chunks `first..end` of the image: their plaintext, sealed in place, and their tags (none
/// when signed only).
struct Block {
    first: u32,
    end: u32,
    plain: Vec<u8>,
    tags: Vec<[u8; TAG_LEN]>,
    sealed: bool,
}

impl Block {
    /// Reads chunks `first..end` and adds them to `hasher`.
    fn read<R: ReadAt + ?Sized>(
        &mut self,
        layout: &PayloadLayout,
        input: &R,
        first: u32,
        end: u32,
        hasher: &mut Sha256,
    ) -> io::Result<()> {
        hasher.update(&*read_chunks(layout, input, first, end, &mut self.plain)?);
        self.first = first;
        self.end = end;
        self.sealed = false;
        Ok(())
    }

    /// The chunk `i` of this block.
    fn chunk(&mut self, layout: &PayloadLayout, i: u32) -> io::Result<&mut [u8]> {
        self.plain
            .get_mut(chunk_in_block(layout, self.first, i))
            .ok_or_else(|| invalid(Error::BufferTooSmall))
    }

    /// Seals the chunks in place (once); signed only, there is nothing to do.
    fn seal(&mut self, layout: &PayloadLayout, cipher: Option<&ChunkCipher>) -> io::Result<()> {
        let Some(cipher) = cipher.filter(|_| !self.sealed) else {
            return Ok(());
        };
        self.tags.clear();
        // By index, not `chunks_mut`: an empty image still has one (empty) chunk with a tag.
        for i in self.first..self.end {
            let tag = cipher
                .seal(i, layout.is_last(i), self.chunk(layout, i)?)
                .map_err(invalid)?;
            self.tags.push(tag);
        }
        self.sealed = true;
        Ok(())
    }

    /// Writes the chunks, each followed by its tag (or an empty link slot), in one vectored
    /// write: the kernel gathers them, no copy into a staging buffer.
    fn write<W: Write>(&self, layout: &PayloadLayout, out: &mut W) -> io::Result<()> {
        const NO_LINK: [u8; LINK_LEN] = [0; LINK_LEN];
        let count = self.end.saturating_sub(self.first) as usize;
        let mut slices: Vec<IoSlice<'_>> = Vec::with_capacity(count.saturating_mul(2));
        for (k, i) in (self.first..self.end).enumerate() {
            let chunk = self
                .plain
                .get(chunk_in_block(layout, self.first, i))
                .ok_or_else(|| invalid(Error::BufferTooSmall))?;
            let tail = match self.tags.get(k).filter(|_| self.sealed) {
                Some(tag) => tag.as_slice(),
                None => NO_LINK.get(..layout.tail_len(i)).unwrap_or_default(),
            };
            slices.push(IoSlice::new(chunk));
            slices.push(IoSlice::new(tail));
        }
        write_all_vectored(out, &mut slices)
    }
}

/// `Write::write_all_vectored`, which is not stable yet.
fn write_all_vectored<W: Write>(out: &mut W, mut slices: &mut [IoSlice<'_>]) -> io::Result<()> {
    IoSlice::advance_slices(&mut slices, 0);
    while !slices.is_empty() {
        match out.write_vectored(slices) {
            Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
            Ok(n) => IoSlice::advance_slices(&mut slices, n),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}
