//! Motorola S-record input (`.s19`, `.s28`, `.s37`, `.srec`, `.mot`): what NXP, Renesas and many
//! IDEs emit.
//!
//! Each record is `S`, its type digit, a byte count, an address, data and a checksum (the ones'
//! complement of the low byte of the sum of count, address and data bytes), all in hex. S1, S2
//! and S3 carry data at 16-, 24- and 32-bit addresses; S0 is a header, S5 and S6 count the data
//! records so far (checked), and S7, S8 or S9 (a start address) ends the file: nothing but blank
//! lines may follow. S4 is reserved and refused.

use std::io::BufRead;

use super::records::{self, Data, Record};

/// Reads the data records of an S-record file.
pub fn read<R: BufRead>(reader: R) -> Result<Data, String> {
    let mut data_records: u64 = 0;
    records::read(reader, "termination record (S7, S8 or S9)", |line| {
        let (kind, address, data) = parse(line)?;
        Ok(match kind {
            b'1' | b'2' | b'3' => {
                data_records += 1;
                Record::Data(address, data.to_vec())
            }
            b'5' | b'6' => {
                let modulus = if kind == b'5' { 1 << 16 } else { 1 << 24 };
                if address != data_records % modulus {
                    return Err(format!(
                        "S{} record counts {address} data records, but {data_records} came before it",
                        char::from(kind)
                    ));
                }
                Record::Other
            }
            b'7' | b'8' | b'9' => Record::End,
            _ => Record::Other,
        })
    })
    .map_err(|e| format!("Motorola S-records: {e}"))
}

/// One record: its type digit, its address and its data.
fn parse(line: &str) -> Result<(u8, u64, Vec<u8>), String> {
    let text = line.as_bytes();
    let (kind, digits) = match text {
        [b'S', kind @ b'0'..=b'9', digits @ ..] => (*kind, digits),
        _ => return Err("not an S-record (it must start with S0 to S9)".into()),
    };
    let address_len = match kind {
        b'0' | b'1' | b'5' | b'9' => 2,
        b'2' | b'6' | b'8' => 3,
        b'3' | b'7' => 4,
        _ => return Err("S4 is a reserved record type".into()),
    };
    if digits.len() % 2 != 0 {
        return Err("odd number of hex digits".into());
    }
    let bytes = digits
        .chunks(2)
        .map(|pair| {
            std::str::from_utf8(pair)
                .ok()
                .and_then(|p| u8::from_str_radix(p, 16).ok())
                .ok_or_else(|| format!("`{}` is not a hex byte", String::from_utf8_lossy(pair)))
        })
        .collect::<Result<Vec<u8>, String>>()?;
    let (count, rest) = bytes.split_first().ok_or("no byte count")?;
    if usize::from(*count) != rest.len() {
        return Err(format!(
            "the byte count says {count} bytes follow, the record has {}",
            rest.len()
        ));
    }
    let (checksum, body) = rest.split_last().ok_or("no checksum")?;
    let sum = body.iter().fold(*count, |s, b| s.wrapping_add(*b));
    if !sum != *checksum {
        return Err(format!(
            "invalid checksum '{checksum:02X}', expecting '{:02X}'",
            !sum
        ));
    }
    if body.len() < address_len {
        return Err(format!(
            "too short for an S{} record's {address_len}-byte address",
            char::from(kind)
        ));
    }
    let (address, data) = body.split_at(address_len);
    let address = address.iter().fold(0u64, |a, b| a << 8 | u64::from(*b));
    if matches!(kind, b'5'..=b'9') && !data.is_empty() {
        return Err(format!("an S{} record carries no data", char::from(kind)));
    }
    Ok((kind, address, data.to_vec()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::image::tests::flat;

    /// The checksum byte of a record's count, address and data bytes.
    fn with_checksum(kind: char, body: &[u8]) -> String {
        let count = body.len() as u8 + 1;
        let sum = body.iter().fold(count, |s, b| s.wrapping_add(*b));
        let hex: String = body.iter().map(|b| format!("{b:02X}")).collect();
        format!("S{kind}{count:02X}{hex}{:02X}", !sum)
    }

    #[test]
    fn the_three_address_widths_and_gaps() {
        // The classic example from the S-record manual page (srec(5)): an S1 file.
        let manual = "S00F000068656C6C6F202020202000003C\n\
                      S11F00007C0802A6900100049421FFF07C6C1B787C8C23783C6000003863000026\n\
                      S11F001C4BFFFFE5398000007D83637880010014382100107C0803A64E800020E9\n\
                      S111003848656C6C6F20776F726C642E0A0042\n\
                      S5030003F9\n\
                      S9030000FC\n";
        let (addr, image) = flat(read(manual.as_bytes()).unwrap());
        assert_eq!(addr, 0);
        assert_eq!(image.len(), 0x46);
        assert_eq!(&image[0x38..0x44], b"Hello world.");
        let s2 = with_checksum('2', &[0x01, 0x02, 0x00, 0xAA, 0xBB]);
        let s3 = with_checksum('3', &[0x00, 0x01, 0x02, 0x04, 0xCC]);
        let end = with_checksum('8', &[0, 0, 0]);
        let text = format!("{s2}\r\n\r\n{s3}\r\n{end}\r\n");
        let (addr, image) = flat(read(text.as_bytes()).unwrap());
        assert_eq!(
            (addr, image),
            (0x01_0200, vec![0xAA, 0xBB, 0xFF, 0xFF, 0xCC])
        );
    }

    #[test]
    fn malformed_records_are_refused_with_their_line() {
        let good = "S1050000AABB95";
        let end = "S9030000FC";
        let cases = [
            (format!("{good}\n"), "no termination record (S7, S8 or S9)"),
            (
                format!("{good}\n{end}\n{good}\n"),
                "line 3: data after the termination",
            ),
            (
                format!("S1050000AABB94\n{end}\n"),
                "line 1: invalid checksum '94', expecting '95'",
            ),
            (
                format!("S1060000AABB95\n{end}\n"),
                "line 1: the byte count says 6 bytes follow, the record has 5",
            ),
            (format!("S1050000AABB9\n{end}\n"), "line 1: odd number"),
            (
                format!("S10500G0AABB95\n{end}\n"),
                "line 1: `G0` is not a hex byte",
            ),
            (
                format!("S40500000000FA\n{end}\n"),
                "line 1: S4 is a reserved",
            ),
            (format!(":00000001FF\n{end}\n"), "line 1: not an S-record"),
            (
                format!("S5030002FA\n{end}\n"),
                "line 1: S5 record counts 2 data records, but 0 came",
            ),
            (
                format!("{}\n{end}\n", with_checksum('3', &[0, 0, 0])),
                "line 1: too short for an S3",
            ),
        ];
        for (text, want) in cases {
            let e = read(text.as_bytes()).unwrap_err();
            assert_eq!(
                e.strip_prefix("Motorola S-records: ")
                    .map(|e| e.starts_with(want)),
                Some(true),
                "{text:?}: {e}"
            );
        }
    }
}
