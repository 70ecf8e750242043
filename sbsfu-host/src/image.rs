//! Input images for `sign`: raw binary, Intel HEX or ELF, told apart by their content.
//!
//! A raw binary is the image; it is read straight from its file and needs `--load-address`. HEX
//! and ELF files carry their addresses: the image runs from the lowest loaded address to the end
//! of the highest, every gap filled with the erased-flash value 0xFF (what the bytes would read as
//! on a device had they never been programmed). An ELF image is read from the file segment by
//! segment, so memory stays flat whatever its size; a HEX file's data records are gathered in
//! memory (a HEX file is text, 2.8 times its image, and rarely large).

use std::fs::File;
use std::io::{self, Read};
use std::path::Path;

use object::elf;
use object::read::elf::{FileHeader, ProgramHeader};
use object::{ReadCache, ReadRef};
use sbsfu_format::header::MAX_IMAGE_LEN;
use sbsfu_format::seal::ReadAt;

use crate::cli::InputFormat;
use crate::error::{Error, Result};

/// Value of erased NOR flash: fills the gaps between loaded ranges.
pub const ERASED: u8 = 0xFF;

/// Largest HEX file read into memory.
pub const MAX_HEX_FILE_LEN: u64 = 4 << 30;

/// What an input file turned out to be.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Raw binary: the image itself.
    Bin,
    /// Intel HEX.
    Hex,
    /// ELF executable.
    Elf,
}

impl Kind {
    /// Name as shown to users and in JSON.
    pub fn name(self) -> &'static str {
        match self {
            Kind::Bin => "bin",
            Kind::Hex => "hex",
            Kind::Elf => "elf",
        }
    }
}

/// An input image, ready to be sealed.
pub enum Image {
    /// A raw binary, read from its file.
    Bin {
        /// The open file.
        file: File,
        /// Its length.
        len: u64,
    },
    /// A HEX file, flattened in memory.
    Hex {
        /// Address of `bytes[0]`.
        load_address: u32,
        /// The image, gaps filled with [`ERASED`].
        bytes: Vec<u8>,
    },
    /// An ELF file, read segment by segment.
    Elf(Segments<File>),
}

impl Image {
    /// What the input was.
    pub fn kind(&self) -> Kind {
        match self {
            Image::Bin { .. } => Kind::Bin,
            Image::Hex { .. } => Kind::Hex,
            Image::Elf(_) => Kind::Elf,
        }
    }

    /// Image length in bytes.
    pub fn len(&self) -> u64 {
        match self {
            Image::Bin { len, .. } => *len,
            Image::Hex { bytes, .. } => bytes.len() as u64,
            Image::Elf(s) => s.len,
        }
    }

    /// Whether the image is empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The address the file itself gives, if any.
    pub fn load_address(&self) -> Option<u32> {
        match self {
            Image::Bin { .. } => None,
            Image::Hex { load_address, .. } => Some(*load_address),
            Image::Elf(s) => Some(s.load_address),
        }
    }

    /// The image, readable at any offset.
    pub fn reader(&self) -> &dyn ReadAt {
        match self {
            Image::Bin { file, .. } => file,
            Image::Hex { bytes, .. } => bytes,
            Image::Elf(s) => s,
        }
    }
}

/// Opens `path` as `format` (or as what its content says, for [`InputFormat::Auto`]).
pub fn open(path: &Path, format: InputFormat) -> Result<Image> {
    let mut file = File::open(path).map_err(|e| Error::io(path, e))?;
    let len = file.metadata().map_err(|e| Error::io(path, e))?.len();
    let kind = match format {
        InputFormat::Bin => Kind::Bin,
        InputFormat::Hex => Kind::Hex,
        InputFormat::Elf => Kind::Elf,
        InputFormat::Auto => {
            let mut head = [0u8; 4];
            let n = ReadAt::read_exact_at(&file, &mut head[..len.min(4) as usize], 0)
                .map(|()| len.min(4) as usize)
                .map_err(|e| Error::io(path, e))?;
            detect(head.get(..n).unwrap_or_default())
        }
    };
    match kind {
        Kind::Bin => Ok(Image::Bin { file, len }),
        Kind::Hex => {
            if len > MAX_HEX_FILE_LEN {
                return Err(input(
                    path,
                    format!("{len} bytes is too large for a HEX file"),
                ));
            }
            let mut text = Vec::with_capacity(usize::try_from(len).unwrap_or(0));
            file.read_to_end(&mut text)
                .map_err(|e| Error::io(path, e))?;
            let ranges = hex_ranges(&text).map_err(|m| input(path, format!("Intel HEX: {m}")))?;
            let (load_address, bytes) = flatten(ranges).map_err(|m| input(path, m))?;
            Ok(Image::Hex {
                load_address,
                bytes,
            })
        }
        Kind::Elf => {
            let cache = ReadCache::new(&file);
            let segments = elf_segments(&cache).map_err(|m| input(path, format!("ELF: {m}")))?;
            drop(cache);
            Segments::new(file, len, segments)
                .map(Image::Elf)
                .map_err(|m| input(path, m))
        }
    }
}

