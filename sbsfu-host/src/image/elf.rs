//! ELF input: the image is the allocated sections that have contents, each at its load address,
//! as `objcopy -O binary` and `bincopy` build it; the ELF header, program headers and padding
//! between sections never enter it, even where a linker puts them inside the first `PT_LOAD`
//! segment (MCUXpresso, some linker scripts).
//!
//! A section is in the image when it is `SHF_ALLOC`, not `SHT_NOBITS` and not empty. Its load
//! address (LMA) is that of the `PT_LOAD` segment whose file bytes hold it: the segment's
//! physical address plus the section's offset within the segment. So initialised data that the
//! linker stores after `.text` (run address in RAM) lands where the startup code copies it from,
//! including Arm Compiler (Keil) images whose RW sections have run addresses outside the segment.
//! An allocated section that no segment holds is not loaded by anything, and is reported as left
//! out. An ELF without section headers is taken segment by segment (`p_filesz` bytes at
//! `p_paddr`). Only headers are read here; the bytes are read from the file when sealed.

use object::ReadRef;
use object::elf;
use object::read::elf::{FileHeader, ProgramHeader, SectionHeader};

use super::extents::{Extent, LeftOut, Origin, Why};

/// The image's extents (at file offsets) and the sections left out.
pub type Sections = (Vec<Extent>, Vec<LeftOut>);

/// Reads the section and program headers of an ELF executable.
pub fn read<'a, R: ReadRef<'a>>(data: R) -> Result<Sections, String> {
    // e_ident[EI_CLASS]: byte 4.
    let class = data
        .read_bytes_at(4, 1)
        .ok()
        .and_then(|b| b.first().copied())
        .map(elf::FileClass);
    match class {
        Some(elf::ELFCLASS32) => sections::<elf::FileHeader32<object::Endianness>, R>(data),
        Some(elf::ELFCLASS64) => sections::<elf::FileHeader64<object::Endianness>, R>(data),
        _ => Err("not a 32- or 64-bit ELF file".into()),
    }
}

/// A `PT_LOAD` segment's file bytes and addresses.
struct Load {
    index: usize,
    offset: u64,
    filesz: u64,
    paddr: u64,
    vaddr: u64,
    memsz: u64,
}

impl Load {
    /// Whether the segment's file bytes start with or contain offset `at`.
    fn holds(&self, at: u64) -> bool {
        at >= self.offset && at - self.offset < self.filesz
    }
}

