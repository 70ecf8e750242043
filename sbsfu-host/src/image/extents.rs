//! Where an input's bytes go: runs of bytes at addresses ([`Extent`]s), laid out as one image.
//!
//! The image runs from the lowest address to the end of the highest; bytes no extent covers read
//! as [`ERASED`]. Overlapping extents are refused (two values for one address), as is an image
//! that would not fit a container's 32-bit address range, or whose gaps exceed `max_span` (a
//! stray record far from the code). An address window keeps only the bytes inside it, and the
//! bytes left out are reported. Only the extents are held in memory: the bytes stay in their
//! source (the file, or the data records read from a text file) and are read when sealed.

use std::fmt;
use std::io;

use sbsfu_format::MAX_IMAGE_LEN;
use sbsfu_format::ReadAt;

use super::ERASED;

/// Where an extent came from, for messages.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Origin {
    /// A raw binary: the whole file.
    File,
    /// The data record on this line of a HEX or S-record file (and the records that follow it
    /// contiguously).
    Line(u64),
    /// An ELF section.
    Section(String),
    /// An ELF `PT_LOAD` segment (program header index), for an ELF without section headers.
    Segment(usize),
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Origin::File => f.write_str("the file"),
            Origin::Line(n) => write!(f, "line {n}"),
            Origin::Section(name) => write!(f, "section {name}"),
            Origin::Segment(i) => write!(f, "segment {i}"),
        }
    }
}

/// `len` bytes at `address`, read from `offset` in the source.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Extent {
    /// Address of the first byte.
    pub address: u64,
    /// Number of bytes.
    pub len: u64,
    /// Where the bytes are in the source.
    pub offset: u64,
    /// Where it came from.
    pub origin: Origin,
}

impl Extent {
    fn end(&self) -> u64 {
        self.address.saturating_add(self.len)
    }
}

/// An address window, `start..end` (end exclusive), from `--address-range`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Window {
    /// First address inside.
    pub start: u64,
    /// First address past the end.
    pub end: u64,
}

impl fmt::Display for Window {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:#x}..{:#x}", self.start, self.end)
    }
}

impl std::str::FromStr for Window {
    type Err = String;

    /// `START..END`, each decimal or `0x` hex (`_` may separate digits), END up to 2^32.
    fn from_str(s: &str) -> Result<Self, String> {
        let bad = || format!("`{s}` is not an address range START..END (end exclusive)");
        let (a, b) = s.split_once("..").ok_or_else(bad)?;
        let number = |t: &str| -> Option<u64> {
            let clean: String = t.trim().chars().filter(|c| *c != '_').collect();
            match clean
                .strip_prefix("0x")
                .or_else(|| clean.strip_prefix("0X"))
            {
                Some(hex) => u64::from_str_radix(hex, 16).ok(),
                None => clean.parse().ok(),
            }
        };
        let (start, end) = (number(a).ok_or_else(bad)?, number(b).ok_or_else(bad)?);
        if end > 1 << 32 {
            return Err(format!("`{s}`: the end must be at most 0x100000000"));
        }
        if start >= end {
            return Err(format!("`{s}`: the start must be below the end"));
        }
        Ok(Window { start, end })
    }
}

/// Why bytes of the input are not in the image.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Why {
    /// Outside `--address-range`.
    OutsideWindow,
    /// An allocated ELF section that no `PT_LOAD` segment holds: no loader loads it.
    NotLoaded,
}

/// Input bytes that are not in the image (in JSON: `{"start", "end", "from"}`).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct LeftOut {
    /// First address.
    pub start: u64,
    /// First address past them.
    pub end: u64,
    /// Where they came from.
    #[serde(rename = "from", serialize_with = "as_text")]
    pub origin: Origin,
    /// Why they are left out.
    #[serde(skip)]
    pub why: Why,
}

fn as_text<S: serde::Serializer>(origin: &Origin, s: S) -> Result<S::Ok, S::Error> {
    s.collect_str(origin)
}

impl fmt::Display for LeftOut {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let why = match self.why {
            Why::OutsideWindow => "outside --address-range",
            Why::NotLoaded => "in no PT_LOAD segment, so no loader loads it",
        };
        write!(
            f,
            "left out {}: {:#x}..{:#x} ({}), {why}",
            self.origin,
            self.start,
            self.end,
            size(self.end.saturating_sub(self.start))
        )
    }
}

