//! Intel HEX output of a flash image: what STM32CubeProgrammer, OpenOCD, J-Flash and probe-rs
//! program. Lines that are all `0xFF` (erased flash) are left out.

/// Data bytes per record line.
const LINE: usize = 32;

/// `image` (seen by the CPU at `address`) as Intel HEX: extended linear address records
/// (type 04) when the upper 16 bits change, data records (00) for every line that is not all
/// erased, the end-of-file record (01).
pub fn to_hex(address: u32, image: &[u8]) -> String {
    let mut out = String::with_capacity(image.len() / 2);
    let mut upper: Option<u16> = None;
    for (i, line) in image.chunks(LINE).enumerate() {
        if line.iter().all(|b| *b == 0xFF) {
            continue;
        }
        let at = address + (i * LINE) as u32;
        let high = (at >> 16) as u16;
        if upper != Some(high) {
            record(&mut out, 0, 0x04, &high.to_be_bytes());
            upper = Some(high);
        }
        // A line never crosses a 64 KiB boundary: the address is a multiple of LINE.
        record(&mut out, at as u16, 0x00, line);
    }
    record(&mut out, 0, 0x01, &[]);
    out
}

fn record(out: &mut String, offset: u16, kind: u8, data: &[u8]) {
    const DIGITS: &[u8; 16] = b"0123456789ABCDEF";
    let [hi, lo] = offset.to_be_bytes();
    let len = data.len() as u8;
    let mut sum = len.wrapping_add(hi).wrapping_add(lo).wrapping_add(kind);
    let mut line = Vec::with_capacity(12 + 2 * data.len());
    line.push(b':');
    let mut byte = |b: u8| {
        line.push(DIGITS[usize::from(b >> 4)]);
        line.push(DIGITS[usize::from(b & 0xF)]);
    };
    for b in [len, hi, lo, kind].iter().chain(data) {
        byte(*b);
    }
    for b in data {
        sum = sum.wrapping_add(*b);
    }
    byte(sum.wrapping_neg());
    line.push(b'\n');
    // Only ASCII hex digits, ':' and '\n' were pushed.
    out.push_str(std::str::from_utf8(&line).unwrap_or_default());
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_known_answer_and_read_back() {
        let mut image = vec![0xFF; 0x1_0040];
        image[0..4].copy_from_slice(&[1, 2, 3, 4]);
        image[0x1_0020] = 0xAB;
        let text = to_hex(0x0800_0000, &image);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines[0], ":020000040800F2");
        assert!(lines[1].starts_with(":2000000001020304FFFF"));
        assert_eq!(lines[2], ":020000040801F1");
        assert_eq!(lines.last(), Some(&":00000001FF"));
        assert_eq!(lines.len(), 5, "erased lines are left out");
        // The crate `sign --in` reads HEX with agrees.
        let data = crate::image::hex::read(text.as_bytes()).unwrap();
        assert_eq!(data.bytes.len(), 64);
    }
}
