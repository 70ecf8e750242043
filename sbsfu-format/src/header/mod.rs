//! The signed header: what the image is, where it goes, and how the payload is protected.
//!
//! The header is postcard-encoded. Decoding is strict: the declared length must be used exactly,
//! the encoding must be canonical (re-encoding gives the same bytes, so an overlong varint is
//! rejected), and every field is range-checked before anything uses it.

use core::fmt;
use core::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::Error;
use crate::keys::KeyId;
use crate::name::Name;
use crate::reader::postcard_exact;

mod recipients;

pub(crate) use recipients::EntryTable;
use recipients::RecipientsOut;
pub use recipients::{Recipient, RecipientIds};

/// Upper bound on the encoded header: the largest valid header, exactly. The fields before the
/// protection take at most 123 bytes (signer 8, target 1 + 32, version 3 x 5, counter 5,
/// region 1 + 16, load address 5, image length 5, chunk size 3, digest 32); the largest
/// protection is [`Protection::Hpke`] with [`MAX_RECIPIENTS`] recipients: tag 1 + count 1 +
/// 4 x [`RECIPIENT_LEN`] (88) + nonce prefix 7 = 361 bytes. 123 + 361 = 484
/// (`largest_header_fits_the_bound`).
pub const MAX_HEADER_LEN: usize = 484;
/// Most recipients an HPKE header may list (a device-key rotation, a lab key beside production).
pub const MAX_RECIPIENTS: usize = 4;
/// Encoded length of one [`Recipient`]: key id 8, encapsulated key 32, wrapped key 32, tag 16.
pub const RECIPIENT_LEN: usize = 8 + WRAP_LEN;
/// A recipient's entry but its key id: what the HPKE wrap produces.
pub(crate) const WRAP_LEN: usize = 32 + 32 + 16;
/// Upper bound on a target (device class) name.
pub const MAX_TARGET_LEN: usize = 32;
/// Upper bound on a region name.
pub const MAX_REGION_LEN: usize = 16;
/// Upper bound on the plaintext image: 1 GiB. A header claiming more (e.g. a corrupt ~4 GiB length)
/// fails at once instead of starting hours of hashing.
pub const MAX_IMAGE_LEN: u32 = 1 << 30;
/// Smallest chunk size.
pub const MIN_CHUNK_SIZE: u32 = 64;
/// Largest chunk size; a device may accept less (its installer buffer).
pub const MAX_CHUNK_SIZE: u32 = 64 * 1024;
/// The chunk size the CLI uses unless told otherwise.
pub const DEFAULT_CHUNK_SIZE: u32 = 4096;
/// Length of SHA-256 output.
pub const DIGEST_LEN: usize = 32;

/// Image version, major.minor.patch. For display and policy; anti-rollback uses
/// [`Header::security_counter`], never this.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Version {
    /// Major version.
    pub major: u32,
    /// Minor version.
    pub minor: u32,
    /// Patch version.
    pub patch: u32,
}

impl fmt::Display for Version {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}.{}", self.major, self.minor, self.patch)
    }
}

impl FromStr for Version {
    type Err = Error;

    /// Parses `major.minor.patch`, each a decimal `u32` without sign or leading `+`.
    fn from_str(s: &str) -> Result<Self, Error> {
        let mut parts = s.split('.');
        let mut next = || -> Result<u32, Error> {
            let p = parts.next().ok_or(Error::MalformedHeader)?;
            if p.is_empty() || !p.bytes().all(|b| b.is_ascii_digit()) {
                return Err(Error::MalformedHeader);
            }
            p.parse().map_err(|_| Error::MalformedHeader)
        };
        let v = Version {
            major: next()?,
            minor: next()?,
            patch: next()?,
        };
        if parts.next().is_some() {
            return Err(Error::MalformedHeader);
        }
        Ok(v)
    }
}

