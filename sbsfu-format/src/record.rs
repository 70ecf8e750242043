//! The per-device record: what a factory writes once into a reserved flash region (serial
//! number, the device's own key, its target, calibration bytes, user fields) and the firmware
//! reads at run time. docs/FORMAT.md, "The device record", specifies it byte by byte.
//!
//! One encoder ([`RecordFields::encode`], no allocation) and one parser ([`DeviceRecord::parse`])
//! share the field rules below, so what the host writes is exactly what the device accepts.

use sha2::{Digest, Sha256};

use crate::reader::{Reader, check_magic};
use crate::writer::Writer;
use crate::{DeviceKey, Error, KEY_ID_LEN, KeyId, MAX_TARGET_LEN, Name};

/// The eight bytes a device record starts with.
pub const RECORD_MAGIC: &[u8; 8] = b"SBSFUREC";
/// The record format version this crate writes and reads.
pub const RECORD_VERSION: u16 = 1;
/// Magic, version and total length: what a reader needs before it knows the record's size.
pub const RECORD_PREFIX_LEN: usize = 12;
/// Length of the SHA-256 checksum that ends every record.
pub const RECORD_CHECKSUM_LEN: usize = 32;
/// Longest record, checksum included: the device reads it into a buffer of this size.
pub const MAX_RECORD_LEN: usize = 1024;
/// Longest serial number (printable ASCII, no spaces).
pub const MAX_SERIAL_LEN: usize = 32;
/// Most calibration bytes.
pub const MAX_CALIBRATION_LEN: usize = 256;
/// Most user fields.
pub const MAX_FIELDS: usize = 8;
/// Longest user field name (`[A-Za-z0-9._-]`).
pub const MAX_FIELD_NAME_LEN: usize = 24;
/// Longest user field value (printable ASCII, spaces allowed).
pub const MAX_FIELD_VALUE_LEN: usize = 48;

/// The key-kind byte of an AES-256 device key.
const KIND_AES256: u8 = 1;
/// The key-kind byte of an X25519 device key.
const KIND_X25519: u8 = 2;
/// Length of a device key's secret.
const SECRET_LEN: usize = 32;

/// The largest record the field bounds allow: it must fit [`MAX_RECORD_LEN`].
const LARGEST_RECORD: usize = RECORD_PREFIX_LEN
    + 1
    + MAX_SERIAL_LEN
    + 1
    + MAX_TARGET_LEN
    + 1
    + KEY_ID_LEN
    + SECRET_LEN
    + 2
    + MAX_CALIBRATION_LEN
    + 1
    + MAX_FIELDS * (2 + MAX_FIELD_NAME_LEN + MAX_FIELD_VALUE_LEN)
    + RECORD_CHECKSUM_LEN;
const _: () = assert!(LARGEST_RECORD <= MAX_RECORD_LEN);

/// The smallest possible record: a 1-byte serial and target, no calibration, no field.
const SMALLEST_RECORD: usize =
    RECORD_PREFIX_LEN + 2 + 2 + 1 + KEY_ID_LEN + SECRET_LEN + 2 + 1 + RECORD_CHECKSUM_LEN;

/// What a factory writes into one device's record.
pub struct RecordFields<'a> {
    /// The serial number.
    pub serial: &'a str,
    /// The device class, as in container headers.
    pub target: &'a str,
    /// The device's own key.
    pub key: &'a DeviceKey,
    /// Calibration bytes (up to [`MAX_CALIBRATION_LEN`]).
    pub calibration: &'a [u8],
    /// User fields, `name=value` (up to [`MAX_FIELDS`]; names unique).
    pub fields: &'a [(&'a str, &'a str)],
}

