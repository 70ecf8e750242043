//! `sbsfu provision`: each device's complete factory image (bootloader, the application
//! already installed, its container in slot 0 and a confirmed boot state, the device record
//! with a fresh key) and, for a batch, the fleet registry.
//!
//! The application is installed by the device crate's own boot manager on an in-memory NOR
//! flash with the layout's sector map: the first reset finds a confirmed image and nothing to
//! install. The install does not depend on the device, so a batch installs once and stamps
//! each device's record into a copy.

mod batch;
mod hex;
mod layout;

use std::cell::RefCell;
use std::path::{Path, PathBuf};

use sbsfu_device::MemFlash;
use sbsfu_device::boot::{BootConfig, BootFlash, BootManager};
use sbsfu_device::{Error as DeviceError, Sectors, TrustedKey};
use sbsfu_format::{
    DeviceKey, Header, KeyId, MAX_CHUNK_SIZE, MAX_RECORD_LEN, RecordFields, SignedHeader,
};
use serde::Serialize;

use crate::cli::{InputFormat, ProvisionArgs};
use crate::error::{Error, Result};
use crate::image::{self, Options};
use crate::keys::{random_bytes, read_device_key};
use crate::output::{Output, SECRET};
use crate::passphrase::Passphrase;
use crate::report::{Report, line};

pub use batch::fleet_recipient;
pub use layout::FactoryLayout;

/// The largest chunk a container may use: the boot manager's buffer.
const CHUNK: usize = MAX_CHUNK_SIZE as usize;

/// The in-memory flash: 4-byte writes, sectors in multiples of 1 KiB.
type Flash = MemFlash<4, 1024>;

/// What `provision` reports.
#[derive(Serialize)]
pub struct Provisioned {
    /// Always true (a failure is an error).
    pub ok: bool,
    /// The device class.
    pub target: String,
    /// The application version installed.
    pub version: String,
    /// Its security counter.
    pub security_counter: u32,
    /// One entry per device.
    pub devices: Vec<DeviceReport>,
    /// The fleet registry written (batch only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fleet: Option<String>,
}

/// One device's image.
#[derive(Serialize)]
pub struct DeviceReport {
    /// Its serial number.
    pub serial: String,
    /// The id of its device key.
    pub key_id: String,
    /// The factory image written.
    pub image: String,
}

impl Report for Provisioned {
    fn text(&self) -> String {
        let mut out = format!(
            "provisioned {} device(s) for {} with version {} (security counter {})\n",
            self.devices.len(),
            self.target,
            self.version,
            self.security_counter
        );
        for d in self.devices.iter().take(20) {
            line(
                &mut out,
                &d.serial,
                format!("{} (key id {})", d.image, d.key_id),
            );
        }
        if self.devices.len() > 20 {
            line(&mut out, "...", format!("{} more", self.devices.len() - 20));
        }
        if let Some(f) = &self.fleet {
            line(&mut out, "fleet registry", f);
        }
        out
    }
}

/// One device to provision: its serial number and user fields.
pub struct DeviceSpec {
    /// Its serial number.
    pub serial: String,
    /// Its user fields, `name=value`.
    pub fields: Vec<(String, String)>,
    /// Its calibration bytes.
    pub calibration: Vec<u8>,
}

/// The image every device of a run shares (before its record), and what went into it.
pub struct Factory {
    /// Where things go.
    pub layout: FactoryLayout,
    /// The whole flash, with the application installed.
    pub base: Vec<u8>,
    /// The installed application's header.
    pub header: Header,
}

