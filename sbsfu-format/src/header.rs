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

/// The content key wrapped to one recipient (an X25519 device key) with HPKE: one entry of an
/// HPKE header's recipient list, [`RECIPIENT_LEN`] bytes in this order.
///
/// A [`Header`] keeps the recipients' key ids only ([`RecipientIds`]): a device needs one entry,
/// once, where the header bytes are at hand, so the entries stay there ([`Header::recipient`])
/// and a header stays small on a device's stack.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Recipient {
    /// Key id of the recipient's X25519 public key ([`KeyId::of_x25519`]).
    pub key_id: KeyId,
    /// HPKE's encapsulated key: the sender's ephemeral X25519 public key, fresh per recipient.
    pub enc: [u8; 32],
    /// The content key, sealed to this recipient.
    pub wrapped_key: [u8; 32],
    /// GCM tag of the seal.
    pub wrap_tag: [u8; 16],
}

impl Recipient {
    /// The entry in `bytes` (its encoding: fixed-size fields, nothing to check).
    fn from_bytes(bytes: &[u8; RECIPIENT_LEN]) -> Self {
        let mut r = Recipient::default();
        let (key_id, rest) = bytes.split_at(8);
        let (enc, rest) = rest.split_at(32);
        let (wrapped_key, wrap_tag) = rest.split_at(32);
        r.key_id.0.copy_from_slice(key_id);
        r.enc.copy_from_slice(enc);
        r.wrapped_key.copy_from_slice(wrapped_key);
        r.wrap_tag.copy_from_slice(wrap_tag);
        r
    }
}

/// The key ids of an HPKE header's one to [`MAX_RECIPIENTS`] recipients, distinct, in header
/// order. (Their wraps are in the header bytes: [`Header::recipient`].)
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RecipientIds {
    len: u8,
    ids: [KeyId; MAX_RECIPIENTS],
}

impl RecipientIds {
    /// The key ids `list` names; `None` for none, more than [`MAX_RECIPIENTS`] or a repeated
    /// one.
    pub fn new(list: &[KeyId]) -> Option<Self> {
        let mut ids = [KeyId::default(); MAX_RECIPIENTS];
        if list.is_empty() || list.len() > MAX_RECIPIENTS {
            return None;
        }
        ids.iter_mut().zip(list).for_each(|(o, r)| *o = *r);
        let len = u8::try_from(list.len()).ok()?;
        let r = Self { len, ids };
        r.distinct().then_some(r)
    }

    /// The key ids, in header order.
    pub fn as_slice(&self) -> &[KeyId] {
        self.ids.get(..usize::from(self.len)).unwrap_or_default()
    }

    fn distinct(&self) -> bool {
        let list = self.as_slice();
        list.iter()
            .enumerate()
            .all(|(i, r)| list.iter().skip(i.saturating_add(1)).all(|o| o != r))
    }
}

/// Decoded from the recipient list, `varint(count) || count x recipient`: the count is bounded
/// before any entry is read, and each entry is read whole but only its key id kept.
impl<'de> Deserialize<'de> for RecipientIds {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Visit;
        impl<'de> serde::de::Visitor<'de> for Visit {
            type Value = RecipientIds;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("1 to 4 recipients")
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(
                self,
                mut a: A,
            ) -> Result<RecipientIds, A::Error> {
                use serde::de::Error as _;
                // The count is bounded before any recipient is read.
                let n = a.size_hint().unwrap_or(0);
                if n == 0 || n > MAX_RECIPIENTS {
                    return Err(A::Error::custom("recipient count"));
                }
                let mut ids = [KeyId::default(); MAX_RECIPIENTS];
                for id in ids.iter_mut().take(n) {
                    let r: Recipient = a
                        .next_element()?
                        .ok_or_else(|| A::Error::custom("truncated"))?;
                    *id = r.key_id;
                }
                let list = ids.get(..n).unwrap_or_default();
                RecipientIds::new(list).ok_or_else(|| A::Error::custom("repeated recipient"))
            }
        }
        d.deserialize_seq(Visit)
    }
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