/// A byte count for people: `116 bytes`, `2.5 KiB`, `256.0 MiB`.
pub fn size(n: u64) -> String {
    const UNITS: [(u64, &str); 3] = [(1 << 30, "GiB"), (1 << 20, "MiB"), (1 << 10, "KiB")];
    for (unit, name) in UNITS {
        if n >= unit {
            return format!("{:.1} {name}", n as f64 / unit as f64);
        }
    }
    format!("{n} bytes")
}

/// The extents of an input laid out as one image.
#[derive(Debug)]
pub struct Layout {
    /// Address of the image's first byte.
    pub load_address: u32,
    /// Image length.
    pub len: u64,
    /// Sorted by address, addresses relative to the image.
    pub extents: Vec<Extent>,
    /// What the window (or the ELF's segments) left out.
    pub left_out: Vec<LeftOut>,
}

/// Lays `extents` out (see the module documentation). Errors are one line, naming the address
/// and where it came from.
pub fn lay_out(
    mut extents: Vec<Extent>,
    window: Option<Window>,
    max_span: u64,
    mut left_out: Vec<LeftOut>,
) -> Result<Layout, String> {
    extents.retain(|e| e.len > 0);
    extents.sort_by_key(|e| e.address);
    for pair in extents.windows(2) {
        if let [a, b] = pair
            && b.address < a.end()
        {
            return Err(format!(
                "{}: data at {:#x}..{:#x} overlaps {} ({:#x}..{:#x})",
                b.origin,
                b.address,
                b.end(),
                a.origin,
                a.address,
                a.end()
            ));
        }
    }
    if let Some(w) = window {
        let data: u64 = extents.iter().map(|e| e.len).sum();
        extents = clip(extents, w, &mut left_out);
        if extents.is_empty() {
            return Err(format!(
                "no data inside --address-range {w} (all {} of it lies outside)",
                size(data)
            ));
        }
    }
    let (first, last) = match (extents.first(), extents.last()) {
        (Some(f), Some(l)) => (f, l),
        _ => return Err("contains no loadable bytes".into()),
    };
    let (start, end) = (first.address, last.end());
    if end > u64::from(u32::MAX) {
        return Err(format!(
            "{}: data ends at {end:#x}; a container's image must end at or below 0xffffffff \
             (keep it out with --address-range)",
            last.origin
        ));
    }
    let data: u64 = extents.iter().map(|e| e.len).sum();
    let span = end - start;
    if span - data > max_span {
        return Err(outlier(&extents, span, data, max_span));
    }
    if span > u64::from(MAX_IMAGE_LEN) {
        return Err(format!(
            "loaded bytes span {span} bytes from {start:#x} to {end:#x}; the maximum image is \
             {MAX_IMAGE_LEN} bytes"
        ));
    }
    for e in &mut extents {
        e.address -= start;
    }
    Ok(Layout {
        load_address: u32::try_from(start).map_err(|_| "address beyond 32 bits".to_owned())?,
        len: span,
        extents,
        left_out,
    })
}

/// The parts of `extents` inside `w`; the rest goes to `left_out`.
fn clip(extents: Vec<Extent>, w: Window, left_out: &mut Vec<LeftOut>) -> Vec<Extent> {
    let mut kept = Vec::with_capacity(extents.len());
    for e in extents {
        let (from, to) = (e.address.max(w.start), e.end().min(w.end));
        let mut leave = |start: u64, end: u64| {
            if start < end {
                left_out.push(LeftOut {
                    start,
                    end,
                    origin: e.origin.clone(),
                    why: Why::OutsideWindow,
                });
            }
        };
        if from >= to {
            leave(e.address, e.end());
            continue;
        }
        leave(e.address, from);
        leave(to, e.end());
        kept.push(Extent {
            address: from,
            len: to - from,
            offset: e.offset + (from - e.address),
            origin: e.origin,
        });
    }
    kept
}

