//! Parsers of option values: numbers, sizes, versions.

use sbsfu_format::Version;

/// Parses a `u32` in decimal or `0x` hexadecimal; `_` may separate digits.
pub fn parse_u32(s: &str) -> Result<u32, String> {
    let clean: String = s.chars().filter(|c| *c != '_').collect();
    let parsed = match clean
        .strip_prefix("0x")
        .or_else(|| clean.strip_prefix("0X"))
    {
        Some(hex) => u32::from_str_radix(hex, 16),
        None => clean.parse(),
    };
    parsed.map_err(|_| format!("`{s}` is not a 32-bit number (decimal or 0x hex)"))
}

/// Parses a byte count: decimal or `0x` hex, optionally followed by K, M or G (powers of 1024,
/// also written KiB, MiB, GiB).
pub fn parse_size(s: &str) -> Result<u64, String> {
    let bad = || format!("`{s}` is not a size (bytes, or with a K, M or G suffix)");
    let t = s.trim();
    let t = t
        .strip_suffix("iB")
        .or_else(|| t.strip_suffix('B'))
        .unwrap_or(t);
    let (digits, shift) = match t.char_indices().last() {
        Some((i, 'k' | 'K')) => (t.get(..i), 10),
        Some((i, 'M')) => (t.get(..i), 20),
        Some((i, 'G')) => (t.get(..i), 30),
        _ => (Some(t), 0),
    };
    let n = u64::from(parse_u32(digits.ok_or_else(bad)?).map_err(|_| bad())?);
    n.checked_mul(1 << shift).ok_or_else(bad)
}

/// Parses `major.minor.patch`.
pub fn parse_version(s: &str) -> Result<Version, String> {
    s.parse()
        .map_err(|_| format!("`{s}` is not a version of the form major.minor.patch"))
}