/// The recipient list as encoded: `varint(count) || count x recipient`.
struct RecipientsOut<'a> {
    ids: &'a RecipientIds,
    /// The entries, in order and with the same key ids; empty for zero wraps.
    wraps: &'a [Recipient],
}

impl Serialize for RecipientsOut<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeSeq;
        let ids = self.ids.as_slice();
        let mut seq = s.serialize_seq(Some(ids.len()))?;
        ids.iter().enumerate().try_for_each(|(i, id)| {
            let zero = Recipient {
                key_id: *id,
                ..Recipient::default()
            };
            seq.serialize_element(self.wraps.get(i).unwrap_or(&zero))
        })?;
        seq.end()
    }
}

/// Where an HPKE header's recipient entries are in its encoding of `len` bytes: last but for the
/// 7-byte nonce prefix, after the variant tag and the count (one byte each).
#[derive(Clone, Copy)]
pub(crate) struct EntryTable {
    start: usize,
    count: usize,
}

impl EntryTable {
    /// The entries of `header`, encoded in `len` bytes; `None` if it is not an HPKE header.
    pub(crate) fn of(header: &Header, len: usize) -> Option<Self> {
        let Protection::Hpke(h) = &header.protection else {
            return None;
        };
        let count = h.recipients.as_slice().len();
        let start = len.checked_sub(count.checked_mul(RECIPIENT_LEN)?.checked_add(7)?)?;
        Some(Self { start, count })
    }

    /// How many entries.
    pub(crate) fn count(&self) -> usize {
        self.count
    }

    /// Entry `i`, whole.
    fn entry(&self, i: usize) -> Option<core::ops::Range<usize>> {
        let start = self.start.checked_add(i.checked_mul(RECIPIENT_LEN)?)?;
        (i < self.count).then_some(start..start.checked_add(RECIPIENT_LEN)?)
    }

    /// Where entry `i`'s wrap starts: the entry without its key id, [`WRAP_LEN`] bytes that
    /// the sealer fills in once the rest is known.
    pub(crate) fn wrap(&self, i: usize) -> Option<usize> {
        self.entry(i)?.start.checked_add(8)
    }
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
pub(crate) mod tests {
    use super::*;
    use proptest::prelude::*;

    pub(crate) fn sample(protection: Protection) -> Header {
        Header {
            signer: KeyId([1, 2, 3, 4, 5, 6, 7, 8]),
            target: Name::new("stm32f405").unwrap(),
            version: Version {
                major: 1,
                minor: 2,
                patch: 3,
            },
            security_counter: 7,
            region: Name::new("app").unwrap(),
            load_address: 0x0802_0000,
            image_len: 300,
            chunk_size: 128,
            digest: [0xd1; 32],
            protection,
        }
    }

    fn encrypted() -> Protection {
        Protection::Aes256Gcm(Encryption {
            device_key: KeyId([9; 8]),
            wrap_nonce: [0xa0; 12],
            wrapped_key: [0xb0; 32],
            wrap_tag: [0xc0; 16],
            nonce_prefix: [0xe0; 7],
        })
    }

    /// Known-answer postcard encoding of `sample(SignedOnly { chain_head: [0xcc; 32] })`:
    /// fixed-size arrays are raw bytes, integers are LEB128 varints, strings are varint length
    /// plus bytes, the enum tag is a varint.
    const SIGNED_ONLY_KAT: &[u8] = &hex_literal::hex!(
        "0102030405060708"                  // signer
        "09 73746d3332663430 35"            // target "stm32f405"
        "01 02 03"                          // version
        "07"                                // security counter
        "03 617070"                         // region "app"
        "80808840"                          // load address 0x0802_0000
        "ac02"                              // image length 300
        "8001"                              // chunk size 128
        "d1d1d1d1d1d1d1d1d1d1d1d1d1d1d1d1d1d1d1d1d1d1d1d1d1d1d1d1d1d1d1d1" // digest
        "00"                                // SignedOnly
        "cccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccc" // chain head
    );

    #[test]
    fn encoding_matches_known_answer() {
        let h = sample(Protection::SignedOnly {
            chain_head: [0xcc; 32],
        });
        let mut buf = [0u8; MAX_HEADER_LEN];
        assert_eq!(h.encode(&mut buf).unwrap(), SIGNED_ONLY_KAT);
        assert_eq!(Header::parse(SIGNED_ONLY_KAT), Ok(h));
    }

