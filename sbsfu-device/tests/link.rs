//! The delivery protocol end to end in one process: `sbsfu-link`'s sender, its receiver over the
//! real `Stager` (`boot::StagerTarget`) on a simulated STM32F405, and over the resumable
//! installer of a data region on a simulated external flash (`boot::InstallerTarget`), with
//! lost frames, dropped links and power cuts at every flash operation of a transfer, then
//! resume. Whatever happens, the device ends with the identical container pending (and the
//! boot manager installs it) or installed in its data region, or with a clear error and
//! nothing pending or marked installed.

mod common;

use std::cell::RefCell;

use proptest::prelude::*;

use common::*;
use sbsfu_device::boot::{
    Area, BootFlash, DeviceInfo, InstallerTarget, Phase, Routed, verify_region,
};
use sbsfu_device::sim::kit::Spec;
use sbsfu_device::sim::{Cut, SimFlash, Tear};
use sbsfu_device::{Policy, RegionInstaller, Sectors, TrustedKey};
use sbsfu_link::target::Target;
use sbsfu_link::{Config, ErrorCode, Outcome, Receiver, Report, Sender};

/// How one push attempt ended.
#[derive(Debug)]
enum End {
    Done(Report),
    Failed(sbsfu_link::Error),
    /// The device lost power during the attempt (what the sender saw does not matter).
    PowerCut,
}

/// The wire between the two ends: drops every `drop_every`-th frame (0: none), and is cut (the
/// sender hears nothing more) after `cut_after` frames.
#[derive(Clone, Copy, Default)]
struct Wire {
    drop_every: usize,
    cut_after: Option<usize>,
}

/// One push of `c` over `wire` into `target`, in simulated time.
fn exchange<T: Target>(
    target: &mut T,
    c: &[u8],
    session: u16,
    wire: Wire,
) -> Result<Report, sbsfu_link::Error> {
    {
        let mut receiver = Receiver::<1024>::new(4);
        let config = Config {
            session,
            max_retries: 4,
            ..Config::for_baud(921_600)
        };
        let mut sender = Sender::<_, 1024>::new(c, config).unwrap();
        let (mut now, mut frames) = (0u64, 0usize);
        while !sender.is_finished() {
            let mut sent = false;
            while let Some(frame) = sender.transmit(now) {
                sent = true;
                frames += 1;
                let frame = frame.to_vec();
                let lost = wire.drop_every > 0 && frames.is_multiple_of(wire.drop_every);
                if lost || wire.cut_after.is_some_and(|n| frames > n) {
                    continue;
                }
                let mut rest = &frame[..];
                while !rest.is_empty() {
                    let used = receiver.receive(target, rest);
                    rest = &rest[used..];
                    if let Some(reply) = receiver.transmit() {
                        sender.receive(reply, now);
                    }
                }
            }
            while receiver.poll(target) {
                if let Some(reply) = receiver.transmit() {
                    sender.receive(reply, now);
                }
            }
            if !sent {
                now = sender.deadline().unwrap_or(now).max(now + 1);
            }
        }
        sender.result().unwrap()
    }
}

/// A device the tests push to: the STM32F405 staging into its container slot ([`Device`]) or
/// a data region on external flash ([`DataDevice`]), on a simulated flash that counts its
/// operations and can lose power at any of them.
trait Powered: Clone {
    /// One power-on: `f` runs with the application's link target.
    fn power_on<R>(&mut self, f: impl FnOnce(&mut dyn Target) -> R) -> R;
    /// Its simulated flash.
    fn flash(&mut self) -> &mut dyn Metered;
}

/// What the tests ask of a simulated flash, whatever its geometry.
trait Metered {
    /// Counts flash operations from here.
    fn count_from_here(&mut self);
    /// Flash operations counted.
    fn ops(&self) -> usize;
    /// Power will be lost at `cut`.
    fn arm(&mut self, cut: Cut);
    /// Power comes back; whether it had been lost.
    fn revive(&mut self) -> bool;
}

impl<const W: usize, const E: usize> Metered for SimFlash<W, E> {
    fn count_from_here(&mut self) {
        SimFlash::count_from_here(self);
    }
    fn ops(&self) -> usize {
        SimFlash::ops(self)
    }
    fn arm(&mut self, cut: Cut) {
        SimFlash::arm(self, cut);
    }
    fn revive(&mut self) -> bool {
        let dead = self.is_dead();
        SimFlash::revive(self);
        dead
    }
}

impl Powered for Device {
    fn power_on<R>(&mut self, f: impl FnOnce(&mut dyn Target) -> R) -> R {
        self.with_link(true, |t| f(t))
            .unwrap_or_else(|e| panic!("the application could not start its stager: {e}"))
    }
    fn flash(&mut self) -> &mut dyn Metered {
        &mut self.flash
    }
}

/// One power-on of the device and one push of `c` over `wire`, in simulated time.
fn attempt<D: Powered>(dev: &mut D, c: &[u8], session: u16, wire: Wire) -> End {
    let end = dev.power_on(|mut target| exchange(&mut target, c, session, wire));
    if dev.flash().revive() {
        return End::PowerCut;
    }
    match end {
        Ok(report) => End::Done(report),
        Err(e) => End::Failed(e),
    }
}

