//! Input images for `sign`: raw binary, Intel HEX or ELF, told apart by their content.
//!
//! A raw binary is streamed from its file and needs `--load-address`. HEX and ELF files carry
//! their addresses: they are flattened in memory into one image that starts at the lowest loaded
//! address, with every gap filled with the erased-flash value 0xFF (what the bytes would read as
//! on a device had they never been programmed).

use std::fs::File;
use std::io::{self, Read};
use std::path::Path;

use object::elf;
use object::read::elf::{FileHeader, ProgramHeader};
use sbsfu_format::header::MAX_IMAGE_LEN;

use crate::cli::InputFormat;
use crate::error::{Error, Result};

/// Value of erased NOR flash: fills the gaps between loaded ranges.
pub const ERASED: u8 = 0xFF;

/// Largest HEX or ELF file read into memory (an ELF with full debug info is many times its image).
pub const MAX_INPUT_FILE_LEN: u64 = 4 << 30;

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
    /// A raw binary, streamed from its file.
    Bin {
        /// The open file, at offset 0.
        file: File,
        /// Its length.
        len: u64,
    },
    /// A HEX or ELF file, flattened.
    Flat {
        /// Which it was.
        kind: Kind,
        /// Address of `bytes[0]`.
        load_address: u32,
        /// The image, gaps filled with [`ERASED`].
        bytes: Vec<u8>,
    },
}

impl Image {
    /// What the input was.
    pub fn kind(&self) -> Kind {
        match self {
            Image::Bin { .. } => Kind::Bin,
            Image::Flat { kind, .. } => *kind,
        }
    }

    /// Image length in bytes.
    pub fn len(&self) -> u64 {
        match self {
            Image::Bin { len, .. } => *len,
            Image::Flat { bytes, .. } => bytes.len() as u64,
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
            Image::Flat { load_address, .. } => Some(*load_address),
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
            let n = read_up_to(&mut file, &mut head).map_err(|e| Error::io(path, e))?;
            let kind = detect(head.get(..n).unwrap_or_default());
            drop(file);
            file = File::open(path).map_err(|e| Error::io(path, e))?;
            kind
        }
    };
    if kind == Kind::Bin {
        return Ok(Image::Bin { file, len });
    }
    if len > MAX_INPUT_FILE_LEN {
        return Err(input(
            path,
            format!("{len} bytes is too large for a {} file", kind.name()),
        ));
    }
    let mut data = Vec::with_capacity(usize::try_from(len).unwrap_or(0));
    file.read_to_end(&mut data)
        .map_err(|e| Error::io(path, e))?;
    let ranges = match kind {
        Kind::Hex => hex_ranges(&data).map_err(|m| input(path, format!("Intel HEX: {m}")))?,
        _ => elf_ranges(&data).map_err(|m| input(path, format!("ELF: {m}")))?,
    };
    let (load_address, bytes) = flatten(ranges).map_err(|m| input(path, m))?;
    Ok(Image::Flat {
        kind,
        load_address,
        bytes,
    })
}

fn input(path: &Path, reason: impl Into<String>) -> Error {
    Error::Input {
        path: path.to_owned(),
        reason: reason.into(),
    }
}

fn read_up_to(file: &mut File, buf: &mut [u8]) -> io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match file.read(buf.get_mut(n..).unwrap_or_default()) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(n)
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

/// A run of bytes at an address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Range<'a> {
    /// Address of the first byte.
    pub address: u64,
    /// The bytes.
    pub bytes: std::borrow::Cow<'a, [u8]>,
}

/// The data records of an Intel HEX file, at their absolute addresses.
///
/// Extended linear (type 04) and extended segment (type 02) addresses are applied as the
/// `intelhex` and `srec_cat` tools do; start-address records (03, 05) are ignored. The file must
/// end with an end-of-file record, followed by nothing but blank lines.
pub fn hex_ranges(data: &[u8]) -> std::result::Result<Vec<Range<'static>>, String> {
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
                        bytes: value.into(),
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

/// The loadable bytes of an ELF executable, at their load (physical) addresses.
///
/// Each `PT_LOAD` segment contributes its `p_filesz` bytes at `p_paddr`: the load address, so
/// initialised data that the linker stored after `.text` (VMA in RAM, LMA in flash) lands where
/// the startup code copies it from. Bytes beyond `p_filesz` (`.bss`) contribute nothing.
pub fn elf_ranges(data: &[u8]) -> std::result::Result<Vec<Range<'_>>, String> {
    // e_ident[EI_CLASS]: byte 4.
    let class = data.get(4).copied().map(elf::FileClass);
    match class {
        Some(elf::ELFCLASS32) => segments::<elf::FileHeader32<object::Endianness>>(data),
        Some(elf::ELFCLASS64) => segments::<elf::FileHeader64<object::Endianness>>(data),
        _ => Err("not a 32- or 64-bit ELF file".into()),
    }
}

