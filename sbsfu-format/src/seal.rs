//! The streaming container writer (feature `std`).
//!
//! [`seal`] reads the image in blocks of 64 KiB, at any offset ([`ReadAt`], `pread` on a
//! file), and writes the container to a seekable output, so memory stays flat whatever the image
//! size. Each byte of the image is read once: the image digest (SHA-256 of the plaintext) and the
//! payload come from the same reads, so an input that changes while it is read (a build
//! rewriting the file) still gives a container that verifies, holding what was read.
//!
//! - Encrypted: one forward pass hashes each block and seals its chunks (their associated data
//!   does not depend on the digest).
//! - Signed only: one forward pass hashes each block and writes its chunks with empty link slots;
//!   then one backward pass over what was written (the output is read back) builds the hash chain
//!   from the last chunk to the first and fills the links.
//!
//! With [`Threads::Two`] the forward pass reads and hashes on a second thread while this one
//! seals and writes; with [`Threads::One`] both run here. The bytes written are the same. The
//! header, which carries the digest (and the chain head), is written last at the front: its
//! length does not depend on either.
//!
//! The signature slot is left zeroed; [`write_signature`] fills it, from a local key or from an
//! external signer (HSM, signing service) given [`Sealed::message`].

use std::io::{self, IoSlice, Read, Seek, SeekFrom, Write};
use std::sync::mpsc;
use std::vec;
use std::vec::Vec;

use sha2::{Digest, Sha256};

use crate::Error;
use crate::chunk::{ChunkCipher, LINK_LEN, NONCE_PREFIX_LEN, TAG_LEN, chain_link, payload_aad};
use crate::header::{Encryption, Header, MAX_IMAGE_LEN, Protection, Version};
use crate::keys::{ContentKey, DeviceKey, KeyId};
use crate::layout::PayloadLayout;
use crate::name::Name;
use crate::prefix::PREFIX_LEN;
use crate::signed::{SIGNATURE_LEN, SignedMessage};
use crate::wrap::wrap_content_key;

/// Bytes of image read at a time (rounded down to whole chunks, at least one). Small enough that
/// a block is still in the core's cache when it is hashed or sealed: with 1 MiB blocks, copying
/// from the page cache took a third of the time.
const BLOCK: usize = 64 << 10;
/// Blocks between the reading and the sealing thread.
const IN_FLIGHT: usize = 4;

/// The image, readable at any offset from several threads at once.
pub trait ReadAt: Sync {
    /// Fills `buf` from `offset`, or fails (`UnexpectedEof` if the image is shorter).
    fn read_exact_at(&self, buf: &mut [u8], offset: u64) -> io::Result<()>;
}

impl ReadAt for [u8] {
    fn read_exact_at(&self, buf: &mut [u8], offset: u64) -> io::Result<()> {
        let src = usize::try_from(offset)
            .ok()
            .and_then(|at| self.get(at..at.checked_add(buf.len())?))
            .ok_or_else(|| io::Error::from(io::ErrorKind::UnexpectedEof))?;
        buf.copy_from_slice(src);
        Ok(())
    }
}

impl ReadAt for Vec<u8> {
    fn read_exact_at(&self, buf: &mut [u8], offset: u64) -> io::Result<()> {
        self.as_slice().read_exact_at(buf, offset)
    }
}

#[cfg(unix)]
impl ReadAt for std::fs::File {
    fn read_exact_at(&self, buf: &mut [u8], offset: u64) -> io::Result<()> {
        std::os::unix::fs::FileExt::read_exact_at(self, buf, offset)
    }
}

#[cfg(windows)]
impl ReadAt for std::fs::File {
    fn read_exact_at(&self, mut buf: &mut [u8], mut offset: u64) -> io::Result<()> {
        use std::os::windows::fs::FileExt;
        while !buf.is_empty() {
            match self.seek_read(buf, offset) {
                Ok(0) => return Err(io::ErrorKind::UnexpectedEof.into()),
                Ok(n) => {
                    buf = &mut buf[n..];
                    offset += n as u64;
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }
}

/// How many threads [`seal`] uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Threads {
    /// The digest, then the payload, on the calling thread.
    One,
    /// The digest on a second thread while the calling thread writes the payload.
    Two,
}

/// Fresh randomness and keys for an encrypted container. The caller must draw `content_key`,
/// `wrap_nonce` and `nonce_prefix` from a cryptographic RNG for every container; fixed values
/// are for known-answer tests only.
pub struct EncryptParams<'a> {
    /// The device key that wraps the content key.
    pub device_key: &'a DeviceKey,
    /// The fresh content key.
    pub content_key: ContentKey,
    /// Fresh nonce for the key wrap.
    pub wrap_nonce: [u8; 12],
    /// Fresh STREAM nonce prefix.
    pub nonce_prefix: [u8; NONCE_PREFIX_LEN],
}

/// What goes into a header, apart from what the image determines.
pub struct SealParams<'a> {
    /// Ed25519 public key of the signer (names the key in the header).
    pub signer: [u8; 32],
    /// Device class.
    pub target: &'a str,
    /// Display version.
    pub version: Version,
    /// Anti-rollback counter.
    pub security_counter: u32,
    /// Destination region.
    pub region: &'a str,
    /// Load address.
    pub load_address: u32,
    /// Chunk size.
    pub chunk_size: u32,
    /// Encryption, or `None` for a signed-only container.
    pub encryption: Option<EncryptParams<'a>>,
}

