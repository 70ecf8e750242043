//! A simulated STM32F405 for the boot tests: one SimFlash, the example layout, and the device's
//! code (boot manager, stager, confirm) rebuilt from flash at every "reset", as after a power cut.
#![allow(dead_code, missing_docs)]

use std::cell::RefCell;

use ed25519_dalek::SigningKey;
use sbsfu_device::OtpCounter;
use sbsfu_device::boot::BootState;
use sbsfu_device::boot::{
    Area, Boot, BootConfig, BootFlash, BootLayout, BootManager, BootRegion, BootRegions,
    STM32F405_FLASH, STM32F405_LAYOUT, Stager, confirm,
};
use sbsfu_device::sim::SimFlash;
use sbsfu_device::sim::kit::{self, Spec};
use sbsfu_device::{CounterStore, FlashCounter, RECORD_SIZE};
use sbsfu_device::{Error, TrustedKey};
use sbsfu_device::{Sectors, Shared};
use sbsfu_format::{DeviceKey, Version};
use sha2::{Digest, Sha256};

pub const FLASH: u32 = STM32F405_FLASH;
pub const CHUNK_BUF: usize = 4096;

/// The example layout (sectors 0-3 are the bootloader's, not used here).
pub const LAYOUT: BootLayout = STM32F405_LAYOUT;
/// Banks of the optional flash counter: sectors 1 and 2 (only in tests that use it).
pub const COUNTER: [Area; 2] = [
    Area::new(0x0800_4000, 0x4000),
    Area::new(0x0800_8000, 0x4000),
];
/// The F405's RAM, where an image's initial stack pointer must point.
pub const RAM: Area = Area::new(0x2000_0000, 0x2_0000);
/// Words of the simulated OTP area (the F405 has 128).
pub const OTP_WORDS: usize = 128;

pub fn signing_key() -> SigningKey {
    kit::signing_key(0x51)
}

pub fn device_key() -> DeviceKey {
    kit::device_key(0x52)
}

/// Pseudo-random bytes behind a valid vector table (stack at the top of RAM, reset handler
/// just after the table) when `len` leaves room for one.
pub fn image(len: usize, seed: u8) -> Vec<u8> {
    let mut img = kit::xorshift(len, 0x2468_ACE1 ^ u32::from(seed) << 8);
    if len > 10 {
        img[..4].copy_from_slice(&(RAM.address + RAM.len).to_le_bytes());
        img[4..8].copy_from_slice(&(LAYOUT.active.address + 9).to_le_bytes());
    }
    img
}

/// The container of `img`, security counter (and major version) `counter`, in 4 KiB chunks,
/// encrypted or not, its content key and nonces from `rand`.
pub fn container(img: &[u8], counter: u32, encrypted: bool, rand: u8) -> Vec<u8> {
    Spec {
        version: Version {
            major: counter,
            minor: 0,
            patch: 0,
        },
        security_counter: counter,
        load_address: LAYOUT.active.address,
        signer: 0x51,
        device: 0x52,
        randomness: rand,
        ..Spec::new(encrypted, 4096)
    }
    .seal(img)
}

pub fn digest(bytes: &[u8]) -> [u8; 32] {
    Sha256::digest(bytes).into()
}

/// Where a device keeps its anti-rollback counter, besides the state log.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Counter {
    /// Nowhere: the state log alone.
    None,
    /// A `FlashCounter` in sectors 1 and 2.
    Flash,
    /// An `OtpCounter` in the OTP area.
    Otp,
}

/// The device: its flash (with an OTP area), and where it keeps its counter.
#[derive(Clone)]
pub struct Device {
    pub flash: SimFlash,
    pub counter: Counter,
}

/// A region of the shared simulated flash.
pub type SimRegion<'c, 'f> = BootRegion<'c, &'f mut SimFlash, Sectors<'static>>;

impl Device {
    pub fn new(counter: Counter) -> Self {
        Self::on(SimFlash::stm32f405(), counter)
    }

    /// A device whose flash has ECC: a torn word is a read error.
    pub fn with_ecc(counter: Counter) -> Self {
        Self::on(SimFlash::stm32f405().with_ecc(), counter)
    }

    fn on(flash: SimFlash, counter: Counter) -> Self {
        Self {
            flash: flash.with_otp(OTP_WORDS),
            counter,
        }
    }

    fn with<T>(&mut self, f: impl FnOnce(&mut Parts<'_, '_>) -> T) -> T {
        let cell = RefCell::new(&mut self.flash);
        let flash = BootFlash::stm32f405(&cell);
        let mut parts = Parts {
            main: LAYOUT.regions(&flash).unwrap(),
            ctr0: flash.region("ctr0", COUNTER[0]).unwrap(),
            ctr1: flash.region("ctr1", COUNTER[1]).unwrap(),
            otp: Shared(&cell),
            counter: self.counter,
        };
        f(&mut parts)
    }

