//! The delivery protocol end to end in one process: `sbsfu-link`'s sender, its receiver over the
//! real `Stager` (`boot::StagerTarget`) on a simulated STM32F405, with lost frames, dropped
//! links and power cuts at every flash operation of a transfer, then resume. Whatever happens,
//! the device ends with the identical container pending (and the boot manager installs it), or
//! with a clear error and nothing pending.

mod common;

use common::*;
use sbsfu_device::boot::Phase;
use sbsfu_device::sim::kit::Spec;
use sbsfu_device::sim::{Cut, Tear};
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

/// One power-on of the device and one push of `c` over `wire`, in simulated time.
fn attempt(dev: &mut Device, c: &[u8], session: u16, wire: Wire) -> End {
    let end = dev.with_link(true, |target| {
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
    });
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