impl RecordFields<'_> {
    /// Writes the record into `out` and returns its length. Fails with [`Error::InvalidRecord`]
    /// on a field outside its bounds, [`Error::BufferTooSmall`] when `out` is too short.
    pub fn encode(&self, out: &mut [u8]) -> Result<usize, Error> {
        check_serial(self.serial.as_bytes())?;
        Name::<MAX_TARGET_LEN>::new(self.target).map_err(|_| Error::InvalidRecord)?;
        if self.calibration.len() > MAX_CALIBRATION_LEN || self.fields.len() > MAX_FIELDS {
            return Err(Error::InvalidRecord);
        }
        let mut w = Writer::at(out, 0);
        w.put(RECORD_MAGIC)?;
        w.put(&RECORD_VERSION.to_be_bytes())?;
        w.put(&[0, 0])?; // the length, filled in below
        put_short(&mut w, self.serial.as_bytes())?;
        put_short(&mut w, self.target.as_bytes())?;
        w.put(&[key_kind(self.key)])?;
        w.put(&self.key.id().0)?;
        w.put(self.key.as_bytes())?;
        let cal_len = u16::try_from(self.calibration.len()).map_err(|_| Error::InvalidRecord)?;
        w.put(&cal_len.to_be_bytes())?;
        w.put(self.calibration)?;
        w.put(&[u8::try_from(self.fields.len()).map_err(|_| Error::InvalidRecord)?])?;
        for (i, (name, value)) in self.fields.iter().enumerate() {
            check_field(name.as_bytes(), value.as_bytes())?;
            let earlier = self.fields.get(..i).unwrap_or_default();
            if earlier.iter().any(|(n, _)| n == name) {
                return Err(Error::InvalidRecord);
            }
            put_short(&mut w, name.as_bytes())?;
            put_short(&mut w, value.as_bytes())?;
        }
        let total =
            w.at.checked_add(RECORD_CHECKSUM_LEN)
                .ok_or(Error::BufferTooSmall)?;
        let total16 = u16::try_from(total).map_err(|_| Error::InvalidRecord)?;
        w.out
            .get_mut(10..12)
            .ok_or(Error::BufferTooSmall)?
            .copy_from_slice(&total16.to_be_bytes());
        let body = w.out.get(..w.at).ok_or(Error::BufferTooSmall)?;
        let digest = Sha256::digest(body);
        w.put(&digest)?;
        Ok(w.at)
    }
}

/// A parsed device record, borrowing from the bytes it was read from. It holds the device's
/// secret key: it has no `Debug`, and the key wipes itself when dropped.
pub struct DeviceRecord<'a> {
    serial: &'a str,
    target: &'a str,
    key: DeviceKey,
    key_id: KeyId,
    calibration: &'a [u8],
    field_count: u8,
    fields: &'a [u8],
}

impl<'a> DeviceRecord<'a> {
    /// Parses exactly one record. Errors, in the order checked: [`Error::BlankRecord`] (erased
    /// flash: the prefix is all `0xFF`), [`Error::NotARecord`] (another magic),
    /// [`Error::UnsupportedVersion`], [`Error::RecordLength`] (the declared length is out of
    /// bounds or is not the length of `bytes`: trailing bytes are refused),
    /// [`Error::Truncated`], [`Error::TornRecord`] (the checksum does not match: a write that
    /// stopped half-way), [`Error::InvalidRecord`] (a field breaks its rules, or bytes are left
    /// between the last field and the checksum).
    pub fn parse(bytes: &'a [u8]) -> Result<Self, Error> {
        let declared = check_record_prefix(bytes)?;
        if declared != bytes.len() {
            return Err(if declared > bytes.len() {
                Error::Truncated
            } else {
                Error::RecordLength
            });
        }
        let split = declared
            .checked_sub(RECORD_CHECKSUM_LEN)
            .ok_or(Error::RecordLength)?;
        let (body, checksum) = bytes.split_at_checked(split).ok_or(Error::Truncated)?;
        if Sha256::digest(body).as_slice() != checksum {
            return Err(Error::TornRecord);
        }
        let mut r = Reader::new(body);
        r.take(RECORD_PREFIX_LEN)?;
        let serial = take_short(&mut r)?;
        check_serial(serial)?;
        let target = take_short(&mut r)?;
        let target = core::str::from_utf8(target).map_err(|_| Error::InvalidRecord)?;
        Name::<MAX_TARGET_LEN>::new(target).map_err(|_| Error::InvalidRecord)?;
        let [kind] = r.take_array::<1>()?;
        let key_id = KeyId(r.take_array::<KEY_ID_LEN>()?);
        let key = make_key(kind, r.take_array::<SECRET_LEN>()?)?;
        let cal_len = usize::from(r.take_u16_be()?);
        if cal_len > MAX_CALIBRATION_LEN {
            return Err(Error::InvalidRecord);
        }
        let calibration = r.take(cal_len)?;
        let [field_count] = r.take_array::<1>()?;
        if usize::from(field_count) > MAX_FIELDS {
            return Err(Error::InvalidRecord);
        }
        let fields = r.rest();
        let mut names = Fields {
            r: Reader::new(fields),
            left: field_count,
        };
        for i in 0..field_count {
            let (name, value) = names.next_checked()?;
            check_field(name.as_bytes(), value.as_bytes())?;
            let mut earlier = Fields {
                r: Reader::new(fields),
                left: i,
            };
            if earlier.any(|(n, _)| n == name) {
                return Err(Error::InvalidRecord);
            }
        }
        names.r.expect_end(Error::InvalidRecord)?;
        Ok(Self {
            // Checked above: printable ASCII.
            serial: core::str::from_utf8(serial).map_err(|_| Error::InvalidRecord)?,
            target,
            key,
            key_id,
            calibration,
            field_count,
            fields,
        })
    }

