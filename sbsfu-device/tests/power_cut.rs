//! Power cuts at every flash operation of an update and of a revert, in every way a NOR flash
//! can be left by one, then again during recovery: the device always boots the old or the new
//! image, byte-exact and verified, and the anti-rollback floor never goes backwards nor rises
//! before the new image confirmed itself.
//!
//! The fault kinds (counted separately in the report):
//! - **before** / **after**: the operation did not start, or completed;
//! - **torn**: a prefix of a write or erase done, or a byte half programmed;
//! - **marginal**: a write (or an OTP word) whose last bytes, or all of it, were programmed only
//!   weakly: they read correctly at first and decay after one or two reads, or flicker from read
//!   to read;
//! - **weak erase**: an erase that left the whole sector weakly erased (reading `0xFF`, decaying
//!   back to the old content later);
//! - **ECC**: the same cuts on flash with ECC (STM32L4/G4/H7-like), where a torn or weak word is
//!   a read error;
//! - and the same kinds again on an **aged state log**, whose bank is full, so that the update's
//!   records cut through the bank swap (the other bank's erase).
//!
//! Run with `cargo test --release -p sbsfu-device power_cut -- --nocapture`; it prints
//! `power cuts: N points tested, 0 unbootable` and the count per fault kind. A debug build
//! (plain `cargo test`) cuts every 7th operation and runs fewer random sequences, to keep the
//! default test run quick. `cargo xtask test` runs the full version: it builds this crate
//! without debug assertions (and optimised) in the dev profile, sharing the other tests' build.

mod common;

use std::collections::BTreeMap;

use common::*;
use sbsfu_device::boot::Phase;
use sbsfu_device::sim::{Cut, Decay, OpKind, Tear};

/// Nothing done, everything done, and torn: prefix and byte positions land inside records
/// (1 KiB), staged writes (1 KiB), chunk writes (4 KiB) and sector erases alike.
const CLEAN: [Tear; 8] = [
    Tear::Before,
    Tear::After,
    Tear::Prefix(1),
    Tear::Prefix(200),
    Tear::Prefix(3000),
    Tear::PartialByte { n: 100, mask: 0x0F },
    Tear::PartialByte { n: 255, mask: 0xA5 },
    Tear::PartialByte { n: 511, mask: 0x80 },
];

/// Weak cells: the last word of a write marginal (decaying after two reads, or flickering), or
/// the whole operation weak (a write weakly programmed, a sector weakly erased) decaying after
/// one read.
const WEAK: [Tear; 3] = [
    Tear::WeakTail {
        len: 4,
        decay: Decay::AfterReads(2),
    },
    Tear::WeakTail {
        len: 4,
        decay: Decay::Flicker,
    },
    Tear::Weak {
        n: 0,
        len: usize::MAX,
        decay: Decay::AfterReads(1),
    },
];

/// On flash with ECC: a torn word, a half-programmed byte, a marginal word (all read errors).
const ECC: [Tear; 3] = [
    Tear::Prefix(200),
    Tear::PartialByte { n: 255, mask: 0xA5 },
    Tear::WeakTail {
        len: 4,
        decay: Decay::Flicker,
    },
];

/// Every operation in release builds; every 7th in debug builds.
const STRIDE: usize = if cfg!(debug_assertions) { 7 } else { 1 };
/// Random multi-cut sequences.
const SEQUENCES: u64 = if cfg!(debug_assertions) { 40 } else { 400 };

/// What the application does once running.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum App {
    /// The new image is good: it confirms itself; the old one retries the download.
    Update,
    /// The new image never confirms (it is broken): the device must end up on the old one.
    Broken,
}

/// Which device a scenario runs on.
#[derive(Clone, Copy, Debug)]
struct Setup {
    encrypted: bool,
    counter: Counter,
    ecc: bool,
    /// The state log's current bank full: the first record of the update swaps banks.
    aged: bool,
}

#[derive(Default)]
struct Tally {
    points: usize,
    unbootable: usize,
    by_kind: BTreeMap<&'static str, usize>,
}

