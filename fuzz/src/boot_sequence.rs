//! The stateful boot target: a small device (the boot manager, the stager and `confirm` over a
//! simulated NOR flash with an OTP area) driven through a fuzzer-chosen life of stages, power
//! cuts, resets, confirmations and attacker writes to the container slots and the state banks.
//! After every reset it asserts:
//!
//! - what boots verifies: it is byte for byte one of the images signed here, under its header;
//! - nothing boots below the floor in force (nor below the OTP counter);
//! - the floor never decreases: the OTP counter only grows, and no boot's floor is below it;
//! - while a valid container at or above the floor is in a slot, the device boots something.

use std::cell::RefCell;
use std::sync::OnceLock;

use arbitrary::Arbitrary;
use ed25519_dalek::SigningKey;
use sbsfu_device::boot::{
    Area, Boot, BootConfig, BootFlash, BootLayout, BootManager, BootRegion, BootRegions, Phase,
    Stager, confirm,
};
use sbsfu_device::sim::kit::{self, Spec};
use sbsfu_device::sim::{Cut, Decay, Geometry, SimFlash, Tear};
use sbsfu_device::{CounterStore, Error, OtpCounter, Shared, TrustedKey};
use sbsfu_format::{DeviceKey, Header, SignedHeader, Version};

/// 4 KiB sectors: the active slot and the container slots take four each, the state banks one
/// (eight records: the log swaps banks often).
const SECTOR: u32 = 4096;
const LAYOUT: BootLayout = BootLayout {
    active: Area::new(0x0800_0000, 0x4000),
    slots: [Area::new(0x0800_4000, 0x4000), Area::new(0x0800_8000, 0x4000)],
    state_log: [Area::new(0x0800_C000, 0x1000), Area::new(0x0800_D000, 0x1000)],
};
const FLASH_LEN: u32 = 0xE000;
const RAM: Area = Area::new(0x2000_0000, 0x2_0000);
const BUF: usize = 1024;
/// The areas an attacker writes, in `LAYOUT` order after the active slot.
const ATTACKED: [Area; 5] = [
    LAYOUT.slots[0],
    LAYOUT.slots[1],
    LAYOUT.state_log[0],
    LAYOUT.state_log[1],
    LAYOUT.active,
];

/// One container the device may see, and the image inside it.
pub struct Known {
    pub container: Vec<u8>,
    pub image: Vec<u8>,
    pub header: Header,
    /// Whether its image is one a device may run (a vector table into RAM and itself).
    pub bootable: bool,
}

fn signing_key() -> SigningKey {
    kit::signing_key(0x61)
}

fn device_key() -> DeviceKey {
    kit::device_key(0x62)
}

fn image(len: usize, seed: u8, reset: Option<u32>) -> Vec<u8> {
    let mut img: Vec<u8> = (0..len).map(|i| (i as u8).wrapping_mul(seed) ^ seed).collect();
    if let Some(reset) = reset {
        img[..4].copy_from_slice(&(RAM.address + RAM.len).to_le_bytes());
        img[4..8].copy_from_slice(&reset.to_le_bytes());
    }
    img
}

/// The containers: the factory image (counter 5), two updates (7, encrypted; 9, signed only),
/// an older one (3), and two with vector tables that must never run (a 4-byte image, a reset
/// vector past the image's end).
pub fn known() -> &'static [Known] {
    static KNOWN: OnceLock<Vec<Known>> = OnceLock::new();
    KNOWN.get_or_init(|| {
        let entry = LAYOUT.active.address + 9;
        let specs: [(Vec<u8>, u32, bool, bool); 6] = [
            (image(6000, 3, Some(entry)), 5, true, true),
            (image(9000, 5, Some(entry)), 7, true, true),
            (image(3000, 7, Some(entry)), 9, false, true),
            (image(5000, 11, Some(entry)), 3, true, true),
            (image(4, 13, None), 8, true, false),
            (image(2000, 17, Some(entry + 4000)), 8, true, false),
        ];
        specs
            .into_iter()
            .enumerate()
            .map(|(i, (img, counter, encrypted, bootable))| {
                let container = Spec {
                    target: "fuzz",
                    version: Version { major: counter, minor: 0, patch: 0 },
                    security_counter: counter,
                    load_address: LAYOUT.active.address,
                    signer: 0x61,
                    device: 0x62,
                    randomness: i as u8,
                    ..Spec::new(encrypted, 1024)
                }
                .seal(&img);
                let header = SignedHeader::parse(&container).expect("head").0.header;
                Known {
                    container,
                    image: img,
                    header,
                    bootable,
                }
            })
            .collect()
    })
}