/// How the payload chunks are protected.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
pub enum Protection {
    /// Signed only: chunks are plaintext, each followed by the SHA-256 link of the next chunk, and
    /// `chain_head` (the link of chunk 0) is signed here. Every chunk is thus authenticated before
    /// it is used, without any secret.
    SignedOnly {
        /// Link of chunk 0, see [`crate::chunk::chain_link`].
        chain_head: [u8; DIGEST_LEN],
    },
    /// AES-256-GCM STREAM under a fresh random content key, wrapped under a device key.
    Aes256Gcm(Encryption),
    /// The same AES-256-GCM STREAM payload, its content key wrapped with HPKE (RFC 9180 base
    /// mode, DHKEM(X25519, HKDF-SHA256), HKDF-SHA256, AES-256-GCM) to each device public key
    /// listed: whoever makes the container holds no secret that decrypts it.
    Hpke(HpkeEncryption),
}

/// Parameters of an HPKE-wrapped payload.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
pub struct HpkeEncryption {
    /// The recipients' key ids (each recipient's wrap of the content key stays in the header
    /// bytes: [`Header::recipient`]).
    pub recipients: RecipientIds,
    /// Random 7-byte STREAM nonce prefix.
    pub nonce_prefix: [u8; 7],
}

/// Parameters of an encrypted payload.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Encryption {
    /// Which device key wraps the content key.
    pub device_key: KeyId,
    /// Random nonce of the key wrap.
    pub wrap_nonce: [u8; 12],
    /// The content key, encrypted under the device key.
    pub wrapped_key: [u8; 32],
    /// GCM tag of the key wrap.
    pub wrap_tag: [u8; 16],
    /// Random 7-byte STREAM nonce prefix.
    pub nonce_prefix: [u8; 7],
}

/// The container header. Field order is wire order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header {
    /// Key id of the Ed25519 key that signed this header.
    pub signer: KeyId,
    /// Device class this image is for, e.g. `stm32f405`.
    pub target: Name<MAX_TARGET_LEN>,
    /// Display version.
    pub version: Version,
    /// Anti-rollback counter: a device refuses images below its stored minimum.
    pub security_counter: u32,
    /// Destination region, e.g. `app` or `data`.
    pub region: Name<MAX_REGION_LEN>,
    /// Address at which the image is installed (the region's start).
    pub load_address: u32,
    /// Plaintext length in bytes, at most [`MAX_IMAGE_LEN`].
    pub image_len: u32,
    /// Plaintext bytes per chunk (a power of two), the last chunk holding the remainder.
    pub chunk_size: u32,
    /// SHA-256 of the plaintext image, exactly `image_len` bytes.
    pub digest: [u8; DIGEST_LEN],
    /// How the payload is protected.
    pub protection: Protection,
}

/// The header as it is encoded: names are plain strings here and validated on the way in. The
/// protection is a [`Protection`] when decoding and a [`ProtectionOut`] (with the recipients'
/// wraps) when encoding.
#[derive(Serialize, Deserialize)]
struct Wire<'a, P> {
    signer: KeyId,
    target: &'a str,
    version: Version,
    security_counter: u32,
    region: &'a str,
    load_address: u32,
    image_len: u32,
    chunk_size: u32,
    digest: [u8; DIGEST_LEN],
    protection: P,
}

/// A [`Protection`] as encoded: the same variants in the same order, with an HPKE header's
/// recipient entries made of its key ids and the wraps given (zeros where none are).
#[derive(Serialize)]
enum ProtectionOut<'a> {
    SignedOnly {
        chain_head: &'a [u8; DIGEST_LEN],
    },
    Aes256Gcm(&'a Encryption),
    Hpke {
        recipients: RecipientsOut<'a>,
        nonce_prefix: &'a [u8; 7],
    },
}

/// Encoded length of a protection after the header's digest (the variant tag included).
const SIGNED_ONLY_LEN: usize = 1 + DIGEST_LEN;
const AES_256_GCM_LEN: usize = 1 + 8 + 12 + 32 + 16 + 7;

