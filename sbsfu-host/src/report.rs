//! How a header is shown: human lines and JSON, shared by `sign`, `inspect` and `verify`.
//!
//! The JSON field names are a stable interface (documented in the README); add, never rename.

use std::fmt::Write as _;

use sbsfu_format::FORMAT_VERSION;
use sbsfu_format::Header;
use sbsfu_format::PayloadLayout;
use sbsfu_format::Protection;
use serde_json::{Map, Value, json};

fn hex(bytes: &[u8]) -> String {
    bytes.iter().fold(String::new(), |mut s, b| {
        let _ = write!(s, "{b:02x}");
        s
    })
}

/// Name of the protection scheme as shown to users.
pub fn protection_name(h: &Header) -> &'static str {
    match h.protection {
        Protection::SignedOnly { .. } => "signed-only",
        Protection::Aes256Gcm(_) => "aes-256-gcm",
    }
}

/// The header's fields as a JSON object.
pub fn header_json(h: &Header, header_len: usize) -> Map<String, Value> {
    let layout = PayloadLayout::of(h).ok();
    let mut m = Map::new();
    m.insert("format_version".into(), json!(FORMAT_VERSION));
    m.insert("header_len".into(), json!(header_len));
    m.insert("signer_key_id".into(), json!(h.signer.to_string()));
    m.insert("target".into(), json!(h.target.as_str()));
    m.insert("version".into(), json!(h.version.to_string()));
    m.insert("security_counter".into(), json!(h.security_counter));
    m.insert("region".into(), json!(h.region.as_str()));
    m.insert("load_address".into(), json!(h.load_address));
    m.insert("image_len".into(), json!(h.image_len));
    m.insert("image_sha256".into(), json!(hex(&h.digest)));
    m.insert("chunk_size".into(), json!(h.chunk_size));
    m.insert("chunk_count".into(), json!(layout.map(|l| l.chunk_count())));
    m.insert("protection".into(), json!(protection_name(h)));
    m.insert(
        "device_key_id".into(),
        json!(h.device_key().map(|k| k.to_string())),
    );
    m.insert(
        "container_len".into(),
        json!(layout.map(|l| l.container_len(header_len))),
    );
    m
}

/// The header's fields as aligned `name  value` lines.
pub fn header_lines(h: &Header, header_len: usize) -> String {
    let layout = PayloadLayout::of(h).ok();
    let mut s = String::new();
    let mut line = |k: &str, v: String| {
        let _ = writeln!(s, "  {k:<17}{v}");
    };
    line("format version", FORMAT_VERSION.to_string());
    line("header", format!("{header_len} bytes"));
    line("signer key id", h.signer.to_string());
    line("target", h.target.to_string());
    line("version", h.version.to_string());
    line("security counter", h.security_counter.to_string());
    line("region", h.region.to_string());
    line("load address", format!("{:#010x}", h.load_address));
    line("image", format!("{} bytes", h.image_len));
    line("image sha256", hex(&h.digest));
    match layout {
        Some(l) => line(
            "chunks",
            format!("{} of {} bytes", l.chunk_count(), h.chunk_size),
        ),
        None => line("chunks", format!("{} bytes each (invalid)", h.chunk_size)),
    }
    match &h.protection {
        Protection::SignedOnly { chain_head } => {
            line("protection", "signed only (SHA-256 chunk chain)".into());
            line("chain head", hex(chain_head));
        }
        Protection::Aes256Gcm(e) => {
            line("protection", "AES-256-GCM STREAM".into());
            line("device key id", e.device_key.to_string());
            line("nonce prefix", hex(&e.nonce_prefix));
        }
    }
    if let Some(l) = layout {
        line(
            "container",
            format!(
                "{} bytes ({} bytes of overhead)",
                l.container_len(header_len),
                l.container_len(header_len)
                    .saturating_sub(u64::from(h.image_len))
            ),
        );
    }
    s
}
