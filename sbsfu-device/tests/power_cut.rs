//! Power cuts at every flash operation of an update and of a revert, in every way a NOR flash
//! can be left by one (nothing done, all done, a prefix of a write, a byte half programmed, a
//! sector partly erased), then again during recovery: the device always boots the old or the new
//! image, byte-exact and verified, and the anti-rollback floor never goes backwards nor rises
//! before the new image confirmed itself.
//!
//! Run with `cargo test --release -p sbsfu-device power_cut -- --nocapture`; it prints
//! `power cuts: N points tested, 0 unbootable`. A debug build (plain `cargo test`) cuts every
//! 7th operation and runs fewer random sequences, to keep the default test run quick; `cargo
//! xtask test` runs the full release version.

mod common;

use common::*;
use sbsfu_device::boot_state::Phase;
use sbsfu_device::sim::{Cut, Tear};

/// Every way a cut operation is left. Prefix and byte positions land inside records (512 B),
/// staged writes (256 B), chunk writes (4 KiB) and sector erases alike.
const TEARS: [Tear; 8] = [
    Tear::Before,
    Tear::After,
    Tear::Prefix(1),
    Tear::Prefix(200),
    Tear::Prefix(3000),
    Tear::PartialByte { n: 100, mask: 0x0F },
    Tear::PartialByte { n: 255, mask: 0xA5 },
    Tear::PartialByte { n: 511, mask: 0x80 },
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

#[derive(Default)]
struct Tally {
    points: usize,
    unbootable: usize,
}

/// Checks a successful boot: the image is exactly the old or the new one, the floor did not go
/// backwards and only rose with a durable confirmation, and the state settled.
fn check_boot(
    dev: &mut Device,
    im: &Images,
    boot: &sbsfu_device::boot::Boot,
    floor: &mut u32,
    ctx: &str,
) -> &'static str {
    let which = im.which(dev, boot);
    let state = dev.state();
    let now = dev.floor();
    assert!(
        now >= *floor,
        "{ctx}: floor went back from {} to {now}",
        *floor
    );
    assert!(now == 5 || now == 7, "{ctx}: floor {now}");
    if now == 7 {
        assert_eq!(
            state.confirmed,
            Some(1),
            "{ctx}: floor rose without a confirmation"
        );
        assert_eq!(which, "new", "{ctx}: old image running above the floor");
    }
    if which == "old" {
        assert!(!boot.trial, "{ctx}: the old image on trial");
    }
    assert!(
        matches!(
            state.phase,
            Phase::Idle | Phase::Trial { .. } | Phase::Reverting { .. }
        ),
        "{ctx}: boot returned in {:?}",
        state.phase
    );
    *floor = now;
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
    floor: &mut u32,
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
        let which = check_boot(dev, im, &boot, floor, ctx);
        let done = match (which, boot.trial, app) {
            ("new", true, App::Update) => {
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
fn update_steps(dev: &mut Device, im: &Images) {
    if dev.stage(&im.new_c, true).is_err() {
        return;
    }
    if dev.boot().is_err() {
        return;
    }
    if dev.confirm().is_err() {
        return;
    }
    let _ = dev.boot();
}

fn exhaustive(tally: &mut Tally, encrypted: bool, external: bool) {
    let im = Images::new(encrypted);
    let base = provisioned(&im, external);

    // Update: count its operations, then cut at each of them, in each way.
    let mut probe = base.clone();
    probe.flash.count_from_here();
    update_steps(&mut probe, &im);
    let n = probe.flash.ops();
    let mut after = probe.clone();
    let b = after.boot().unwrap();
    assert_eq!(im.which(&after, &b), "new");
    for k in (1..=n).step_by(STRIDE) {
        for tear in TEARS {
            tally.points += 1;
            let ctx =
                format!("update (encrypted={encrypted}, counter={external}) cut {k}/{n} {tear:?}");
            let mut dev = base.clone();
            dev.flash.arm(Cut { op: k, tear });
            update_steps(&mut dev, &im);
            dev.flash.revive();
            let mut floor = 5;
            match live(&mut dev, &im, App::Update, &mut floor, &ctx, |_| {}).0 {
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
        for tear in TEARS {
            tally.points += 1;
            let ctx =
                format!("revert (encrypted={encrypted}, counter={external}) cut {k}/{n} {tear:?}");
            let mut dev = trial.clone();
            dev.flash.arm(Cut { op: k, tear });
            let _ = dev.boot();
            dev.flash.revive();
            let mut floor = 5;
            match live(&mut dev, &im, App::Broken, &mut floor, &ctx, |_| {}).0 {
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

/// Seeded sequences of several cuts: during the update, during recovery, during recovery of the
/// recovery.
fn random_sequences(tally: &mut Tally, seeds: u64) {
    let im = Images::new(true);
    let base = provisioned(&im, true);
    let mut probe = base.clone();
    probe.flash.count_from_here();
    update_steps(&mut probe, &im);
    let n = probe.flash.ops();
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
        let arm = |dev: &mut Device, rand: &mut dyn FnMut(usize) -> usize, left: &mut usize| {
            if *left > 0 {
                *left -= 1;
                let tear = TEARS[rand(TEARS.len())];
                dev.flash.arm(Cut {
                    op: 1 + rand(n),
                    tear,
                });
            }
        };
        arm(&mut dev, &mut rand, &mut cuts_left);
        if app == App::Update {
            update_steps(&mut dev, &im);
        } else {
            let _ = dev.stage(&im.new_c, true);
            let _ = dev.boot();
        }
        let mut floor = 5;
        let ctx = format!("random sequence {seed} ({app:?})");
        let (result, fired) = live(&mut dev, &im, app, &mut floor, &ctx, |d| {
            arm(d, &mut rand, &mut cuts_left)
        });
        // Only cuts that happened count (an armed cut may land past the end of a short run).
        tally.points += fired;
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
    exhaustive(&mut tally, true, true);
    exhaustive(&mut tally, false, false);
    random_sequences(&mut tally, SEQUENCES);
    println!(
        "power cuts: {} points tested, {} unbootable",
        tally.points, tally.unbootable
    );
    assert_eq!(tally.unbootable, 0);
}