/// What happens next in the device's life.
#[derive(Arbitrary, Debug)]
pub enum Step {
    /// The application stages a known container, in 1000-byte pieces, holding the device key
    /// (so it checks the whole container) or not.
    Stage { which: u8, with_key: bool },
    /// Power will be cut at the `op`-th flash operation from now, left as tear `tear` says.
    Cut { op: u8, tear: u8 },
    /// A reset: the boot manager runs (power comes back first if it was cut).
    Reset,
    /// The running application confirms itself.
    Confirm,
    /// The attacker flips one bit of an area.
    Flip { area: u8, at: u16, bit: u8 },
    /// The attacker appends a whole, valid state record of its choosing.
    Forge {
        floor: u8,
        confirmed: u8,
        phase: u8,
        slot: u8,
        head: u8,
    },
    /// The attacker writes a known container into a slot.
    Plant { area: u8, which: u8 },
    /// The attacker copies an area back from an earlier snapshot.
    Replay { area: u8, snapshot: u8 },
    /// The attacker keeps a copy of the flash, to replay later.
    Snapshot,
}

const TEARS: [Tear; 8] = [
    Tear::Before,
    Tear::After,
    Tear::Prefix(100),
    Tear::PartialByte { n: 300, mask: 0x5A },
    Tear::WeakTail {
        len: 4,
        decay: Decay::AfterReads(1),
    },
    Tear::WeakTail {
        len: 4,
        decay: Decay::AfterReads(3),
    },
    Tear::WeakTail {
        len: 8,
        decay: Decay::Flicker,
    },
    Tear::Weak {
        n: 0,
        len: usize::MAX,
        decay: Decay::AfterReads(2),
    },
];

type Regions<'c, 'f> = BootRegions<BootRegion<'c, &'f mut SimFlash<4, 4096>, Geometry>>;

/// The fuzzed device.
#[derive(Clone)]
pub struct Device {
    pub flash: SimFlash<4, 4096>,
    snapshots: Vec<SimFlash<4, 4096>>,
    /// The highest OTP counter value seen.
    otp_seen: u32,
}

fn area_offset(a: Area) -> usize {
    (a.address - LAYOUT.active.address) as usize
}

impl Device {
    /// A device whose factory wrote the first container into slot 0, booted once (made once,
    /// then copied).
    pub fn provisioned() -> Self {
        static BASE: OnceLock<Device> = OnceLock::new();
        BASE.get_or_init(Self::factory).clone()
    }

    fn factory() -> Self {
        let mut flash = SimFlash::<4, 4096>::new(&[SECTOR; (FLASH_LEN / SECTOR) as usize])
            .with_otp(128);
        let c = &known()[0].container;
        let at = area_offset(LAYOUT.slots[0]);
        flash.data_mut()[at..at + c.len()].copy_from_slice(c);
        let mut dev = Self {
            flash,
            snapshots: Vec::new(),
            otp_seen: 0,
        };
        dev.boot()
            .expect("power is on")
            .expect("the factory image boots");
        dev
    }

    fn with<T>(
        &mut self,
        f: impl FnOnce(&mut Regions<'_, '_>, &mut dyn CounterStore) -> Result<T, Error>,
    ) -> Result<T, Error> {
        let sectors = self.flash.geometry();
        let cell = RefCell::new(&mut self.flash);
        let flash = BootFlash {
            flash: &cell,
            sectors,
            address: LAYOUT.active.address,
        };
        let mut regions = LAYOUT.regions(&flash).expect("regions");
        let mut counter = OtpCounter::new(Shared(&cell));
        f(&mut regions, &mut counter)
    }

    fn config<'a>(signers: &'a [TrustedKey], device_keys: &'a [DeviceKey]) -> BootConfig<'a> {
        BootConfig {
            target: "fuzz",
            signers,
            device_keys,
            require_encryption: false,
            trial_boots: 2,
            ram: RAM,
        }
    }

    /// A reset. `None` if power went during it (what it returned never happened).
    pub fn boot(&mut self) -> Option<Result<Boot, Error>> {
        if self.flash.is_dead() {
            self.flash.revive();
        }
        let signers = [TrustedKey::from_bytes(&signing_key().verifying_key().to_bytes()).expect("key")];
        let dks = [device_key()];
        let config = Self::config(&signers, &dks);
        let result = self.with(|regions, counter| {
            BootManager::<BUF>::new(&config, regions, Some(counter))?.run()
        });
        (!self.flash.is_dead()).then_some(result)
    }

    fn stage(&mut self, which: usize, with_key: bool) {
        let c = &known()[which % known().len()].container;
        let signers = [TrustedKey::from_bytes(&signing_key().verifying_key().to_bytes()).expect("key")];
        let dks = [device_key()];
        let config = Self::config(&signers, if with_key { &dks } else { &[] });
        let _ = self.with(|regions, _| {
            let mut stager = Stager::<BUF>::new(&config, regions)?;
            for piece in c.chunks(1000) {
                stager.feed(piece)?;
            }
            stager.finish().map(|_| ())
        });
    }

    fn confirm(&mut self) {
        let _ = self.with(|regions, counter| confirm(&mut regions.state_log()?, Some(counter)));
    }