    pub(crate) fn hpke(n: usize) -> Protection {
        let ids: std::vec::Vec<KeyId> = (0..n).map(|i| KeyId([i as u8 + 1; 8])).collect();
        Protection::Hpke(HpkeEncryption {
            recipients: RecipientIds::new(&ids).unwrap(),
            nonce_prefix: [0xe0; 7],
        })
    }

    /// Entries for the recipients of `h`, with wraps made of `seed`.
    pub(crate) fn entries(h: &Header, seed: u8) -> std::vec::Vec<Recipient> {
        h.recipient_key_ids()
            .enumerate()
            .map(|(i, key_id)| Recipient {
                key_id,
                enc: [seed ^ 0xe1 ^ i as u8; 32],
                wrapped_key: [seed ^ 0xb1; 32],
                wrap_tag: [seed ^ 0xc1 ^ (i as u8) << 4; 16],
            })
            .collect()
    }

    /// The entries of every recipient of `h`, read from its encoding `bytes`.
    pub(crate) fn read_entries(h: &Header, bytes: &[u8]) -> std::vec::Vec<Recipient> {
        (0..h.recipient_key_ids().count())
            .map(|i| h.recipient(bytes, i).unwrap())
            .collect()
    }

    #[test]
    fn largest_header_fits_the_bound() {
        let mut h = sample(hpke(MAX_RECIPIENTS));
        h.target = Name::new("abcdefghijklmnopqrstuvwxyz012345").unwrap();
        h.region = Name::new("abcdefghijklmnop").unwrap();
        h.version = Version {
            major: u32::MAX,
            minor: u32::MAX,
            patch: u32::MAX,
        };
        h.security_counter = u32::MAX;
        h.load_address = u32::MAX - MAX_IMAGE_LEN;
        h.image_len = MAX_IMAGE_LEN;
        h.chunk_size = MAX_CHUNK_SIZE;
        let mut buf = [0u8; MAX_HEADER_LEN];
        let n = h.encode_with(&entries(&h, 1), &mut buf).unwrap().len();
        // The bound is the largest header exactly: it grows only as far as four recipients need.
        assert_eq!(n, MAX_HEADER_LEN);
        assert_eq!(Header::parse(&buf[..n]), Ok(h));
        assert_eq!(read_entries(&h, &buf[..n]), entries(&h, 1));
        h.protection = encrypted();
        assert!(h.encode(&mut buf).unwrap().len() <= 200);
    }

    #[test]
    fn recipients_are_one_to_four_distinct_keys() {
        for n in 1..=MAX_RECIPIENTS {
            let h = sample(hpke(n));
            let mut buf = [0u8; MAX_HEADER_LEN];
            let wraps = entries(&h, 3);
            let bytes = h.encode_with(&wraps, &mut buf).unwrap().to_vec();
            assert_eq!(Header::parse(&bytes), Ok(h));
            assert_eq!(h.recipient_key_ids().count(), n);
            assert_eq!(read_entries(&h, &bytes), wraps);
            assert_eq!(h.recipient(&bytes, n), None);
            // The count sits right after the protection tag (2): 0 and 5 are refused.
            let at = bytes.len() - 7 - n * RECIPIENT_LEN - 1;
            assert_eq!((bytes[at - 1], bytes[at]), (2, n as u8));
            for bad in [0u8, 5, 0x80] {
                let mut v = bytes.clone();
                v[at] = bad;
                assert_eq!(Header::parse(&v), Err(Error::MalformedHeader), "{bad}");
            }
            if n > 1 {
                // The second recipient named by the first one's key id.
                let mut v = bytes.clone();
                let second = at + 1 + RECIPIENT_LEN;
                v.copy_within(at + 1..at + 9, second);
                assert_eq!(Header::parse(&v), Err(Error::MalformedHeader));
                // An entry is read only where its key id is.
                assert_eq!(h.recipient(&v, 1), None);
            }
        }
        let one = KeyId::default();
        assert!(RecipientIds::new(&[]).is_none());
        assert!(RecipientIds::new(&[one; 5]).is_none());
        assert!(RecipientIds::new(&[one, one]).is_none());
        // Entries must name the header's recipients, in order.
        let h = sample(hpke(2));
        let mut wraps = entries(&h, 0);
        wraps.swap(0, 1);
        let mut buf = [0u8; MAX_HEADER_LEN];
        assert_eq!(
            h.encode_with(&wraps, &mut buf),
            Err(Error::InvalidRecipients)
        );
        assert_eq!(
            h.encode_with(&wraps[..1], &mut buf),
            Err(Error::InvalidRecipients)
        );
        let aes = sample(encrypted());
        assert_eq!(
            aes.encode_with(&wraps, &mut buf),
            Err(Error::InvalidRecipients)
        );
        assert_eq!(aes.recipient(aes.encode(&mut buf).unwrap(), 0), None);
    }

