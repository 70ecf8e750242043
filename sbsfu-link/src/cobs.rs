//! COBS, Consistent Overhead Byte Stuffing (Cheshire and Baker, IEEE/ACM Transactions on
//! Networking, 1999), in both directions one byte at a time.
//!
//! COBS removes every `0x00` from a frame, at a cost of one byte per 254 (at most), so that
//! `0x00` can delimit frames: a receiver that starts mid-stream, or loses bytes, finds the next
//! frame at the next `0x00`. Both halves stream: the encoder writes into the caller's buffer as
//! bytes come, the decoder yields decoded bytes as wire bytes come, so neither needs a second
//! buffer.

/// Data bytes a COBS block holds at most (a code byte of `0xFF`).
const BLOCK: u8 = 0xFF;

/// The longest encoding of `n` bytes, without the delimiter: one code byte per started block of
/// 254 bytes.
pub const fn max_encoded_len(n: usize) -> usize {
    n.saturating_add(n / 254).saturating_add(1)
}

/// Encodes into a borrowed buffer. Bytes that do not fit are counted, not written: [`finish`]
/// then fails, so callers need no check per byte.
///
/// [`finish`]: Encoder::finish
#[derive(Debug)]
pub struct Encoder<'b> {
    out: &'b mut [u8],
    /// Where the next byte goes.
    pos: usize,
    /// Where the current block's code byte goes, once the block is complete.
    code_pos: usize,
    /// The current block's code: 1 plus its data bytes.
    code: u8,
    overflow: bool,
}

impl<'b> Encoder<'b> {
    /// Starts a frame at the beginning of `out`.
    pub fn new(out: &'b mut [u8]) -> Self {
        Self {
            out,
            pos: 1,
            code_pos: 0,
            code: 1,
            overflow: false,
        }
    }

    fn set(&mut self, at: usize, byte: u8) {
        match self.out.get_mut(at) {
            Some(slot) => *slot = byte,
            None => self.overflow = true,
        }
    }

    /// Closes the current block with its code and opens the next one at `pos`.
    fn next_block(&mut self) {
        self.set(self.code_pos, self.code);
        self.code_pos = self.pos;
        self.pos = self.pos.saturating_add(1);
        self.code = 1;
    }

    /// Encodes one byte.
    pub fn push(&mut self, byte: u8) {
        // A full block is closed only when another byte follows: a frame ending on a full
        // block gets no empty block after it (the paper's encoding, and the shortest).
        if self.code == BLOCK {
            self.next_block();
        }
        if byte == 0 {
            self.next_block();
        } else {
            self.set(self.pos, byte);
            self.pos = self.pos.saturating_add(1);
            self.code = self.code.saturating_add(1);
        }
    }

    /// Encodes `bytes`.
    pub fn extend(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.push(b);
        }
    }

    /// Closes the last block and appends the `0x00` delimiter. Returns the frame's length on
    /// the wire, or `None` if it did not fit.
    pub fn finish(mut self) -> Option<usize> {
        self.set(self.code_pos, self.code);
        self.set(self.pos, 0);
        let len = self.pos.saturating_add(1);
        (!self.overflow).then_some(len)
    }
}

/// What one wire byte meant to the [`Decoder`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    /// Nothing to deliver yet (a code byte, or a delimiter with no frame before it).
    Nothing,
    /// The next decoded byte.
    Byte(u8),
    /// A delimiter ended a well-formed frame: every decoded byte has been delivered.
    End,
    /// A delimiter arrived inside a block: the bytes delivered since the last `End` are not a
    /// frame.
    Broken,
}

/// Decodes a stream one byte at a time. `0x00` always ends a frame, so the decoder
/// resynchronises on the next delimiter after any damage.
#[derive(Debug, Clone, Copy, Default)]
pub struct Decoder {
    /// Data bytes left in the current block.
    remaining: u8,
    /// Whether the current block ends with an (implicit) zero, decoded when another block
    /// follows.
    zero_after: bool,
    /// Whether a frame has started since the last delimiter.
    started: bool,
}

impl Decoder {
    /// A decoder waiting for the start of a frame.
    pub const fn new() -> Self {
        Self {
            remaining: 0,
            zero_after: false,
            started: false,
        }
    }

