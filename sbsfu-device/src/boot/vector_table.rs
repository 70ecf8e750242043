//! The first two words of a Cortex-M image: the initial stack pointer and the reset handler, where

use crate::Error;
use crate::boot::Area;

/// Bytes of the vector table that are checked: the initial stack pointer and the reset vector.
pub const VECTOR_TABLE_CHECKED: usize = 8;

/// Where a verified image starts: its first two vector-table words.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
///
/// the CPU goes once the bootloader jumps. The boot manager checks them **inside the verified
/// bytes** before it says what to boot, so that a signed image too short to hold a vector table,
/// or one whose vectors point elsewhere (into the remains of an older image, into RAM, off the
/// Thumb instruction set), never runs.
pub struct VectorTable {
    /// The initial main stack pointer (word 0).
    pub stack_pointer: u32,
    /// The reset handler, with the Thumb bit set (word 1).
    pub reset: u32,
}

impl VectorTable {
    /// Checks the first bytes of an image of `image_len` bytes that runs from `load_address`:
    /// at least 8 bytes long; the stack pointer word-aligned, above the start of `ram` and at
    /// most its end (a full descending stack starts at the top); the reset vector odd (Thumb)
    /// and inside `[load_address, load_address + image_len)`.
    pub fn check(
        first: &[u8],
        load_address: u32,
        image_len: u32,
        ram: Area,
    ) -> Result<Self, Error> {
        let words = first
            .first_chunk::<VECTOR_TABLE_CHECKED>()
            .filter(|_| image_len as usize >= VECTOR_TABLE_CHECKED)
            .ok_or(Error::InvalidVectorTable)?;
        let [s0, s1, s2, s3, r0, r1, r2, r3] = *words;
        let table = Self {
            stack_pointer: u32::from_le_bytes([s0, s1, s2, s3]),
            reset: u32::from_le_bytes([r0, r1, r2, r3]),
        };
        let sp = u64::from(table.stack_pointer);
        let ram_end = u64::from(ram.address).saturating_add(u64::from(ram.len));
        let sp_ok = sp > u64::from(ram.address) && sp <= ram_end && sp.is_multiple_of(4);
        let entry = u64::from(table.reset & !1);
        let image_end = u64::from(load_address).saturating_add(u64::from(image_len));
        let reset_ok =
            table.reset & 1 == 1 && entry >= u64::from(load_address) && entry < image_end;
        if sp_ok && reset_ok {
            Ok(table)
        } else {
            Err(Error::InvalidVectorTable)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const RAM: Area = Area::new(0x2000_0000, 0x2_0000);
    const LOAD: u32 = 0x0802_0000;

    fn table(sp: u32, reset: u32) -> [u8; 8] {
        let mut t = [0u8; 8];
        t[..4].copy_from_slice(&sp.to_le_bytes());
        t[4..].copy_from_slice(&reset.to_le_bytes());
        t
    }

    #[test]
    fn a_real_vector_table_passes() {
        let t = table(0x2002_0000, LOAD + 0x401);
        assert_eq!(
            VectorTable::check(&t, LOAD, 0x800, RAM),
            Ok(VectorTable {
                stack_pointer: 0x2002_0000,
                reset: LOAD + 0x401
            })
        );
        // The last halfword of the image is a valid entry.
        assert!(VectorTable::check(&table(0x2000_0100, LOAD + 0x7FF), LOAD, 0x800, RAM).is_ok());
    }

    #[test]
    fn what_does_not_point_into_ram_and_the_image_is_refused() {
        let bad = [
            // Too short: a 0- or 4-byte image has no vector table of its own.
            (table(0x2002_0000, LOAD + 1), 0),
            (table(0x2002_0000, LOAD + 1), 4),
            (table(0x2002_0000, LOAD + 1), 7),
            // Stack pointer: at the start of RAM, past its end, unaligned, in flash.
            (table(0x2000_0000, LOAD + 1), 0x100),
            (table(0x2002_0004, LOAD + 1), 0x100),
            (table(0x2001_0002, LOAD + 1), 0x100),
            (table(0x0802_0100, LOAD + 1), 0x100),
            // Reset vector: no Thumb bit, before the image, at or past its end (the old image's
            // code beyond it), in RAM, erased flash.
            (table(0x2002_0000, LOAD + 0x40), 0x100),
            (table(0x2002_0000, LOAD - 0x3FF), 0x100),
            (table(0x2002_0000, LOAD + 0x101), 0x100),
            (table(0x2002_0000, LOAD + 0x2001), 0x100),
            (table(0x2002_0000, 0x2000_0101), 0x100),
            (table(0xFFFF_FFFF, 0xFFFF_FFFF), 0x100),
        ];
        for (t, len) in bad {
            assert_eq!(
                VectorTable::check(&t, LOAD, len, RAM),
                Err(Error::InvalidVectorTable),
                "{t:02x?} over {len} bytes"
            );
        }
        assert_eq!(
            VectorTable::check(&[0; 4], LOAD, 0x100, RAM),
            Err(Error::InvalidVectorTable)
        );
    }
}
