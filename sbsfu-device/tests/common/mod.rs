//! A simulated STM32F405 for the boot tests: one SimFlash, the example layout, and the device's
//! code (boot manager, stager, confirm) rebuilt from flash at every "reset", as after a power cut.
#![allow(dead_code, missing_docs)]

use std::cell::RefCell;

use ed25519_dalek::SigningKey;
use sbsfu_device::boot::{
    Area, Boot, BootConfig, BootLayout, BootManager, FlashMap, Stager, confirm,
};
use sbsfu_device::boot_state::{BootState, BootStore};
use sbsfu_device::counter::{CounterStore, FlashCounter};
use sbsfu_device::flash::{FlashRegion, STM32F405_SECTORS, Sectors, Shared};
use sbsfu_device::sim::{Geometry, SimFlash};
use sbsfu_device::{Error, TrustedKey};
use sbsfu_format::seal::{EncryptParams, SealParams, seal_to_vec};
use sbsfu_format::{ContentKey, DeviceKey, Version};
use sha2::{Digest, Sha256};

pub const FLASH: u32 = 0x0800_0000;
pub const CHUNK_BUF: usize = 4096;

/// The example STM32F405 layout: bootloader in sectors 0-2 (not used here), state log in
/// sectors 3 (16K) and 4 (64K), active slot in sectors 5-6, container slots in 7-8 and 9-10.
pub const LAYOUT: BootLayout = BootLayout {
    active: Area::new(0x0802_0000, 0x4_0000),
    slots: [
        Area::new(0x0806_0000, 0x4_0000),
        Area::new(0x080A_0000, 0x4_0000),
    ],
    meta: [
        Area::new(0x0800_C000, 0x4000),
        Area::new(0x0801_0000, 0x1_0000),
    ],
};
/// Banks of the optional external counter: sectors 1 and 2 (only in tests that use it).
pub const COUNTER: [Area; 2] = [
    Area::new(0x0800_4000, 0x4000),
    Area::new(0x0800_8000, 0x4000),
];

pub fn signing_key() -> SigningKey {
    SigningKey::from_bytes(&[0x51; 32])
}

pub fn device_key() -> DeviceKey {
    DeviceKey::from_bytes([0x52; 32])
}

pub fn image(len: usize, seed: u8) -> Vec<u8> {
    let mut x = 0x2468_ACE1u32 ^ u32::from(seed) << 8;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            x as u8
        })
        .collect()
}

pub fn container(img: &[u8], counter: u32, encrypted: bool, rand: u8) -> Vec<u8> {
    let dk = device_key();
    let key = signing_key();
    let params = SealParams {
        signer: key.verifying_key().to_bytes(),
        target: "stm32f405",
        version: Version {
            major: counter,
            minor: 0,
            patch: 0,
        },
        security_counter: counter,
        region: "app",
        load_address: LAYOUT.active.address,
        chunk_size: 4096,
        encryption: encrypted.then(|| EncryptParams {
            device_key: &dk,
            content_key: ContentKey::from_bytes([rand; 32]),
            wrap_nonce: [rand; 12],
            nonce_prefix: [rand; 7],
        }),
    };
    seal_to_vec(&params, &key, img).unwrap()
}

pub fn digest(bytes: &[u8]) -> [u8; 32] {
    Sha256::digest(bytes).into()
}

/// The device: its flash, and whether it keeps an external flash counter.
#[derive(Clone)]
pub struct Device {
    pub flash: SimFlash,
    pub external_counter: bool,
}

/// A region of the shared simulated flash.
pub type SimRegion<'c, 'f> = FlashRegion<'c, Shared<'c, &'f mut SimFlash>, Geometry>;

fn region<'c, 'f>(
    cell: &'c RefCell<&'f mut SimFlash>,
    map: &Geometry,
    name: &'c str,
    a: Area,
) -> SimRegion<'c, 'f> {
    FlashRegion::new(
        name,
        Shared(cell),
        map.clone(),
        a.address,
        a.address - FLASH,
        a.len,
    )
    .unwrap()
}

impl Device {
    pub fn new(external_counter: bool) -> Self {
        let d = Self {
            flash: SimFlash::stm32f405(),
            external_counter,
        };
        let map = Sectors(&STM32F405_SECTORS);
        LAYOUT
            .check(&[FlashMap {
                address: FLASH,
                size: 1 << 20,
                sectors: &map,
            }])
            .unwrap();
        d
    }