    /// A reset: the boot manager runs to completion. If power was lost on the way, what it
    /// returns never happened: the CPU stopped with the flash.
    pub fn boot(&mut self) -> Result<Boot, Error> {
        let boot = self.with(|p| {
            let signers =
                [TrustedKey::from_bytes(signing_key().verifying_key().as_bytes()).unwrap()];
            let dks = [device_key()];
            let config = config(&signers, &dks);
            let (m, mut counter) = p.split()?;
            BootManager::<CHUNK_BUF>::new(&config, m, counter.as_dyn())?.run()
        });
        if self.flash.is_dead() {
            return Err(Error::Flash(
                embedded_storage::nor_flash::NorFlashErrorKind::Other,
            ));
        }
        boot
    }

    /// The running application downloads `c` in 1000-byte pieces and stages it.
    pub fn stage(&mut self, c: &[u8], with_device_key: bool) -> Result<(), Error> {
        self.with(|p| {
            let signers =
                [TrustedKey::from_bytes(signing_key().verifying_key().as_bytes()).unwrap()];
            let dks = [device_key()];
            let config = config(&signers, if with_device_key { &dks } else { &[] });
            let mut stager = Stager::<CHUNK_BUF>::new(&config, &mut p.main)?;
            for piece in c.chunks(1000) {
                stager.feed(piece)?;
            }
            stager.finish().map(|_| ())
        })
    }

    /// The running application keeps a link receiver over its stager for one power-on: `f`
    /// gets the stager as the link's target (with the device key when `with_device_key`).
    pub fn with_link<T>(
        &mut self,
        with_device_key: bool,
        f: impl FnOnce(&mut sbsfu_device::boot::StagerTarget<'_, CHUNK_BUF>) -> T,
    ) -> Result<T, Error> {
        self.with(|p| {
            let signers =
                [TrustedKey::from_bytes(signing_key().verifying_key().as_bytes()).unwrap()];
            let dks = [device_key()];
            let config = config(&signers, if with_device_key { &dks } else { &[] });
            let stager = Stager::<CHUNK_BUF>::new(&config, &mut p.main)?;
            let info = sbsfu_device::boot::DeviceInfo {
                busy_ms: 3000,
                accepts_reset: false,
            };
            let mut target = sbsfu_device::boot::StagerTarget::new(stager, config.target, info);
            Ok(f(&mut target))
        })
    }

    /// The running (trial) application confirms itself.
    pub fn confirm(&mut self) -> Result<bool, Error> {
        self.with(|p| {
            let (m, mut counter) = p.split()?;
            confirm(&mut m.state_log()?, counter.as_dyn())
        })
    }

    /// Rewrites the state record (to simulate a forged or corrupted state).
    pub fn with_state(&mut self, f: impl FnOnce(&mut BootState)) {
        self.with(|p| {
            let mut log = p.main.state_log().unwrap();
            let mut s = log.load().unwrap();
            f(&mut s);
            log.save(&s).unwrap();
        })
    }

    pub fn state(&mut self) -> BootState {
        self.with(|p| p.main.state_log().unwrap().load().unwrap())
    }

    /// The anti-rollback floor: the state's, or the counter's if ahead.
    pub fn floor(&mut self) -> u32 {
        let state = self.state().floor;
        state.max(self.counter_value())
    }

    /// The counter's value (0 without one).
    pub fn counter_value(&mut self) -> u32 {
        self.with(|p| {
            let (_, mut counter) = p.split().unwrap();
            counter.as_dyn().map_or(0, |c| c.read().unwrap())
        })
    }

    /// Blank record slots left after the newest record in its bank (the record layout of
    /// `journal`: "SBRL", then the sequence number).
    pub fn free_state_slots(&self) -> usize {
        let mut newest: Option<(u32, usize)> = None;
        for (b, bank) in LAYOUT.state_log.iter().enumerate() {
            let start = (bank.address - FLASH) as usize;
            for slot in (start..start + bank.len as usize).step_by(RECORD_SIZE) {
                let r = &self.flash.data()[slot..slot + RECORD_SIZE];
                if &r[..4] == b"SBRL" {
                    let seq = u32::from_le_bytes(r[4..8].try_into().unwrap());
                    if newest.is_none_or(|(s, _)| seq > s) {
                        newest = Some((seq, b));
                    }
                }
            }
        }
        let bank = LAYOUT.state_log[newest.map_or(0, |(_, b)| b)];
        let start = (bank.address - FLASH) as usize;
        let data = &self.flash.data()[start..start + bank.len as usize];
        let used = data
            .chunks(RECORD_SIZE)
            .rposition(|r| r.iter().any(|b| *b != 0xFF))
            .map_or(0, |i| i + 1);
        data.len() / RECORD_SIZE - used
    }

    /// The first `len` bytes of the active slot.
    pub fn active(&self, len: usize) -> &[u8] {
        let start = (LAYOUT.active.address - FLASH) as usize;
        &self.flash.data()[start..start + len]
    }

    /// Factory provisioning: the first container written straight into slot 0.
    pub fn provision(&mut self, c: &[u8]) {
        let start = (LAYOUT.slots[0].address - FLASH) as usize;
        self.flash.data_mut()[start..start + c.len()].copy_from_slice(c);
    }
}

/// The regions of the test device: the boot layout's, the flash counter's, the OTP area.
pub struct Parts<'c, 'f> {
    pub main: BootRegions<SimRegion<'c, 'f>>,
    pub ctr0: SimRegion<'c, 'f>,
    pub ctr1: SimRegion<'c, 'f>,
    pub otp: Shared<'c, &'f mut SimFlash>,
    pub counter: Counter,
}

impl<'c, 'f> Parts<'c, 'f> {
    /// The layout's areas, and the device's counter.
    pub fn split(
        &mut self,
    ) -> Result<(&mut BootRegions<SimRegion<'c, 'f>>, AnyCounter<'_, 'c, 'f>), Error> {
        let Parts {
            main,
            ctr0,
            ctr1,
            otp,
            counter,
        } = self;
        let counter = match counter {
            Counter::None => AnyCounter::None,
            Counter::Flash => AnyCounter::Flash(FlashCounter::mount([ctr0, ctr1])?),
            Counter::Otp => AnyCounter::Otp(OtpCounter::new(Shared(otp.0))),
        };
        Ok((main, counter))
    }
}

/// The counter a device has, if any.
pub enum AnyCounter<'r, 'c, 'f> {
    None,
    Flash(FlashCounter<'r>),
    Otp(OtpCounter<Shared<'c, &'f mut SimFlash>>),
}

impl AnyCounter<'_, '_, '_> {
    pub fn as_dyn(&mut self) -> Option<&mut dyn CounterStore> {
        match self {
            AnyCounter::None => None,
            AnyCounter::Flash(c) => Some(c),
            AnyCounter::Otp(c) => Some(c),
        }
    }
}