    fn forge(&mut self, floor: u8, confirmed: u8, phase: u8, slot: u8, head: u8) {
        let slot = slot % 3;
        let _ = self.with(|regions, _| {
            let mut log = regions.state_log()?;
            let mut state = log.load()?;
            state.floor = u32::from(floor);
            state.confirmed = (confirmed % 3 < 2).then_some(confirmed % 3);
            state.phase = match phase % 6 {
                0 => Phase::Idle,
                1 => Phase::Pending { slot },
                2 => Phase::Installing { slot },
                3 => Phase::Trial {
                    slot,
                    boots_left: phase / 6 % 4,
                },
                // A resumable transfer's record, any length (the link's `Stager::begin`).
                4 => Phase::Receiving {
                    slot,
                    durable: u32::from(phase) << 10,
                },
                _ => Phase::Reverting { slot },
            };
            let heads = known();
            let head = usize::from(head);
            if head < heads.len() {
                let c = &heads[head].container;
                let n = SignedHeader::parse(c)?.1;
                state.set_active(Some(&c[..n]))?;
            } else if head % 2 == 0 {
                state.set_active(None)?;
            }
            log.save(&state)
        });
    }

    fn otp(&mut self) -> u32 {
        OtpCounter::new(&mut self.flash).read().expect("OTP reads")
    }

    /// The floor the state log holds, read on a copy (reading may write).
    fn log_floor(&self) -> u32 {
        let mut copy = Self {
            flash: self.flash.clone(),
            snapshots: Vec::new(),
            otp_seen: 0,
        };
        copy.flash.revive();
        copy.with(|regions, _| regions.state_log()?.load())
            .map_or(0, |s| s.floor)
    }

    /// Whether a slot holds a known bootable container at or above `floor`, byte for byte.
    fn valid_container_at_or_above(&self, floor: u32) -> bool {
        LAYOUT.slots.iter().any(|slot| {
            let at = area_offset(*slot);
            let bytes = &self.flash.data()[at..at + slot.len as usize];
            known().iter().any(|k| {
                k.bootable
                    && k.header.security_counter >= floor
                    && bytes.starts_with(&k.container)
            })
        })
    }

    /// Runs one step, then the invariants if it was a reset.
    pub fn step(&mut self, step: &Step) {
        match *step {
            Step::Stage { which, with_key } => self.stage(usize::from(which), with_key),
            Step::Cut { op, tear } => self.flash.arm(Cut {
                op: usize::from(op % 64) + 1,
                tear: TEARS[usize::from(tear) % TEARS.len()],
            }),
            Step::Reset => self.reset(),
            Step::Confirm => self.confirm(),
            Step::Flip { area, at, bit } => {
                let a = ATTACKED[usize::from(area) % ATTACKED.len()];
                let i = area_offset(a) + usize::from(at) % a.len as usize;
                self.flash.data_mut()[i] ^= 1 << (bit % 8);
            }
            Step::Forge {
                floor,
                confirmed,
                phase,
                slot,
                head,
            } => self.forge(floor, confirmed, phase, slot, head),
            Step::Plant { area, which } => {
                let slot = LAYOUT.slots[usize::from(area) % 2];
                let c = &known()[usize::from(which) % known().len()].container;
                let at = area_offset(slot);
                self.flash.data_mut()[at..at + slot.len as usize].fill(0xFF);
                self.flash.data_mut()[at..at + c.len()].copy_from_slice(c);
            }
            Step::Replay { area, snapshot } => {
                if let Some(snap) = self.snapshots.get(usize::from(snapshot) % 4) {
                    let a = ATTACKED[usize::from(area) % ATTACKED.len()];
                    let r = area_offset(a)..area_offset(a) + a.len as usize;
                    let old = snap.data()[r.clone()].to_vec();
                    self.flash.data_mut()[r].copy_from_slice(&old);
                }
            }
            Step::Snapshot => {
                if self.snapshots.len() < 4 {
                    self.snapshots.push(self.flash.clone());
                }
            }
        }
    }

    fn reset(&mut self) {
        let before = self.otp_seen;
        let Some(result) = self.boot() else {
            return;
        };
        let otp = self.otp();
        assert!(otp >= before, "the OTP counter went down: {before} -> {otp}");
        self.otp_seen = otp;
        match result {
            Ok(boot) => {
                let k = known()
                    .iter()
                    .find(|k| k.header == boot.header)
                    .expect("booted a header that was never signed");
                let at = area_offset(LAYOUT.active);
                let active = &self.flash.data()[at..at + k.image.len()];
                assert!(active == &k.image[..], "booted an image that does not verify");
                assert!(k.bootable, "booted an image whose vector table is not its own");
                assert!(boot.floor >= before, "floor went down: {before} -> {}", boot.floor);
                assert!(
                    k.header.security_counter >= boot.floor
                        && k.header.security_counter >= otp,
                    "booted counter {} below the floor {} (OTP {otp})",
                    k.header.security_counter,
                    boot.floor
                );
            }
            Err(e) => {
                let floor = otp.max(self.log_floor());
                assert!(
                    !self.valid_container_at_or_above(floor),
                    "nothing booted ({e:?}) with a valid container at or above the floor {floor}"
                );
            }
        }
    }
}