    fn with<T>(&mut self, f: impl FnOnce(&mut Parts<'_, '_>) -> T) -> T {
        let map = self.flash.geometry();
        let cell = RefCell::new(&mut self.flash);
        let mut parts = Parts {
            active: region(&cell, &map, "app", LAYOUT.active),
            slot0: region(&cell, &map, "slot0", LAYOUT.slots[0]),
            slot1: region(&cell, &map, "slot1", LAYOUT.slots[1]),
            meta0: region(&cell, &map, "meta0", LAYOUT.meta[0]),
            meta1: region(&cell, &map, "meta1", LAYOUT.meta[1]),
            ctr0: region(&cell, &map, "ctr0", COUNTER[0]),
            ctr1: region(&cell, &map, "ctr1", COUNTER[1]),
            external: self.external_counter,
        };
        f(&mut parts)
    }

    /// A reset: the boot manager runs to completion.
    pub fn boot(&mut self) -> Result<Boot, Error> {
        self.with(|p| {
            let signers =
                [TrustedKey::from_bytes(signing_key().verifying_key().as_bytes()).unwrap()];
            let dks = [device_key()];
            let config = BootConfig {
                target: "stm32f405",
                signers: &signers,
                device_keys: &dks,
                require_encryption: false,
                trial_boots: 1,
            };
            let mut counter = if p.external {
                Some(FlashCounter::mount([&mut p.ctr0, &mut p.ctr1])?)
            } else {
                None
            };
            let mut bm = BootManager::<CHUNK_BUF>::new(
                &LAYOUT,
                &config,
                &mut p.active,
                [&mut p.slot0, &mut p.slot1],
                [&mut p.meta0, &mut p.meta1],
                counter.as_mut().map(|c| c as &mut dyn CounterStore),
            )?;
            bm.run()
        })
    }

    /// The running application downloads `c` in 1000-byte pieces and stages it.
    pub fn stage(&mut self, c: &[u8], with_device_key: bool) -> Result<(), Error> {
        self.with(|p| {
            let signers =
                [TrustedKey::from_bytes(signing_key().verifying_key().as_bytes()).unwrap()];
            let dks = [device_key()];
            let config = BootConfig {
                target: "stm32f405",
                signers: &signers,
                device_keys: if with_device_key { &dks } else { &[] },
                require_encryption: false,
                trial_boots: 1,
            };
            let mut store = BootStore::mount([&mut p.meta0, &mut p.meta1])?;
            let mut stager = Stager::<CHUNK_BUF>::new(
                &LAYOUT,
                &config,
                &mut store,
                [&mut p.slot0, &mut p.slot1],
            )?;
            for piece in c.chunks(1000) {
                stager.feed(piece)?;
            }
            stager.finish().map(|_| ())
        })
    }

    /// The running (trial) application confirms itself.
    pub fn confirm(&mut self) -> Result<bool, Error> {
        self.with(|p| {
            let mut store = BootStore::mount([&mut p.meta0, &mut p.meta1])?;
            let mut counter = if p.external {
                Some(FlashCounter::mount([&mut p.ctr0, &mut p.ctr1])?)
            } else {
                None
            };
            confirm(
                &mut store,
                counter.as_mut().map(|c| c as &mut dyn CounterStore),
            )
        })
    }

    /// Rewrites the state record (to simulate a forged or corrupted state).
    pub fn with_state(&mut self, f: impl FnOnce(&mut BootState)) {
        self.with(|p| {
            let mut store = BootStore::mount([&mut p.meta0, &mut p.meta1]).unwrap();
            let mut s = store.load().unwrap();
            f(&mut s);
            store.save(&s).unwrap();
        })
    }

    pub fn state(&mut self) -> BootState {
        self.with(|p| {
            BootStore::mount([&mut p.meta0, &mut p.meta1])
                .unwrap()
                .load()
                .unwrap()
        })
    }

    /// The anti-rollback floor: the state's, or the external counter's if ahead.
    pub fn floor(&mut self) -> u32 {
        let state = self.state().floor;
        let external = self.with(|p| {
            if p.external {
                FlashCounter::mount([&mut p.ctr0, &mut p.ctr1])
                    .unwrap()
                    .read()
                    .unwrap()
            } else {
                0
            }
        });
        state.max(external)
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

pub struct Parts<'c, 'f> {
    pub active: SimRegion<'c, 'f>,
    pub slot0: SimRegion<'c, 'f>,
    pub slot1: SimRegion<'c, 'f>,
    pub meta0: SimRegion<'c, 'f>,
    pub meta1: SimRegion<'c, 'f>,
    pub ctr0: SimRegion<'c, 'f>,
    pub ctr1: SimRegion<'c, 'f>,
    pub external: bool,
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
pub fn provisioned(images: &Images, external_counter: bool) -> Device {
    let mut dev = Device::new(external_counter);
    dev.provision(&images.old_c);
    let boot = dev.boot().unwrap();
    assert!(!boot.trial);
    assert_eq!(images.which(&dev, &boot), "old");
    assert_eq!(dev.floor(), 5);
    dev
}