fn sections<'a, H: FileHeader<Endian = object::Endianness>, R: ReadRef<'a>>(
    data: R,
) -> Result<Sections, String> {
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
    let mut loads = Vec::new();
    for (index, ph) in header
        .program_headers(endian, data)
        .map_err(|e| e.to_string())?
        .iter()
        .enumerate()
    {
        match ph.p_type(endian) {
            elf::PT_INTERP => {
                return Err(
                    "a hosted program (it names a program interpreter, PT_INTERP), not \
                     firmware for a microcontroller"
                        .into(),
                );
            }
            elf::PT_LOAD => {}
            _ => continue,
        }
        let load = Load {
            index,
            offset: ph.p_offset(endian).into(),
            filesz: ph.p_filesz(endian).into(),
            paddr: ph.p_paddr(endian).into(),
            vaddr: ph.p_vaddr(endian).into(),
            memsz: ph.p_memsz(endian).into(),
        };
        if load.filesz > load.memsz {
            return Err(format!(
                "segment {index}: its file size ({}) is larger than its memory size ({})",
                load.filesz, load.memsz
            ));
        }
        if load
            .offset
            .checked_add(load.filesz)
            .is_none_or(|end| end > file_len)
        {
            return Err(format!("segment {index}: lies outside the file"));
        }
        loads.push(load);
    }
    // Some linkers leave every physical address 0; binutils then uses the run addresses, or every
    // segment would load at 0.
    let no_paddr = loads.len() > 1 && loads.iter().all(|l| l.paddr == 0);
    if no_paddr {
        for l in &mut loads {
            l.paddr = l.vaddr;
        }
    }
    let table = header
        .sections(endian, data)
        .map_err(|e| format!("section headers: {e}"))?;
    if table.is_empty() {
        let extents = loads
            .iter()
            .map(|l| Extent {
                address: l.paddr,
                len: l.filesz,
                offset: l.offset,
                origin: Origin::Segment(l.index),
            })
            .collect();
        return Ok((extents, Vec::new()));
    }
    let mut extents = Vec::new();
    let mut left_out = Vec::new();
    for (index, sh) in table.iter().enumerate() {
        let allocated = sh.sh_flags(endian).0 & elf::SHF_ALLOC.0 != 0;
        let len: u64 = sh.sh_size(endian).into();
        if !allocated || sh.sh_type(endian) == elf::SHT_NOBITS || len == 0 {
            continue;
        }
        let name = match table.section_name(endian, sh) {
            Ok(n) if !n.is_empty() => String::from_utf8_lossy(n).into_owned(),
            _ => format!("#{index}"),
        };
        let offset: u64 = sh.sh_offset(endian).into();
        let vma: u64 = sh.sh_addr(endian).into();
        if offset.checked_add(len).is_none_or(|end| end > file_len) {
            return Err(format!("section {name}: lies outside the file"));
        }
        // The segment holding the section's bytes; where segments overlap in the file, the one
        // that also holds its run address.
        let holding = || loads.iter().filter(|l| l.holds(offset));
        let load = holding()
            .find(|l| vma >= l.vaddr && vma - l.vaddr < l.memsz)
            .or_else(|| holding().next());
        let Some(load) = load else {
            left_out.push(LeftOut {
                start: vma,
                end: vma.saturating_add(len),
                origin: Origin::Section(name),
                why: Why::NotLoaded,
            });
            continue;
        };
        if offset - load.offset + len > load.filesz {
            return Err(format!(
                "section {name}: runs past the end of the file bytes of segment {}",
                load.index
            ));
        }
        let address = load
            .paddr
            .checked_add(offset - load.offset)
            .ok_or_else(|| format!("section {name}: load address beyond 64 bits"))?;
        extents.push(Extent {
            address,
            len,
            offset,
            origin: Origin::Section(name),
        });
    }
    Ok((extents, left_out))
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::image::extents::{Placed, lay_out};
    use sbsfu_format::ReadAt;

    /// A section of a test ELF: name, flags, type, address, and either its bytes (in the file)
    /// or a memory size (NOBITS).
    pub struct Sec<'a> {
        pub name: &'a str,
        pub flags: u32,
        pub kind: u32,
        pub addr: u32,
        pub bytes: &'a [u8],
    }

    /// A program header of a test ELF: `(p_type, p_offset, p_vaddr, p_paddr, p_filesz, p_memsz)`.
    pub type Ph = (u32, u32, u32, u32, u32, u32);

    /// A little-endian ELF32 ARM executable: the headers, then `body` at offset 0x100 (sections
    /// say where in it they are with `offset_of`), then the section headers.
    pub fn elf32(phs: &[Ph], secs: &[(Sec<'_>, u32)], body: &[u8]) -> Vec<u8> {
        let phoff = 52u32;
        let mut shstrtab = vec![0u8];
        let mut names = Vec::new();
        for (s, _) in secs {
            names.push(shstrtab.len() as u32);
            shstrtab.extend_from_slice(s.name.as_bytes());
            shstrtab.push(0);
        }
        let names_at = shstrtab.len() as u32;
        shstrtab.extend_from_slice(b".shstrtab\0");
        let body_at = 0x100u32;
        let strtab_at = body_at + body.len() as u32;
        let shoff = (strtab_at + shstrtab.len() as u32 + 3) & !3;
        let shnum = if secs.is_empty() {
            0
        } else {
            secs.len() as u16 + 2
        };
        let mut out = Vec::new();
        out.extend_from_slice(&[0x7f, b'E', b'L', b'F', 1, 1, 1, 0]);
        out.extend_from_slice(&[0; 8]);
        out.extend_from_slice(&2u16.to_le_bytes()); // ET_EXEC
        out.extend_from_slice(&40u16.to_le_bytes()); // EM_ARM
        out.extend_from_slice(&1u32.to_le_bytes());
        out.extend_from_slice(&0x0800_0101u32.to_le_bytes());
        out.extend_from_slice(&phoff.to_le_bytes());
        out.extend_from_slice(&(if secs.is_empty() { 0 } else { shoff }).to_le_bytes());
        out.extend_from_slice(&0x0500_0400u32.to_le_bytes());
        for half in [
            52u16,
            32,
            phs.len() as u16,
            40,
            shnum,
            shnum.saturating_sub(1),
        ] {
            out.extend_from_slice(&half.to_le_bytes());
        }
        for (t, off, vaddr, paddr, filesz, memsz) in phs {
            for w in [*t, *off, *vaddr, *paddr, *filesz, *memsz, 5, 4] {
                out.extend_from_slice(&w.to_le_bytes());
            }
        }
        out.resize(body_at as usize, 0xEE);
        out.extend_from_slice(body);
        out.extend_from_slice(&shstrtab);
        out.resize(shoff as usize, 0);
        if !secs.is_empty() {
            out.extend_from_slice(&[0; 40]);
            for ((s, at), name) in secs.iter().zip(&names) {
                let size = s.bytes.len() as u32;
                for w in [
                    *name,
                    s.kind,
                    s.flags,
                    s.addr,
                    body_at + at,
                    size,
                    0,
                    0,
                    4,
                    0,
                ] {
                    out.extend_from_slice(&w.to_le_bytes());
                }
            }
            for w in [
                names_at,
                3,
                0,
                0,
                strtab_at,
                shstrtab.len() as u32,
                0,
                0,
                1,
                0,
            ] {
                out.extend_from_slice(&w.to_le_bytes());
            }
        }
        out
    }

    pub const PROGBITS: u32 = 1;
    pub const NOBITS: u32 = 8;
    pub const AX: u32 = 6;
    pub const WA: u32 = 3;

    /// The flat image of an in-memory ELF, read in odd-sized pieces.
    pub fn image(elf: Vec<u8>) -> Result<(u32, Vec<u8>, Vec<LeftOut>), String> {
        let (extents, left) = read(elf.as_slice())?;
        let len = elf.len() as u64;
        let layout = lay_out(extents, None, 64 << 20, left)?;
        let p = Placed::new(elf, len, layout)?;
        let mut out = vec![0u8; p.layout().len as usize];
        for (i, piece) in out.chunks_mut(7).enumerate() {
            p.read_exact_at(piece, i as u64 * 7).unwrap();
        }
        Ok((p.layout().load_address, out, p.layout().left_out.clone()))
    }

    fn sec<'a>(name: &'a str, flags: u32, addr: u32, bytes: &'a [u8]) -> Sec<'a> {
        Sec {
            name,
            flags,
            kind: PROGBITS,
            addr,
            bytes,
        }
    }

    #[test]
    fn headers_inside_the_first_segment_stay_out() {
        // MCUXpresso-like: one PT_LOAD from file offset 0 at 0x8000_0000 holds the ELF header;
        // .text is at 0x8000_0100 (offset 0x100), .data right after it, .bss in memory only.
        let text = [0xAAu8; 0x20];
        let data = [1u8, 2, 3, 4];
        let mut body = text.to_vec();
        body.extend_from_slice(&data);
        let secs = [
            (sec(".text", AX, 0x8000_0100, &text), 0),
            (sec(".data", WA, 0x8000_0120, &data), 0x20),
            (
                Sec {
                    name: ".bss",
                    flags: WA,
                    kind: NOBITS,
                    addr: 0x8000_0124,
                    bytes: &[0; 16],
                },
                0x24,
            ),
        ];
        let elf = elf32(
            &[(1, 0, 0x8000_0000, 0x8000_0000, 0x124, 0x134)],
            &secs,
            &body,
        );
        let (addr, image, left) = image(elf).unwrap();
        assert_eq!(addr, 0x8000_0100);
        assert_eq!(image, body);
        assert!(left.is_empty());
    }

    #[test]
    fn data_goes_to_its_load_address_and_gaps_are_erased() {
        // .data runs in RAM (0x2000_0000) and is stored after .text, 16 bytes apart; a
        // non-allocated section (debug info) and an empty one add nothing.
        let text = [0x11u8; 0x10];
        let data = [0x22u8; 4];
        let mut body = text.to_vec();
        body.extend_from_slice(&data);
        body.extend_from_slice(b"debug");
        let secs = [
            (sec(".text", AX, 0x0802_0000, &text), 0),
            (sec(".data", WA, 0x2000_0000, &data), 0x10),
            (sec(".debug_info", 0, 0, b"debug"), 0x14),
            (sec(".empty", WA, 0x3000_0000, &[]), 0x19),
        ];
        let elf = elf32(
            &[
                (1, 0x100, 0x0802_0000, 0x0802_0000, 0x10, 0x10),
                (1, 0x110, 0x2000_0000, 0x0802_0020, 4, 0x40),
            ],
            &secs,
            &body,
        );
        let (addr, image, _) = image(elf).unwrap();
        assert_eq!(addr, 0x0802_0000);
        let mut want = text.to_vec();
        want.extend_from_slice(&[0xFF; 16]);
        want.extend_from_slice(&data);
        assert_eq!(image, want);
    }

    #[test]
    fn a_section_in_no_segment_is_left_out_and_reported() {
        let text = [0x11u8; 8];
        let secs = [
            (sec(".text", AX, 0x0800_0000, &text), 0),
            (sec(".orphan", AX, 0x0900_0000, &[9; 4]), 8),
        ];
        let mut body = text.to_vec();
        body.extend_from_slice(&[9; 4]);
        let elf = elf32(&[(1, 0x100, 0x0800_0000, 0x0800_0000, 8, 8)], &secs, &body);
        let (_, image, left) = image(elf).unwrap();
        assert_eq!(image, text);
        assert_eq!(
            left[0].to_string(),
            "left out section .orphan: 0x9000000..0x9000004 (4 bytes), in no PT_LOAD segment, \
             so no loader loads it"
        );
    }

    #[test]
    fn without_section_headers_the_segments_are_the_image() {
        let elf = elf32(
            &[
                (1, 0x100, 0x0802_0000, 0x0802_0000, 4, 4),
                (1, 0x104, 0x2000_0000, 0x0802_0008, 2, 0x40),
                (1, 0x106, 0x2000_0040, 0x2000_0040, 0, 0x400),
            ],
            &[],
            &[1, 2, 3, 4, 5, 6],
        );
        let (addr, image, _) = image(elf).unwrap();
        assert_eq!(addr, 0x0802_0000);
        assert_eq!(image, [1, 2, 3, 4, 0xFF, 0xFF, 0xFF, 0xFF, 5, 6]);
    }

    #[test]
    fn what_is_not_firmware_or_is_broken_is_refused() {
        let text = [0x11u8; 8];
        let load = (1, 0x100, 0x0800_0000, 0x0800_0000, 8, 8);
        let secs = [(sec(".text", AX, 0x0800_0000, &text), 0)];
        let ok = elf32(&[load], &secs, &text);
        assert!(image(ok.clone()).is_ok());
        let refusal = |elf: Vec<u8>| read(elf.as_slice()).unwrap_err();
        let mut rel = ok.clone();
        rel[16] = 1; // ET_REL
        assert!(refusal(rel).contains("not a linked executable"));
        let hosted = elf32(&[(3, 0x100, 0, 0, 8, 8), load], &secs, &text);
        assert!(refusal(hosted).contains("PT_INTERP"));
        let big = elf32(&[(1, 0x100, 0x0800_0000, 0x0800_0000, 8, 4)], &secs, &text);
        assert!(refusal(big).contains("larger than its memory size"));
        let past = elf32(
            &[(1, 0x100, 0x0800_0000, 0x0800_0000, 0x10_0000, 0x10_0000)],
            &secs,
            &text,
        );
        assert_eq!(refusal(past), "segment 0: lies outside the file");
        let short = elf32(&[(1, 0x100, 0x0800_0000, 0x0800_0000, 4, 8)], &secs, &text);
        assert!(refusal(short).contains("runs past the end of the file bytes"));
        let twice = elf32(
            &[load, (1, 0x100, 0x0800_0004, 0x0800_0004, 8, 8)],
            &[
                (sec(".a", AX, 0x0800_0000, &text), 0),
                (sec(".b", AX, 0x0800_0004, &text), 0),
            ],
            &text,
        );
        assert!(image(twice).unwrap_err().contains("overlaps"));
        // Section headers that point past the end of the file.
        let mut cut = ok.clone();
        cut.truncate(cut.len() - 20);
        assert!(read(cut.as_slice()).is_err());
        assert!(read(b"\x7fELF".as_slice()).is_err());
        let no_data = elf32(&[(1, 0x100, 0x2000_0000, 0x2000_0000, 0, 0x100)], &[], &[]);
        assert_eq!(image(no_data).unwrap_err(), "contains no loadable bytes");
    }
}
