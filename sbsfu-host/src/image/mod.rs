//! Input images for `sign`: raw binary, Intel HEX, Motorola S-records or ELF, told apart by
//! their content ([`detect`]).
//!
//! Every input becomes runs of bytes at addresses ([`extents`]): a raw binary is one run at
//! `--load-address`; a HEX or S-record file, its data records ([`hex`], [`srec`]); an ELF, its
//! allocated sections at their load addresses ([`elf`]). The image runs from the lowest address
//! to the end of the highest, every gap filled with the erased-flash value 0xFF (what the bytes
//! would read as on a device had they never been programmed), optionally only inside an address
//! window. Memory is bounded by the data, not the span: a raw binary and an ELF are read from the
//! file when sealed; the data bytes of a text file are held in memory, never its gaps.

pub mod detect;
pub mod elf;
pub mod extents;
pub mod hex;
pub mod records;
pub mod srec;

use std::fs::File;
use std::io::{self, BufReader};
use std::path::Path;

use object::ReadCache;
use sbsfu_format::ReadAt;

use crate::cli::InputFormat;
use crate::error::{Error, Result};
use detect::{Detected, HEAD_LEN};
use extents::{Extent, LeftOut, Origin, Placed, Window, lay_out};

/// Value of erased NOR flash: fills the gaps between loaded ranges.
pub const ERASED: u8 = 0xFF;

/// What an input file turned out to be.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Raw binary: the image itself.
    Bin,
    /// Intel HEX.
    Hex,
    /// Motorola S-records.
    Srec,
    /// ELF executable.
    Elf,
}

impl Kind {
    /// Name as shown to users and in JSON.
    pub fn name(self) -> &'static str {
        match self {
            Kind::Bin => "bin",
            Kind::Hex => "hex",
            Kind::Srec => "srec",
            Kind::Elf => "elf",
        }
    }
}

/// How to read an input.
#[derive(Debug, Clone, Copy)]
pub struct Options {
    /// What it holds (or `Auto`).
    pub format: InputFormat,
    /// `--load-address`: where a raw binary goes; for the other formats, a check.
    pub load_address: Option<u32>,
    /// `--address-range`: keep only the data inside.
    pub window: Option<Window>,
    /// `--max-span`: the most the image's gaps may add up to.
    pub max_span: u64,
}

/// Where the bytes of an image are read from.
pub enum Source {
    /// The input file (raw binary, ELF).
    File(File),
    /// The data records of a text file.
    Memory(Vec<u8>),
}

impl ReadAt for Source {
    fn read_exact_at(&self, buf: &mut [u8], offset: u64) -> io::Result<()> {
        match self {
            Source::File(f) => f.read_exact_at(buf, offset),
            Source::Memory(v) => v.read_exact_at(buf, offset),
        }
    }
}

/// An input image, ready to be sealed.
pub struct Image {
    kind: Kind,
    placed: Placed<Source>,
}

impl Image {
    /// What the input was.
    pub fn kind(&self) -> Kind {
        self.kind
    }

    /// Image length in bytes (never 0).
    pub fn len(&self) -> u64 {
        self.placed.layout().len
    }

    /// Address of the image's first byte.
    pub fn load_address(&self) -> u32 {
        self.placed.layout().load_address
    }

    /// What the input holds that is not in the image.
    pub fn left_out(&self) -> &[LeftOut] {
        &self.placed.layout().left_out
    }

    /// The image, readable at any offset.
    pub fn reader(&self) -> &dyn ReadAt {
        &self.placed
    }
}