impl Tally {
    fn count(&mut self, kind: &'static str) {
        self.points += 1;
        *self.by_kind.entry(kind).or_default() += 1;
    }
}

/// The fault kind of a cut, for the report.
fn kind_of(setup: Setup, tear: Tear, op: Option<OpKind>) -> &'static str {
    if setup.aged {
        return "aged log (bank swap)";
    }
    if setup.ecc {
        return "ECC";
    }
    match (tear, op) {
        (Tear::Before, _) => "before",
        (Tear::After, _) => "after",
        (Tear::Prefix(_) | Tear::PartialByte { .. }, _) => "torn",
        (Tear::Weak { .. } | Tear::WeakTail { .. }, Some(OpKind::Erase)) => "weak erase",
        (Tear::Weak { .. } | Tear::WeakTail { .. }, _) => "marginal",
    }
}

/// What the device did so far, as the checks need it.
struct Seen {
    /// The floor of the last boot (the device's own view).
    floor: u32,
    /// Whether the new image ever tried to confirm itself.
    confirm_attempted: bool,
}

/// Checks a successful boot: the image is exactly the old or the new one, the floor did not go
/// backwards, rose only after a confirmation was attempted, and never lets the old image run.
fn check_boot(
    dev: &mut Device,
    im: &Images,
    boot: &sbsfu_device::boot::Boot,
    seen: &mut Seen,
    ctx: &str,
) -> &'static str {
    let which = im.which(dev, boot);
    let now = boot.floor;
    assert!(
        now >= seen.floor,
        "{ctx}: floor went back from {} to {now}",
        seen.floor
    );
    assert!(now == 5 || now == 7, "{ctx}: floor {now}");
    if now == 7 {
        assert!(
            seen.confirm_attempted,
            "{ctx}: floor rose without a confirmation"
        );
        assert_eq!(which, "new", "{ctx}: old image running above the floor");
    }
    if which == "old" {
        assert!(!boot.trial, "{ctx}: the old image on trial");
    }
    // Observed on a copy: reading the state may write (a decayed record is written again).
    let state = dev.clone().state();
    assert!(
        matches!(
            state.phase,
            Phase::Idle | Phase::Trial { .. } | Phase::Reverting { .. }
        ),
        "{ctx}: boot returned in {:?}",
        state.phase
    );
    seen.floor = now;
    which
}

/// Lives the device's life from now: boot; the app confirms or re-downloads; until settled.
/// Power may be cut by whatever `cuts` arms after each restart; the device then restarts (as
/// after a reset). Returns the final image (`None` if a boot found nothing to boot) and how many
/// cuts happened during this life.
fn live(
    dev: &mut Device,
    im: &Images,
    app: App,
    seen: &mut Seen,
    ctx: &str,
    mut cuts: impl FnMut(&mut Device),
) -> (Option<&'static str>, usize) {
    let mut downloads = 0;
    let mut fired = 0;
    for round in 0..24 {
        if dev.flash.is_dead() {
            fired += 1;
            dev.flash.revive();
            cuts(dev);
        }
        let boot = match dev.boot() {
            Ok(b) => b,
            Err(_) if dev.flash.is_dead() => continue,
            Err(e) => {
                eprintln!("{ctx}: round {round}: unbootable: {e:?}");
                return (None, fired);
            }
        };
        let which = check_boot(dev, im, &boot, seen, ctx);
        let done = match (which, boot.trial, app) {
            ("new", true, App::Update) => {
                seen.confirm_attempted = true;
                let _ = dev.confirm();
                false
            }
            ("new", false, App::Update) => true,
            ("old", _, App::Update) if downloads < 4 => {
                downloads += 1;
                let _ = dev.stage(&im.new_c, true);
                false
            }
            ("old", _, _) => true,
            ("new", _, App::Broken) => false,
            _ => unreachable!(),
        };
        if done && !dev.flash.is_dead() {
            return (Some(which), fired);
        }
    }
    panic!("{ctx}: did not settle")
}