fn input(path: &Path, reason: impl Into<String>) -> Error {
    Error::Input {
        path: path.to_owned(),
        reason: reason.into(),
    }
}

/// ELF by its magic; Intel HEX by its start code. A firmware binary starts with its initial stack
/// pointer, word aligned, so its first byte is never ':' (0x3A) in practice; `--input-format bin`
/// overrides the guess anyway.
pub fn detect(head: &[u8]) -> Kind {
    if head.starts_with(&elf::ELFMAG) {
        Kind::Elf
    } else if head.first() == Some(&b':') {
        Kind::Hex
    } else {
        Kind::Bin
    }
}

/// Where loaded bytes go, and how many.
trait Placed {
    fn address(&self) -> u64;
    fn len(&self) -> u64;
}

/// The span of sorted `placed` ranges: their lowest address (the load address) and the image
/// length. Overlapping ranges are an error (two values for one address), as is an image beyond
/// the 32-bit address space or larger than the format allows.
fn span<P: Placed>(placed: &[P]) -> std::result::Result<(u32, u64), String> {
    let first = placed
        .first()
        .ok_or_else(|| "contains no loadable bytes".to_owned())?;
    let start = first.address();
    let mut end = start;
    for r in placed {
        if r.address() < end {
            return Err(format!(
                "data at {:#x} overlaps earlier data (ending at {end:#x})",
                r.address()
            ));
        }
        end = r.address() + r.len();
    }
    if end > 1 << 32 {
        return Err(format!(
            "data ends at {end:#x}, beyond the 32-bit address space"
        ));
    }
    let len = end - start;
    if len > u64::from(MAX_IMAGE_LEN) {
        return Err(format!(
            "loaded bytes span {len} bytes from {start:#x} to {end:#x}; the maximum image is \
             {MAX_IMAGE_LEN} bytes (is a RAM-only section marked loadable?)"
        ));
    }
    let load_address = u32::try_from(start).map_err(|_| "address beyond 32 bits".to_owned())?;
    Ok((load_address, len))
}

/// A run of bytes at an address (a HEX data record).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Range {
    /// Address of the first byte.
    pub address: u64,
    /// The bytes.
    pub bytes: Vec<u8>,
}

impl Placed for Range {
    fn address(&self) -> u64 {
        self.address
    }
    fn len(&self) -> u64 {
        self.bytes.len() as u64
    }
}

/// The data records of an Intel HEX file, at their absolute addresses.
///
/// Extended linear (type 04) and extended segment (type 02) addresses are applied as the
/// `intelhex` and `srec_cat` tools do; start-address records (03, 05) are ignored. The file must
/// end with an end-of-file record, followed by nothing but blank lines.
pub fn hex_ranges(data: &[u8]) -> std::result::Result<Vec<Range>, String> {
    let text = std::str::from_utf8(data).map_err(|_| "not ASCII text".to_owned())?;
    let mut base: u64 = 0;
    let mut ranges = Vec::new();
    let mut ended = false;
    for (i, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() {
            continue;
        }
        let n = i + 1;
        if ended {
            return Err(format!("line {n}: data after the end-of-file record"));
        }
        let record =
            ihex::Record::from_record_string(line).map_err(|e| format!("line {n}: {e}"))?;
        match record {
            ihex::Record::Data { offset, value } => {
                if !value.is_empty() {
                    ranges.push(Range {
                        address: base + u64::from(offset),
                        bytes: value,
                    });
                }
            }
            ihex::Record::ExtendedLinearAddress(upper) => base = u64::from(upper) << 16,
            ihex::Record::ExtendedSegmentAddress(segment) => base = u64::from(segment) << 4,
            ihex::Record::StartLinearAddress(_) | ihex::Record::StartSegmentAddress { .. } => {}
            ihex::Record::EndOfFile => ended = true,
        }
    }
    if !ended {
        return Err("no end-of-file record (truncated file?)".into());
    }
    Ok(ranges)
}