/// Opens `path` as `options` say. Input errors name the file; a raw binary without
/// `--load-address`, or a `--load-address` that disagrees with the file, is a usage error.
pub fn open(path: &Path, options: &Options) -> Result<Image> {
    let file = File::open(path).map_err(|e| Error::io(path, e))?;
    let file_len = file.metadata().map_err(|e| Error::io(path, e))?.len();
    let bad = |reason: String| input(path, reason);
    let kind = match options.format {
        InputFormat::Bin => Kind::Bin,
        InputFormat::Hex => Kind::Hex,
        InputFormat::Srec => Kind::Srec,
        InputFormat::Elf => Kind::Elf,
        InputFormat::Auto => {
            let mut head = vec![0u8; file_len.min(HEAD_LEN as u64) as usize];
            file.read_exact_at(&mut head, 0)
                .map_err(|e| Error::io(path, e))?;
            match detect::detect(&head) {
                Detected::Elf => Kind::Elf,
                Detected::Hex => Kind::Hex,
                Detected::Srec => Kind::Srec,
                Detected::Bin => Kind::Bin,
                Detected::Text(line) => {
                    return Err(bad(format!(
                        "looks like text, not Intel HEX, S-records or ELF (its first line is \
                         {line:?}); give --input-format bin to sign its bytes as a raw binary"
                    )));
                }
            }
        }
    };
    let (source, extents, left_out) = match kind {
        Kind::Bin => {
            if file_len == 0 {
                return Err(bad("is empty: there is no image to sign".into()));
            }
            let address = options.load_address.ok_or_else(|| {
                Error::Usage("a raw binary carries no address: give --load-address".into())
            })?;
            let whole = Extent {
                address: address.into(),
                len: file_len,
                offset: 0,
                origin: Origin::File,
            };
            (Source::File(file), vec![whole], Vec::new())
        }
        Kind::Hex | Kind::Srec => {
            let reader = BufReader::with_capacity(1 << 16, file);
            let data = if kind == Kind::Hex {
                hex::read(reader)
            } else {
                srec::read(reader)
            }
            .map_err(bad)?;
            (Source::Memory(data.bytes), data.extents, Vec::new())
        }
        Kind::Elf => {
            let cache = ReadCache::new(&file);
            let (extents, left_out) = elf::read(&cache).map_err(|m| bad(format!("ELF: {m}")))?;
            drop(cache);
            (Source::File(file), extents, left_out)
        }
    };
    let source_len = match &source {
        Source::File(_) => file_len,
        Source::Memory(v) => v.len() as u64,
    };
    let layout = lay_out(extents, options.window, options.max_span, left_out).map_err(bad)?;
    if let Some(given) = options.load_address
        && kind != Kind::Bin
        && given != layout.load_address
    {
        return Err(Error::Usage(format!(
            "--load-address {given:#010x} disagrees with {}, which loads at {:#010x}",
            path.display(),
            layout.load_address
        )));
    }
    let placed = Placed::new(source, source_len, layout).map_err(bad)?;
    Ok(Image { kind, placed })
}

fn input(path: &Path, reason: impl Into<String>) -> Error {
    Error::Input {
        path: path.to_owned(),
        reason: reason.into(),
    }
}

#[cfg(test)]
pub(crate) mod tests {
    /// The default of `--max-span` (`64M` in the command line).
    const DEFAULT_MAX_SPAN: u64 = 64 << 20;
    use super::*;
    use records::Data;

    /// The flat image of a text file's data: load address and bytes.
    pub fn flat(data: Data) -> (u32, Vec<u8>) {
        let layout = lay_out(data.extents, None, DEFAULT_MAX_SPAN, Vec::new()).unwrap();
        let len = data.bytes.len() as u64;
        let p = Placed::new(data.bytes, len, layout).unwrap();
        let mut out = vec![0u8; p.layout().len as usize];
        p.read_exact_at(&mut out, 0).unwrap();
        (p.layout().load_address, out)
    }

    fn options(format: InputFormat, load_address: Option<u32>) -> Options {
        Options {
            format,
            load_address,
            window: None,
            max_span: DEFAULT_MAX_SPAN,
        }
    }

    #[test]
    fn empty_and_text_inputs_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("x");
        std::fs::write(&p, b"").unwrap();
        let e = open(&p, &options(InputFormat::Auto, Some(0)))
            .err()
            .unwrap();
        assert!(
            e.to_string()
                .ends_with(": is empty: there is no image to sign"),
            "{e}"
        );
        assert_eq!(e.exit_code(), 1);
        std::fs::write(&p, b"\nhello\n").unwrap();
        let e = open(&p, &options(InputFormat::Auto, Some(0)))
            .err()
            .unwrap();
        assert!(e.to_string().contains("looks like text"), "{e}");
        let ok = open(&p, &options(InputFormat::Bin, Some(0x100))).unwrap();
        assert_eq!(
            (ok.kind(), ok.load_address(), ok.len()),
            (Kind::Bin, 0x100, 7)
        );
        let e = open(&p, &options(InputFormat::Bin, None)).err().unwrap();
        assert_eq!(e.exit_code(), 2);
    }
}
