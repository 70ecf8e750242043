//! The streaming container writer (feature `std`).
//!
//! [`seal`] reads the image once per pass in chunk-sized pieces and writes the container to a
//! seekable output, so memory stays flat whatever the image size:
//!
//! - encrypted: one forward pass hashes and seals each chunk (the chunks' associated data does
//!   not depend on the digest); the header, which carries the digest, is written last at the
//!   front (its length does not depend on the digest either);
//! - signed only: a forward pass for the digest, then a backward pass building the hash chain
//!   from the last chunk to the first, writing each chunk at its final position.
//!
//! The signature slot is left zeroed; [`write_signature`] fills it, from a local key or from an
//! external signer (HSM, signing service) given [`Sealed::message`].

use std::io::{self, Read, Seek, SeekFrom, Write};
use std::vec;

use sha2::{Digest, Sha256};

use crate::Error;
use crate::chunk::{ChunkCipher, LINK_LEN, NONCE_PREFIX_LEN, chain_link, payload_aad};
use crate::header::{Encryption, Header, MAX_IMAGE_LEN, Protection, Version};
use crate::keys::{ContentKey, DeviceKey, KeyId};
use crate::layout::Layout;
use crate::name::Name;
use crate::prefix::PREFIX_LEN;
use crate::signed::{SIGNATURE_LEN, SignedMessage};
use crate::wrap::wrap_content_key;

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

    /// Total container length.
    pub fn container_len(&self) -> u64 {
        Layout::of(&self.header)
            .map(|l| l.container_len(self.message.header_bytes().len()))
            .unwrap_or(0)
    }
}

fn invalid(e: Error) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidInput, e)
}

/// Reads exactly `image_len` bytes of `input` (from its current position) and writes the
/// container to `out` from offset 0, leaving the signature zeroed.
pub fn seal<R: Read + Seek, W: Write + Seek>(
    params: &SealParams<'_>,
    input: &mut R,
    image_len: u32,
    out: &mut W,
) -> io::Result<Sealed> {
    let mut header = params.header_template(image_len).map_err(invalid)?;
    let layout = Layout::of(&header).map_err(invalid)?;
    let header_len = SignedMessage::for_header(&header)
        .map_err(invalid)?
        .header_bytes()
        .len();
    let payload_start = PREFIX_LEN
        .saturating_add(header_len)
        .saturating_add(SIGNATURE_LEN) as u64;
    let start = input.stream_position()?;
    let mut buf = vec![0u8; params.chunk_size as usize];

    match &params.encryption {
        Some(e) => {
            let aad = payload_aad(&header).map_err(invalid)?;
            let cipher = ChunkCipher::new(&e.content_key, e.nonce_prefix, aad);
            let mut hasher = Sha256::new();
            out.seek(SeekFrom::Start(payload_start))?;
            for i in 0..layout.chunk_count() {
                let chunk = chunk_buf(&mut buf, layout.plain_len(i))?;
                input.read_exact(chunk)?;
                hasher.update(&*chunk);
                let tag = cipher.seal(i, layout.is_last(i), chunk).map_err(invalid)?;
                out.write_all(chunk)?;
                out.write_all(&tag)?;
            }
            header.digest = hasher.finalize().into();
        }
        None => {
            header.digest = digest_of(input, image_len, &mut buf)?;
            let mut next: Option<[u8; LINK_LEN]> = None;
            for i in (0..layout.chunk_count()).rev() {
                let chunk = chunk_buf(&mut buf, layout.plain_len(i))?;
                input.seek(SeekFrom::Start(
                    start.saturating_add(u64::from(layout.plain_offset(i))),
                ))?;
                input.read_exact(chunk)?;
                out.seek(SeekFrom::Start(
                    payload_start.saturating_add(layout.wire_offset(i)),
                ))?;
                out.write_all(chunk)?;
                if let Some(n) = &next {
                    out.write_all(n)?;
                }
                next = Some(chain_link(i, chunk, next.as_ref()));
            }
            header.protection = Protection::SignedOnly {
                chain_head: next.unwrap_or_default(),
            };
        }
    }
    let message = SignedMessage::for_header(&header).map_err(invalid)?;
    out.seek(SeekFrom::Start(0))?;
    out.write_all(message.container_bytes())?;
    out.write_all(&[0u8; SIGNATURE_LEN])?;
    out.seek(SeekFrom::End(0))?;
    Ok(Sealed { header, message })
}

fn chunk_buf(buf: &mut [u8], len: u32) -> io::Result<&mut [u8]> {
    buf.get_mut(..len as usize)
        .ok_or_else(|| invalid(Error::InvalidChunkSize(len)))
}

fn digest_of<R: Read>(input: &mut R, len: u32, buf: &mut [u8]) -> io::Result<[u8; 32]> {
    let mut h = Sha256::new();
    let mut left = len;
    while left > 0 {
        let piece = chunk_buf(buf, left.min(u32::try_from(buf.len()).unwrap_or(u32::MAX)))?;
        input.read_exact(piece)?;
        h.update(&*piece);
        left = left.saturating_sub(piece.len() as u32);
    }
    Ok(h.finalize().into())
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
    let sealed = seal(params, &mut io::Cursor::new(image), len, &mut out)?;
    write_signature(&mut out, &sealed, &sealed.message.sign(key))?;
    Ok(out.into_inner())
}