/// Lays HEX `ranges` out as one image (see [`span`]), gaps filled with [`ERASED`].
pub fn flatten(mut ranges: Vec<Range>) -> std::result::Result<(u32, Vec<u8>), String> {
    ranges.sort_by_key(|r| r.address);
    let (load_address, len) = span(&ranges)?;
    let mut image = vec![ERASED; len as usize];
    for r in &ranges {
        let at = (r.address - u64::from(load_address)) as usize;
        if let Some(dst) = image.get_mut(at..at + r.bytes.len()) {
            dst.copy_from_slice(&r.bytes);
        }
    }
    Ok((load_address, image))
}

/// A loadable ELF segment: its load address, and where its bytes are in the file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Segment {
    /// Physical (load) address.
    pub address: u64,
    /// Offset of its bytes in the file.
    pub file_offset: u64,
    /// Bytes in the file (`p_filesz`).
    pub len: u64,
}

impl Placed for Segment {
    fn address(&self) -> u64 {
        self.address
    }
    fn len(&self) -> u64 {
        self.len
    }
}

/// The loadable bytes of an ELF executable, at their load (physical) addresses.
///
/// Each `PT_LOAD` segment contributes its `p_filesz` bytes at `p_paddr`: the load address, so
/// initialised data that the linker stored after `.text` (VMA in RAM, LMA in flash) lands where
/// the startup code copies it from. Bytes beyond `p_filesz` (`.bss`) contribute nothing.
pub fn elf_segments<'a, R: ReadRef<'a>>(data: R) -> std::result::Result<Vec<Segment>, String> {
    // e_ident[EI_CLASS]: byte 4.
    let class = data
        .read_bytes_at(4, 1)
        .ok()
        .and_then(|b| b.first().copied())
        .map(elf::FileClass);
    match class {
        Some(elf::ELFCLASS32) => segments::<elf::FileHeader32<object::Endianness>, R>(data),
        Some(elf::ELFCLASS64) => segments::<elf::FileHeader64<object::Endianness>, R>(data),
        _ => Err("not a 32- or 64-bit ELF file".into()),
    }
}

fn segments<'a, H: FileHeader<Endian = object::Endianness>, R: ReadRef<'a>>(
    data: R,
) -> std::result::Result<Vec<Segment>, String> {
    let header = H::parse(data).map_err(|e| e.to_string())?;
    let endian = header.endian().map_err(|e| e.to_string())?;
    let kind = header.e_type(endian);
    if kind != elf::ET_EXEC && kind != elf::ET_DYN {
        return Err(format!(
            "not a linked executable (ELF type {}); give the linker's output",
            kind.0
        ));
    }
    let file_len = data
        .len()
        .map_err(|()| "cannot tell the file's length".to_owned())?;
    let mut out = Vec::new();
    for ph in header
        .program_headers(endian, data)
        .map_err(|e| e.to_string())?
    {
        if ph.p_type(endian) != elf::PT_LOAD {
            continue;
        }
        let len: u64 = ph.p_filesz(endian).into();
        let memsz: u64 = ph.p_memsz(endian).into();
        if len > memsz {
            return Err(format!(
                "a PT_LOAD segment has a file size ({len}) larger than its memory size ({memsz})"
            ));
        }
        if len == 0 {
            continue;
        }
        let file_offset: u64 = ph.p_offset(endian).into();
        if file_offset
            .checked_add(len)
            .is_none_or(|end| end > file_len)
        {
            return Err("a PT_LOAD segment lies outside the file".into());
        }
        out.push(Segment {
            address: ph.p_paddr(endian).into(),
            file_offset,
            len,
        });
    }
    Ok(out)
}

/// An image made of segments of a file `S`, gaps reading as [`ERASED`].
pub struct Segments<S> {
    source: S,
    /// Address of the image's first byte.
    pub load_address: u32,
    len: u64,
    /// Sorted by address; `address` made relative to the image.
    segments: Vec<Segment>,
}

impl<S: ReadAt> Segments<S> {
    /// The image of `segments` of `source` (whose length is `source_len`).
    pub fn new(
        source: S,
        source_len: u64,
        mut segments: Vec<Segment>,
    ) -> std::result::Result<Self, String> {
        segments.sort_by_key(|s| s.address);
        let (load_address, len) = span(&segments)?;
        for s in &mut segments {
            if s.file_offset.saturating_add(s.len) > source_len {
                return Err("a segment lies outside the file".into());
            }
            s.address -= u64::from(load_address);
        }
        Ok(Self {
            source,
            load_address,
            len,
            segments,
        })
    }
}