/// `sbsfu provision`.
pub fn provision(args: &ProvisionArgs, pass: &Passphrase) -> Result<Provisioned> {
    let layout = match &args.layout {
        Some(p) => FactoryLayout::read(p)?,
        None => FactoryLayout::stm32f405(),
    };
    let decrypt_keys = match &args.decrypt_key {
        Some(p) => vec![read_device_key(p, pass)?],
        None => Vec::new(),
    };
    let factory = Factory::build(layout, &args.bootloader, &args.container, &decrypt_keys)?;
    let mut report = Provisioned {
        ok: true,
        target: factory.layout.target.clone(),
        version: factory.header.version.to_string(),
        security_counter: factory.header.security_counter,
        devices: Vec::new(),
        fleet: None,
    };
    match (&args.serial, &args.out, &args.batch, &args.out_dir) {
        (Some(serial), Some(out), None, None) => {
            let fields = args
                .fields
                .iter()
                .map(|f| parse_field(f))
                .collect::<Result<Vec<_>>>()?;
            let calibration = match &args.calibration {
                Some(p) => std::fs::read(p).map_err(|e| Error::io(p, e))?,
                None => Vec::new(),
            };
            let spec = DeviceSpec {
                serial: serial.clone(),
                fields,
                calibration,
            };
            let key = fresh_device_key()?;
            let output = factory.device_output(&spec, &key, out, args.force)?;
            output.commit()?;
            report.devices.push(DeviceReport {
                serial: spec.serial,
                key_id: key.id().to_string(),
                image: out.display().to_string(),
            });
        }
        (None, None, Some(csv), Some(dir)) => {
            let (devices, fleet) = batch::run(&factory, csv, dir, args.force)?;
            report.devices = devices;
            report.fleet = Some(fleet.display().to_string());
        }
        _ => {
            return Err(Error::Usage(
                "give either --serial SN --out FILE or --batch CSV --out-dir DIR".into(),
            ));
        }
    }
    Ok(report)
}

/// `NAME=VALUE`.
fn parse_field(f: &str) -> Result<(String, String)> {
    f.split_once('=')
        .map(|(n, v)| (n.to_owned(), v.to_owned()))
        .ok_or_else(|| Error::Usage(format!("--field {f:?} is not NAME=VALUE")))
}

/// A fresh device key for one device, from the OS random number generator.
pub fn fresh_device_key() -> Result<DeviceKey> {
    let secret = zeroize::Zeroizing::new(
        random_bytes::<32>().map_err(|e| Error::io(Path::new("(random)"), e))?,
    );
    Ok(DeviceKey::x25519(*secret))
}

impl Factory {
    /// Installs `container` with the device's own boot manager on a flash holding
    /// `bootloader`, after checking both against `layout`.
    pub fn build(
        layout: FactoryLayout,
        bootloader: &Path,
        container: &Path,
        decrypt_keys: &[DeviceKey],
    ) -> Result<Self> {
        let boot = read_bootloader(&layout, bootloader)?;
        let bytes = std::fs::read(container).map_err(|e| Error::io(container, e))?;
        let rejected = |e: DeviceError| Error::rejected(container, e);
        let (head, _) = SignedHeader::parse(&bytes).map_err(|e| Error::rejected(container, e))?;
        let header = head.header;
        if header.target.as_str() != layout.target {
            return Err(rejected(DeviceError::WrongTarget));
        }
        if header.load_address != layout.boot.active.address {
            return Err(rejected(DeviceError::WrongLoadAddress {
                expected: layout.boot.active.address,
                found: header.load_address,
            }));
        }
        if bytes.len() as u64 > u64::from(layout.boot.slots[0].len) {
            return Err(Error::Input {
                path: container.to_owned(),
                reason: format!(
                    "is {} bytes, container slot 0 holds {}",
                    bytes.len(),
                    layout.boot.slots[0].len
                ),
            });
        }
        if header.is_encrypted() && decrypt_keys.is_empty() {
            return Err(Error::Usage(format!(
                "{} is encrypted: give --decrypt-key, the device key it was encrypted to \
                 (the factory image holds the application installed)",
                container.display()
            )));
        }
        let signer = trusted_signer(&boot, header.signer).ok_or_else(|| Error::Input {
            path: bootloader.to_owned(),
            reason: format!(
                "does not hold the key that signed {} (key id {}): it would refuse it",
                container.display(),
                header.signer
            ),
        })?;
        let mut flash = Flash::new(&layout.sectors)
            .ok_or_else(|| Error::Usage("the layout's sectors are not whole KiB".into()))?;
        let at = layout.offset(layout.bootloader.address);
        flash.data_mut()[at..at + boot.len()].copy_from_slice(&boot);
        let at = layout.offset(layout.boot.slots[0].address);
        flash.data_mut()[at..at + bytes.len()].copy_from_slice(&bytes);
        let signers = [signer];
        let config = BootConfig {
            target: &layout.target,
            ram: layout.ram,
            signers: &signers,
            device_keys: decrypt_keys,
            trial_boots: 1,
            require_encryption: false,
        };
        let booted = {
            let cell = RefCell::new(&mut flash);
            let boot_flash = BootFlash {
                flash: &cell,
                sectors: Sectors(&layout.sectors),
                address: layout.flash_address,
            };
            let mut regions = layout.boot.regions(&boot_flash).map_err(rejected)?;
            let mut manager =
                BootManager::<CHUNK>::new(&config, &mut regions, None).map_err(rejected)?;
            let booted = manager.run();
            // The boot manager reports why the container was not installed.
            match (booted, manager.first_error()) {
                (Ok(b), None) => b,
                (_, Some(e)) | (Err(e), None) => return Err(rejected(e)),
            }
        };
        if booted.trial || booted.header != header {
            return Err(Error::Input {
                path: container.to_owned(),
                reason: "was not installed as the confirmed image".into(),
            });
        }
        Ok(Self {
            layout,
            base: flash.data().to_vec(),
            header,
        })
    }