/// The boot policy of the test device.
pub fn config<'a>(signers: &'a [TrustedKey], device_keys: &'a [DeviceKey]) -> BootConfig<'a> {
    BootConfig {
        target: "stm32f405",
        signers,
        device_keys,
        require_encryption: false,
        trial_boots: 1,
        ram: RAM,
    }
}

/// Two images a device moves between: `old` (counter 5) and `new` (counter 7), each spanning
/// two 128K sectors of the active slot.
pub struct Images {
    pub old: Vec<u8>,
    pub new: Vec<u8>,
    pub old_c: Vec<u8>,
    pub new_c: Vec<u8>,
}

impl Images {
    pub fn new(encrypted: bool) -> Self {
        let old = image(150 * 1024 + 17, 1);
        let new = image(170 * 1024 + 3, 2);
        Self {
            old_c: container(&old, 5, encrypted, 0x31),
            new_c: container(&new, 7, encrypted, 0x32),
            old,
            new,
        }
    }

    /// Which image the active slot holds, byte for byte, for the booted header; panics on a
    /// mixed or unverified image.
    pub fn which(&self, dev: &Device, boot: &Boot) -> &'static str {
        let len = boot.header.image_len as usize;
        let active = dev.active(len);
        assert_eq!(
            digest(active),
            boot.header.digest,
            "booted image does not match its header"
        );
        if active == &self.old[..] {
            "old"
        } else if active == &self.new[..] {
            "new"
        } else {
            panic!("booted an image that is neither the old nor the new one")
        }
    }
}

/// A device running the old image, confirmed, from a factory-provisioned container.
pub fn provisioned(images: &Images, counter: Counter) -> Device {
    provisioned_on(Device::new(counter), images)
}

/// [`provisioned`], on a given device.
pub fn provisioned_on(mut dev: Device, images: &Images) -> Device {
    dev.provision(&images.old_c);
    let boot = dev.boot().unwrap();
    assert!(!boot.trial);
    assert_eq!(images.which(&dev, &boot), "old");
    assert_eq!(dev.floor(), 5);
    dev
}
