//! PEM as people and tools write it (RFC 7468's lax parsing): base64 of any line width, a single
//! line, CRLF, whitespace anywhere in the body, explanatory text before the `BEGIN` line. The
//! body is re-wrapped and then decoded by the strict (constant-time) decoder, so a secret key's
//! base64 is never decoded by a second, home-made decoder.

use ::pkcs8::der::pem;
use zeroize::Zeroizing;

/// Why a text is not PEM.
#[derive(Debug, PartialEq, Eq)]
pub enum PemError {
    /// There is no `-----BEGIN ...-----` line.
    NotPem,
    /// A PEM, but damaged; the reason.
    Invalid(String),
}

/// The label and the decoded bytes of the first PEM block in `text`.
pub fn decode(text: &str) -> Result<(String, Zeroizing<Vec<u8>>), PemError> {
    const BEGIN: &str = "-----BEGIN ";
    const DASHES: &str = "-----";
    let invalid = |m: &str| PemError::Invalid(m.to_owned());
    let start = text.find(BEGIN).ok_or(PemError::NotPem)?;
    let after_begin = text.get(start + BEGIN.len()..).unwrap_or_default();
    let label_end = after_begin
        .find(DASHES)
        .ok_or_else(|| invalid("the BEGIN line has no closing dashes"))?;
    let label = after_begin.get(..label_end).unwrap_or_default();
    if label.contains(['\n', '\r']) {
        return Err(invalid("the BEGIN line has no closing dashes"));
    }
    let rest = after_begin
        .get(label_end + DASHES.len()..)
        .unwrap_or_default();
    let end_line = format!("-----END {label}-----");
    let body = rest
        .find(&end_line)
        .and_then(|i| rest.get(..i))
        .ok_or_else(|| PemError::Invalid(format!("no `{end_line}` line (truncated file?)")))?;
    if body.contains(':') {
        return Err(invalid(
            "it has RFC 1421 headers (OpenSSL's legacy `Proc-Type: 4,ENCRYPTED`); convert it \
             with `openssl pkcs8 -topk8`",
        ));
    }
    let base64: Zeroizing<String> =
        Zeroizing::new(body.chars().filter(|c| !c.is_ascii_whitespace()).collect());
    let mut canonical = Zeroizing::new(String::with_capacity(base64.len() * 65 / 64 + 80));
    canonical.push_str(&format!("{BEGIN}{label}{DASHES}\n"));
    for line in base64.as_bytes().chunks(64) {
        canonical.push_str(std::str::from_utf8(line).map_err(|_| invalid("not base64"))?);
        canonical.push('\n');
    }
    canonical.push_str(&end_line);
    canonical.push('\n');
    let (decoded_label, bytes) =
        pem::decode_vec(canonical.as_bytes()).map_err(|e| PemError::Invalid(e.to_string()))?;
    debug_assert_eq!(decoded_label, label);
    Ok((label.to_owned(), Zeroizing::new(bytes)))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `openssl genpkey -algorithm ed25519`, as OpenSSL writes it.
    const KEY: &str = "-----BEGIN PRIVATE KEY-----\n\
                       MC4CAQAwBQYDK2VwBCIEIBohbeEGgkIMEfLpNbBSCGQXIwE9Sbon6TLjLVNUe5Pn\n\
                       -----END PRIVATE KEY-----\n";

    #[test]
    fn any_line_width_one_line_and_crlf() {
        let (label, der) = decode(KEY).unwrap();
        assert_eq!(label, "PRIVATE KEY");
        assert_eq!(der.len(), 48);
        let b64 = "MC4CAQAwBQYDK2VwBCIEIBohbeEGgkIMEfLpNbBSCGQXIwE9Sbon6TLjLVNUe5Pn";
        let wrap = |width: usize, eol: &str| -> String {
            let lines: Vec<&str> = b64
                .as_bytes()
                .chunks(width)
                .map(|c| std::str::from_utf8(c).unwrap())
                .collect();
            format!(
                "-----BEGIN PRIVATE KEY-----{eol}{}{eol}-----END PRIVATE KEY-----{eol}",
                lines.join(eol)
            )
        };
        for (width, eol) in [
            (76, "\n"),
            (10, "\n"),
            (1, "\r\n"),
            (64, "\r\n"),
            (200, "\n"),
        ] {
            assert_eq!(decode(&wrap(width, eol)).unwrap().1, der, "{width}");
        }
        // The whole block on one line, with text before it.
        let one = format!("my key: -----BEGIN PRIVATE KEY-----{b64}-----END PRIVATE KEY-----");
        assert_eq!(decode(&one).unwrap().1, der);
        // Spaces inside the base64 (RFC 7468 section 2: lax parsers skip whitespace).
        let spaced = KEY.replace("MC4C", "MC4C \t ");
        assert_eq!(decode(&spaced).unwrap().1, der);
    }

    #[test]
    fn damage_is_named() {
        assert_eq!(decode("hello"), Err(PemError::NotPem));
        let cut = KEY.replace("-----END PRIVATE KEY-----\n", "");
        assert!(
            matches!(decode(&cut), Err(PemError::Invalid(m)) if m.contains("no `-----END PRIVATE KEY-----` line"))
        );
        let bad = KEY.replace("MC4C", "M!4C");
        assert!(matches!(decode(&bad), Err(PemError::Invalid(_))));
        let legacy = "-----BEGIN EC PRIVATE KEY-----\nProc-Type: 4,ENCRYPTED\n\nAAAA\n-----END EC PRIVATE KEY-----\n";
        assert!(matches!(decode(legacy), Err(PemError::Invalid(m)) if m.contains("Proc-Type")));
        let mismatch = KEY.replace("END PRIVATE", "END PUBLIC");
        assert!(matches!(decode(&mismatch), Err(PemError::Invalid(_))));
    }
}