/// Each container is refused with its code, before the device's flash is touched.
fn refused_before_flash<D: Powered>(dev: &mut D, cases: [(&[u8], ErrorCode); 2]) {
    for (c, code) in cases {
        dev.flash().count_from_here();
        match attempt(dev, c, 3, Wire::default()) {
            End::Failed(sbsfu_link::Error::Refused(r)) => assert_eq!(r.code, code, "{r}"),
            other => panic!("{other:?}"),
        }
        assert_eq!(
            dev.flash().ops(),
            0,
            "flash touched before the head was refused"
        );
    }
}

/// How many flash operations one clean push of `c` to (a copy of) `fresh` takes.
fn clean_push_ops<D: Powered>(fresh: &D, c: &[u8]) -> usize {
    let mut probe = fresh.clone();
    probe.flash().count_from_here();
    assert!(matches!(
        attempt(&mut probe, c, 1, Wire::default()),
        End::Done(_)
    ));
    probe.flash().ops()
}

/// A copy of `fresh` after a push of `c` over `wire` that power `cut` ended.
fn cut_during<D: Powered>(fresh: &D, c: &[u8], cut: Cut, wire: Wire) -> D {
    let mut dev = fresh.clone();
    dev.flash().arm(cut);
    let first = attempt(&mut dev, c, session(cut.op), wire);
    assert!(
        matches!(first, End::PowerCut),
        "op {}: no power cut ({first:?})",
        cut.op
    );
    dev
}

/// The ways power is lost at a flash operation, taken in turn.
const TEARS: [Tear; 4] = [
    Tear::Before,
    Tear::After,
    Tear::Prefix(300),
    Tear::PartialByte { n: 700, mask: 0x5A },
];

/// The container the device holds pending, as stored in its slot.
fn pending(dev: &mut Device, len: usize) -> Option<Vec<u8>> {
    let Phase::Pending { slot } = dev.state().phase else {
        return None;
    };
    let at = (LAYOUT.slots[slot as usize].address - FLASH) as usize;
    Some(dev.flash.data()[at..at + len].to_vec())
}

fn session(n: usize) -> u16 {
    (n as u16).wrapping_mul(7919).max(1)
}

#[test]
fn a_pushed_container_is_staged_and_installed_at_the_next_reset() {
    let im = Images::new(true);
    let mut dev = provisioned(&im, Counter::None);
    let End::Done(report) = attempt(&mut dev, &im.new_c, 1, Wire::default()) else {
        panic!("push failed");
    };
    assert_eq!(report.outcome, Some(Outcome::Pending));
    assert_eq!((report.resumed_from, report.retransmits), (0, 0));
    assert_eq!(report.bytes_sent, im.new_c.len() as u64);
    assert_eq!(pending(&mut dev, im.new_c.len()).unwrap(), im.new_c);
    let boot = dev.boot().unwrap();
    assert!(boot.trial);
    assert_eq!(im.which(&dev, &boot), "new");
}

#[test]
fn a_refused_head_gets_the_devices_reason_and_touches_no_flash() {
    let im = Images::new(true);
    let mut dev = provisioned(&im, Counter::None);
    let other = Spec {
        target: "stm32f407",
        load_address: LAYOUT.active.address,
        signer: 0x51,
        device: 0x52,
        ..Spec::new(true, 4096)
    }
    .seal(&im.new);
    let rollback = container(&im.new, 4, true, 9);
    refused_before_flash(
        &mut dev,
        [
            (&other, ErrorCode::WRONG_TARGET),
            (&rollback, ErrorCode::ROLLBACK),
        ],
    );
}

#[test]
fn a_dropped_link_resumes_without_rewriting_and_another_container_restarts() {
    let im = Images::new(true);
    let mut dev = provisioned(&im, Counter::None);
    // The link dies after 60 frames; the application keeps running (no reset).
    let cut = Wire {
        cut_after: Some(60),
        ..Wire::default()
    };
    let End::Failed(sbsfu_link::Error::Timeout { acked, .. }) =
        attempt(&mut dev, &im.new_c, 5, cut)
    else {
        panic!("the cut link did not time out");
    };
    assert!(acked > 0);
    // After a reset the durable record is what counts: resume from it (or its sector).
    let End::Done(report) = attempt(&mut dev, &im.new_c, 6, Wire::default()) else {
        panic!("resume failed");
    };
    assert!(report.resumed_from > 0, "nothing was resumed");
    assert!(report.bytes_sent < im.new_c.len() as u64);
    assert_eq!(pending(&mut dev, im.new_c.len()).unwrap(), im.new_c);

    // The same container again: already pending, nothing sent.
    let End::Done(again) = attempt(&mut dev, &im.new_c, 7, Wire::default()) else {
        panic!("second push of a pending container failed");
    };
    assert_eq!(again.resumed_from, im.new_c.len() as u32);
    assert_eq!(again.bytes_sent, 0);

    // Another container replaces it from byte 0.
    let other = container(&im.new, 8, true, 0x44);
    let End::Done(report) = attempt(&mut dev, &other, 8, Wire::default()) else {
        panic!("another container failed");
    };
    assert_eq!(report.resumed_from, 0);
    assert_eq!(pending(&mut dev, other.len()).unwrap(), other);
}