    /// Takes one wire byte.
    pub fn push(&mut self, byte: u8) -> Step {
        if byte == 0 {
            let step = match (self.started, self.remaining) {
                (false, _) => Step::Nothing,
                (true, 0) => Step::End,
                (true, _) => Step::Broken,
            };
            *self = Self::new();
            return step;
        }
        if self.remaining > 0 {
            self.remaining = self.remaining.saturating_sub(1);
            return Step::Byte(byte);
        }
        // A code byte: the previous block's implicit zero is real, since a block follows.
        let step = if self.started && self.zero_after {
            Step::Byte(0)
        } else {
            Step::Nothing
        };
        self.started = true;
        self.remaining = byte.saturating_sub(1);
        self.zero_after = byte != BLOCK;
        step
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::vec;
    use std::vec::Vec;

    fn encode(data: &[u8]) -> Vec<u8> {
        let mut out = vec![0xAA; max_encoded_len(data.len()) + 1];
        let mut e = Encoder::new(&mut out);
        e.extend(data);
        let n = e.finish().unwrap();
        out.truncate(n);
        out
    }

    /// Decodes every frame in `wire`; a broken frame decodes as `None`.
    fn decode(wire: &[u8]) -> Vec<Option<Vec<u8>>> {
        let mut d = Decoder::new();
        let mut frames = Vec::new();
        let mut cur = Vec::new();
        for &b in wire {
            match d.push(b) {
                Step::Nothing => {}
                Step::Byte(x) => cur.push(x),
                Step::End => frames.push(Some(std::mem::take(&mut cur))),
                Step::Broken => {
                    cur.clear();
                    frames.push(None)
                }
            }
        }
        frames
    }

    fn seq(from: u8, to: u8) -> Vec<u8> {
        (from..=to).collect()
    }

    /// The examples of the COBS paper and of its common restatements, delimiter appended.
    #[test]
    fn known_answer_vectors() {
        let cases: Vec<(Vec<u8>, Vec<u8>)> = vec![
            (vec![], vec![0x01, 0x00]),
            (vec![0x00], vec![0x01, 0x01, 0x00]),
            (vec![0x00, 0x00], vec![0x01, 0x01, 0x01, 0x00]),
            (vec![0x00, 0x11, 0x00], vec![0x01, 0x02, 0x11, 0x01, 0x00]),
            (
                vec![0x11, 0x22, 0x00, 0x33],
                vec![0x03, 0x11, 0x22, 0x02, 0x33, 0x00],
            ),
            (
                vec![0x11, 0x22, 0x33, 0x44],
                vec![0x05, 0x11, 0x22, 0x33, 0x44, 0x00],
            ),
            (
                vec![0x11, 0x00, 0x00, 0x00],
                vec![0x02, 0x11, 0x01, 0x01, 0x01, 0x00],
            ),
            // 254 non-zero bytes: one full block, no empty block after it.
            (
                seq(0x01, 0xFE),
                [&[0xFF][..], &seq(0x01, 0xFE), &[0x00]].concat(),
            ),
            (
                seq(0x00, 0xFE),
                [&[0x01, 0xFF][..], &seq(0x01, 0xFE), &[0x00]].concat(),
            ),
            (
                seq(0x01, 0xFF),
                [&[0xFF][..], &seq(0x01, 0xFE), &[0x02, 0xFF, 0x00]].concat(),
            ),
            (
                [seq(0x02, 0xFF), vec![0x00]].concat(),
                [&[0xFF][..], &seq(0x02, 0xFF), &[0x01, 0x01, 0x00]].concat(),
            ),
            (
                [seq(0x03, 0xFF), vec![0x00, 0x01]].concat(),
                [&[0xFE][..], &seq(0x03, 0xFF), &[0x02, 0x01, 0x00]].concat(),
            ),
        ];
        for (plain, wire) in cases {
            assert_eq!(encode(&plain), wire, "encoding {plain:02x?}");
            assert_eq!(
                decode(&wire),
                vec![Some(plain.clone())],
                "decoding {wire:02x?}"
            );
        }
    }

    #[test]
    fn encoder_reports_overflow_instead_of_writing_past_the_buffer() {
        let mut out = [0u8; 4];
        let mut e = Encoder::new(&mut out);
        e.extend(&[1, 2, 3]);
        assert_eq!(e.finish(), None);
        let mut out = [0u8; 5];
        let mut e = Encoder::new(&mut out);
        e.extend(&[1, 2, 3]);
        assert_eq!(e.finish(), Some(5));
    }

    #[test]
    fn a_delimiter_inside_a_block_breaks_only_that_frame() {
        let a = encode(&[1, 2, 3, 4]);
        let b = encode(&[5, 0, 6]);
        // Cut `a` short: its delimiter comes inside a block.
        let wire = [&a[..3], &[0x00][..], &b].concat();
        assert_eq!(decode(&wire), vec![None, Some(vec![5, 0, 6])]);
        // Empty frames (back-to-back delimiters) are not frames.
        assert_eq!(decode(&[0, 0, 0]), vec![]);
    }

    proptest! {
        #[test]
        fn round_trip_and_bounded_overhead(data in proptest::collection::vec(any::<u8>(), 0..2000)) {
            let wire = encode(&data);
            prop_assert!(wire.len() <= max_encoded_len(data.len()) + 1);
            prop_assert_eq!(wire.iter().filter(|&&b| b == 0).count(), 1);
            prop_assert_eq!(decode(&wire), vec![Some(data)]);
        }

        #[test]
        fn decoder_takes_any_bytes(wire in proptest::collection::vec(any::<u8>(), 0..2000)) {
            // Never panics, and yields at most one byte per wire byte.
            let frames = decode(&wire);
            let total: usize = frames.iter().flatten().map(Vec::len).sum();
            prop_assert!(total <= wire.len());
        }
    }
}
