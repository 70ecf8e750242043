//! The delivery protocol end to end in one process: `sbsfu-link`'s sender, its receiver over the
//! real `Stager` (`boot::StagerTarget`) on a simulated STM32F405, and over the resumable
//! installer of a data region on a simulated external flash (`boot::InstallerTarget`), with
//! lost frames, dropped links and power cuts at every flash operation of a transfer, then
//! resume. Whatever happens, the device ends with the identical container pending (and the
//! boot manager installs it) or installed in its data region, or with a clear error and
//! nothing pending or marked installed.

mod common;

use std::cell::RefCell;

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

/// One power-on of the device and one push of `c` over `wire`, in simulated time.
fn attempt(dev: &mut Device, c: &[u8], session: u16, wire: Wire) -> End {
    let end = dev.with_link(true, |target| exchange(target, c, session, wire));
    if dev.flash.is_dead() {
        dev.flash.revive();
        return End::PowerCut;
    }
    match end {
        Ok(Ok(report)) => End::Done(report),
        Ok(Err(e)) => End::Failed(e),
        Err(e) => panic!("the application could not start its stager: {e}"),
    }
}

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
    for (c, code) in [
        (&other, ErrorCode::WRONG_TARGET),
        (&rollback, ErrorCode::ROLLBACK),
    ] {
        dev.flash.count_from_here();
        match attempt(&mut dev, c, 3, Wire::default()) {
            End::Failed(sbsfu_link::Error::Refused(r)) => assert_eq!(r.code, code, "{r}"),
            other => panic!("{other:?}"),
        }
        assert_eq!(
            dev.flash.ops(),
            0,
            "flash touched before the head was refused"
        );
    }
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
    // How many flash operations one clean transfer takes.
    let mut probe = fresh.clone();
    probe.flash.count_from_here();
    assert!(matches!(
        attempt(&mut probe, &im.new_c, 1, Wire::default()),
        End::Done(_)
    ));
    let ops = probe.flash.ops();
    let tears = [
        Tear::Before,
        Tear::After,
        Tear::Prefix(300),
        Tear::PartialByte { n: 700, mask: 0x5A },
    ];
    let (mut resumed, mut points) = (0, 0);
    for op in 1..=ops {
        let mut dev = fresh.clone();
        let tear = tears[op % tears.len()];
        dev.flash.arm(Cut { op, tear });
        let lossy = Wire {
            drop_every: 17,
            ..Wire::default()
        };
        let first = attempt(&mut dev, &im.new_c, session(op), lossy);
        assert!(
            matches!(first, End::PowerCut),
            "op {op}/{ops}: no power cut ({first:?})"
        );
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

    /// One power-on: the application keeps the data region's installer behind the link.
    fn with_link<T>(&mut self, f: impl FnOnce(&mut InstallerTarget<'_, CHUNK_BUF>) -> T) -> T {
        let cell = RefCell::new(&mut self.flash);
        let flash = BootFlash {
            flash: &cell,
            sectors: Sectors(&DATA_SECTORS),
            address: DATA_ADDRESS,
        };
        let mut region = flash.region("assets", DATA_REGION).unwrap();
        let mut l0 = flash.region("log0", DATA_LOG[0]).unwrap();
        let mut l1 = flash.region("log1", DATA_LOG[1]).unwrap();
        let signers = [TrustedKey::from_bytes(signing_key().verifying_key().as_bytes()).unwrap()];
        let dks = [device_key()];
        let policy = data_policy(&signers, &dks);
        let installer =
            RegionInstaller::<CHUNK_BUF>::new(&policy, &mut region, [&mut l0, &mut l1]).unwrap();
        let info = DeviceInfo {
            busy_ms: 3000,
            accepts_reset: false,
        };
        let mut target = InstallerTarget::new(installer, "stm32f405", info);
        f(&mut target)
    }

    /// The image in the region verifies from flash against `c`'s head.
    fn verifies(&mut self, c: &[u8]) -> bool {
        let head_len = head_len(c);
        let cell = RefCell::new(&mut self.flash);
        let flash = BootFlash {
            flash: &cell,
            sectors: Sectors(&DATA_SECTORS),
            address: DATA_ADDRESS,
        };
        let mut region = flash.region("assets", DATA_REGION).unwrap();
        let signers = [TrustedKey::from_bytes(signing_key().verifying_key().as_bytes()).unwrap()];
        let policy = data_policy(&signers, &[]);
        verify_region(&mut region, &c[..head_len], &policy, &mut [0; 256]).is_ok()
    }

    /// The first `len` bytes of the region.
    fn data(&self, len: usize) -> &[u8] {
        &self.flash.data()[..len]
    }
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

/// A container of `img` for the `assets` region.
fn data_container(img: &[u8], encrypted: bool, rand: u8) -> Vec<u8> {
    Spec {
        region: "assets",
        load_address: DATA_ADDRESS,
        signer: 0x51,
        device: 0x52,
        randomness: rand,
        ..Spec::new(encrypted, 1024)
    }
    .seal(img)
}

/// One power-on of the data device and one push.
fn data_attempt(dev: &mut DataDevice, c: &[u8], session: u16, wire: Wire) -> End {
    let end = dev.with_link(|target| exchange(target, c, session, wire));
    if dev.flash.is_dead() {
        dev.flash.revive();
        return End::PowerCut;
    }
    match end {
        Ok(report) => End::Done(report),
        Err(e) => End::Failed(e),
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
        let End::Done(report) = data_attempt(&mut dev, &c, 1, Wire::default()) else {
            panic!("push failed");
        };
        assert_eq!(report.outcome, Some(Outcome::Installed));
        assert_eq!(report.bytes_sent, c.len() as u64);
        assert_eq!(dev.data(img.len()), &img[..]);
        assert!(dev.verifies(&c));
        assert_eq!(installed_version(&mut dev), Some(10));
        // Pushed again: already installed, verified again from flash, nothing sent.
        let End::Done(again) = data_attempt(&mut dev, &c, 2, Wire::default()) else {
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
        region: "assets",
        load_address: DATA_ADDRESS + 0x1000,
        signer: 0x51,
        device: 0x52,
        ..Spec::new(true, 1024)
    }
    .seal(&img);
    let mut forged = data_container(&img, true, 2);
    let at = head_len(&forged) - 1;
    forged[at] ^= 1;
    for (c, code) in [
        (&elsewhere, ErrorCode::REGION),
        (&forged, ErrorCode::AUTHENTICATION),
    ] {
        dev.flash.count_from_here();
        match data_attempt(&mut dev, c, 3, Wire::default()) {
            End::Failed(sbsfu_link::Error::Refused(r)) => assert_eq!(r.code, code, "{r}"),
            other => panic!("{other:?}"),
        }
        assert_eq!(
            dev.flash.ops(),
            0,
            "flash touched before the head was refused"
        );
    }
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
    let End::Done(report) = data_attempt(&mut dev, &c, 7, Wire::default()) else {
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
        data_attempt(&mut dev, &other, 8, first),
        End::Failed(_)
    ));
    assert_eq!(installed_version(&mut dev), None);
    let End::Done(report) = data_attempt(&mut dev, &other, 9, Wire::default()) else {
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
    match data_attempt(&mut dev, &bad, 1, Wire::default()) {
        End::Failed(sbsfu_link::Error::Refused(r)) => {
            assert_eq!(r.code, ErrorCode::AUTHENTICATION, "{r}")
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(dev.data(5 * 1024), &img[..5 * 1024]);
    assert!(dev.data(6 * 1024)[5 * 1024..].iter().all(|b| *b == 0xFF));
    assert_eq!(installed_version(&mut dev), None);
    // The genuine container then installs.
    let End::Done(report) = data_attempt(&mut dev, &c, 2, Wire::default()) else {
        panic!("push failed");
    };
    assert_eq!(report.outcome, Some(Outcome::Installed));
}

#[test]
fn a_power_cut_at_every_flash_operation_of_a_data_install_is_resumed() {
    let img = kit_image(40_000, 6);
    let tears = [
        Tear::Before,
        Tear::After,
        Tear::Prefix(300),
        Tear::PartialByte { n: 700, mask: 0x5A },
    ];
    // The region holds an older image (security counter 5): the new one is erased over it.
    let old = Spec {
        security_counter: 5,
        region: "assets",
        load_address: DATA_ADDRESS,
        signer: 0x51,
        device: 0x52,
        ..Spec::new(true, 1024)
    }
    .seal(&kit_image(60_000, 9));
    let mut fresh = DataDevice::new();
    assert!(matches!(
        data_attempt(&mut fresh, &old, 1, Wire::default()),
        End::Done(_)
    ));
    for encrypted in [true, false] {
        let c = data_container(&img, encrypted, 6);
        let mut probe = fresh.clone();
        probe.flash.count_from_here();
        assert!(matches!(
            data_attempt(&mut probe, &c, 1, Wire::default()),
            End::Done(_)
        ));
        let ops = probe.flash.ops();
        let mut resumed = 0;
        for op in 1..=ops {
            let mut dev = fresh.clone();
            let tear = tears[op % tears.len()];
            dev.flash.arm(Cut { op, tear });
            let lossy = Wire {
                drop_every: 13,
                ..Wire::default()
            };
            let first = data_attempt(&mut dev, &c, session(op), lossy);
            assert!(matches!(first, End::PowerCut), "op {op}/{ops}: {first:?}");
            // Marked installed only while the image verifies: the old one until the new one
            // is begun, the new one once verified in full.
            match installed_version(&mut dev) {
                Some(5) => assert!(dev.verifies(&old), "op {op}: the old image is not valid"),
                Some(_) => assert!(dev.verifies(&c), "op {op}: installed but not valid"),
                None => {}
            }
            match data_attempt(&mut dev, &c, session(op) + 1, lossy) {
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
