//! `sbsfu inspect`: the head of a container, parsed strictly, nothing verified.

use std::fs::File;
use std::io::Read;
use std::path::Path;

use sbsfu_format::PayloadLayout;
use sbsfu_format::{MAX_HEAD_LEN, SignedHeader};

use crate::error::{Error, Result};

/// A parsed container head and how the file's length compares with what it declares.
pub struct Inspected {
    /// The parsed head.
    pub head: SignedHeader,
    /// Actual file length.
    pub file_len: u64,
    /// Length the header declares.
    pub declared_len: u64,
}

/// Reads and parses the head of the container at `path`.
pub fn read_head(path: &Path) -> Result<(SignedHeader, u64)> {
    let mut file = File::open(path).map_err(|e| Error::io(path, e))?;
    let file_len = file.metadata().map_err(|e| Error::io(path, e))?.len();
    let mut buf = Vec::with_capacity(MAX_HEAD_LEN);
    file.by_ref()
        .take(MAX_HEAD_LEN as u64)
        .read_to_end(&mut buf)
        .map_err(|e| Error::io(path, e))?;
    let (head, _) = SignedHeader::parse(&buf).map_err(|e| Error::rejected(path, e))?;
    Ok((head, file_len))
}

/// `inspect`: parse the head and compare lengths.
pub fn inspect(path: &Path) -> Result<Inspected> {
    let (head, file_len) = read_head(path)?;
    let declared_len = PayloadLayout::of(&head.header)
        .map_err(|e| Error::rejected(path, e))?
        .container_len(head.message.header_bytes().len());
    Ok(Inspected {
        head,
        file_len,
        declared_len,
    })
}
