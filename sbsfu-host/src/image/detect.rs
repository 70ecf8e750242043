//! What an input file holds, from its content: ELF by its magic; Intel HEX and Motorola S-records
//! by their first non-blank line (after an optional UTF-8 byte order mark); other text is not
//! taken for a raw binary (a HEX file whose start was not recognised would otherwise be signed as
//! firmware); anything else is a raw binary.

use super::records::BOM;

/// Bytes looked at.
pub const HEAD_LEN: usize = 4096;

/// What the start of a file looks like.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Detected {
    /// ELF magic.
    Elf,
    /// First non-blank line starts with `:`.
    Hex,
    /// First non-blank line starts with `S` and a digit.
    Srec,
    /// Text that is neither; its first non-blank line (shortened), for the message.
    Text(String),
    /// Anything else (also an empty file).
    Bin,
}

/// Classifies a file from its first [`HEAD_LEN`] bytes (fewer if it is shorter).
pub fn detect(head: &[u8]) -> Detected {
    if head.starts_with(&object::elf::ELFMAG) {
        return Detected::Elf;
    }
    let text = head.strip_prefix(BOM).unwrap_or(head);
    let start = text.iter().position(|b| !b.is_ascii_whitespace());
    match start.and_then(|i| text.get(i..)) {
        Some([b':', ..]) => return Detected::Hex,
        Some([b'S', b'0'..=b'9', ..]) => return Detected::Srec,
        _ => {}
    }
    if head.is_empty() || !looks_like_text(head) {
        return Detected::Bin;
    }
    let first = start
        .and_then(|i| text.get(i..))
        .unwrap_or_default()
        .split(|b| *b == b'\n' || *b == b'\r')
        .next()
        .unwrap_or_default();
    let full = String::from_utf8_lossy(first);
    let mut line: String = full.chars().take(40).collect();
    if full.chars().count() > 40 {
        line.push_str("...");
    }
    Detected::Text(line)
}

/// UTF-8 (the last character possibly cut by the end of `head`) without control characters other
/// than whitespace. Firmware starts with a stack pointer or a vector table: binary.
fn looks_like_text(head: &[u8]) -> bool {
    let valid = match std::str::from_utf8(head) {
        Ok(s) => s,
        Err(e) if e.error_len().is_none() => head
            .get(..e.valid_up_to())
            .and_then(|h| std::str::from_utf8(h).ok())
            .unwrap_or_default(),
        Err(_) => return false,
    };
    valid
        .chars()
        .all(|c| !c.is_control() || matches!(c, '\t' | '\n' | '\r' | '\x0c'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn by_content() {
        assert_eq!(detect(b"\x7fELF\x01\x01"), Detected::Elf);
        assert_eq!(detect(b":020000040800F2\n"), Detected::Hex);
        assert_eq!(detect(b"\n\r\n  \t:020000040800F2\n"), Detected::Hex);
        assert_eq!(detect(b"\xEF\xBB\xBF:020000040800F2\n"), Detected::Hex);
        assert_eq!(detect(b"S00F000068656C6C6F\n"), Detected::Srec);
        assert_eq!(detect(b"\r\nS1130000\n"), Detected::Srec);
        // A firmware binary: initial stack pointer, reset vector.
        assert_eq!(
            detect(&[0x00, 0x40, 0x00, 0x20, 0x01, 0x01, 0x02, 0x08]),
            Detected::Bin
        );
        assert_eq!(detect(b""), Detected::Bin);
        // Binary data that happens to be valid UTF-8 still has control characters.
        assert_eq!(detect(b"ab\x00cd"), Detected::Bin);
        assert_eq!(
            detect(b"\n# build log\nmore"),
            Detected::Text("# build log".into())
        );
        assert_eq!(detect(b"  \n\n"), Detected::Text(String::new()));
        assert_eq!(detect(b"Some text"), Detected::Text("Some text".into()));
        let long = "x".repeat(100);
        assert_eq!(
            detect(long.as_bytes()),
            Detected::Text(format!("{}...", "x".repeat(40)))
        );
        // A multi-byte character cut by the end of the head is still text.
        assert_eq!(
            detect("caf\u{e9}".as_bytes().split_last().unwrap().1),
            Detected::Text("caf\u{fffd}".into())
        );
    }
}