    #[test]
    fn the_digest_offset_is_where_the_digest_is() {
        for p in [
            Protection::SignedOnly {
                chain_head: [0xcc; 32],
            },
            encrypted(),
            hpke(1),
            hpke(MAX_RECIPIENTS),
        ] {
            let h = sample(p);
            let mut buf = [0u8; MAX_HEADER_LEN];
            let bytes = h.encode_with(&entries(&h, 9), &mut buf).unwrap();
            let at = h.digest_offset(bytes.len()).unwrap();
            assert_eq!(bytes[at..at + 32], h.digest);
            // The field before it is the chunk size (128: varint 80 01).
            assert_eq!(bytes[at - 2..at], [0x80, 0x01]);
        }
    }

    #[test]
    fn overlong_varint_is_not_canonical() {
        // Security counter 7 re-encoded as the two-byte varint 0x87 0x00.
        let mut v = SIGNED_ONLY_KAT.to_vec();
        let pos = 8 + 10 + 3;
        assert_eq!(v[pos], 0x07);
        v.splice(pos..=pos, [0x87, 0x00]);
        assert_eq!(Header::parse(&v), Err(Error::NonCanonicalHeader));
    }

    #[test]
    fn trailing_bytes_inside_the_header_are_rejected() {
        let mut v = SIGNED_ONLY_KAT.to_vec();
        v.push(0);
        assert_eq!(Header::parse(&v), Err(Error::TrailingHeaderBytes));
    }

    #[test]
    fn every_truncation_is_rejected() {
        for n in 0..SIGNED_ONLY_KAT.len() {
            assert!(Header::parse(&SIGNED_ONLY_KAT[..n]).is_err(), "{n}");
        }
    }

    #[test]
    fn a_four_gib_image_fails_at_once() {
        let mut h = sample(encrypted());
        h.image_len = u32::MAX;
        h.load_address = 0;
        let mut buf = [0u8; MAX_HEADER_LEN];
        let n = h.encode(&mut buf).unwrap().len();
        assert_eq!(
            Header::parse(&buf[..n]),
            Err(Error::ImageTooLarge(u32::MAX))
        );
    }

    #[test]
    fn chunk_size_and_address_are_range_checked() {
        for bad in [0, 1, 63, 100, 96, MAX_CHUNK_SIZE * 2, u32::MAX] {
            let mut h = sample(encrypted());
            h.chunk_size = bad;
            assert_eq!(h.validate(), Err(Error::InvalidChunkSize(bad)));
        }
        let mut h = sample(encrypted());
        h.load_address = u32::MAX - 10;
        assert_eq!(h.validate(), Err(Error::AddressOverflow));
    }

    #[test]
    fn invalid_names_are_reported_as_such() {
        let mut v = SIGNED_ONLY_KAT.to_vec();
        v[9] = b'S';
        assert_eq!(Header::parse(&v), Err(Error::InvalidName));
    }

    #[test]
    fn unknown_protection_tag_is_malformed() {
        let mut v = SIGNED_ONLY_KAT.to_vec();
        let tag = v.len() - 33;
        v[tag] = 3;
        assert_eq!(Header::parse(&v), Err(Error::MalformedHeader));
    }