impl<S: ReadAt> ReadAt for Segments<S> {
    fn read_exact_at(&self, buf: &mut [u8], offset: u64) -> io::Result<()> {
        let end = offset
            .checked_add(buf.len() as u64)
            .filter(|e| *e <= self.len)
            .ok_or_else(|| io::Error::from(io::ErrorKind::UnexpectedEof))?;
        buf.fill(ERASED);
        for s in &self.segments {
            let from = s.address.max(offset);
            let to = (s.address + s.len).min(end);
            if from >= to {
                continue;
            }
            let dst = buf
                .get_mut((from - offset) as usize..(to - offset) as usize)
                .ok_or_else(|| io::Error::from(io::ErrorKind::InvalidInput))?;
            self.source
                .read_exact_at(dst, s.file_offset + (from - s.address))?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Builds a little-endian ELF32 ARM executable with the given program headers
    /// `(p_type, p_paddr, p_vaddr, data, p_memsz)`, data stored back to back after the headers.
    pub(crate) fn elf32(segments: &[(u32, u32, u32, &[u8], u32)]) -> Vec<u8> {
        let phoff = 52u32;
        let data_start = phoff + 32 * segments.len() as u32;
        let mut out = Vec::new();
        out.extend_from_slice(&[0x7f, b'E', b'L', b'F', 1, 1, 1, 0]);
        out.extend_from_slice(&[0; 8]);
        out.extend_from_slice(&2u16.to_le_bytes()); // ET_EXEC
        out.extend_from_slice(&40u16.to_le_bytes()); // EM_ARM
        out.extend_from_slice(&1u32.to_le_bytes()); // EV_CURRENT
        out.extend_from_slice(&0x0802_0101u32.to_le_bytes()); // entry
        out.extend_from_slice(&phoff.to_le_bytes());
        out.extend_from_slice(&0u32.to_le_bytes()); // no section headers
        out.extend_from_slice(&0x0500_0400u32.to_le_bytes()); // EABI5, hard float
        out.extend_from_slice(&52u16.to_le_bytes());
        out.extend_from_slice(&32u16.to_le_bytes());
        out.extend_from_slice(&(segments.len() as u16).to_le_bytes());
        out.extend_from_slice(&40u16.to_le_bytes());
        out.extend_from_slice(&0u16.to_le_bytes());
        out.extend_from_slice(&0u16.to_le_bytes());
        let mut offset = data_start;
        for (p_type, paddr, vaddr, data, memsz) in segments {
            for word in [
                *p_type,
                offset,
                *vaddr,
                *paddr,
                data.len() as u32,
                *memsz,
                5,
                4,
            ] {
                out.extend_from_slice(&word.to_le_bytes());
            }
            offset += data.len() as u32;
        }
        for (_, _, _, data, _) in segments {
            out.extend_from_slice(data);
        }
        out
    }

    /// The flat image of an in-memory ELF, read through [`Segments`] in odd-sized pieces.
    fn elf_image(elf: Vec<u8>) -> std::result::Result<(u32, Vec<u8>), String> {
        let segments = elf_segments(elf.as_slice())?;
        let len = elf.len() as u64;
        let s = Segments::new(elf, len, segments)?;
        let mut image = vec![0u8; s.len as usize];
        for (i, piece) in image.chunks_mut(7).enumerate() {
            s.read_exact_at(piece, i as u64 * 7).unwrap();
        }
        Ok((s.load_address, image))
    }

    #[test]
    fn elf_uses_load_addresses_and_skips_bss() {
        let text = [0xAAu8; 0x100];
        let data = [0x11u8, 0x22, 0x33, 0x44];
        let elf = elf32(&[
            (1, 0x0802_0000, 0x0802_0000, &text, 0x100),
            // .data: runs in RAM, stored 16 bytes after .text ends.
            (1, 0x0802_0110, 0x2000_0000, &data, 4),
            // .bss: memory only.
            (1, 0x2000_0004, 0x2000_0004, &[], 0x400),
            // A non-loadable segment is ignored.
            (0x7000_0001, 0, 0, &[9, 9], 2),
        ]);
        let (addr, image) = elf_image(elf).unwrap();
        assert_eq!(addr, 0x0802_0000);
        assert_eq!(image.len(), 0x114);
        assert_eq!(&image[..0x100], &text);
        assert_eq!(&image[0x100..0x110], &[ERASED; 16]);
        assert_eq!(&image[0x110..], &data);
    }

    #[test]
    fn elf_errors() {
        assert!(elf_segments(b"\x7fELF".as_slice()).is_err());
        let mut rel = elf32(&[(1, 0, 0, &[1], 1)]);
        rel[16] = 1; // ET_REL
        assert!(
            elf_segments(rel.as_slice())
                .unwrap_err()
                .contains("not a linked executable")
        );
        let no_data = elf32(&[(1, 0x2000_0000, 0x2000_0000, &[], 0x100)]);
        assert_eq!(
            elf_image(no_data).unwrap_err(),
            "contains no loadable bytes"
        );
        // Segment data pointing past the end of the file.
        let mut cut = elf32(&[(1, 0x0800_0000, 0x0800_0000, &[1, 2, 3, 4], 4)]);
        cut.truncate(cut.len() - 2);
        assert!(
            elf_segments(cut.as_slice())
                .unwrap_err()
                .contains("outside the file")
        );
        // filesz > memsz.
        let bad = elf32(&[(1, 0x0800_0000, 0x0800_0000, &[1, 2, 3, 4], 2)]);
        assert!(
            elf_segments(bad.as_slice())
                .unwrap_err()
                .contains("larger than its memory size")
        );
        // Two segments loading the same address.
        let twice = elf32(&[
            (1, 0x0800_0000, 0x0800_0000, &[1, 2, 3, 4], 4),
            (1, 0x0800_0002, 0x0800_0002, &[5, 6], 2),
        ]);
        assert!(elf_image(twice).unwrap_err().contains("overlaps"));
        // Reading past the image's end is an error, not a panic.
        let one = elf32(&[(1, 0x0800_0000, 0x0800_0000, &[1, 2, 3, 4], 4)]);
        let len = one.len() as u64;
        let s = Segments::new(one.clone(), len, elf_segments(one.as_slice()).unwrap()).unwrap();
        assert!(s.read_exact_at(&mut [0; 2], 3).is_err());
    }

    #[test]
    fn hex_applies_extended_addresses_and_fills_gaps() {
        // objcopy-style: ELA 0x0802, 4 bytes at 0x0000, then 2 bytes at 0x0008; a segment
        // address record moves the base; start address records are ignored.
        let hex = ":020000040802F0\r\n\
                   :0400000001020304F2\r\n\
                   :02000800AABB91\r\n\
                   :0400000508020101EB\r\n\
                   :00000001FF\r\n\r\n";
        let (addr, image) = flatten(hex_ranges(hex.as_bytes()).unwrap()).unwrap();
        assert_eq!(addr, 0x0802_0000);
        assert_eq!(image, [1, 2, 3, 4, 0xFF, 0xFF, 0xFF, 0xFF, 0xAA, 0xBB]);
        let seg = ":020000021000EC\n:0100000042BD\n:00000001FF\n";
        let (addr, image) = flatten(hex_ranges(seg.as_bytes()).unwrap()).unwrap();
        assert_eq!((addr, image), (0x1_0000, vec![0x42]));
    }

    #[test]
    fn hex_errors() {
        let no_eof = ":0400000001020304F2\n";
        assert!(
            hex_ranges(no_eof.as_bytes())
                .unwrap_err()
                .contains("end-of-file")
        );
        let after = ":00000001FF\n:0400000001020304F2\n";
        assert!(
            hex_ranges(after.as_bytes())
                .unwrap_err()
                .contains("line 2: data after")
        );
        let checksum = ":0400000001020304F3\n:00000001FF\n";
        assert!(
            hex_ranges(checksum.as_bytes())
                .unwrap_err()
                .starts_with("line 1: invalid checksum")
        );
        let overlap = ":0400000001020304F2\n:0100020007F6\n:00000001FF\n";
        assert!(
            flatten(hex_ranges(overlap.as_bytes()).unwrap())
                .unwrap_err()
                .contains("overlaps")
        );
        assert!(hex_ranges(&[b':', 0xff]).unwrap_err().contains("ASCII"));
    }

    #[test]
    fn flatten_bounds() {
        let r = |address: u64, bytes: &'static [u8]| Range {
            address,
            bytes: bytes.to_vec(),
        };
        assert!(
            flatten(vec![r(0xFFFF_FFFF, &[1, 2])])
                .unwrap_err()
                .contains("32-bit address space")
        );
        assert!(
            flatten(vec![r(0, &[1]), r(0x8000_0000, &[2])])
                .unwrap_err()
                .contains("maximum image")
        );
        assert_eq!(
            flatten(vec![r(0xFFFF_FFFF, &[7])]).unwrap(),
            (0xFFFF_FFFF, vec![7])
        );
    }

    #[test]
    fn detection() {
        assert_eq!(detect(b"\x7fELF"), Kind::Elf);
        assert_eq!(detect(b":020000"), Kind::Hex);
        assert_eq!(detect(&[0x00, 0x00, 0x02, 0x20]), Kind::Bin);
        assert_eq!(detect(b""), Kind::Bin);
    }
}