    /// One device's factory image: the shared image with its record.
    pub fn device_image(&self, spec: &DeviceSpec, key: &DeviceKey) -> Result<Vec<u8>> {
        let fields: Vec<(&str, &str)> = spec
            .fields
            .iter()
            .map(|(n, v)| (n.as_str(), v.as_str()))
            .collect();
        let mut record = zeroize::Zeroizing::new([0u8; MAX_RECORD_LEN]);
        let len = RecordFields {
            serial: &spec.serial,
            target: &self.layout.target,
            key,
            calibration: &spec.calibration,
            fields: &fields,
        }
        .encode(&mut record[..])
        .map_err(|e| Error::Usage(format!("device {}: {e}", spec.serial)))?;
        if len > self.layout.record.len as usize {
            return Err(Error::Usage(format!(
                "device {}: its record is {len} bytes, the record region holds {}",
                spec.serial, self.layout.record.len
            )));
        }
        let mut image = self.base.clone();
        let at = self.layout.offset(self.layout.record.address);
        image[at..at + len].copy_from_slice(&record[..len]);
        Ok(image)
    }

    /// One device's factory image in an output (mode 0600, not yet in place): Intel HEX for
    /// `.hex`, the raw flash for `.bin`.
    pub fn device_output(
        &self,
        spec: &DeviceSpec,
        key: &DeviceKey,
        path: &Path,
        force: bool,
    ) -> Result<Output> {
        let hex = match path.extension().and_then(|e| e.to_str()) {
            Some("hex") => true,
            Some("bin") => false,
            _ => {
                return Err(Error::Usage(format!(
                    "{}: the image's name must end in .hex (Intel HEX) or .bin (raw flash)",
                    path.display()
                )));
            }
        };
        let image = zeroize::Zeroizing::new(self.device_image(spec, key)?);
        let mut out = Output::create(path, force, SECRET)?;
        if hex {
            let text = zeroize::Zeroizing::new(hex::to_hex(self.layout.flash_address, &image));
            out.write_all(text.as_bytes())?;
        } else {
            out.write_all(&image)?;
        }
        Ok(out)
    }
}

/// The bootloader's bytes, checked to lie inside its region (a raw binary loads at its start).
fn read_bootloader(layout: &FactoryLayout, path: &Path) -> Result<Vec<u8>> {
    let options = Options {
        format: InputFormat::Auto,
        load_address: Some(layout.bootloader.address),
        window: None,
        max_span: u64::from(layout.bootloader.len),
    };
    let img = image::open(path, &options)?;
    let (start, len) = (u64::from(img.load_address()), img.len());
    let region = &layout.bootloader;
    if start != u64::from(region.address) || len > u64::from(region.len) {
        return Err(Error::Input {
            path: path.to_owned(),
            reason: format!(
                "spans {start:#010x}..{:#010x}: outside the bootloader region {:#010x}..{:#010x} \
                 (the device record is at {:#010x})",
                start + len,
                region.address,
                u64::from(region.address) + u64::from(region.len),
                layout.record.address
            ),
        });
    }
    let mut bytes = vec![0u8; len as usize];
    img.reader()
        .read_exact_at(&mut bytes, 0)
        .map_err(|e| Error::io(path, e))?;
    Ok(bytes)
}

/// The Ed25519 key in the bootloader whose id is `id`: the key it checks the container with.
fn trusted_signer(bootloader: &[u8], id: KeyId) -> Option<TrustedKey> {
    bootloader.windows(32).find_map(|w| {
        let key: &[u8; 32] = w.try_into().ok()?;
        (KeyId::of_ed25519(key) == id)
            .then(|| TrustedKey::from_bytes(key).ok())
            .flatten()
    })
}

/// Where a batch device's image goes.
fn image_path(dir: &Path, serial: &str) -> PathBuf {
    dir.join(format!("{serial}.hex"))
}