    #[test]
    fn version_parses_strictly() {
        assert_eq!(
            "1.2.3".parse(),
            Ok(Version {
                major: 1,
                minor: 2,
                patch: 3
            })
        );
        for bad in [
            "",
            "1",
            "1.2",
            "1.2.3.4",
            "1.2.-3",
            "1.2.+3",
            "a.b.c",
            "1..3",
            "4294967296.0.0",
        ] {
            assert!(bad.parse::<Version>().is_err(), "{bad}");
        }
    }

    fn arb_name<const N: usize>() -> impl Strategy<Value = Name<N>> {
        proptest::string::string_regex(&std::format!("[a-z0-9][a-z0-9._-]{{0,{}}}", N - 1))
            .unwrap()
            .prop_map(|s| Name::new(&s).unwrap())
    }

    prop_compose! {
        fn arb_header()(
            signer in any::<[u8; 8]>(),
            target in arb_name::<MAX_TARGET_LEN>(),
            v in any::<(u32, u32, u32)>(),
            security_counter in any::<u32>(),
            region in arb_name::<MAX_REGION_LEN>(),
            image_len in 0..=MAX_IMAGE_LEN,
            load in any::<u32>(),
            shift in 6u32..=16,
            digest in any::<[u8; 32]>(),
            enc in any::<Option<([u8; 8], [u8; 12], [u8; 32], [u8; 16], [u8; 7])>>(),
            hpke_n in 0..=MAX_RECIPIENTS,
        ) -> Header {
            Header {
                signer: KeyId(signer),
                target,
                version: Version { major: v.0, minor: v.1, patch: v.2 },
                security_counter,
                region,
                load_address: load.min(u32::MAX - image_len),
                image_len,
                chunk_size: 1 << shift,
                digest,
                protection: match enc {
                    None if hpke_n > 0 => {
                        let ids: std::vec::Vec<KeyId> =
                            (0..hpke_n).map(|i| KeyId([i as u8; 8])).collect();
                        Protection::Hpke(HpkeEncryption {
                            recipients: RecipientIds::new(&ids).unwrap(),
                            nonce_prefix: [digest[0]; 7],
                        })
                    }
                    None => Protection::SignedOnly { chain_head: digest },
                    Some((k, n, w, t, p)) => Protection::Aes256Gcm(Encryption {
                        device_key: KeyId(k), wrap_nonce: n, wrapped_key: w, wrap_tag: t, nonce_prefix: p,
                    }),
                },
            }
        }
    }

    /// A header with its recipients' entries (wraps from `seed`).
    fn arb_encoded() -> impl Strategy<Value = (Header, std::vec::Vec<Recipient>)> {
        (arb_header(), any::<u8>()).prop_map(|(h, seed)| {
            let wraps = entries(&h, seed);
            (h, wraps)
        })
    }

    proptest! {
        #[test]
        fn encode_parse_round_trip((h, wraps) in arb_encoded()) {
            let mut buf = [0u8; MAX_HEADER_LEN];
            let bytes = h.encode_with(&wraps, &mut buf).unwrap();
            prop_assert_eq!(Header::parse(bytes), Ok(h));
            prop_assert_eq!(read_entries(&h, bytes), wraps);
        }

        #[test]
        fn encoded_len_is_the_encoders((h, wraps) in arb_encoded()) {
            let mut buf = [0u8; MAX_HEADER_LEN];
            prop_assert_eq!(h.encoded_len(), Some(h.encode_with(&wraps, &mut buf).unwrap().len()));
        }

        #[test]
        fn parse_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..600)) {
            let _ = Header::parse(&bytes);
        }

        #[test]
        fn single_byte_changes_never_parse_to_the_same_header((h, wraps) in arb_encoded(), pos in any::<usize>(), x in 1u8..) {
            // The same header means the same fields and the same recipients' entries.
            let mut buf = [0u8; MAX_HEADER_LEN];
            let mut bytes = h.encode_with(&wraps, &mut buf).unwrap().to_vec();
            let i = pos % bytes.len();
            bytes[i] ^= x;
            let parsed = Header::parse(&bytes).ok().map(|p| (p, read_entries(&p, &bytes)));
            prop_assert_ne!(parsed, Some((h, wraps)));
        }
    }
}
