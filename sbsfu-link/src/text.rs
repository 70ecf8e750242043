//! Bounded, owned, printable text carried by messages (error texts). Container ids are
//! `sbsfu_format::ContainerId`, re-exported at the crate root.

use core::fmt;

use crate::{Error, MAX_TEXT_LEN};

/// Up to [`MAX_TEXT_LEN`] bytes of printable ASCII (`0x20..=0x7E`): safe to print on any
/// terminal, since it cannot carry escape sequences.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Text {
    bytes: [u8; MAX_TEXT_LEN],
    len: u8,
}

impl Text {
    /// The empty text.
    pub const EMPTY: Self = Self {
        bytes: [0; MAX_TEXT_LEN],
        len: 0,
    };

    /// Validates received bytes: at most [`MAX_TEXT_LEN`], all printable.
    pub fn from_bytes(raw: &[u8]) -> Result<Self, Error> {
        if raw.len() > MAX_TEXT_LEN || !raw.iter().all(|c| (0x20..=0x7E).contains(c)) {
            return Err(Error::InvalidText);
        }
        let mut t = Self::EMPTY;
        t.bytes
            .get_mut(..raw.len())
            .ok_or(Error::InvalidText)?
            .copy_from_slice(raw);
        t.len = u8::try_from(raw.len()).map_err(|_| Error::InvalidText)?;
        Ok(t)
    }

    /// `s` with every unprintable byte replaced by `?`, cut to [`MAX_TEXT_LEN`] bytes.
    pub fn lossy(s: &str) -> Self {
        let mut t = Self::EMPTY;
        for (slot, &c) in t.bytes.iter_mut().zip(s.as_bytes()) {
            *slot = if (0x20..=0x7E).contains(&c) { c } else { b'?' };
            t.len = t.len.saturating_add(1);
        }
        t
    }

    /// The bytes.
    pub fn as_bytes(&self) -> &[u8] {
        self.bytes.get(..usize::from(self.len)).unwrap_or(&[])
    }

    /// The text.
    pub fn as_str(&self) -> &str {
        // Only printable ASCII is ever stored.
        core::str::from_utf8(self.as_bytes()).unwrap_or("")
    }
}

impl fmt::Debug for Text {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self.as_str(), f)
    }
}

impl fmt::Display for Text {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_is_printable_ascii_and_bounded() {
        assert_eq!(
            Text::from_bytes(b"flash error").unwrap().as_str(),
            "flash error"
        );
        for bad in [&b"bell\x07"[..], b"esc\x1b[2J", b"\xc3\xa9", &[b'a'; 65]] {
            assert_eq!(Text::from_bytes(bad), Err(Error::InvalidText), "{bad:?}");
        }
        assert!(Text::from_bytes(&[b'a'; 64]).is_ok());
        assert_eq!(Text::lossy("caf\u{e9}\n").as_str(), "caf???");
        assert_eq!(Text::lossy(&"x".repeat(100)).as_str().len(), MAX_TEXT_LEN);
    }
}
