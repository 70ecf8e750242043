//! What commands print: each command returns a report value that renders itself as text (for
//! people) and as JSON (for scripts, `--json`: serde, the fields in sorted order as serde_json's
//! map writes them).
//!
//! The JSON field names are a stable interface (documented in the README); add, never rename.

use std::fmt::Write as _;

use sbsfu_format::{FORMAT_VERSION, Header, PayloadLayout, Protection};
use serde::Serialize;
use serde_json::{Value, json};

use crate::error::Error;

/// A command's result, as text lines and as a JSON object.
pub trait Report: Serialize {
    /// What is printed without `--json`.
    fn text(&self) -> String;
}

/// `report` as printed: text, or with `json` one pretty-printed JSON object.
pub fn render<R: Report>(report: &R, json: bool) -> Vec<u8> {
    if json {
        let value = serde_json::to_value(report).unwrap_or(Value::Null);
        format!("{value:#}\n").into_bytes()
    } else {
        report.text().into_bytes()
    }
}

/// A failure as a JSON object, for `--json` callers.
pub fn json_error(e: &Error) -> Vec<u8> {
    let value = json!({"ok": false, "error": e.to_string(), "exit_code": e.exit_code()});
    format!("{value:#}\n").into_bytes()
}

/// Bytes as lower-case hex, as every id prints.
pub fn hex(bytes: &[u8]) -> String {
    sbsfu_format::Hex(bytes).to_string()
}

/// Appends `  name             value` (the aligned lines every report uses).
pub fn line(out: &mut String, name: &str, value: impl std::fmt::Display) {
    let _ = writeln!(out, "  {name:<17}{value}");
}

/// A container header's fields, as `sign`, `inspect` and `verify` show them.
#[derive(Serialize)]
pub struct HeaderFields {
    format_version: u16,
    header_len: usize,
    signer_key_id: String,
    target: String,
    version: String,
    security_counter: u32,
    region: String,
    load_address: u32,
    image_len: u32,
    image_sha256: String,
    chunk_size: u32,
    chunk_count: Option<u32>,
    protection: &'static str,
    device_key_id: Option<String>,
    /// HPKE only: the key ids of the devices' X25519 keys the container is encrypted to.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    recipient_key_ids: Vec<String>,
    container_len: Option<u64>,
    #[serde(skip)]
    header: Header,
}

impl HeaderFields {
    /// The fields of `header`, whose encoding is `header_len` bytes long.
    pub fn new(header: &Header, header_len: usize) -> Self {
        let layout = PayloadLayout::of(header).ok();
        Self {
            format_version: FORMAT_VERSION,
            header_len,
            signer_key_id: header.signer.to_string(),
            target: header.target.to_string(),
            version: header.version.to_string(),
            security_counter: header.security_counter,
            region: header.region.to_string(),
            load_address: header.load_address,
            image_len: header.image_len,
            image_sha256: hex(&header.digest),
            chunk_size: header.chunk_size,
            chunk_count: layout.map(|l| l.chunk_count()),
            protection: match header.protection {
                Protection::SignedOnly { .. } => "signed-only",
                Protection::Aes256Gcm(_) => "aes-256-gcm",
                Protection::Hpke(_) => "hpke-x25519-aes-256-gcm",
            },
            device_key_id: header.device_key().map(|k| k.to_string()),
            recipient_key_ids: header.recipient_key_ids().map(|k| k.to_string()).collect(),
            container_len: layout.map(|l| l.container_len(header_len)),
            header: *header,
        }
    }

    /// The device class the header names.
    pub fn target(&self) -> &str {
        &self.target
    }

    /// The header's fields as aligned `name  value` lines.
    pub fn lines(&self) -> String {
        let h = &self.header;
        let mut s = String::new();
        line(&mut s, "format version", self.format_version);
        line(&mut s, "header", format!("{} bytes", self.header_len));
        line(&mut s, "signer key id", &self.signer_key_id);
        line(&mut s, "target", &self.target);
        line(&mut s, "version", &self.version);
        line(&mut s, "security counter", self.security_counter);
        line(&mut s, "region", &self.region);
        line(
            &mut s,
            "load address",
            format!("{:#010x}", self.load_address),
        );
        line(&mut s, "image", format!("{} bytes", self.image_len));
        line(&mut s, "image sha256", &self.image_sha256);
        match self.chunk_count {
            Some(n) => line(&mut s, "chunks", format!("{n} of {} bytes", h.chunk_size)),
            None => line(
                &mut s,
                "chunks",
                format!("{} bytes each (invalid)", h.chunk_size),
            ),
        }
        match &h.protection {
            Protection::SignedOnly { chain_head } => {
                line(&mut s, "protection", "signed only (SHA-256 chunk chain)");
                line(&mut s, "chain head", hex(chain_head));
            }
            Protection::Aes256Gcm(e) => {
                line(&mut s, "protection", "AES-256-GCM STREAM");
                line(&mut s, "device key id", e.device_key);
                line(&mut s, "nonce prefix", hex(&e.nonce_prefix));
            }
            Protection::Hpke(e) => {
                line(
                    &mut s,
                    "protection",
                    "AES-256-GCM STREAM, key to X25519 recipients (HPKE)",
                );
                line(&mut s, "recipients", self.recipient_key_ids.join(" "));
                line(&mut s, "nonce prefix", hex(&e.nonce_prefix));
            }
        }
        if let Some(len) = self.container_len {
            line(
                &mut s,
                "container",
                format!(
                    "{len} bytes ({} bytes of overhead)",
                    len.saturating_sub(u64::from(h.image_len))
                ),
            );
        }
        s
    }
}
