//! The streaming container writer (feature `std`).
//!
//! [`Prepared::seal`] reads the image in blocks of 64 KiB, at any offset ([`ReadAt`], `pread` on a
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

// Host-only code (feature `std`): it never runs on a device and never parses untrusted input,
// so the device crates' no-panic style (checked arithmetic, `.get()` on every index) is not
// asked of it (docs/ARCHITECTURE.md, "Lints").
#![allow(clippy::arithmetic_side_effects, clippy::indexing_slicing)]

use std::io::{self, Read, Seek, SeekFrom, Write};
use std::vec::Vec;

use crate::Error;
use crate::chunk::{ChunkCipher, NONCE_PREFIX_LEN};
use crate::header::{
    Encryption, Header, HpkeEncryption, Protection, Recipient, RecipientIds, Version,
};
use crate::keys::{ContentKey, DeviceKey, KeyId};
use crate::layout::PayloadLayout;
use crate::name::Name;
use crate::prefix::PREFIX_LEN;
use crate::signed::{SIGNATURE_LEN, SignedMessage};
use crate::wrap::{hpke_wrap_aad, wrap_content_key, wrap_to_recipient};
use zeroize::Zeroizing;

mod blocks;
mod chain;

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

/// How many threads [`Prepared::seal`] uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Threads {
    /// The digest, then the payload, on the calling thread.
    One,
    /// The digest on a second thread while the calling thread writes the payload.
    Two,
}

/// Fresh randomness and keys for an encrypted container. The caller must draw `content_key`,
/// `nonce_prefix` and the randomness of [`Wrap`] from a cryptographic RNG for every container;
/// fixed values are for known-answer tests only.
pub struct EncryptParams<'a> {
    /// How the content key travels.
    pub wrap: Wrap<'a>,
    /// The fresh content key.
    pub content_key: ContentKey,
    /// Fresh STREAM nonce prefix.
    pub nonce_prefix: [u8; NONCE_PREFIX_LEN],
}

/// How the content key of an encrypted container travels.
pub enum Wrap<'a> {
    /// Wrapped under an AES-256 device key ([`Protection::Aes256Gcm`]).
    DeviceKey {
        /// The device key.
        key: &'a DeviceKey,
        /// Fresh nonce for the key wrap.
        nonce: [u8; 12],
    },
    /// Sealed with HPKE to each of 1 to [`MAX_RECIPIENTS`](crate::MAX_RECIPIENTS) X25519 public keys
    /// ([`Protection::Hpke`]), in this order.
    Recipients(Vec<RecipientKey>),
}