/// The update, as the running application and the boot manager do it, from `base`.
fn update_steps(dev: &mut Device, im: &Images, seen: &mut Seen) {
    if dev.stage(&im.new_c, true).is_err() {
        return;
    }
    if dev.boot().is_err() {
        return;
    }
    seen.confirm_attempted = true;
    if dev.confirm().is_err() {
        return;
    }
    let _ = dev.boot();
}

/// The update from `base`, run once without a cut: the device after it, and how many flash and
/// OTP operations it took.
fn measured_update(base: &Device, im: &Images) -> (Device, usize) {
    let mut probe = base.clone();
    probe.flash.count_from_here();
    let mut seen = Seen {
        floor: 5,
        confirm_attempted: false,
    };
    update_steps(&mut probe, im, &mut seen);
    let n = probe.flash.ops();
    (probe, n)
}

/// A device on the old image, confirmed; with an aged log, its current state bank is full.
fn base(setup: Setup, im: &Images) -> Device {
    let dev = if setup.ecc {
        Device::with_ecc(setup.counter)
    } else {
        Device::new(setup.counter)
    };
    let mut dev = provisioned_on(dev, im);
    // Settle the counter (it follows the state at the first boot after provisioning).
    dev.boot().unwrap();
    if setup.aged {
        // Rewrite the state until the current bank has exactly one free slot left: the
        // update's second record swaps banks.
        while dev.free_state_slots() != 1 {
            dev.with_state(|_| {});
        }
    }
    dev
}

fn exhaustive(tally: &mut Tally, setup: Setup, tears: &[Tear]) {
    let im = Images::new(setup.encrypted);
    let base = base(setup, &im);
    let name = format!("{setup:?}");

    // Update: count its operations, then cut at each of them, in each way.
    let (probe, n) = measured_update(&base, &im);
    let mut after = probe.clone();
    let b = after.boot().unwrap();
    assert_eq!(im.which(&after, &b), "new");
    for k in (1..=n).step_by(STRIDE) {
        for tear in tears {
            tally.count(kind_of(setup, *tear, probe.flash.op_kind(k)));
            let ctx = format!("update ({name}) cut {k}/{n} {tear:?}");
            let mut dev = base.clone();
            let mut seen = Seen {
                floor: 5,
                confirm_attempted: false,
            };
            dev.flash.arm(Cut { op: k, tear: *tear });
            update_steps(&mut dev, &im, &mut seen);
            dev.flash.revive();
            match live(&mut dev, &im, App::Update, &mut seen, &ctx, |_| {}).0 {
                Some(final_image) => {
                    // With retries, every update completes, confirmed.
                    assert_eq!(final_image, "new", "{ctx}");
                    assert_eq!(dev.floor(), 7, "{ctx}");
                }
                None => tally.unbootable += 1,
            }
        }
    }

    // Revert: the new image is installed and on trial, and never confirms.
    let mut trial = base.clone();
    trial.stage(&im.new_c, true).unwrap();
    assert!(trial.boot().unwrap().trial);
    let mut probe = trial.clone();
    probe.flash.count_from_here();
    let b = probe.boot().unwrap();
    assert_eq!(im.which(&probe, &b), "old");
    let n = probe.flash.ops();
    for k in (1..=n).step_by(STRIDE) {
        for tear in tears {
            tally.count(kind_of(setup, *tear, probe.flash.op_kind(k)));
            let ctx = format!("revert ({name}) cut {k}/{n} {tear:?}");
            let mut dev = trial.clone();
            dev.flash.arm(Cut { op: k, tear: *tear });
            let _ = dev.boot();
            dev.flash.revive();
            let mut seen = Seen {
                floor: 5,
                confirm_attempted: false,
            };
            match live(&mut dev, &im, App::Broken, &mut seen, &ctx, |_| {}).0 {
                Some(final_image) => {
                    assert_eq!(final_image, "old", "{ctx}");
                    assert_eq!(dev.floor(), 5, "{ctx}");
                    assert_eq!(dev.state().confirmed, Some(0), "{ctx}");
                }
                None => tally.unbootable += 1,
            }
        }
    }
}

