//! Keys as constants for firmware source, in Rust or C: what `pubkey --format rust|c` and
//! `export-key --format rust|c` print.

use zeroize::Zeroizing;

/// A language to write a constant in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Language {
    /// `pub const NAME: [u8; N] = [...];`
    Rust,
    /// `static const unsigned char name[N] = {...};`
    C,
}

/// A named array of bytes with a one-line comment.
pub struct Constant<'a> {
    /// Name of the Rust constant.
    pub rust_name: &'a str,
    /// Name of the C array.
    pub c_name: &'a str,
    /// What it is (one line, no comment markers).
    pub comment: &'a str,
    /// Its bytes.
    pub bytes: &'a [u8],
}

impl Constant<'_> {
    /// The source text. Eight bytes per line, each line ending in a comma: valid Rust and C, as
    /// rustfmt writes it. Wiped when dropped, since a device key is secret.
    pub fn render(&self, language: Language) -> Zeroizing<String> {
        let mut list = Zeroizing::new(String::new());
        for row in self.bytes.chunks(8) {
            list.push_str("   ");
            for b in row {
                list.push_str(&format!(" 0x{b:02x},"));
            }
            list.push('\n');
        }
        let n = self.bytes.len();
        Zeroizing::new(match language {
            Language::Rust => format!(
                "/// {}\npub const {}: [u8; {n}] = [\n{}];\n",
                self.comment,
                self.rust_name,
                list.as_str()
            ),
            Language::C => format!(
                "/* {} */\nstatic const unsigned char {}[{n}] = {{\n{}}};\n",
                self.comment,
                self.c_name,
                list.as_str()
            ),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rust_and_c_list_every_byte_once() {
        let bytes: Vec<u8> = (0..20).collect();
        let c = Constant {
            rust_name: "KEY",
            c_name: "key",
            comment: "A key.",
            bytes: &bytes,
        };
        let rust = c.render(Language::Rust);
        assert!(rust.starts_with("/// A key.\npub const KEY: [u8; 20] = [\n    0x00, 0x01,"));
        assert!(
            rust.ends_with("    0x10, 0x11, 0x12, 0x13,\n];\n"),
            "{}",
            rust.as_str()
        );
        assert_eq!(rust.matches("0x").count(), 20);
        let c = c.render(Language::C);
        assert!(c.starts_with("/* A key. */\nstatic const unsigned char key[20] = {\n"));
        assert!(c.ends_with(",\n};\n"));
    }
}