/// One HPKE recipient of a container being sealed.
pub struct RecipientKey {
    /// The device's X25519 public key.
    pub public_key: [u8; 32],
    /// A fresh ephemeral X25519 private key for this recipient of this container.
    pub ephemeral: Zeroizing<[u8; 32]>,
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
    /// The container for an image of `image_len` bytes, ready to seal: its header built and
    /// checked once (every field in range, the content key wrapped), encoded once with the
    /// digest still zero (that encoding is the chunks' associated data and gives the header's
    /// length). A bad parameter fails here, before any output is written.
    pub fn prepare(&self, image_len: u32) -> Result<Prepared, Error> {
        let protection = match &self.encryption {
            None => Protection::SignedOnly {
                chain_head: [0; 32],
            },
            Some(EncryptParams {
                wrap: Wrap::DeviceKey { key, nonce },
                content_key,
                nonce_prefix,
            }) => {
                let (wrapped_key, wrap_tag) = wrap_content_key(key, nonce, content_key)?;
                Protection::Aes256Gcm(Encryption {
                    device_key: key.id(),
                    wrap_nonce: *nonce,
                    wrapped_key,
                    wrap_tag,
                    nonce_prefix: *nonce_prefix,
                })
            }
            Some(EncryptParams {
                wrap: Wrap::Recipients(list),
                nonce_prefix,
                ..
            }) => {
                // Key ids now; the wraps once the rest of the header is known (their
                // associated data).
                let ids: Vec<KeyId> = list
                    .iter()
                    .map(|r| KeyId::of_x25519(&r.public_key))
                    .collect();
                Protection::Hpke(HpkeEncryption {
                    recipients: RecipientIds::new(&ids).ok_or(Error::InvalidRecipients)?,
                    nonce_prefix: *nonce_prefix,
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
        let mut wraps = Vec::new();
        if let (
            Some(EncryptParams {
                wrap: Wrap::Recipients(list),
                content_key,
                ..
            }),
            Protection::Hpke(_),
        ) = (&self.encryption, header.protection)
        {
            // The header with its wraps zero (the encoding without them) is what they bind.
            let aad = hpke_wrap_aad(&header, &SignedMessage::for_header(&header)?)?;
            for r in list {
                wraps.push(wrap_to_recipient(
                    &r.public_key,
                    &r.ephemeral,
                    content_key,
                    &aad,
                )?);
            }
        }
        // The one check of every field (the image length against `MAX_IMAGE_LEN` included).
        let layout = PayloadLayout::of(&header)?;
        let template = SignedMessage::for_header_with(&header, &wraps)?;
        let cipher = self.encryption.as_ref().map(|e| {
            // The associated data: the signed message with the digest zero, which it is here.
            ChunkCipher::new(&e.content_key, e.nonce_prefix, template.digest())
        });
        Ok(Prepared {
            header,
            wraps,
            layout,
            header_len: template.header_bytes().len(),
            cipher,
        })
    }
}

/// A container ready to seal ([`SealParams::prepare`]).
pub struct Prepared {
    header: Header,
    /// An HPKE header's recipients' entries (the header keeps their key ids).
    wraps: Vec<Recipient>,
    layout: PayloadLayout,
    header_len: usize,
    cipher: Option<ChunkCipher>,
}

impl Prepared {
    /// The header, its digest (and chain head) still zero.
    pub fn header(&self) -> &Header {
        &self.header
    }

    /// Reads the image (each byte once, `image_len` of them, from offset 0 of `input`) and
    /// writes the container to `out` from offset 0, leaving the signature zeroed. A signed-only
    /// payload is read back from `out` to build its hash chain. The output does not depend on
    /// `threads`.
    pub fn seal<R: ReadAt + ?Sized, W: Read + Write + Seek>(
        &self,
        input: &R,
        out: &mut W,
        threads: Threads,
    ) -> io::Result<Sealed> {
        let mut header = self.header;
        let payload_start = (PREFIX_LEN + self.header_len + SIGNATURE_LEN) as u64;
        out.seek(SeekFrom::Start(payload_start))?;
        header.digest =
            blocks::seal_chunks(&self.layout, self.cipher.as_ref(), input, out, threads)?;
        if self.cipher.is_none() {
            let chain_head = chain::chain_backward(&self.layout, out, payload_start)?;
            header.protection = Protection::SignedOnly { chain_head };
        }
        let message = SignedMessage::for_header_with(&header, &self.wraps).map_err(invalid)?;
        out.seek(SeekFrom::Start(0))?;
        out.write_all(message.container_bytes())?;
        out.write_all(&[0u8; SIGNATURE_LEN])?;
        out.seek(SeekFrom::End(0))?;
        Ok(Sealed { header, message })
    }
}

/// A sealed container whose signature slot is still empty.
pub struct Sealed {
    /// The final header.
    pub header: Header,
    /// The bytes to sign.
    pub message: SignedMessage,
}

fn invalid(e: Error) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidInput, e)
}

/// Writes `signature` into the signature slot of a container sealed into `out`.
pub fn write_signature<W: Write + Seek>(
    out: &mut W,
    sealed: &Sealed,
    signature: &[u8; SIGNATURE_LEN],
) -> io::Result<()> {
    out.seek(SeekFrom::Start(
        sealed.message.container_bytes().len() as u64
    ))?;
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
    let sealed = params
        .prepare(len)
        .map_err(invalid)?
        .seal(image, &mut out, Threads::One)?;
    write_signature(&mut out, &sealed, &sealed.message.sign(key))?;
    Ok(out.into_inner())
}

#[cfg(test)]
mod tests {
    use super::blocks::BLOCK;
    use super::*;
    use crate::chunk::{LINK_LEN, chain_link, payload_aad};
    use crate::signed::SignedHeader;
    use sha2::{Digest, Sha256};
    use std::vec;

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
            encryption: device_key.map(|key| EncryptParams {
                wrap: Wrap::DeviceKey {
                    key,
                    nonce: [4; 12],
                },
                content_key: ContentKey::from_bytes([3; 32]),
                nonce_prefix: [5; 7],
            }),
        }
    }

    fn seal_with(image: &[u8], chunk_size: u32, encrypted: bool, threads: Threads) -> Vec<u8> {
        let device_key = DeviceKey::from_bytes([2; 32]);
        let params = params(chunk_size, encrypted.then_some(&device_key));
        let mut out = io::Cursor::new(Vec::new());
        params
            .prepare(image.len() as u32)
            .unwrap()
            .seal(image, &mut out, threads)
            .unwrap();
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
            Protection::Aes256Gcm(_) | Protection::Hpke(_) => None,
        };
        let cipher = ChunkCipher::new(
            &ContentKey::from_bytes([3; 32]),
            [5; 7],
            payload_aad(&h, &head.message).unwrap(),
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
                let e = params
                    .prepare(101)
                    .unwrap()
                    .seal(img.as_slice(), &mut out, threads)
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
                params
                    .prepare(img.len() as u32)
                    .unwrap()
                    .seal(&input, &mut out, threads)
                    .unwrap();
                check_payload(&out.into_inner(), &img);
                assert!(input.reads.lock().unwrap().iter().all(|n| *n == 1));
            }
        }
    }
}
