//! Short validated identifiers (target and region names) stored without allocation.

use core::fmt;

use crate::Error;

/// A name of 1 to `N` bytes from `[a-z0-9._-]`, starting with a letter or digit.
///
/// The character set keeps names printable, unambiguous in logs and file names, and free of
/// Unicode look-alikes: `stm32f405` and `app` are names, `STM32F405` and `app ` are not.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Name<const N: usize> {
    bytes: [u8; N],
    len: usize,
}

impl<const N: usize> Name<N> {
    /// Validates `s` and stores it.
    pub fn new(s: &str) -> Result<Self, Error> {
        let raw = s.as_bytes();
        let first_ok = raw
            .first()
            .is_some_and(|c| c.is_ascii_lowercase() || c.is_ascii_digit());
        let chars_ok = raw.iter().all(|c| {
            c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, b'.' | b'_' | b'-')
        });
        if !first_ok || !chars_ok || raw.len() > N {
            return Err(Error::InvalidName);
        }
        let mut bytes = [0u8; N];
        bytes
            .get_mut(..raw.len())
            .ok_or(Error::InvalidName)?
            .copy_from_slice(raw);
        Ok(Self {
            bytes,
            len: raw.len(),
        })
    }

    /// The name as a string.
    pub fn as_str(&self) -> &str {
        // Only ASCII is ever stored, so this cannot fail; fall back to "" rather than panic.
        self.bytes
            .get(..self.len)
            .and_then(|b| core::str::from_utf8(b).ok())
            .unwrap_or("")
    }
}

impl<const N: usize> fmt::Debug for Name<N> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self.as_str(), f)
    }
}

impl<const N: usize> fmt::Display for Name<N> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_plain_names() {
        for ok in ["stm32f405", "app", "a", "data-1.bin_x", "0"] {
            assert_eq!(Name::<16>::new(ok).unwrap().as_str(), ok);
        }
    }

    #[test]
    fn rejects_everything_else() {
        for bad in [
            "",
            "App",
            "app ",
            "-app",
            ".x",
            "_x",
            "é",
            "a/b",
            "a\0",
            "12345678901234567",
        ] {
            assert_eq!(Name::<16>::new(bad), Err(Error::InvalidName), "{bad:?}");
        }
        assert!(Name::<16>::new("1234567890123456").is_ok());
    }
}
