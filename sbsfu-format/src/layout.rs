//! Payload arithmetic: how many chunks, how long each is on the wire.
//!
//! Every size follows from the signed header, so the payload carries no length fields at all:
//! there is nothing in it to bound or to lie about.

use crate::Error;
use crate::chunk::{LINK_LEN, TAG_LEN};
use crate::header::Header;
use crate::signed::SIGNATURE_LEN;

/// The chunking of one payload.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PayloadLayout {
    image_len: u32,
    chunk_size: u32,
    chunk_count: u32,
    encrypted: bool,
}

impl PayloadLayout {
    /// The layout a (validated) header declares.
    pub fn of(header: &Header) -> Result<Self, Error> {
        header.validate()?;
        Self::new(header.image_len, header.chunk_size, header.is_encrypted())
    }

    /// The layout of `image_len` bytes in chunks of `chunk_size`.
    ///
    /// There is always at least one chunk, so that even an empty image ends with an authenticated
    /// final chunk.
    pub fn new(image_len: u32, chunk_size: u32, encrypted: bool) -> Result<Self, Error> {
        if chunk_size == 0 {
            return Err(Error::InvalidChunkSize(chunk_size));
        }
        let chunk_count = image_len.div_ceil(chunk_size).max(1);
        Ok(Self {
            image_len,
            chunk_size,
            chunk_count,
            encrypted,
        })
    }

    /// Number of chunks, at least 1.
    pub fn chunk_count(&self) -> u32 {
        self.chunk_count
    }

    /// Plaintext bytes per full chunk.
    pub fn chunk_size(&self) -> u32 {
        self.chunk_size
    }

    /// Plaintext length of the image.
    pub fn image_len(&self) -> u32 {
        self.image_len
    }

    /// Whether chunk `index` is the last one.
    pub fn is_last(&self, index: u32) -> bool {
        index.saturating_add(1) == self.chunk_count
    }

    /// Offset of chunk `index`'s plaintext within the image.
    pub fn plain_offset(&self, index: u32) -> u32 {
        index.saturating_mul(self.chunk_size).min(self.image_len)
    }

    /// Plaintext length of chunk `index`: `chunk_size`, or the remainder for the last chunk.
    pub fn plain_len(&self, index: u32) -> u32 {
        let start = self.plain_offset(index);
        self.image_len.saturating_sub(start).min(self.chunk_size)
    }

    /// Bytes that follow chunk `index`'s body on the wire: a GCM tag, the next chunk's link, or
    /// nothing (the last chunk of a signed-only payload).
    pub fn tail_len(&self, index: u32) -> usize {
        match (self.encrypted, self.is_last(index)) {
            (true, _) => TAG_LEN,
            (false, false) => LINK_LEN,
            (false, true) => 0,
        }
    }

    /// Offset of chunk `index` within the payload on the wire (every earlier chunk is full).
    pub fn wire_offset(&self, index: u32) -> u64 {
        let full = u64::from(self.chunk_size).saturating_add(if self.encrypted {
            TAG_LEN as u64
        } else {
            LINK_LEN as u64
        });
        u64::from(index.min(self.chunk_count)).saturating_mul(full)
    }

    /// Total payload bytes on the wire.
    pub fn payload_len(&self) -> u64 {
        let per_chunk = if self.encrypted { TAG_LEN } else { LINK_LEN } as u64;
        let tails = if self.encrypted {
            u64::from(self.chunk_count)
        } else {
            u64::from(self.chunk_count).saturating_sub(1)
        };
        u64::from(self.image_len).saturating_add(tails.saturating_mul(per_chunk))
    }

    /// Total container length for a header of `header_len` bytes.
    pub fn container_len(&self, header_len: usize) -> u64 {
        (crate::prefix::PREFIX_LEN as u64)
            .saturating_add(header_len as u64)
            .saturating_add(SIGNATURE_LEN as u64)
            .saturating_add(self.payload_len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn edge_sizes() {
        let c = 64;
        let cases = [
            (0, 1, 0),
            (1, 1, 1),
            (63, 1, 63),
            (64, 1, 64),
            (65, 2, 1),
            (128, 2, 64),
        ];
        for (len, count, last) in cases {
            let l = PayloadLayout::new(len, c, true).unwrap();
            assert_eq!(l.chunk_count(), count, "{len}");
            assert_eq!(l.plain_len(count - 1), last, "{len}");
            assert_eq!(l.payload_len(), len as u64 + 16 * count as u64);
            let s = PayloadLayout::new(len, c, false).unwrap();
            assert_eq!(s.payload_len(), len as u64 + 32 * (count as u64 - 1));
            assert_eq!(s.tail_len(count - 1), 0);
        }
    }

    proptest! {
        #[test]
        fn chunks_tile_the_image(len in 0u32..=crate::header::MAX_IMAGE_LEN, shift in 6u32..=16, enc: bool) {
            let l = PayloadLayout::new(len, 1 << shift, enc).unwrap();
            let n = l.chunk_count();
            prop_assert_eq!(l.plain_offset(0), 0);
            prop_assert_eq!(l.plain_offset(n - 1) + l.plain_len(n - 1), len);
            if n > 1 {
                prop_assert_eq!(l.plain_len(n - 2), 1 << shift);
                prop_assert!(l.plain_len(n - 1) > 0);
            }
            let wire: u64 = (0..n.min(3)).chain(n.saturating_sub(3)..n).collect::<std::collections::BTreeSet<_>>()
                .into_iter().map(|i| l.plain_len(i) as u64 + l.tail_len(i) as u64).sum();
            prop_assert!(wire <= l.payload_len());
            let last = n - 1;
            prop_assert_eq!(
                l.wire_offset(last) + l.plain_len(last) as u64 + l.tail_len(last) as u64,
                l.payload_len()
            );
        }
    }
}
