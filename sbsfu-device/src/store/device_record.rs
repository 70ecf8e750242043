//! The per-device record a factory wrote (serial number, the device's own key, calibration,
//! user fields), read from flash by the bootloader and the application.

use embedded_storage::nor_flash::ReadNorFlash;
use sbsfu_format::{DeviceRecord, MAX_RECORD_LEN, RECORD_PREFIX_LEN, check_record_prefix};

use crate::Error;

/// Reads and checks the device record at `offset` of `flash`, into `buf` (the only RAM it
/// uses). A record made for another target is [`Error::WrongTarget`]; the format's errors say
/// what else is wrong: `BlankRecord` (erased: never provisioned), `NotARecord` or
/// `UnsupportedVersion` (foreign), `TornRecord` (the checksum does not match), `RecordLength`,
/// `InvalidRecord`. Without a record, a bootloader falls back to its compiled-in key.
pub fn device_record<'b, F: ReadNorFlash>(
    flash: &mut F,
    offset: u32,
    target: &str,
    buf: &'b mut [u8; MAX_RECORD_LEN],
) -> Result<DeviceRecord<'b>, Error> {
    let (prefix, _) = buf.split_at_mut(RECORD_PREFIX_LEN);
    flash
        .read(offset, prefix)
        .map_err(|e| Error::Flash(embedded_storage::nor_flash::NorFlashError::kind(&e)))?;
    let len = check_record_prefix(prefix)?;
    let record = buf.get_mut(..len).ok_or(Error::Truncated)?;
    flash
        .read(offset, record)
        .map_err(|e| Error::Flash(embedded_storage::nor_flash::NorFlashError::kind(&e)))?;
    let record = DeviceRecord::parse(buf.get(..len).ok_or(Error::Truncated)?)?;
    if record.target() != target {
        return Err(Error::WrongTarget);
    }
    Ok(record)
}