impl SealParams<'_> {
    /// The header for an image of `image_len` bytes, with digest and chain head still zero:
    /// validates every field, so that a bad parameter fails before any output is written.
    pub fn header_template(&self, image_len: u32) -> Result<Header, Error> {
        let protection = match &self.encryption {
            None => Protection::SignedOnly {
                chain_head: [0; 32],
            },
            Some(e) => {
                let (wrapped_key, wrap_tag) =
                    wrap_content_key(e.device_key, &e.wrap_nonce, &e.content_key)?;
                Protection::Aes256Gcm(Encryption {
                    device_key: e.device_key.id(),
                    wrap_nonce: e.wrap_nonce,
                    wrapped_key,
                    wrap_tag,
                    nonce_prefix: e.nonce_prefix,
                })
            }
        };
        let header = Header {
            signer: KeyId::of_ed25519(&self.signer),
            target: Name::new(self.target)?,
            version: self.version,
            security_counter: self.security_counter,
            region: Name::new(self.region)?,
            load_address: self.load_address,
            image_len,
            chunk_size: self.chunk_size,
            digest: [0; 32],
            protection,
        };
        header.validate()?;
        if image_len > MAX_IMAGE_LEN {
            return Err(Error::ImageTooLarge(image_len));
        }
        Ok(header)
    }
}

/// A sealed container whose signature slot is still empty.
pub struct Sealed {
    /// The final header.
    pub header: Header,
    /// The bytes to sign.
    pub message: SignedMessage,
}

impl Sealed {
    /// Offset of the signature in the container.
    pub fn signature_offset(&self) -> u64 {
        self.message.container_bytes().len() as u64
    }
}

fn invalid(e: Error) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidInput, e)
}

/// Reads the `image_len` bytes of `input` (each once) and writes the container to `out` from
/// offset 0, leaving the signature zeroed. A signed-only payload is read back from `out` to build
/// its hash chain. The output does not depend on `threads`.
pub fn seal<R: ReadAt + ?Sized, W: Read + Write + Seek>(
    params: &SealParams<'_>,
    input: &R,
    image_len: u32,
    out: &mut W,
    threads: Threads,
) -> io::Result<Sealed> {
    let mut header = params.header_template(image_len).map_err(invalid)?;
    let layout = PayloadLayout::of(&header).map_err(invalid)?;
    let header_len = SignedMessage::for_header(&header)
        .map_err(invalid)?
        .header_bytes()
        .len();
    let payload_start = PREFIX_LEN
        .saturating_add(header_len)
        .saturating_add(SIGNATURE_LEN) as u64;
    out.seek(SeekFrom::Start(payload_start))?;
    let cipher = match &params.encryption {
        Some(e) => Some(ChunkCipher::new(
            &e.content_key,
            e.nonce_prefix,
            payload_aad(&header).map_err(invalid)?,
        )),
        None => None,
    };
    let digest = seal_chunks(&layout, cipher.as_ref(), input, out, threads)?;
    if cipher.is_none() {
        let chain_head = chain_backward(&layout, out, payload_start)?;
        header.protection = Protection::SignedOnly { chain_head };
    }
    header.digest = digest;
    let message = SignedMessage::for_header(&header).map_err(invalid)?;
    out.seek(SeekFrom::Start(0))?;
    out.write_all(message.container_bytes())?;
    out.write_all(&[0u8; SIGNATURE_LEN])?;
    out.seek(SeekFrom::End(0))?;
    Ok(Sealed { header, message })
}

/// Chunks per block: whole chunks in about [`BLOCK`] bytes, at least one.
fn chunks_per_block(layout: &PayloadLayout) -> u32 {
    let size = usize::try_from(layout.chunk_size()).unwrap_or(BLOCK);
    u32::try_from(BLOCK.checked_div(size).unwrap_or(1).max(1)).unwrap_or(1)
}

/// Buffer sizes for `count` full chunks: plaintext, and plaintext plus tails on the wire.
fn block_lens(layout: &PayloadLayout, count: u32) -> (usize, usize) {
    let plain = count.saturating_mul(layout.chunk_size()) as usize;
    let tails = (count as usize).saturating_mul(TAG_LEN.max(LINK_LEN));
    (plain, plain.saturating_add(tails))
}