#[test]
fn a_power_cut_at_every_flash_operation_of_a_lossy_transfer_is_resumed() {
    let im = Images::new(true);
    let fresh = provisioned(&im, Counter::None);
    let ops = clean_push_ops(&fresh, &im.new_c);
    let (mut resumed, mut points) = (0, 0);
    let lossy = Wire {
        drop_every: 17,
        ..Wire::default()
    };
    for op in 1..=ops {
        let tear = TEARS[op % TEARS.len()];
        let mut dev = cut_during(&fresh, &im.new_c, Cut { op, tear }, lossy);
        // Nothing half received is ever pending.
        assert!(!matches!(dev.state().phase, Phase::Pending { .. }) || op == ops);
        match attempt(&mut dev, &im.new_c, session(op) + 1, lossy) {
            End::Done(r) => resumed += usize::from(r.resumed_from > 0),
            other => panic!("op {op}/{ops} {tear:?}: the resumed push ended with {other:?}"),
        }
        assert_eq!(
            pending(&mut dev, im.new_c.len()).as_deref(),
            Some(&im.new_c[..]),
            "op {op}: the pending container differs"
        );
        points += 1;
        if points % 4 == 0 {
            let boot = dev.boot().unwrap();
            assert_eq!(im.which(&dev, &boot), "new");
        }
    }
    assert!(resumed > 0, "no cut was resumed past byte 0");
    println!("link power cuts: {points} points of {ops} operations, {resumed} resumed past 0");
}

/// Where the simulated external flash (a QSPI NOR of 64 sectors of 4 KiB) is seen.
const DATA_ADDRESS: u32 = 0x9000_0000;
const DATA_SECTORS: [u32; 64] = [4096; 64];
/// The data region: the first 224 KiB of the external flash; its install log: two banks of
/// 16 KiB after it.
const DATA_REGION: Area = Area::new(DATA_ADDRESS, 0x3_8000);
const DATA_LOG: [Area; 2] = [
    Area::new(DATA_ADDRESS + 0x3_8000, 0x4000),
    Area::new(DATA_ADDRESS + 0x3_C000, 0x4000),
];

/// A device with a data region `assets` on external flash.
#[derive(Clone)]
struct DataDevice {
    flash: SimFlash<4, 4096>,
}

impl DataDevice {
    fn new() -> Self {
        Self {
            flash: SimFlash::new(&DATA_SECTORS),
        }
    }

    /// `f` with the external flash as the application sees it.
    fn with_flash<T>(
        &mut self,
        f: impl FnOnce(&BootFlash<'_, &mut SimFlash<4, 4096>, Sectors<'static>>) -> T,
    ) -> T {
        let cell = RefCell::new(&mut self.flash);
        f(&BootFlash {
            flash: &cell,
            sectors: Sectors(&DATA_SECTORS),
            address: DATA_ADDRESS,
        })
    }

    /// One power-on: the application keeps the data region's installer behind the link.
    fn with_link<T>(&mut self, f: impl FnOnce(&mut InstallerTarget<'_, CHUNK_BUF>) -> T) -> T {
        self.with_flash(|flash| {
            let mut region = flash.region("assets", DATA_REGION).unwrap();
            let mut l0 = flash.region("log0", DATA_LOG[0]).unwrap();
            let mut l1 = flash.region("log1", DATA_LOG[1]).unwrap();
            let signers = data_signers();
            let dks = [device_key()];
            let policy = data_policy(&signers, &dks);
            let installer =
                RegionInstaller::<CHUNK_BUF>::new(&policy, &mut region, [&mut l0, &mut l1])
                    .unwrap();
            let info = DeviceInfo {
                busy_ms: 3000,
                accepts_reset: false,
            };
            let mut target = InstallerTarget::new(installer, "stm32f405", info);
            f(&mut target)
        })
    }

    /// The image in the region verifies from flash against `c`'s head.
    fn verifies(&mut self, c: &[u8]) -> bool {
        let head = &c[..head_len(c)];
        self.with_flash(|flash| {
            let mut region = flash.region("assets", DATA_REGION).unwrap();
            let signers = data_signers();
            let policy = data_policy(&signers, &[]);
            verify_region(&mut region, head, &policy, &mut [0; 256]).is_ok()
        })
    }

    /// The first `len` bytes of the region.
    fn data(&self, len: usize) -> &[u8] {
        &self.flash.data()[..len]
    }
}

/// The keys the data region trusts: the test signer's.
fn data_signers() -> [TrustedKey; 1] {
    [TrustedKey::from_bytes(signing_key().verifying_key().as_bytes()).unwrap()]
}

fn data_policy<'a>(
    signers: &'a [TrustedKey],
    dks: &'a [sbsfu_device::format::DeviceKey],
) -> Policy<'a> {
    Policy {
        target: "stm32f405",
        signers,
        device_keys: dks,
        min_security_counter: 0,
        require_encryption: false,
    }
}

