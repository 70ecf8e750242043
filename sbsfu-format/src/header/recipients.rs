//! An HPKE header's recipient list: the entries on the wire, the key ids a [`Header`] keeps,
//! and where each entry is in the encoding.

use core::fmt;

use serde::{Deserialize, Serialize};

use super::{Header, MAX_RECIPIENTS, Protection, RECIPIENT_LEN};
use crate::keys::KeyId;

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
    pub(super) fn from_bytes(bytes: &[u8; RECIPIENT_LEN]) -> Self {
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

/// The recipient list as encoded: `varint(count) || count x recipient`.
pub(super) struct RecipientsOut<'a> {
    pub(super) ids: &'a RecipientIds,
    /// The entries, in order and with the same key ids; empty for zero wraps.
    pub(super) wraps: &'a [Recipient],
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
    pub(super) start: usize,
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
    pub(super) fn entry(&self, i: usize) -> Option<core::ops::Range<usize>> {
        let start = self.start.checked_add(i.checked_mul(RECIPIENT_LEN)?)?;
        (i < self.count).then_some(start..start.checked_add(RECIPIENT_LEN)?)
    }

    /// Where entry `i`'s wrap starts: the entry without its key id, [`WRAP_LEN`] bytes that
    /// the sealer fills in once the rest is known.
    pub(crate) fn wrap(&self, i: usize) -> Option<usize> {
        self.entry(i)?.start.checked_add(8)
    }
}
