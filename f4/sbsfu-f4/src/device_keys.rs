//! Which device keys the example bootloader (and the application's stager) unwrap content keys
//! with. [`crate::keys`] compiles in two: the class key `DEVICE_KEY` (AES-256, shared by every
//! device of the class) and a per-device X25519 key `DEVICE_X25519_KEY` that, on a provisioned
//! device, the key in its factory record (`sbsfu provision`, at [`STM32F405_RECORD`]) replaces:
//!
//! | the record | keys |
//! |---|---|
//! | valid, for this target | the record's key, and the class key |
//! | blank (erased: never provisioned) | the compiled-in development keys (class and X25519) |
//! | torn, foreign, or for another target | the class key only |
//!
//! The class key stays in every case because the factory's container in slot 0 (the image a
//! failed trial reverts to, and a damaged image is restored from) is encrypted to it when the
//! factory encrypted it at all: without it a provisioned device could not revert. A record that
//! fails its check gives no per-device key, and no compiled-in one stands in for it: the
//! confirmed image still verifies and boots (that needs no device key), and nothing encrypted
//! to the device's own key can be installed.

use embedded_storage::nor_flash::ReadNorFlash;
use sbsfu_device::boot::STM32F405_RECORD;
use sbsfu_device::format::{DeviceKey, DeviceRecord, Error as FormatError, MAX_RECORD_LEN};
use sbsfu_device::{Error, device_record};
use zeroize::Zeroize;

use crate::keys::{DEVICE_KEY, DEVICE_X25519_KEY, TARGET};
use crate::layout::offset;

/// The device keys of this device (see the module's table).
pub enum Keys {
    /// A provisioned device: the key in its record, then the class key.
    Own([DeviceKey; 2]),
    /// A device never provisioned (the record's region is erased): the compiled-in keys.
    CompiledIn([DeviceKey; 2]),
    /// A record that is there but fails its check, and why: the class key only.
    Refused(Error, [DeviceKey; 1]),
}

impl Keys {
    /// The keys, for [`sbsfu_device::boot::BootConfig::device_keys`].
    pub fn as_slice(&self) -> &[DeviceKey] {
        match self {
            Keys::Own(k) | Keys::CompiledIn(k) => k,
            Keys::Refused(_, k) => k,
        }
    }
}

/// Reads the device record from `flash` (offsets from the start of the internal flash) and
/// returns the keys to use; `seen` gets the record when there is a valid one (to say which
/// device this is). The record's 1 KiB buffer is on the stack only during this call (not
/// inlined, so that it is gone before an install runs) and wiped before it returns.
#[inline(never)]
pub fn device_keys<F: ReadNorFlash>(flash: &mut F, seen: impl FnOnce(&DeviceRecord<'_>)) -> Keys {
    let class = DeviceKey::from_bytes(DEVICE_KEY);
    let mut buf = [0u8; MAX_RECORD_LEN];
    let keys = match device_record(flash, offset(STM32F405_RECORD), TARGET, &mut buf) {
        Ok(record) => {
            seen(&record);
            Keys::Own([record.device_key().clone(), class])
        }
        Err(Error::Format(FormatError::BlankRecord)) => {
            Keys::CompiledIn([class, DeviceKey::x25519(DEVICE_X25519_KEY)])
        }
        Err(e) => Keys::Refused(e, [class]),
    };
    buf.zeroize();
    keys
}

#[cfg(test)]
mod tests {
    use embedded_storage::nor_flash::{ErrorType, NorFlashErrorKind};
    use sbsfu_device::format::{DeviceKeyKind, RecordFields};
    use std::vec::Vec;

    use super::*;
    use crate::layout::BOOTLOADER;

    /// The bootloader's sectors, as read-only flash.
    struct Rom(Vec<u8>);

    impl ErrorType for Rom {
        type Error = NorFlashErrorKind;
    }

    impl ReadNorFlash for Rom {
        const READ_SIZE: usize = 1;
        fn read(&mut self, offset: u32, bytes: &mut [u8]) -> Result<(), Self::Error> {
            let at = offset as usize;
            let from = self
                .0
                .get(at..at + bytes.len())
                .ok_or(NorFlashErrorKind::OutOfBounds)?;
            bytes.copy_from_slice(from);
            Ok(())
        }
        fn capacity(&self) -> usize {
            self.0.len()
        }
    }

    /// The bootloader's sectors holding the record of `serial` for `target`, key `key`.
    fn provisioned(serial: &str, target: &str, key: &DeviceKey) -> Rom {
        let mut flash = std::vec![0xFF; BOOTLOADER.len as usize];
        let at = offset(STM32F405_RECORD) as usize;
        let fields = RecordFields {
            serial,
            target,
            key,
            calibration: &[],
            fields: &[],
        };
        fields.encode(&mut flash[at..]).unwrap();
        Rom(flash)
    }

    #[test]
    fn a_record_gives_its_own_key_and_the_class_key() {
        let key = DeviceKey::x25519([7; 32]);
        let mut flash = provisioned("SN-0001", TARGET, &key);
        let mut serial = None;
        let keys = device_keys(&mut flash, |r| {
            serial = Some(std::string::String::from(r.serial()))
        });
        assert_eq!(serial.as_deref(), Some("SN-0001"));
        let [own, class] = keys.as_slice() else {
            panic!("not two keys")
        };
        assert_eq!(own.kind(), DeviceKeyKind::X25519);
        assert_eq!(own.as_bytes(), &[7; 32]);
        // Not the compiled-in development X25519 key: the record's replaces it.
        assert_eq!(class.kind(), DeviceKeyKind::Aes256);
        assert_eq!(class.as_bytes(), &DEVICE_KEY);
    }

    #[test]
    fn blank_record_falls_back_to_the_compiled_in_keys() {
        let mut flash = Rom(std::vec![0xFF; BOOTLOADER.len as usize]);
        let keys = device_keys(&mut flash, |_| panic!("no record"));
        assert!(matches!(keys, Keys::CompiledIn(_)));
        let ids: Vec<_> = keys.as_slice().iter().map(|k| *k.as_bytes()).collect();
        assert_eq!(ids, [DEVICE_KEY, DEVICE_X25519_KEY]);
    }

    #[test]
    fn torn_foreign_or_misdirected_record_gives_the_class_key_only() {
        let key = DeviceKey::x25519([7; 32]);
        let at = offset(STM32F405_RECORD) as usize;
        let mut torn = provisioned("SN-0001", TARGET, &key);
        torn.0[at + 20] ^= 1;
        let mut foreign = provisioned("SN-0001", TARGET, &key);
        foreign.0[at] = b'X';
        let mut other_target = provisioned("SN-0001", "stm32f407", &key);
        for (flash, why) in [
            (&mut torn, Error::Format(FormatError::TornRecord)),
            (&mut foreign, Error::Format(FormatError::NotARecord)),
            (&mut other_target, Error::WrongTarget),
        ] {
            let keys = device_keys(flash, |_| panic!("refused"));
            let [class] = keys.as_slice() else {
                panic!("not one key")
            };
            assert_eq!(class.as_bytes(), &DEVICE_KEY);
            assert!(matches!(keys, Keys::Refused(e, _) if e == why));
        }
    }
}