/// Where chunk `i` is within the plaintext of the block starting at chunk `first`.
fn chunk_in_block(layout: &PayloadLayout, first: u32, i: u32) -> std::ops::Range<usize> {
    let from = layout
        .plain_offset(i)
        .saturating_sub(layout.plain_offset(first)) as usize;
    from..from.saturating_add(layout.plain_len(i) as usize)
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
        Some(last) => layout
            .plain_offset(last)
            .saturating_add(layout.plain_len(last)),
        None => from,
    };
    let block = buf
        .get_mut(..to.saturating_sub(from) as usize)
        .ok_or_else(|| invalid(Error::BufferTooSmall))?;
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
fn seal_chunks<R: ReadAt + ?Sized, W: Write>(
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

/// Signed-only payload, written with empty link slots: reads it back block by block from the
/// last chunk to the first, fills each chunk's slot with the link of the next and writes the
/// block again. Returns the chain head.
fn chain_backward<W: Read + Write + Seek>(
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
        let first = last.saturating_sub(last.checked_rem(per_block).unwrap_or(0));
        let base = layout.wire_offset(first);
        let wire_at = |i: u32| layout.wire_offset(i).saturating_sub(base) as usize;
        let block_wire = wire_at(last)
            .saturating_add(layout.plain_len(last) as usize)
            .saturating_add(layout.tail_len(last));
        let block = wire
            .get_mut(..block_wire)
            .ok_or_else(|| invalid(Error::BufferTooSmall))?;
        out.seek(SeekFrom::Start(payload_start.saturating_add(base)))?;
        out.read_exact(block)?;
        for i in (first..end).rev() {
            let at = wire_at(i);
            let body_end = at.saturating_add(layout.plain_len(i) as usize);
            let dst = block
                .get_mut(at..body_end.saturating_add(layout.tail_len(i)))
                .ok_or_else(|| invalid(Error::BufferTooSmall))?;
            let (body, tail) = dst.split_at_mut(body_end.saturating_sub(at));
            if let Some(n) = &next {
                tail.copy_from_slice(n);
            }
            next = Some(chain_link(i, body, next.as_ref()));
        }
        out.seek(SeekFrom::Start(payload_start.saturating_add(base)))?;
        out.write_all(block)?;
        end = first;
    }
    Ok(next.unwrap_or_default())
}

/// Writes `signature` into the signature slot of a container sealed into `out`.
pub fn write_signature<W: Write + Seek>(
    out: &mut W,
    sealed: &Sealed,
    signature: &[u8; SIGNATURE_LEN],
) -> io::Result<()> {
    out.seek(SeekFrom::Start(sealed.signature_offset()))?;
    out.write_all(signature)?;
    out.seek(SeekFrom::End(0))?;
    Ok(())
}