/// Bytes of a container's signed head (prefix, header, signature).
fn head_len(c: &[u8]) -> usize {
    let prefix = sbsfu_device::format::Prefix::parse(c).unwrap();
    sbsfu_device::format::PREFIX_LEN + usize::from(prefix.header_len) + 64
}

/// How the containers for the `assets` region are made (chunks of 1 KiB).
fn data_spec(encrypted: bool) -> Spec {
    Spec {
        region: "assets",
        load_address: DATA_ADDRESS,
        signer: 0x51,
        device: 0x52,
        ..Spec::new(encrypted, 1024)
    }
}

/// A container of `img` for the `assets` region.
fn data_container(img: &[u8], encrypted: bool, rand: u8) -> Vec<u8> {
    Spec {
        randomness: rand,
        ..data_spec(encrypted)
    }
    .seal(img)
}

impl Powered for DataDevice {
    fn power_on<R>(&mut self, f: impl FnOnce(&mut dyn Target) -> R) -> R {
        self.with_link(|t| f(t))
    }
    fn flash(&mut self) -> &mut dyn Metered {
        &mut self.flash
    }
}

fn installed_version(dev: &mut DataDevice) -> Option<u32> {
    dev.with_link(|t| {
        t.describe()
            .unwrap()
            .regions
            .iter()
            .next()
            .unwrap()
            .installed
    })
    .map(|i| i.security_counter)
}

#[test]
fn a_data_region_container_is_installed_at_once() {
    for encrypted in [true, false] {
        let img = kit_image(30_000, 1);
        let c = data_container(&img, encrypted, 1);
        let mut dev = DataDevice::new();
        let End::Done(report) = attempt(&mut dev, &c, 1, Wire::default()) else {
            panic!("push failed");
        };
        assert_eq!(report.outcome, Some(Outcome::Installed));
        assert_eq!(report.bytes_sent, c.len() as u64);
        assert_eq!(dev.data(img.len()), &img[..]);
        assert!(dev.verifies(&c));
        assert_eq!(installed_version(&mut dev), Some(10));
        // Pushed again: already installed, verified again from flash, nothing sent.
        let End::Done(again) = attempt(&mut dev, &c, 2, Wire::default()) else {
            panic!("second push failed");
        };
        assert_eq!(again.outcome, Some(Outcome::Installed));
        assert_eq!(
            (again.resumed_from as usize, again.bytes_sent),
            (c.len(), 0)
        );
    }
}

/// Pseudo-random bytes (a data region holds no vector table).
fn kit_image(len: usize, seed: u32) -> Vec<u8> {
    sbsfu_device::sim::kit::xorshift(len, 0x1357_9BDF ^ seed)
}

#[test]
fn a_data_region_refuses_heads_before_touching_flash() {
    let img = kit_image(5000, 2);
    let mut dev = DataDevice::new();
    let elsewhere = Spec {
        load_address: DATA_ADDRESS + 0x1000,
        ..data_spec(true)
    }
    .seal(&img);
    let mut forged = data_container(&img, true, 2);
    let at = head_len(&forged) - 1;
    forged[at] ^= 1;
    refused_before_flash(
        &mut dev,
        [
            (&elsewhere, ErrorCode::REGION),
            (&forged, ErrorCode::AUTHENTICATION),
        ],
    );
}

#[test]
fn a_data_region_resumes_after_a_dropped_link_and_a_reset_and_another_container_restarts() {
    let img = kit_image(150_000, 3);
    let c = data_container(&img, true, 3);
    let mut dev = DataDevice::new();
    // The link dies after 100 frames, the application keeps running: a new push resumes from
    // what it holds in RAM.
    let cut = Wire {
        cut_after: Some(100),
        ..Wire::default()
    };
    let (first, second) = dev.with_link(|t| {
        let Err(sbsfu_link::Error::Timeout { acked, .. }) = exchange(t, &c, 5, cut) else {
            panic!("the cut link did not time out");
        };
        let shorter = Wire {
            cut_after: Some(30),
            ..Wire::default()
        };
        let Err(sbsfu_link::Error::Timeout { acked: more, .. }) = exchange(t, &c, 6, shorter)
        else {
            panic!("the second cut link did not time out");
        };
        (acked, more)
    });
    assert!(first > 0 && second > first, "{first} then {second}");
    assert_eq!(installed_version(&mut dev), None);
    // After a reset the install log is what counts: resume from its record, a sector boundary.
    let (id, durable) = dev.with_link(|t| {
        let d = t.describe().unwrap();
        let p = d.regions.iter().next().unwrap().partial.unwrap();
        (p.id, p.durable)
    });
    assert!(durable > 0);
    let End::Done(report) = attempt(&mut dev, &c, 7, Wire::default()) else {
        panic!("resume failed");
    };
    assert_eq!(report.id, id);
    assert_eq!(report.resumed_from, durable);
    assert_eq!(report.outcome, Some(Outcome::Installed));
    assert!(report.bytes_sent < c.len() as u64);
    assert_eq!(dev.data(img.len()), &img[..]);
    assert!(dev.verifies(&c));

    // Another container: from 0, and the first is no longer installed once it begins.
    let other_img = kit_image(20_000, 4);
    let other = data_container(&other_img, false, 4);
    let first = Wire {
        cut_after: Some(5),
        ..Wire::default()
    };
    assert!(matches!(
        attempt(&mut dev, &other, 8, first),
        End::Failed(_)
    ));
    assert_eq!(installed_version(&mut dev), None);
    let End::Done(report) = attempt(&mut dev, &other, 9, Wire::default()) else {
        panic!("another container failed");
    };
    assert_eq!(report.outcome, Some(Outcome::Installed));
    assert_eq!(dev.data(other_img.len()), &other_img[..]);
}