/// Seeded sequences of several cuts, of every kind: during the update, during recovery, during
/// recovery of the recovery.
fn random_sequences(tally: &mut Tally, seeds: u64) {
    let setup = Setup {
        encrypted: true,
        counter: Counter::Otp,
        ecc: false,
        aged: false,
    };
    let im = Images::new(setup.encrypted);
    let base = base(setup, &im);
    let n = measured_update(&base, &im).1;
    let tears: Vec<Tear> = CLEAN.iter().chain(WEAK.iter()).copied().collect();
    for seed in 0..seeds {
        let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
        let mut rand = move |m: usize| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x % m as u64) as usize
        };
        let app = if seed % 4 == 3 {
            App::Broken
        } else {
            App::Update
        };
        let mut dev = base.clone();
        let mut cuts_left = 2 + rand(4);
        let mut armed = Vec::new();
        let mut arm = |dev: &mut Device, rand: &mut dyn FnMut(usize) -> usize| {
            if cuts_left > 0 {
                cuts_left -= 1;
                let tear = tears[rand(tears.len())];
                armed.push(tear);
                dev.flash.arm(Cut {
                    op: 1 + rand(n),
                    tear,
                });
            }
        };
        arm(&mut dev, &mut rand);
        let mut seen = Seen {
            floor: 5,
            confirm_attempted: false,
        };
        if app == App::Update {
            update_steps(&mut dev, &im, &mut seen);
        } else {
            let _ = dev.stage(&im.new_c, true);
            let _ = dev.boot();
        }
        let ctx = format!("random sequence {seed} ({app:?})");
        let (result, fired) = live(&mut dev, &im, app, &mut seen, &ctx, |d| arm(d, &mut rand));
        // Only cuts that happened count (an armed cut may land past the end of a short run).
        for _ in armed.iter().take(fired) {
            tally.count("random multi-cut");
        }
        match result {
            Some(final_image) => {
                if app == App::Broken {
                    assert_eq!(final_image, "old", "{ctx}");
                }
            }
            None => tally.unbootable += 1,
        }
    }
}

#[test]
fn power_cut_exhaustive_update_and_revert() {
    let mut tally = Tally::default();
    let all: Vec<Tear> = CLEAN.iter().chain(WEAK.iter()).copied().collect();
    let setups = [
        // Encrypted, with the anti-rollback counter in OTP (its words cut too).
        (true, Counter::Otp, false, false, &all[..]),
        // Signed only, no counter: the state log alone holds the floor.
        (false, Counter::None, false, false, &all[..]),
        // Encrypted, with a counter in its own flash log.
        (true, Counter::Flash, false, false, &CLEAN[..]),
        // Flash with ECC.
        (true, Counter::Otp, true, false, &ECC[..]),
        // An aged log: the update's records swap banks.
        (true, Counter::None, false, true, &all[..]),
    ];
    for (encrypted, counter, ecc, aged, tears) in setups {
        let setup = Setup {
            encrypted,
            counter,
            ecc,
            aged,
        };
        exhaustive(&mut tally, setup, tears);
    }
    random_sequences(&mut tally, SEQUENCES);
    println!(
        "power cuts: {} points tested, {} unbootable",
        tally.points, tally.unbootable
    );
    let order = [
        "before",
        "after",
        "torn",
        "marginal",
        "weak erase",
        "ECC",
        "aged log (bank swap)",
        "random multi-cut",
    ];
    assert_eq!(tally.by_kind.len(), order.len(), "{:?}", tally.by_kind);
    let kinds: Vec<String> = order
        .iter()
        .map(|k| format!("{k} {}", tally.by_kind.get(k).copied().unwrap_or(0)))
        .collect();
    println!("power cuts by fault kind: {}", kinds.join(", "));
    assert_eq!(tally.unbootable, 0);
}