/// The error for an image whose gaps exceed `max_span`: names the data on the far side of the
/// largest gap (the side with less data), and the window that would leave it out.
fn outlier(extents: &[Extent], span: u64, data: u64, max_span: u64) -> String {
    let mut gap_at = 1;
    let mut gap = 0;
    for (i, pair) in extents.windows(2).enumerate() {
        if let [a, b] = pair
            && b.address - a.end() > gap
        {
            gap = b.address - a.end();
            gap_at = i + 1;
        }
    }
    let (below, above) = extents.split_at(gap_at.min(extents.len()));
    let sum = |s: &[Extent]| s.iter().map(|e| e.len).sum::<u64>();
    let range = |s: &[Extent]| match (s.first(), s.last()) {
        (Some(f), Some(l)) => (f.address, l.end()),
        _ => (0, 0),
    };
    let (stray, rest, direction) = if sum(above) <= sum(below) {
        (above, below, "above")
    } else {
        (below, above, "below")
    };
    let (rest_start, rest_end) = range(rest);
    let (name, at) = match (direction, stray.first(), stray.last()) {
        ("above", Some(f), _) => (&f.origin, f.address),
        (_, _, Some(l)) => (&l.origin, l.address),
        _ => return format!("the image spans {span} bytes for {data} bytes of data"),
    };
    format!(
        "{name}: data at {at:#x} lies {} {direction} the rest of the image \
         ({rest_start:#x}..{rest_end:#x}): the image would span {} for {} of data, more than \
         --max-span {} of gaps; sign the rest alone with --address-range \
         {rest_start:#x}..{rest_end:#x}, or raise --max-span",
        size(gap),
        size(span),
        size(data),
        size(max_span)
    )
}

/// An image laid out over a source `S`: gaps read as [`ERASED`].
pub struct Placed<S> {
    source: S,
    layout: Layout,
}

impl<S: ReadAt> Placed<S> {
    /// Reads `layout`'s extents from `source`, whose length is `source_len`.
    pub fn new(source: S, source_len: u64, layout: Layout) -> Result<Self, String> {
        if let Some(e) = layout
            .extents
            .iter()
            .find(|e| e.offset.saturating_add(e.len) > source_len)
        {
            return Err(format!("{}: lies outside the file", e.origin));
        }
        Ok(Self { source, layout })
    }

    /// The layout.
    pub fn layout(&self) -> &Layout {
        &self.layout
    }
}