#[test]
fn a_corrupted_chunk_never_reaches_the_data_region_and_nothing_is_installed() {
    let img = kit_image(20_000, 5);
    let c = data_container(&img, true, 5);
    let mut bad = c.clone();
    let at = head_len(&c) + 5 * 1040 + 7; // inside chunk 5's ciphertext
    bad[at] ^= 0x10;
    let mut dev = DataDevice::new();
    match attempt(&mut dev, &bad, 1, Wire::default()) {
        End::Failed(sbsfu_link::Error::Refused(r)) => {
            assert_eq!(r.code, ErrorCode::AUTHENTICATION, "{r}")
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(dev.data(5 * 1024), &img[..5 * 1024]);
    assert!(dev.data(6 * 1024)[5 * 1024..].iter().all(|b| *b == 0xFF));
    assert_eq!(installed_version(&mut dev), None);
    // The genuine container then installs.
    let End::Done(report) = attempt(&mut dev, &c, 2, Wire::default()) else {
        panic!("push failed");
    };
    assert_eq!(report.outcome, Some(Outcome::Installed));
}

#[test]
fn a_power_cut_at_every_flash_operation_of_a_data_install_is_resumed() {
    let img = kit_image(40_000, 6);
    // The region holds an older image (security counter 5): the new one is erased over it.
    let old = Spec {
        security_counter: 5,
        ..data_spec(true)
    }
    .seal(&kit_image(60_000, 9));
    let mut fresh = DataDevice::new();
    assert!(matches!(
        attempt(&mut fresh, &old, 1, Wire::default()),
        End::Done(_)
    ));
    for encrypted in [true, false] {
        let c = data_container(&img, encrypted, 6);
        let ops = clean_push_ops(&fresh, &c);
        let mut resumed = 0;
        let lossy = Wire {
            drop_every: 13,
            ..Wire::default()
        };
        for op in 1..=ops {
            let tear = TEARS[op % TEARS.len()];
            let mut dev = cut_during(&fresh, &c, Cut { op, tear }, lossy);
            // Marked installed only while the image verifies: the old one until the new one
            // is begun, the new one once verified in full.
            match installed_version(&mut dev) {
                Some(5) => assert!(dev.verifies(&old), "op {op}: the old image is not valid"),
                Some(_) => assert!(dev.verifies(&c), "op {op}: installed but not valid"),
                None => {}
            }
            match attempt(&mut dev, &c, session(op) + 1, lossy) {
                End::Done(r) => {
                    assert_eq!(r.outcome, Some(Outcome::Installed));
                    resumed += usize::from(r.resumed_from > 0);
                }
                other => panic!("op {op}/{ops} {tear:?}: the resumed push ended with {other:?}"),
            }
            assert_eq!(dev.data(img.len()), &img[..], "op {op}");
            assert!(dev.verifies(&c));
        }
        assert!(resumed > 0, "no cut was resumed past byte 0");
        println!(
            "data power cuts (encrypted {encrypted}): {ops} operations, {resumed} resumed past 0"
        );
    }
}

#[test]
fn one_receiver_stages_app_containers_and_installs_data_region_containers() {
    let im = Images::new(true);
    let mut dev = provisioned(&im, Counter::None);
    let mut data = DataDevice::new();
    let img = kit_image(10_000, 7);
    let dc = data_container(&img, true, 7);
    let (staged, installed, regions) = dev
        .with_link(true, |app| {
            data.with_link(|d| {
                let mut both = Routed::new(app, d, "assets");
                let staged = exchange(&mut both, &im.new_c, 1, Wire::default()).unwrap();
                let installed = exchange(&mut both, &dc, 2, Wire::default()).unwrap();
                let hello = both.describe().unwrap();
                let names: Vec<String> = hello
                    .regions
                    .iter()
                    .map(|r| r.name.as_str().to_owned())
                    .collect();
                (staged.outcome, installed.outcome, names)
            })
        })
        .unwrap();
    assert_eq!(staged, Some(Outcome::Pending));
    assert_eq!(installed, Some(Outcome::Installed));
    assert_eq!(regions, ["app", "assets"]);
    assert_eq!(pending(&mut dev, im.new_c.len()).unwrap(), im.new_c);
    assert_eq!(data.data(img.len()), &img[..]);
}

// Random fault schedules over the real targets: the property the link's test double is held to
// (`sbsfu_link::sim::tests::any_fault_schedule_commits_the_same_container_or_fails_cleanly`),
// here over the `Stager` on the STM32F405 layout and over a data region's installer.

/// What happens to one frame on the wire.
#[derive(Debug, Clone, Copy)]
enum Fault {
    Drop,
    Corrupt { at: u16, bit: u8 },
    Duplicate,
    Delay { ms: u16 },
}

/// Everything that goes wrong during one push.
#[derive(Debug, Clone, Default)]
struct Schedule {
    /// Frame `k` sent in a direction gets the `k`-th fault of that direction.
    to_device: Vec<Option<Fault>>,
    to_host: Vec<Option<Fault>>,
    /// The link is down (everything sent is lost) from this time for this long (ms).
    cut: Option<(u64, u64)>,
    /// The device resets (between flash operations) at this time (ms).
    reset_at_ms: Option<u64>,
    /// Power is lost at this flash operation of the push (counted from its start).
    power_cut: Option<Cut>,
}

/// Frames on their way in one direction: (arrival ms, sequence, bytes).
#[derive(Default)]
struct Line {
    sent: usize,
    seq: u64,
    in_flight: Vec<(u64, u64, Vec<u8>)>,
}

impl Line {
    fn schedule(&mut self, at: u64, bytes: Vec<u8>) {
        self.seq += 1;
        self.in_flight.push((at, self.seq, bytes));
    }

    /// Puts a frame on the line at `now` (1 ms to cross), with its fault.
    fn send(&mut self, now: u64, mut frame: Vec<u8>, faults: &[Option<Fault>], cut: bool) {
        let fault = faults.get(self.sent).copied().flatten();
        self.sent += 1;
        if cut {
            return;
        }
        let at = now + 1;
        match fault {
            Some(Fault::Drop) => {}
            Some(Fault::Corrupt { at: i, bit }) => {
                let i = usize::from(i) % frame.len();
                frame[i] ^= 1 << (bit % 8);
                self.schedule(at, frame);
            }
            Some(Fault::Duplicate) => {
                self.schedule(at, frame.clone());
                self.schedule(at + 1, frame);
            }
            Some(Fault::Delay { ms }) => self.schedule(at + u64::from(ms), frame),
            None => self.schedule(at, frame),
        }
    }

    /// The earliest frame that has arrived by `now`.
    fn pop(&mut self, now: u64) -> Option<Vec<u8>> {
        let i = (0..self.in_flight.len())
            .filter(|i| self.in_flight[*i].0 <= now)
            .min_by_key(|i| (self.in_flight[*i].0, self.in_flight[*i].1))?;
        Some(self.in_flight.swap_remove(i).2)
    }

    fn next(&self) -> Option<u64> {
        self.in_flight.iter().map(|f| f.0).min()
    }
}

/// A target that notes when the device lost power (its flash refuses everything after).
struct Watch<'d, T> {
    inner: T,
    dead: &'d std::cell::Cell<bool>,
}

impl<T: Target> Watch<'_, T> {
    fn see<R>(&self, r: Result<R, sbsfu_link::Refusal>) -> Result<R, sbsfu_link::Refusal> {
        if r.as_ref().is_err_and(|e| e.code == ErrorCode::FLASH) {
            self.dead.set(true);
        }
        r
    }
}