/// Seals and signs with a local key: the whole container, in memory (tests and small images).
pub fn seal_to_vec(
    params: &SealParams<'_>,
    key: &ed25519_dalek::SigningKey,
    image: &[u8],
) -> io::Result<std::vec::Vec<u8>> {
    let len = u32::try_from(image.len()).map_err(|_| invalid(Error::ImageTooLarge(u32::MAX)))?;
    let mut out = io::Cursor::new(std::vec::Vec::new());
    let sealed = seal(params, image, len, &mut out, Threads::One)?;
    write_signature(&mut out, &sealed, &sealed.message.sign(key))?;
    Ok(out.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::signed::SignedHeader;

    fn image(len: usize) -> Vec<u8> {
        (0..len).map(|i| (i * 7 + i / 251) as u8).collect()
    }

    fn params(chunk_size: u32, device_key: Option<&DeviceKey>) -> SealParams<'_> {
        SealParams {
            signer: [0x11; 32],
            target: "stm32f405",
            version: Version {
                major: 1,
                minor: 0,
                patch: 0,
            },
            security_counter: 1,
            region: "app",
            load_address: 0x0802_0000,
            chunk_size,
            encryption: device_key.map(|device_key| EncryptParams {
                device_key,
                content_key: ContentKey::from_bytes([3; 32]),
                wrap_nonce: [4; 12],
                nonce_prefix: [5; 7],
            }),
        }
    }

    fn seal_with(image: &[u8], chunk_size: u32, encrypted: bool, threads: Threads) -> Vec<u8> {
        let device_key = DeviceKey::from_bytes([2; 32]);
        let params = params(chunk_size, encrypted.then_some(&device_key));
        let mut out = io::Cursor::new(Vec::new());
        seal(&params, image, image.len() as u32, &mut out, threads).unwrap();
        out.into_inner()
    }

    /// Walks the payload: every tag or link verifies, the plaintext is the image.
    fn check_payload(container: &[u8], image: &[u8]) {
        let (head, used) = SignedHeader::parse(container).unwrap();
        let h = head.header;
        let layout = PayloadLayout::of(&h).unwrap();
        assert_eq!(
            layout.container_len(head.message.header_bytes().len()),
            container.len() as u64
        );
        assert_eq!(h.digest, <[u8; 32]>::from(Sha256::digest(image)));
        let payload = &container[used..];
        let mut plain = Vec::new();
        let mut expected = match h.protection {
            Protection::SignedOnly { chain_head } => Some(chain_head),
            Protection::Aes256Gcm(_) => None,
        };
        let cipher = ChunkCipher::new(
            &ContentKey::from_bytes([3; 32]),
            [5; 7],
            payload_aad(&h).unwrap(),
        );
        for i in 0..layout.chunk_count() {
            let at = layout.wire_offset(i) as usize;
            let len = layout.plain_len(i) as usize;
            let mut body = payload[at..at + len].to_vec();
            let tail = &payload[at + len..at + len + layout.tail_len(i)];
            match &mut expected {
                Some(link) => {
                    let next: Option<[u8; LINK_LEN]> = tail.try_into().ok();
                    assert_eq!(chain_link(i, &body, next.as_ref()), *link, "chunk {i}");
                    *link = next.unwrap_or_default();
                }
                None => cipher
                    .open(i, layout.is_last(i), &mut body, tail.try_into().unwrap())
                    .unwrap(),
            }
            plain.extend_from_slice(&body);
        }
        assert_eq!(plain, image);
    }

    #[test]
    fn one_and_two_threads_write_the_same_valid_bytes() {
        // Block boundaries: a block is 1024 chunks of 64 bytes, 16 of 4 KiB, 1 of 64 KiB; the
        // longest image has more blocks than the channel holds, so the reader may seal some.
        for (len, chunk) in [
            (0, 64),
            (1, 64),
            (BLOCK - 1, 64),
            (2 * BLOCK + 100, 64),
            (BLOCK + 4096, 4096),
            (3 * BLOCK - 1, 65536),
            (8 * BLOCK + 1, 4096),
        ] {
            let img = image(len);
            for encrypted in [false, true] {
                let one = seal_with(&img, chunk, encrypted, Threads::One);
                let two = seal_with(&img, chunk, encrypted, Threads::Two);
                assert!(
                    one == two,
                    "len {len}, chunk {chunk}, encrypted {encrypted}"
                );
                check_payload(&one, &img);
            }
        }
    }

    #[test]
    fn a_short_input_is_an_unexpected_eof() {
        let img = image(100);
        let mut out = io::Cursor::new(Vec::new());
        let device_key = DeviceKey::from_bytes([2; 32]);
        for key in [None, Some(&device_key)] {
            let params = params(64, key);
            for threads in [Threads::One, Threads::Two] {
                let e = seal(&params, img.as_slice(), 101, &mut out, threads)
                    .err()
                    .unwrap();
                assert_eq!(e.kind(), io::ErrorKind::UnexpectedEof);
            }
        }
    }
    /// An image that a build rewrites while it is being read: every byte read a second time
    /// reads differently.
    struct Rewritten {
        first: Vec<u8>,
        reads: std::sync::Mutex<Vec<u8>>,
    }

    impl ReadAt for Rewritten {
        fn read_exact_at(&self, buf: &mut [u8], offset: u64) -> io::Result<()> {
            let at = offset as usize;
            buf.copy_from_slice(&self.first[at..at + buf.len()]);
            let mut reads = self.reads.lock().unwrap();
            for (b, n) in buf.iter_mut().zip(&mut reads[at..]) {
                if *n > 0 {
                    *b ^= 0x5A;
                }
                *n += 1;
            }
            Ok(())
        }
    }

    #[test]
    fn an_image_rewritten_while_it_is_read_still_seals_a_valid_container() {
        // What is sealed is what was hashed, from the same reads: each byte is read once.
        for encrypted in [false, true] {
            for threads in [Threads::One, Threads::Two] {
                let img = image(3 * BLOCK + 100);
                let input = Rewritten {
                    reads: std::sync::Mutex::new(vec![0; img.len()]),
                    first: img.clone(),
                };
                let device_key = DeviceKey::from_bytes([2; 32]);
                let params = params(4096, encrypted.then_some(&device_key));
                let mut out = io::Cursor::new(Vec::new());
                seal(&params, &input, img.len() as u32, &mut out, threads).unwrap();
                check_payload(&out.into_inner(), &img);
                assert!(input.reads.lock().unwrap().iter().all(|n| *n == 1));
            }
        }
    }
}
