//! Intel HEX input: data records at their absolute addresses.
//!
//! Extended linear (type 04) and extended segment (type 02) addresses apply as the `intelhex`,
//! `bincopy` and `srec_cat` tools apply them (a record's bytes run on linearly); start-address
//! records (03, 05) carry no image bytes. Every record's checksum is checked, and the file must
//! end with its end-of-file record (01), followed by nothing but blank lines.

use std::io::BufRead;

use super::records::{self, Data, Record};

/// Reads the data records of an Intel HEX file.
pub fn read<R: BufRead>(reader: R) -> Result<Data, String> {
    let mut base: u64 = 0;
    records::read(reader, "end-of-file record", |line| {
        let record = ihex::Record::from_record_string(line).map_err(|e| e.to_string())?;
        Ok(match record {
            ihex::Record::Data { offset, value } => Record::Data(base + u64::from(offset), value),
            ihex::Record::ExtendedLinearAddress(upper) => {
                base = u64::from(upper) << 16;
                Record::Other
            }
            ihex::Record::ExtendedSegmentAddress(segment) => {
                base = u64::from(segment) << 4;
                Record::Other
            }
            ihex::Record::StartLinearAddress(_) | ihex::Record::StartSegmentAddress { .. } => {
                Record::Other
            }
            ihex::Record::EndOfFile => Record::End,
        })
    })
    .map_err(|e| format!("Intel HEX: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::image::tests::flat;

    #[test]
    fn extended_addresses_apply_and_gaps_fill() {
        // objcopy-style: ELA 0x0802, 4 bytes at 0x0000, then 2 bytes at 0x0008; a start address
        // record is skipped; a blank line and a byte order mark are allowed.
        let hex = "\u{feff}\r\n:020000040802F0\r\n\
                   :0400000001020304F2\r\n\
                   :02000800AABB91\r\n\
                   :0400000508020101EB\r\n\
                   :00000001FF\r\n\r\n";
        let (addr, image) = flat(read(hex.as_bytes()).unwrap());
        assert_eq!(addr, 0x0802_0000);
        assert_eq!(image, [1, 2, 3, 4, 0xFF, 0xFF, 0xFF, 0xFF, 0xAA, 0xBB]);
        let seg = ":020000021000EC\n:0100000042BD\n:00000001FF\n";
        assert_eq!(flat(read(seg.as_bytes()).unwrap()), (0x1_0000, vec![0x42]));
    }

    #[test]
    fn malformed_files_are_refused_with_their_line() {
        let cases = [
            (
                ":0400000001020304F2\n",
                "Intel HEX: no end-of-file record (truncated file?)",
            ),
            (
                ":00000001FF\n:0400000001020304F2\n",
                "Intel HEX: line 2: data after the end-of-file record",
            ),
            (
                ":0400000001020304F3\n:00000001FF\n",
                "Intel HEX: line 1: invalid checksum",
            ),
            (":04000000010203\n:00000001FF\n", "Intel HEX: line 1: "),
            ("\n\n:0400000001020304F2\nhello\n", "Intel HEX: line 4: "),
        ];
        for (text, want) in cases {
            let e = read(text.as_bytes()).unwrap_err();
            assert!(e.starts_with(want), "{text:?}: {e}");
        }
    }
}