impl<T: Target> Target for Watch<'_, T> {
    fn describe(&mut self) -> Result<sbsfu_link::Description, sbsfu_link::Refusal> {
        let r = self.inner.describe();
        self.see(r)
    }
    fn begin(
        &mut self,
        head: &[u8],
        len: u32,
    ) -> Result<sbsfu_link::target::Begun, sbsfu_link::Refusal> {
        let r = self.inner.begin(head, len);
        self.see(r)
    }
    fn erase_step(&mut self) -> Result<sbsfu_link::target::EraseProgress, sbsfu_link::Refusal> {
        let r = self.inner.erase_step();
        self.see(r)
    }
    fn write(&mut self, offset: u32, bytes: &[u8]) -> Result<(), sbsfu_link::Refusal> {
        let r = self.inner.write(offset, bytes);
        self.see(r)
    }
    fn durable(&self) -> u32 {
        self.inner.durable()
    }
    fn commit(&mut self) -> Result<Outcome, sbsfu_link::Refusal> {
        let r = self.inner.commit();
        self.see(r)
    }
}

/// One push under a [`Schedule`], across as many power-ons of the device as it takes.
struct Push<'c> {
    sender: Sender<&'c [u8], 1024>,
    now: u64,
    to_device: Line,
    to_host: Line,
    schedule: Schedule,
}

/// Why a power-on ended.
enum Stop {
    Finished,
    Reset,
}

impl<'c> Push<'c> {
    fn new(c: &'c [u8], session: u16, schedule: Schedule) -> Self {
        let config = Config {
            session,
            max_restarts: 4,
            ..Config::for_baud(921_600)
        };
        Self {
            sender: Sender::new(c, config).unwrap(),
            now: 0,
            to_device: Line::default(),
            to_host: Line::default(),
            schedule,
        }
    }

