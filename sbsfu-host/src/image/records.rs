//! What Intel HEX and Motorola S-record files share: lines of ASCII records ending with an end
//! record, read one line at a time; their data bytes kept in memory (not the span they cover:
//! the gaps cost nothing), contiguous records merged into one [`Extent`].

use std::io::{BufRead, Read};

use super::extents::{Extent, Origin};

/// Longest line read: the longest record of either format (255 bytes in hex) fits with room for
/// trailing spaces; a longer line is not a record, and is not read whole into memory.
pub const MAX_LINE_LEN: usize = 600;

/// UTF-8 byte order mark, which some Windows editors put at the start of a text file.
pub const BOM: &[u8] = b"\xEF\xBB\xBF";

/// One parsed record.
pub enum Record {
    /// Data bytes at an absolute address.
    Data(u64, Vec<u8>),
    /// The end record: nothing but blank lines may follow.
    End,
    /// A record that carries no data (addresses, headers, counts, start addresses).
    Other,
}

/// The data of a text file: every data byte once, and where each run of bytes goes.
#[derive(Debug, Default)]
pub struct Data {
    /// The data bytes, in file order.
    pub bytes: Vec<u8>,
    /// Runs of contiguous records: address, length, offset in `bytes`, first line.
    pub extents: Vec<Extent>,
}

impl Data {
    fn push(&mut self, address: u64, bytes: &[u8], line: u64) {
        let offset = self.bytes.len() as u64;
        let len = bytes.len() as u64;
        self.bytes.extend_from_slice(bytes);
        match self.extents.last_mut() {
            Some(last)
                if last.address.checked_add(last.len) == Some(address)
                    && last.offset + last.len == offset =>
            {
                last.len += len;
            }
            _ => self.extents.push(Extent {
                address,
                len,
                offset,
                origin: Origin::Line(line),
            }),
        }
    }
}

/// Reads the records of `reader`, each line parsed by `parse`, until the end record (`end_name`
/// in messages). Blank lines (and a byte order mark) are skipped; errors name the line.
pub fn read<R: BufRead>(
    mut reader: R,
    end_name: &str,
    mut parse: impl FnMut(&str) -> Result<Record, String>,
) -> Result<Data, String> {
    let mut data = Data::default();
    let mut buf = Vec::with_capacity(MAX_LINE_LEN + 1);
    let mut n: u64 = 0;
    let mut ended = false;
    loop {
        buf.clear();
        let read = reader
            .by_ref()
            .take(MAX_LINE_LEN as u64 + 1)
            .read_until(b'\n', &mut buf)
            .map_err(|e| format!("reading line {}: {e}", n + 1))?;
        if read == 0 {
            break;
        }
        n += 1;
        if buf.len() > MAX_LINE_LEN && buf.last() != Some(&b'\n') {
            return Err(format!(
                "line {n}: longer than {MAX_LINE_LEN} characters, not a record"
            ));
        }
        let bytes = match buf.strip_prefix(BOM) {
            Some(rest) if n == 1 => rest,
            _ => &buf,
        };
        let line = std::str::from_utf8(bytes)
            .ok()
            .filter(|l| l.is_ascii())
            .ok_or_else(|| format!("line {n}: not ASCII text"))?
            .trim();
        if line.is_empty() {
            continue;
        }
        if ended {
            return Err(format!("line {n}: data after the {end_name}"));
        }
        match parse(line).map_err(|e| format!("line {n}: {e}"))? {
            Record::Data(address, bytes) => data.push(address, &bytes, n),
            Record::End => ended = true,
            Record::Other => {}
        }
    }
    if !ended {
        return Err(format!("no {end_name} (truncated file?)"));
    }
    Ok(data)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A toy format: `D addr byte`, `E`.
    fn toy(text: &str) -> Result<Data, String> {
        read(text.as_bytes(), "end record", |l| {
            let w: Vec<&str> = l.split(' ').collect();
            match w.as_slice() {
                ["D", a, b] => Ok(Record::Data(
                    a.parse().map_err(|_| "bad")?,
                    vec![b.parse().map_err(|_| "bad")?],
                )),
                ["E"] => Ok(Record::End),
                ["X"] => Ok(Record::Other),
                _ => Err("not a record".into()),
            }
        })
    }

    #[test]
    fn contiguous_records_merge_and_lines_are_counted() {
        let d = toy("\u{feff}\r\nD 10 1\r\nD 11 2\nX\nD 20 3\n  D 12 4  \nE\n\n").unwrap();
        assert_eq!(d.bytes, [1, 2, 3, 4]);
        let runs: Vec<(u64, u64, u64, Origin)> = d
            .extents
            .iter()
            .map(|e| (e.address, e.len, e.offset, e.origin.clone()))
            .collect();
        assert_eq!(
            runs,
            [
                (10, 2, 0, Origin::Line(2)),
                (20, 1, 2, Origin::Line(5)),
                (12, 1, 3, Origin::Line(6))
            ]
        );
    }

    #[test]
    fn errors_name_the_line() {
        assert_eq!(
            toy("D 1 1\n").unwrap_err(),
            "no end record (truncated file?)"
        );
        assert_eq!(
            toy("D 1 1\nE\nD 2 2\n").unwrap_err(),
            "line 3: data after the end record"
        );
        assert_eq!(toy("\nQ\nE\n").unwrap_err(), "line 2: not a record");
        assert_eq!(
            toy("D 1 1\n\u{e9}\nE\n").unwrap_err(),
            "line 2: not ASCII text"
        );
        let long = format!("E{}\n", " ".repeat(MAX_LINE_LEN));
        assert!(toy(&long).unwrap_err().contains("longer than"));
        // A BOM anywhere but at the start is not skipped.
        assert_eq!(toy("E\n\u{feff}\n").unwrap_err(), "line 2: not ASCII text");
    }
}