    /// The serial number.
    pub fn serial(&self) -> &'a str {
        self.serial
    }

    /// The device class the record was made for.
    pub fn target(&self) -> &'a str {
        self.target
    }

    /// The device's own key.
    pub fn device_key(&self) -> &DeviceKey {
        &self.key
    }

    /// The id of the device key, as recorded (containers for this device name it).
    pub fn key_id(&self) -> KeyId {
        self.key_id
    }

    /// The calibration bytes (may be empty).
    pub fn calibration(&self) -> &'a [u8] {
        self.calibration
    }

    /// The user fields, `(name, value)`, in the order written.
    pub fn fields(&self) -> impl Iterator<Item = (&'a str, &'a str)> + 'a {
        Fields {
            r: Reader::new(self.fields),
            left: self.field_count,
        }
    }

    /// The value of the user field `name`.
    pub fn field(&self, name: &str) -> Option<&'a str> {
        self.fields().find(|(n, _)| *n == name).map(|(_, v)| v)
    }
}

/// Checks a record's 12-byte prefix and returns the total length it declares. The device reads
/// this much first, then the rest.
pub fn check_record_prefix(bytes: &[u8]) -> Result<usize, Error> {
    let prefix = bytes.get(..RECORD_PREFIX_LEN).ok_or(Error::Truncated)?;
    if prefix.iter().all(|b| *b == 0xFF) {
        return Err(Error::BlankRecord);
    }
    check_magic(prefix, RECORD_MAGIC, Error::NotARecord)?;
    let mut r = Reader::new(prefix);
    r.take(RECORD_MAGIC.len())?;
    let version = r.take_u16_be()?;
    if version != RECORD_VERSION {
        return Err(Error::UnsupportedVersion(version));
    }
    let len = usize::from(r.take_u16_be()?);
    if !(SMALLEST_RECORD..=MAX_RECORD_LEN).contains(&len) {
        return Err(Error::RecordLength);
    }
    Ok(len)
}

fn key_kind(key: &DeviceKey) -> u8 {
    match key.kind() {
        crate::DeviceKeyKind::Aes256 => KIND_AES256,
        crate::DeviceKeyKind::X25519 => KIND_X25519,
    }
}

fn make_key(kind: u8, secret: [u8; SECRET_LEN]) -> Result<DeviceKey, Error> {
    let mut secret = secret;
    let key = match kind {
        KIND_AES256 => Ok(DeviceKey::from_bytes(secret)),
        KIND_X25519 => Ok(DeviceKey::x25519(secret)),
        _ => Err(Error::InvalidRecord),
    };
    zeroize::Zeroize::zeroize(&mut secret);
    key
}

fn check_serial(serial: &[u8]) -> Result<(), Error> {
    let ok = !serial.is_empty()
        && serial.len() <= MAX_SERIAL_LEN
        && serial.iter().all(|c| c.is_ascii_graphic());
    ok.then_some(()).ok_or(Error::InvalidRecord)
}

fn check_field(name: &[u8], value: &[u8]) -> Result<(), Error> {
    let name_ok = !name.is_empty()
        && name.len() <= MAX_FIELD_NAME_LEN
        && name
            .iter()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'.' | b'_' | b'-'));
    let value_ok = value.len() <= MAX_FIELD_VALUE_LEN
        && value.iter().all(|c| *c == b' ' || c.is_ascii_graphic());
    (name_ok && value_ok)
        .then_some(())
        .ok_or(Error::InvalidRecord)
}

/// Takes a length byte and that many bytes.
fn take_short<'a>(r: &mut Reader<'a>) -> Result<&'a [u8], Error> {
    let [len] = r.take_array::<1>()?;
    r.take(usize::from(len))
}

/// The user fields of a record, read one after the other.
struct Fields<'a> {
    r: Reader<'a>,
    left: u8,
}

impl<'a> Fields<'a> {
    fn next_checked(&mut self) -> Result<(&'a str, &'a str), Error> {
        let name = take_short(&mut self.r)?;
        let value = take_short(&mut self.r)?;
        self.left = self.left.saturating_sub(1);
        let text = |b| core::str::from_utf8(b).map_err(|_| Error::InvalidRecord);
        Ok((text(name)?, text(value)?))
    }
}

impl<'a> Iterator for Fields<'a> {
    type Item = (&'a str, &'a str);

    fn next(&mut self) -> Option<Self::Item> {
        if self.left == 0 {
            return None;
        }
        self.next_checked().ok()
    }
}

/// A length byte, then the bytes (at most 255, which every bound here is below).
fn put_short(w: &mut Writer<'_>, bytes: &[u8]) -> Result<(), Error> {
    w.put(&[u8::try_from(bytes.len()).map_err(|_| Error::InvalidRecord)?])?;
    w.put(bytes)
}

#[cfg(test)]
mod tests;