    fn cut(&self) -> bool {
        self.schedule
            .cut
            .is_some_and(|(from, len)| self.now >= from && self.now < from + len)
    }

    fn reply(&mut self, frame: Vec<u8>) {
        let cut = self.cut();
        self.to_host
            .send(self.now, frame, &self.schedule.to_host, cut);
    }

    /// The device runs `target` (a fresh receiver: RAM is lost at a reset) until the push ends
    /// or the device resets or loses power.
    fn power_on<T: Target>(&mut self, target: T) -> Stop {
        let dead = std::cell::Cell::new(false);
        let mut target = Watch {
            inner: target,
            dead: &dead,
        };
        let mut receiver = Receiver::<1024>::new(4);
        loop {
            while let Some(bytes) = self.to_host.pop(self.now) {
                self.sender.receive(&bytes, self.now);
            }
            if self.sender.is_finished() {
                return Stop::Finished;
            }
            if self.schedule.reset_at_ms.is_some_and(|t| self.now >= t) {
                self.schedule.reset_at_ms = None;
                return Stop::Reset;
            }
            while let Some(frame) = self.sender.transmit(self.now) {
                let (frame, cut) = (frame.to_vec(), self.cut());
                self.to_device
                    .send(self.now, frame, &self.schedule.to_device, cut);
            }
            while let Some(bytes) = self.to_device.pop(self.now) {
                let mut rest = &bytes[..];
                while !rest.is_empty() {
                    let used = receiver.receive(&mut target, rest);
                    rest = &rest[used..];
                    if dead.get() {
                        return Stop::Reset;
                    }
                    match receiver.transmit() {
                        Some(r) => self.reply(r.to_vec()),
                        None if used == 0 => break,
                        None => {}
                    }
                }
            }
            while receiver.poll(&mut target) {
                if dead.get() {
                    return Stop::Reset;
                }
                if let Some(r) = receiver.transmit() {
                    self.reply(r.to_vec());
                }
            }
            if dead.get() {
                return Stop::Reset;
            }
            let next = [
                self.to_host.next(),
                self.to_device.next(),
                self.sender.deadline(),
                self.schedule.reset_at_ms,
            ]
            .into_iter()
            .flatten()
            .min();
            match next {
                Some(t) => self.now = t.max(self.now + 1),
                None => return Stop::Finished,
            }
        }
    }

    fn result(&self) -> Result<Report, sbsfu_link::Error> {
        self.sender.result().expect("the push ended")
    }

    /// The whole push, across as many power-ons of `dev` as its resets and power cuts take.
    fn through_resets<D: Powered>(mut self, dev: &mut D) -> Result<Report, sbsfu_link::Error> {
        loop {
            let stop = dev.power_on(|t| self.power_on(t));
            dev.flash().revive();
            if matches!(stop, Stop::Finished) {
                return self.result();
            }
        }
    }
}

fn fault() -> impl Strategy<Value = Option<Fault>> {
    prop_oneof![
        6 => Just(None),
        1 => Just(Some(Fault::Drop)),
        1 => (any::<u16>(), 0..8u8).prop_map(|(at, bit)| Some(Fault::Corrupt { at, bit })),
        1 => Just(Some(Fault::Duplicate)),
        1 => (1..400u16).prop_map(|ms| Some(Fault::Delay { ms })),
    ]
}

fn tear() -> impl Strategy<Value = Tear> {
    prop_oneof![
        Just(Tear::Before),
        Just(Tear::After),
        (0..1200usize).prop_map(Tear::Prefix),
        (0..1200usize, any::<u8>()).prop_map(|(n, mask)| Tear::PartialByte { n, mask }),
    ]
}

fn schedule() -> impl Strategy<Value = Schedule> {
    (
        proptest::collection::vec(fault(), 0..60),
        proptest::collection::vec(fault(), 0..60),
        proptest::option::of((0..300u64, 1..5_000u64)),
        proptest::option::of(0..300u64),
        proptest::option::of((1..45usize, tear())),
    )
        .prop_map(|(to_device, to_host, cut, reset_at_ms, power)| Schedule {
            to_device,
            to_host,
            cut,
            reset_at_ms,
            power_cut: power.map(|(op, tear)| Cut { op, tear }),
        })
}

/// A faulted push ends this way: done, or failed as a link fails (never a refusal of a genuine
/// container); anything else is a bug.
fn ended_cleanly(result: &Result<Report, sbsfu_link::Error>) -> bool {
    matches!(
        result,
        Ok(_) | Err(sbsfu_link::Error::Timeout { .. } | sbsfu_link::Error::TooManyRestarts)
    )
}