fn segments<'a, H: FileHeader<Endian = object::Endianness>>(
    data: &'a [u8],
) -> std::result::Result<Vec<Range<'a>>, String> {
    let header = H::parse(data).map_err(|e| e.to_string())?;
    let endian = header.endian().map_err(|e| e.to_string())?;
    let kind = header.e_type(endian);
    if kind != elf::ET_EXEC && kind != elf::ET_DYN {
        return Err(format!(
            "not a linked executable (ELF type {}); give the linker's output",
            kind.0
        ));
    }
    let mut ranges = Vec::new();
    for ph in header
        .program_headers(endian, data)
        .map_err(|e| e.to_string())?
    {
        if ph.p_type(endian) != elf::PT_LOAD {
            continue;
        }
        let filesz: u64 = ph.p_filesz(endian).into();
        let memsz: u64 = ph.p_memsz(endian).into();
        if filesz > memsz {
            return Err(format!(
                "a PT_LOAD segment has a file size ({filesz}) larger than its memory size ({memsz})"
            ));
        }
        if filesz == 0 {
            continue;
        }
        let bytes = ph
            .data(endian, data)
            .map_err(|()| "a PT_LOAD segment lies outside the file".to_owned())?;
        ranges.push(Range {
            address: ph.p_paddr(endian).into(),
            bytes: bytes.into(),
        });
    }
    Ok(ranges)
}

/// Lays `ranges` out as one image from the lowest address to the end of the highest range,
/// gaps filled with [`ERASED`]. Overlapping ranges are an error (two different values for one
/// address), as is an image beyond the 32-bit address space or larger than the format allows.
pub fn flatten(mut ranges: Vec<Range<'_>>) -> std::result::Result<(u32, Vec<u8>), String> {
    ranges.sort_by_key(|r| r.address);
    let first = ranges
        .first()
        .ok_or_else(|| "contains no loadable bytes".to_owned())?;
    let start = first.address;
    let mut end = start;
    for r in &ranges {
        if r.address < end {
            return Err(format!(
                "data at {:#x} overlaps earlier data (ending at {end:#x})",
                r.address
            ));
        }
        end = r.address + r.bytes.len() as u64;
    }
    if end > 1 << 32 {
        return Err(format!(
            "data ends at {end:#x}, beyond the 32-bit address space"
        ));
    }
    let span = end - start;
    if span > u64::from(MAX_IMAGE_LEN) {
        return Err(format!(
            "loaded bytes span {span} bytes from {start:#x} to {end:#x}; the maximum image is \
             {MAX_IMAGE_LEN} bytes (is a RAM-only section marked loadable?)"
        ));
    }
    let load_address = u32::try_from(start).map_err(|_| "address beyond 32 bits".to_owned())?;
    let mut image = vec![ERASED; span as usize];
    for r in &ranges {
        let at = (r.address - start) as usize;
        if let Some(dst) = image.get_mut(at..at + r.bytes.len()) {
            dst.copy_from_slice(&r.bytes);
        }
    }
    Ok((load_address, image))
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
        let (addr, image) = flatten(elf_ranges(&elf).unwrap()).unwrap();
        assert_eq!(addr, 0x0802_0000);
        assert_eq!(image.len(), 0x114);
        assert_eq!(&image[..0x100], &text);
        assert_eq!(&image[0x100..0x110], &[ERASED; 16]);
        assert_eq!(&image[0x110..], &data);
    }

    #[test]
    fn elf_errors() {
        assert!(elf_ranges(b"\x7fELF").is_err());
        let mut rel = elf32(&[(1, 0, 0, &[1], 1)]);
        rel[16] = 1; // ET_REL
        assert!(
            elf_ranges(&rel)
                .unwrap_err()
                .contains("not a linked executable")
        );
        let no_data = elf32(&[(1, 0x2000_0000, 0x2000_0000, &[], 0x100)]);
        assert_eq!(
            flatten(elf_ranges(&no_data).unwrap()).unwrap_err(),
            "contains no loadable bytes"
        );
        // Segment data pointing past the end of the file.
        let mut cut = elf32(&[(1, 0x0800_0000, 0x0800_0000, &[1, 2, 3, 4], 4)]);
        cut.truncate(cut.len() - 2);
        assert!(elf_ranges(&cut).unwrap_err().contains("outside the file"));
        // filesz > memsz.
        let bad = elf32(&[(1, 0x0800_0000, 0x0800_0000, &[1, 2, 3, 4], 2)]);
        assert!(
            elf_ranges(&bad)
                .unwrap_err()
                .contains("larger than its memory size")
        );
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
            bytes: bytes.into(),
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