impl Header {
    fn as_wire<'a>(&'a self, wraps: &'a [Recipient]) -> Wire<'a, ProtectionOut<'a>> {
        Wire {
            signer: self.signer,
            target: self.target.as_str(),
            version: self.version,
            security_counter: self.security_counter,
            region: self.region.as_str(),
            load_address: self.load_address,
            image_len: self.image_len,
            chunk_size: self.chunk_size,
            digest: self.digest,
            protection: match &self.protection {
                Protection::SignedOnly { chain_head } => ProtectionOut::SignedOnly { chain_head },
                Protection::Aes256Gcm(e) => ProtectionOut::Aes256Gcm(e),
                Protection::Hpke(h) => ProtectionOut::Hpke {
                    recipients: RecipientsOut {
                        ids: &h.recipients,
                        wraps,
                    },
                    nonce_prefix: &h.nonce_prefix,
                },
            },
        }
    }

    fn from_wire(w: &Wire<'_, Protection>) -> Result<Self, Error> {
        Ok(Self {
            signer: w.signer,
            target: Name::new(w.target)?,
            version: w.version,
            security_counter: w.security_counter,
            region: Name::new(w.region)?,
            load_address: w.load_address,
            image_len: w.image_len,
            chunk_size: w.chunk_size,
            digest: w.digest,
            protection: w.protection,
        })
    }

    /// Parses exactly `bytes` as a header: strict, canonical and range-checked. An HPKE
    /// header's recipient entries stay in `bytes` ([`Header::recipient`] reads one).
    pub fn parse(bytes: &[u8]) -> Result<Self, Error> {
        if bytes.is_empty() || bytes.len() > MAX_HEADER_LEN {
            return Err(Error::HeaderLength(
                u16::try_from(bytes.len()).unwrap_or(u16::MAX),
            ));
        }
        let wire: Wire<'_, Protection> =
            postcard_exact(bytes, Error::MalformedHeader, Error::TrailingHeaderBytes)?;
        let header = Self::from_wire(&wire)?;
        // Canonical: the bytes decoded exactly, so they are the header's one encoding unless a
        // varint is longer than it needs to be, which makes them longer than that encoding.
        if header.encoded_len() != Some(bytes.len()) {
            return Err(Error::NonCanonicalHeader);
        }
        header.validate()?;
        Ok(header)
    }

    /// Checks the ranges of the numeric fields.
    pub fn validate(&self) -> Result<(), Error> {
        if self.image_len > MAX_IMAGE_LEN {
            return Err(Error::ImageTooLarge(self.image_len));
        }
        if !self.chunk_size.is_power_of_two()
            || !(MIN_CHUNK_SIZE..=MAX_CHUNK_SIZE).contains(&self.chunk_size)
        {
            return Err(Error::InvalidChunkSize(self.chunk_size));
        }
        self.load_address
            .checked_add(self.image_len)
            .ok_or(Error::AddressOverflow)?;
        Ok(())
    }

    /// Encodes the header into `out`, returning the encoded bytes. An HPKE header's
    /// recipients' wraps are not part of a `Header`: they are encoded as zeros here (what
    /// [`crate::hpke_wrap_aad`] covers), and as given by [`Header::encode_with`].
    pub fn encode<'o>(&self, out: &'o mut [u8]) -> Result<&'o [u8], Error> {
        self.encode_with(&[], out)
    }

    /// Encodes the header with its recipients' entries `wraps` (in header order, with the
    /// header's key ids: else [`Error::InvalidRecipients`]); no entries encodes the wraps as
    /// zeros, as [`Header::encode`] does.
    pub fn encode_with<'o>(
        &self,
        wraps: &[Recipient],
        out: &'o mut [u8],
    ) -> Result<&'o [u8], Error> {
        let ids = self.recipient_key_ids();
        if !wraps.is_empty() && !wraps.iter().map(|r| r.key_id).eq(ids) {
            return Err(Error::InvalidRecipients);
        }
        postcard::to_slice(&self.as_wire(wraps), out)
            .map(|b| &*b)
            .map_err(|_| Error::BufferTooSmall)
    }

    /// Recipient `index`'s entry, read from `bytes`, this header's encoding (as parsed, or as
    /// signed): `None` if there is no such recipient or `bytes` do not hold its key id there.
    pub fn recipient(&self, bytes: &[u8], index: usize) -> Option<Recipient> {
        let range = EntryTable::of(self, bytes.len())?.entry(index)?;
        let entry = Recipient::from_bytes(bytes.get(range)?.first_chunk()?);
        let id = self.recipient_key_ids().nth(index)?;
        (entry.key_id == id).then_some(entry)
    }

    /// Length of this header's encoding, from its fields: what [`Header::encode`] writes
    /// (`encoded_len_is_the_encoders`), without the encoder (a device only parses). Postcard
    /// writes integers and lengths as LEB128 varints, 7 bits a byte, arrays as they are.
    fn encoded_len(&self) -> Option<usize> {
        fn varint(n: u32) -> usize {
            match n {
                0..0x80 => 1,
                0x80..0x4000 => 2,
                0x4000..0x20_0000 => 3,
                0x20_0000..0x1000_0000 => 4,
                _ => 5,
            }
        }
        let str_len = |s: &str| {
            let n = s.len();
            varint(u32::try_from(n).ok()?).checked_add(n)
        };
        let protection = match &self.protection {
            Protection::SignedOnly { .. } => SIGNED_ONLY_LEN,
            Protection::Aes256Gcm(_) => AES_256_GCM_LEN,
            // Tag and count take a byte each.
            Protection::Hpke(h) => (h.recipients.as_slice().len())
                .checked_mul(RECIPIENT_LEN)?
                .checked_add(2 + 7)?,
        };
        let v = &self.version;
        [
            8,
            str_len(self.target.as_str())?,
            varint(v.major),
            varint(v.minor),
            varint(v.patch),
            varint(self.security_counter),
            str_len(self.region.as_str())?,
            varint(self.load_address),
            varint(self.image_len),
            varint(self.chunk_size),
            DIGEST_LEN,
            protection,
        ]
        .iter()
        .try_fold(0usize, |a, n| a.checked_add(*n))
    }

    /// Where the digest is in this header's encoding of `len` bytes: just before the
    /// protection, whose length the header determines.
    pub(crate) fn digest_offset(&self, len: usize) -> Option<usize> {
        let protection = match &self.protection {
            Protection::SignedOnly { .. } => SIGNED_ONLY_LEN,
            Protection::Aes256Gcm(_) => AES_256_GCM_LEN,
            Protection::Hpke(_) => len
                .checked_sub(EntryTable::of(self, len)?.start)?
                .checked_add(2)?,
        };
        len.checked_sub(protection.checked_add(DIGEST_LEN)?)
    }

    /// The AES-256 device key id, if the payload is encrypted under one.
    pub fn device_key(&self) -> Option<KeyId> {
        match &self.protection {
            Protection::Aes256Gcm(e) => Some(e.device_key),
            Protection::SignedOnly { .. } | Protection::Hpke(_) => None,
        }
    }

    /// The recipients' key ids, if the content key is wrapped with HPKE (none otherwise).
    pub fn recipient_key_ids(&self) -> impl Iterator<Item = KeyId> + '_ {
        let list = match &self.protection {
            Protection::Hpke(h) => h.recipients.as_slice(),
            _ => &[],
        };
        list.iter().copied()
    }

    /// Whether the payload is encrypted (under a device key or to recipients).
    pub fn is_encrypted(&self) -> bool {
        !matches!(self.protection, Protection::SignedOnly { .. })
    }

    /// The STREAM nonce prefix of an encrypted payload.
    pub fn nonce_prefix(&self) -> Option<[u8; 7]> {
        match &self.protection {
            Protection::Aes256Gcm(e) => Some(e.nonce_prefix),
            Protection::Hpke(h) => Some(h.nonce_prefix),
            Protection::SignedOnly { .. } => None,
        }
    }
}

#[cfg(test)]
pub(crate) mod tests;