/// The small app container of the property (security counter 6, above the floor of 5).
fn small_app_container() -> Vec<u8> {
    container(&image(20_000, 3), 6, true, 0x77)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    /// Any schedule of dropped, damaged, duplicated and delayed frames, link cuts, device
    /// resets and power cuts at any flash operation ends, over the real `Stager` on the
    /// STM32F405 layout, with the identical container pending or a clear error and nothing
    /// pending; a later push then completes it and the boot manager installs it.
    #[test]
    fn any_fault_schedule_stages_the_same_container_or_fails_cleanly(s in schedule()) {
        let im = Images::new(true);
        let c = small_app_container();
        let mut dev = provisioned(&im, Counter::None);
        if let Some(cut) = s.power_cut {
            dev.flash.arm(cut);
        }
        let result = Push::new(&c, 11, s).through_resets(&mut dev);
        prop_assert!(ended_cleanly(&result), "{result:?}");
        let held = pending(&mut dev, c.len());
        match &result {
            Ok(r) => {
                prop_assert_eq!(r.outcome, Some(Outcome::Pending));
                prop_assert_eq!(held.as_deref(), Some(&c[..]));
            }
            Err(sbsfu_link::Error::Timeout { phase: sbsfu_link::Phase::Committing, .. })
                if held.is_some() => prop_assert_eq!(held.as_deref(), Some(&c[..])),
            Err(_) => prop_assert!(held.is_none(), "failed, yet something is pending"),
        }
        let mut again = Push::new(&c, 12, Schedule::default());
        prop_assert!(matches!(dev.power_on(|t| again.power_on(t)), Stop::Finished));
        let report = again.result();
        prop_assert!(report.is_ok(), "{report:?}");
        let held = pending(&mut dev, c.len());
        prop_assert_eq!(held.as_deref(), Some(&c[..]));
        let boot = dev.boot().unwrap();
        prop_assert!(boot.trial);
        prop_assert_eq!(boot.header.security_counter, 6);
    }

    /// The same over a data region's installer: the identical image installed and verifying,
    /// or a clear error and the region holding nothing marked valid but the image it held
    /// before (still verifying); a later push then installs it.
    #[test]
    fn any_fault_schedule_installs_the_same_data_image_or_fails_cleanly(s in schedule()) {
        let img = kit_image(20_000, 8);
        let c = data_container(&img, true, 8);
        let old = Spec {
            security_counter: 5,
            ..data_spec(false)
        }
        .seal(&kit_image(30_000, 9));
        let mut dev = DataDevice::new();
        prop_assert!(matches!(attempt(&mut dev, &old, 1, Wire::default()), End::Done(_)));
        if let Some(cut) = s.power_cut {
            dev.flash.arm(cut);
        }
        let result = Push::new(&c, 21, s).through_resets(&mut dev);
        prop_assert!(ended_cleanly(&result), "{result:?}");
        let installed = installed_version(&mut dev);
        match &result {
            Ok(r) => {
                prop_assert_eq!(r.outcome, Some(Outcome::Installed));
                prop_assert_eq!(installed, Some(10));
            }
            Err(sbsfu_link::Error::Timeout { phase: sbsfu_link::Phase::Committing, .. })
                if installed == Some(10) => {}
            Err(_) => prop_assert!(installed != Some(10), "failed, yet installed"),
        }
        match installed {
            Some(10) => prop_assert!(dev.verifies(&c)),
            Some(_) => prop_assert!(dev.verifies(&old)),
            None => {}
        }
        let mut again = Push::new(&c, 22, Schedule::default());
        prop_assert!(matches!(dev.power_on(|t| again.power_on(t)), Stop::Finished));
        let report = again.result();
        prop_assert!(report.is_ok(), "{report:?}");
        prop_assert_eq!(dev.data(img.len()), &img[..]);
        prop_assert!(dev.verifies(&c));
    }
}

#[test]
fn a_resume_that_goes_back_to_its_sector_start_records_it_before_erasing() {
    // A reset leaves bytes written after the last progress record, in the slot's second 128K
    // sector; the resumed transfer goes back to that sector's start and erases it again, and
    // power is lost right after that erase. The record must not still claim the bytes erased.
    let im = Images::new(true);
    let fresh = provisioned(&im, Counter::None);
    let ops = clean_push_ops(&fresh, &im.new_c);
    let mut dev = fresh.clone();
    dev.flash.arm(Cut {
        op: ops - 3,
        tear: Tear::After,
    });
    assert!(matches!(
        attempt(&mut dev, &im.new_c, 2, Wire::default()),
        End::PowerCut
    ));
    let Phase::Receiving { durable, .. } = dev.state().phase else {
        panic!("not receiving: {:?}", dev.state().phase);
    };
    assert!(durable > 128 * 1024, "durable {durable}");
    dev.flash.arm(Cut {
        op: 1,
        tear: Tear::After,
    });
    assert!(matches!(
        attempt(&mut dev, &im.new_c, 3, Wire::default()),
        End::PowerCut
    ));
    match attempt(&mut dev, &im.new_c, 4, Wire::default()) {
        End::Done(r) => assert_eq!(r.outcome, Some(Outcome::Pending)),
        other => panic!("the third push ended with {other:?}"),
    }
    assert_eq!(pending(&mut dev, im.new_c.len()).unwrap(), im.new_c);
}
