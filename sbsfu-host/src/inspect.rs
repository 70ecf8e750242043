//! `sbsfu inspect`: the head of a container, parsed strictly, nothing verified.

use std::fs::File;
use std::io::Read;
use std::path::Path;

use sbsfu_format::{MAX_HEAD_LEN, PayloadLayout, SignedHeader};
use serde::Serialize;

use crate::error::{Error, Result};
use crate::report::{HeaderFields, Report, line};

/// A parsed container head and how the file's length compares with what it declares.
#[derive(Serialize)]
pub struct Inspected {
    file: String,
    file_len: u64,
    /// Always false: `inspect` verifies nothing.
    signature_verified: bool,
    #[serde(flatten)]
    fields: HeaderFields,
    #[serde(skip)]
    declared_len: u64,
}

impl Report for Inspected {
    fn text(&self) -> String {
        let length = match self.file_len.cmp(&self.declared_len) {
            std::cmp::Ordering::Equal => "matches the header",
            std::cmp::Ordering::Less => "SHORTER than the header declares (truncated)",
            std::cmp::Ordering::Greater => "LONGER than the header declares (trailing bytes)",
        };
        let mut s = format!(
            "{}: signature NOT verified (use `sbsfu verify`)\n",
            self.file
        );
        s.push_str(&self.fields.lines());
        line(&mut s, "file", format!("{} bytes, {length}", self.file_len));
        s
    }
}

/// Reads and parses the head of the container at `path`; returns it and the file's length.
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
    let header_len = head.message.header_bytes().len();
    let declared_len = PayloadLayout::of(&head.header)
        .map_err(|e| Error::rejected(path, e))?
        .container_len(header_len);
    Ok(Inspected {
        file: path.display().to_string(),
        file_len,
        signature_verified: false,
        fields: HeaderFields::new(&head.header, header_len),
        declared_len,
    })
}
