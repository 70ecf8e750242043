//! Bytes shown as lowercase hex: how key ids, container ids and digests print everywhere.

use core::fmt;

/// Displays its bytes as lowercase hex, two digits a byte, without allocating.
#[derive(Clone, Copy)]
pub struct Hex<'a>(pub &'a [u8]);

impl fmt::Display for Hex<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.iter().try_for_each(|b| write!(f, "{b:02x}"))
    }
}

/// Implements `Display` (lowercase hex) and `Debug` (`Name(hex)`) for an id newtype over a
/// byte array: how every id prints.
macro_rules! hex_id_fmt {
    ($id:ident) => {
        impl core::fmt::Display for $id {
            fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
                core::fmt::Display::fmt(&$crate::Hex(&self.0), f)
            }
        }

        impl core::fmt::Debug for $id {
            fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
                write!(f, concat!(stringify!($id), "({})"), self)
            }
        }
    };
}
pub(crate) use hex_id_fmt;

#[cfg(test)]
mod tests {
    use super::*;
    use std::format;

    #[test]
    fn two_lowercase_digits_a_byte() {
        assert_eq!(format!("{}", Hex(&[0x00, 0x0a, 0xff, 0x5c])), "000aff5c");
        assert_eq!(format!("{}", Hex(&[])), "");
    }
}
