//! `sbsfu provision --batch`: one image per row of a CSV file, each device with a fresh key,
//! and `fleet.json`, the registry an update server needs (no secret). All files appear, or
//! none.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use sbsfu_format::MAX_FIELDS;
use serde::{Deserialize, Serialize};

use super::{DeviceReport, DeviceSpec, Factory, fresh_device_key, image_path};
use crate::error::{Error, Result};
use crate::output::{Output, PUBLIC, commit_all};

/// The registry's file name, in the output directory.
pub const FLEET_FILE: &str = "fleet.json";

/// `fleet.json`: what an update server knows of each device.
#[derive(Serialize, Deserialize)]
pub struct Fleet {
    /// The device class.
    pub target: String,
    /// The application version provisioned.
    pub version: String,
    /// One entry per device, in the CSV's order.
    pub devices: Vec<FleetDevice>,
}

/// One device of `fleet.json`.
#[derive(Serialize, Deserialize)]
pub struct FleetDevice {
    /// Its serial number.
    pub serial: String,
    /// The kind of its device key (`x25519`).
    pub key_type: String,
    /// Its public key, hex (what `sign --encrypt-to-fleet` encrypts to).
    pub public_key: String,
    /// Its key id, hex (what containers for it name).
    pub key_id: String,
    /// Its device class.
    pub target: String,
    /// The application version provisioned.
    pub version: String,
}

/// The X25519 public key of device `serial` in the fleet registry `path`, checked against its
/// key id (`sign --encrypt-to-fleet FLEET --serial SN`).
pub fn fleet_recipient(path: &Path, serial: &str) -> Result<[u8; 32]> {
    let bad = |reason: String| Error::Input {
        path: path.to_owned(),
        reason,
    };
    let text = std::fs::read(path).map_err(|e| Error::io(path, e))?;
    let fleet: Fleet =
        serde_json::from_slice(&text).map_err(|e| bad(format!("not a fleet registry ({e})")))?;
    let device = fleet
        .devices
        .iter()
        .find(|d| d.serial == serial)
        .ok_or_else(|| bad(format!("lists no device {serial}")))?;
    let hex = device.public_key.as_bytes();
    let mut key = [0u8; 32];
    let valid = device.key_type == "x25519"
        && hex.len() == 64
        && key.iter_mut().zip(hex.chunks(2)).all(|(k, pair)| {
            std::str::from_utf8(pair)
                .ok()
                .and_then(|p| u8::from_str_radix(p, 16).ok())
                .map(|v| *k = v)
                .is_some()
        });
    if !valid || sbsfu_format::KeyId::of_x25519(&key).to_string() != device.key_id {
        return Err(bad(format!(
            "device {serial}: its public key is not an X25519 key matching its key id"
        )));
    }
    Ok(key)
}

/// Reads `csv`, writes every device's image into `dir` and the registry; returns the devices
/// and the registry's path.
pub fn run(
    factory: &Factory,
    csv: &Path,
    dir: &Path,
    force: bool,
) -> Result<(Vec<DeviceReport>, PathBuf)> {
    let specs = read_csv(csv)?;
    std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
    let mut outputs = Vec::with_capacity(specs.len() + 1);
    let mut reports = Vec::with_capacity(specs.len());
    let mut fleet = Fleet {
        target: factory.layout.target.clone(),
        version: factory.header.version.to_string(),
        devices: Vec::with_capacity(specs.len()),
    };
    for spec in &specs {
        let key = fresh_device_key()?;
        let path = image_path(dir, &spec.serial);
        outputs.push(factory.device_output(spec, &key, &path, force)?);
        let id = key.id().to_string();
        fleet.devices.push(FleetDevice {
            serial: spec.serial.clone(),
            key_type: "x25519".into(),
            public_key: key
                .public_key()
                .map(|k| crate::report::hex(&k))
                .unwrap_or_default(),
            key_id: id.clone(),
            target: fleet.target.clone(),
            version: fleet.version.clone(),
        });
        reports.push(DeviceReport {
            serial: spec.serial.clone(),
            key_id: id,
            image: path.display().to_string(),
        });
    }
    let fleet_path = dir.join(FLEET_FILE);
    let mut out = Output::create(&fleet_path, force, PUBLIC)?;
    let json = serde_json::to_string_pretty(&fleet).map_err(|e| Error::Usage(e.to_string()))?;
    out.write_all(format!("{json}\n").as_bytes())?;
    outputs.push(out);
    commit_all(outputs)?;
    Ok((reports, fleet_path))
}

/// The devices of a CSV file: a header line `serial[,NAME]...`, then one row per device with
/// as many columns. Serial numbers name files: `[A-Za-z0-9._-]`, unique.
fn read_csv(path: &Path) -> Result<Vec<DeviceSpec>> {
    let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
    let bad = |line: usize, reason: String| Error::Input {
        path: path.to_owned(),
        reason: format!("line {line}: {reason}"),
    };
    let mut lines = text
        .lines()
        .enumerate()
        .map(|(i, l)| (i + 1, l.trim_end_matches('\r')))
        .filter(|(_, l)| !l.trim().is_empty() && !l.starts_with('#'));
    let (n, header) = lines
        .next()
        .ok_or_else(|| bad(1, "no header line (serial[,NAME]...)".into()))?;
    let names: Vec<&str> = header.split(',').map(str::trim).collect();
    if names.first() != Some(&"serial") {
        return Err(bad(
            n,
            "the header line must start with the column serial".into(),
        ));
    }
    let names = &names[1..];
    if names.len() > MAX_FIELDS {
        return Err(bad(n, format!("more than {MAX_FIELDS} field columns")));
    }
    let mut seen: HashMap<String, usize> = HashMap::new();
    let mut specs = Vec::new();
    for (n, row) in lines {
        if row.contains('"') {
            return Err(bad(n, "quoted values are not supported".into()));
        }
        let cols: Vec<&str> = row.split(',').map(str::trim).collect();
        if cols.len() != names.len() + 1 {
            return Err(bad(
                n,
                format!("{} columns, the header has {}", cols.len(), names.len() + 1),
            ));
        }
        let serial = cols[0];
        let file_safe = !serial.is_empty()
            && serial
                .bytes()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'.' | b'_' | b'-'))
            && !serial.starts_with('.');
        if !file_safe {
            return Err(bad(
                n,
                format!("serial {serial:?} is not [A-Za-z0-9._-] (it names a file)"),
            ));
        }
        if let Some(first) = seen.insert(serial.to_owned(), n) {
            return Err(bad(n, format!("serial {serial} repeats line {first}")));
        }
        specs.push(DeviceSpec {
            serial: serial.to_owned(),
            fields: names
                .iter()
                .zip(&cols[1..])
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect(),
            calibration: Vec::new(),
        });
    }
    if specs.is_empty() {
        return Err(bad(n, "no device rows".into()));
    }
    Ok(specs)
}