impl<S: ReadAt> ReadAt for Placed<S> {
    fn read_exact_at(&self, buf: &mut [u8], offset: u64) -> io::Result<()> {
        let end = offset
            .checked_add(buf.len() as u64)
            .filter(|e| *e <= self.layout.len)
            .ok_or_else(|| io::Error::from(io::ErrorKind::UnexpectedEof))?;
        buf.fill(ERASED);
        let extents = &self.layout.extents;
        let first = extents.partition_point(|e| e.end() <= offset);
        for e in extents.iter().skip(first).take_while(|e| e.address < end) {
            let (from, to) = (e.address.max(offset), e.end().min(end));
            let dst = buf
                .get_mut((from - offset) as usize..(to - offset) as usize)
                .ok_or_else(|| io::Error::from(io::ErrorKind::InvalidInput))?;
            self.source
                .read_exact_at(dst, e.offset + (from - e.address))?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(address: u64, len: u64, line: u64) -> Extent {
        Extent {
            address,
            len,
            offset: 0,
            origin: Origin::Line(line),
        }
    }

    const WIDE: u64 = 64 << 20;

    #[test]
    fn windows_parse() {
        assert_eq!(
            "0x0800_0000..0x0810_0000".parse(),
            Ok(Window {
                start: 0x0800_0000,
                end: 0x0810_0000
            })
        );
        assert_eq!(
            "0..4096".parse(),
            Ok(Window {
                start: 0,
                end: 4096
            })
        );
        assert!("0..0x100000000".parse::<Window>().is_ok());
        for bad in ["0..0x100000001", "5..5", "9..1", "0x10", "a..b", "..5", ""] {
            assert!(bad.parse::<Window>().is_err(), "{bad}");
        }
    }

    #[test]
    fn overlaps_name_both_origins() {
        let e = lay_out(vec![at(0, 4, 1), at(2, 4, 7)], None, WIDE, vec![]).unwrap_err();
        assert_eq!(
            e, "line 7: data at 0x2..0x6 overlaps line 1 (0x0..0x4)",
            "{e}"
        );
    }

    #[test]
    fn the_end_must_fit_32_bits() {
        // Ending exactly at 2^32 cannot be expressed by a container (load address + length).
        let e = lay_out(vec![at(0xFFFF_FFFF, 1, 3)], None, WIDE, vec![]).unwrap_err();
        assert!(e.starts_with("line 3: data ends at 0x100000000"), "{e}");
        let l = lay_out(vec![at(0xFFFF_FFFE, 1, 3)], None, WIDE, vec![]).unwrap();
        assert_eq!((l.load_address, l.len), (0xFFFF_FFFE, 1));
    }

    #[test]
    fn a_stray_record_far_away_is_named() {
        // micro:bit-like: 200 KiB of code at 0, 4 bytes of UICR 256 MiB up.
        let extents = vec![at(0, 200 << 10, 2), at(0x1000_1014, 4, 9000)];
        let e = lay_out(extents.clone(), None, WIDE, vec![]).unwrap_err();
        assert!(
            e.starts_with("line 9000: data at 0x10001014 lies 255.8 MiB above the rest of the image (0x0..0x32000)"),
            "{e}"
        );
        assert!(e.contains("--address-range 0x0..0x32000"), "{e}");
        // A larger --max-span accepts it.
        let l = lay_out(extents.clone(), None, 1 << 30, vec![]).unwrap();
        assert_eq!(l.len, 0x1000_1018);
        // The stray data below the rest is named too.
        let low = vec![at(0, 4, 1), at(0x1000_0000, 1 << 20, 2)];
        let e = lay_out(low, None, WIDE, vec![]).unwrap_err();
        assert!(
            e.starts_with("line 1: data at 0x0 lies 256.0 MiB below"),
            "{e}"
        );
    }

    #[test]
    fn a_window_clips_and_reports() {
        let extents = vec![at(0, 0x100, 1), at(0x1000_1014, 4, 9)];
        let w = "0..0x80".parse().ok();
        let l = lay_out(extents.clone(), w, WIDE, vec![]).unwrap();
        assert_eq!((l.load_address, l.len), (0, 0x80));
        assert_eq!(
            l.left_out,
            [
                LeftOut {
                    start: 0x80,
                    end: 0x100,
                    origin: Origin::Line(1),
                    why: Why::OutsideWindow
                },
                LeftOut {
                    start: 0x1000_1014,
                    end: 0x1000_1018,
                    origin: Origin::Line(9),
                    why: Why::OutsideWindow
                }
            ]
        );
        assert_eq!(
            l.left_out[1].to_string(),
            "left out line 9: 0x10001014..0x10001018 (4 bytes), outside --address-range"
        );
        // The window starts inside an extent: the image starts at the window, read from the
        // matching offset of the source.
        let l = lay_out(extents.clone(), "0x10..0x20".parse().ok(), WIDE, vec![]).unwrap();
        assert_eq!((l.load_address, l.len), (0x10, 0x10));
        assert_eq!(l.extents[0].offset, 0x10);
        let e = lay_out(extents, "0x2000..0x3000".parse().ok(), WIDE, vec![]).unwrap_err();
        assert!(
            e.starts_with("no data inside --address-range 0x2000..0x3000"),
            "{e}"
        );
    }

    #[test]
    fn placed_reads_gaps_as_erased_at_any_offset() {
        let source: Vec<u8> = (1..=8).collect();
        let extents = vec![
            Extent {
                address: 0x100,
                len: 3,
                offset: 0,
                origin: Origin::Line(1),
            },
            Extent {
                address: 0x108,
                len: 5,
                offset: 3,
                origin: Origin::Line(2),
            },
        ];
        let layout = lay_out(extents, None, WIDE, vec![]).unwrap();
        let p = Placed::new(source, 8, layout).unwrap();
        let want = [1, 2, 3, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 4, 5, 6, 7, 8];
        for start in 0..want.len() {
            for end in start..=want.len() {
                let mut buf = vec![0; end - start];
                p.read_exact_at(&mut buf, start as u64).unwrap();
                assert_eq!(buf, want[start..end]);
            }
        }
        assert!(p.read_exact_at(&mut [0; 2], 12).is_err());
        let layout = lay_out(vec![at(0, 9, 1)], None, WIDE, vec![]).unwrap();
        assert!(Placed::new(vec![0u8; 8], 8, layout).is_err());
    }
}
