//! The link simulator: a [`SimTarget`] that honours the [`crate::Target`] contract on a
//! simulated NOR flash with the STM32F4's timings, a serial line in simulated time with faults
//! ([`link::run`]), and the stop-and-wait protocols it is measured against ([`baseline`]).
//! Host-only (the `sim` feature, and the tests).
#![allow(
    clippy::indexing_slicing,
    clippy::arithmetic_side_effects,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::cast_possible_truncation
)]

pub mod baseline;
pub mod device;
pub mod link;

pub use device::{FlashTiming, SimTarget, container};
pub use link::{Device, Fault, Faults, Line, Trace, run};

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Config, Error, ErrorCode, Outcome, Phase, Report, Sender};
    use proptest::prelude::*;
    use std::vec;
    use std::vec::Vec;

    const F: usize = 1024;
    const LEN: usize = 20_000;

    fn device() -> Device<F> {
        Device::new(SimTarget::small(), 4)
    }

    fn config(session: u16) -> Config {
        Config {
            latency_ms: 50,
            session,
            ..Config::for_baud(921_600)
        }
    }

    fn push_from(
        image: &[u8],
        device: &mut Device<F>,
        faults: &Faults,
        session: u16,
        start_ns: u64,
    ) -> (Result<Report, Error>, Trace) {
        let mut sender = Sender::<_, F>::new(image, config(session)).unwrap();
        let trace = run(
            &mut sender,
            device,
            &Line::UART_921600,
            faults,
            start_ns,
            3_600_000,
        );
        let result = sender
            .result()
            .expect("the push ended within an hour of simulated time");
        assert!(
            device.target.violations().is_empty(),
            "{:?}",
            device.target.violations()
        );
        (result, trace)
    }

    fn push(
        image: &[u8],
        device: &mut Device<F>,
        faults: &Faults,
    ) -> (Result<Report, Error>, Trace) {
        push_from(image, device, faults, 1, 0)
    }

    fn every(n: usize, fault: Fault, frames: usize) -> Vec<Option<Fault>> {
        (0..frames)
            .map(|i| (i % n == n - 1).then_some(fault))
            .collect()
    }

    /// Noise before each of the first 40 frames, `len + i` bytes before frame `i`.
    fn garbage(len: u8) -> Vec<Option<Fault>> {
        (0..40u8)
            .map(|i| {
                Some(Fault::Garbage {
                    len: len + i,
                    seed: i,
                })
            })
            .collect()
    }

    /// The link goes down at `ms` and stays down.
    fn link_down_from(ms: u64) -> Faults {
        Faults {
            cut_ms: Some((ms, u64::MAX / 2_000_000)),
            ..Faults::default()
        }
    }

    fn assert_committed(device: &Device<F>, image: &[u8], result: &Result<Report, Error>) {
        let report = result.as_ref().unwrap();
        assert_eq!(report.outcome, Some(Outcome::Pending));
        assert_eq!(report.container_len as usize, image.len());
        assert_eq!(device.target.pending(), Some(image));
        assert_eq!(device.target.partial(), None);
    }

    #[test]
    fn clean_transfer_commits_the_identical_container() {
        let image = container(LEN, 1);
        let mut d = device();
        let (result, trace) = push(&image, &mut d, &Faults::default());
        assert_committed(&d, &image, &result);
        let report = result.unwrap();
        assert_eq!(
            (report.retransmits, report.restarts, report.resumed_from),
            (0, 0, 0)
        );
        assert_eq!(report.bytes_sent, LEN as u64);
        assert_eq!(trace.overruns, 0);
        assert_eq!(d.receiver.stats().crc_errors, 0);
    }

    /// Pushes container `seed` through line faults each way; it must commit.
    fn commits_despite(
        seed: u64,
        to_device: Vec<Option<Fault>>,
        to_host: Vec<Option<Fault>>,
    ) -> (Device<F>, Report) {
        let image = container(LEN, seed);
        let mut d = device();
        let faults = Faults {
            to_device,
            to_host,
            ..Faults::default()
        };
        let (result, _) = push(&image, &mut d, &faults);
        assert_committed(&d, &image, &result);
        (d, result.unwrap())
    }

    #[test]
    fn dropped_frames_are_sent_again() {
        let (_, report) = commits_despite(2, every(5, Fault::Drop, 60), every(7, Fault::Drop, 60));
        assert!(report.retransmits > 0);
    }

    #[test]
    fn corrupted_frames_are_dropped_and_sent_again() {
        let to_device = (0..80)
            .map(|i| {
                (i % 3 == 1).then_some(Fault::Corrupt {
                    at: i * 37,
                    bit: (i % 8) as u8,
                })
            })
            .collect();
        let to_host = every(4, Fault::Corrupt { at: 5, bit: 3 }, 60);
        let (d, _) = commits_despite(3, to_device, to_host);
        assert!(d.receiver.stats().crc_errors + d.receiver.stats().broken > 0);
    }

    #[test]
    fn duplicated_frames_are_ignored_by_offset() {
        // The target saw every byte exactly once: it records any write out of order.
        let duplicates = vec![Some(Fault::Duplicate); 200];
        commits_despite(4, duplicates.clone(), duplicates);
    }

    #[test]
    fn reordered_frames_are_recovered() {
        let to_device = every(3, Fault::Delay { ms: 30 }, 60);
        commits_despite(5, to_device, every(5, Fault::Delay { ms: 40 }, 60));
    }

    #[test]
    fn garbage_between_frames_is_skipped() {
        let (_, report) = commits_despite(6, garbage(50), garbage(20));
        // The frames after the noise survived: no frame was sent twice.
        assert_eq!(report.retransmits, 0);
    }

    #[test]
    fn a_cut_link_times_out_and_the_next_push_resumes() {
        let image = container(LEN, 7);
        let mut d = device();
        let (result, trace) = push(&image, &mut d, &link_down_from(120));
        let Err(Error::Timeout { phase, acked }) = result else {
            panic!("{result:?}")
        };
        assert_eq!(phase, crate::Phase::Sending);
        assert!(acked > 0 && (acked as usize) < LEN, "{acked}");
        assert_eq!(d.target.pending(), None);
        let (_, durable) = d.target.partial().unwrap();
        // A second push, later, on a working link: resumes where the device's storage is.
        let (result, _) = push_from(&image, &mut d, &Faults::default(), 40_000, trace.end_ns);
        assert_committed(&d, &image, &result);
        let report = result.unwrap();
        assert_eq!(report.resumed_from, durable);
        assert!(report.resumed_from > 0);
        assert!(report.bytes_sent < LEN as u64, "{}", report.bytes_sent);
    }

    #[test]
    fn a_device_reset_mid_transfer_is_resumed_by_the_same_push() {
        let image = container(LEN, 8);
        let mut d = device();
        let faults = Faults {
            reset_at_ms: Some(150),
            ..Faults::default()
        };
        let (result, trace) = push(&image, &mut d, &faults);
        assert_committed(&d, &image, &result);
        let report = result.unwrap();
        assert_eq!(trace.power_losses, 1);
        assert_eq!(report.restarts, 1);
        // Only what was not durable at the reset was sent twice.
        assert!(
            report.bytes_sent < 2 * LEN as u64 - 4096,
            "{}",
            report.bytes_sent
        );
    }

    #[test]
    fn a_power_cut_at_every_flash_operation_is_resumed() {
        let image = container(6_000, 9);
        let mut clean = device();
        push(&image, &mut clean, &Faults::default()).0.unwrap();
        let ops = clean.target.flash_ops();
        assert!(ops > 20, "{ops}");
        for n in 1..=ops {
            let mut d = device();
            d.target.cut_power_at(n);
            let (result, trace) = push(&image, &mut d, &Faults::default());
            assert_eq!(trace.power_losses, 1, "cut at operation {n}");
            assert_committed(&d, &image, &result);
        }
    }

    #[test]
    fn a_refused_head_touches_no_flash() {
        let mut image = container(LEN, 10);
        image[12 + 24 + 5] ^= 1; // a signature byte
        let mut d = device();
        let (result, _) = push(&image, &mut d, &Faults::default());
        let Err(Error::Refused(reason)) = result else {
            panic!("{result:?}")
        };
        assert_eq!(reason.code, ErrorCode::AUTHENTICATION);
        assert_eq!(d.target.flash_ops(), 0);
        assert_eq!((d.target.pending(), d.target.partial()), (None, None));
        // A header whose length disagrees with the container.
        let good = container(LEN, 10);
        let (result, _) = push(&good[..LEN - 1], &mut d, &Faults::default());
        let Err(Error::Refused(reason)) = result else {
            panic!("{result:?}")
        };
        assert_eq!(reason.code, ErrorCode::LENGTH);
        assert_eq!(d.target.flash_ops(), 0);
    }

    #[test]
    fn a_corrupted_payload_is_refused_at_commit_and_nothing_is_pending() {
        let image = container(LEN, 11);
        let mut bad = image.clone();
        bad[LEN / 2] ^= 0x40;
        let mut d = device();
        let (result, _) = push(&bad, &mut d, &Faults::default());
        let Err(Error::Refused(reason)) = result else {
            panic!("{result:?}")
        };
        assert_eq!(reason.code, ErrorCode::AUTHENTICATION);
        assert_eq!((d.target.pending(), d.target.partial()), (None, None));
        // The same head again starts from scratch, not from the refused copy.
        let (result, _) = push_from(&image, &mut d, &Faults::default(), 2, 0);
        assert_committed(&d, &image, &result);
        assert_eq!(result.unwrap().resumed_from, 0);
    }

    #[test]
    fn a_different_container_restarts_cleanly() {
        let a = container(LEN, 12);
        let b = container(LEN, 13);
        let mut d = device();
        let (result, trace) = push(&a, &mut d, &link_down_from(120));
        assert!(matches!(result, Err(Error::Timeout { .. })));
        assert!(d.target.partial().unwrap().1 > 0);
        let (result, _) = push_from(&b, &mut d, &Faults::default(), 2, trace.end_ns);
        assert_committed(&d, &b, &result);
        assert_eq!(result.unwrap().resumed_from, 0);
    }

    #[test]
    fn a_container_already_pending_is_confirmed_without_sending_it_again() {
        // The device committed, but its Committed reply (and every retry) was lost.
        let image = container(LEN, 17);
        let (_, clean) = push(&image, &mut device(), &Faults::default());
        let replies = clean.frames_to_host as usize;
        let mut d = device();
        let deaf = Faults {
            to_host: [vec![None; replies - 1], vec![Some(Fault::Drop); 20]].concat(),
            ..Faults::default()
        };
        let (result, trace) = push(&image, &mut d, &deaf);
        assert!(
            matches!(result, Err(Error::Timeout { phase: Phase::Committing, acked }) if acked as usize == LEN),
            "{result:?}"
        );
        assert_eq!(d.target.pending(), Some(&image[..]));
        // The next push learns it at once.
        let (result, _) = push_from(&image, &mut d, &Faults::default(), 2, trace.end_ns);
        assert_committed(&d, &image, &result);
        let report = result.unwrap();
        assert_eq!((report.resumed_from as usize, report.bytes_sent), (LEN, 0));
    }

    #[test]
    fn a_reset_after_commit_is_acknowledged() {
        let image = container(LEN, 14);
        let mut d = device();
        d.target.set_accepts_reset(true);
        let mut sender = Sender::<_, F>::new(
            &image[..],
            Config {
                reset: true,
                ..config(1)
            },
        )
        .unwrap();
        run(
            &mut sender,
            &mut d,
            &Line::UART_921600,
            &Faults::default(),
            0,
            60_000,
        );
        let report = sender.result().unwrap().unwrap();
        assert!(report.reset);
        assert_eq!(d.target.pending(), Some(&image[..]));
    }

    #[test]
    fn stale_frames_of_an_earlier_session_are_ignored() {
        // Frames held back for seconds arrive after the device was reset and the push began
        // again under a new session number.
        let image = container(LEN, 15);
        let mut d = device();
        let faults = Faults {
            to_device: (0..30)
                .map(|i| (i % 4 == 3).then_some(Fault::Delay { ms: 3000 }))
                .collect(),
            to_host: (0..30)
                .map(|i| (i % 5 == 4).then_some(Fault::Delay { ms: 3000 }))
                .collect(),
            reset_at_ms: Some(100),
            ..Faults::default()
        };
        let (result, _) = push(&image, &mut d, &faults);
        assert_committed(&d, &image, &result);
    }

    fn fault() -> impl Strategy<Value = Option<Fault>> {
        prop_oneof![
            6 => Just(None),
            1 => Just(Some(Fault::Drop)),
            1 => (any::<u16>(), 0..8u8).prop_map(|(at, bit)| Some(Fault::Corrupt { at, bit })),
            1 => Just(Some(Fault::Duplicate)),
            1 => (1..500u16).prop_map(|ms| Some(Fault::Delay { ms })),
            1 => (any::<u8>(), any::<u8>()).prop_map(|(len, seed)| Some(Fault::Garbage { len, seed })),
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 128, ..ProptestConfig::default() })]

        /// Any schedule of faults ends with the identical container pending, or with a clear
        /// error and nothing pending; either way a second, clean push then commits it.
        #[test]
        fn any_fault_schedule_commits_the_same_container_or_fails_cleanly(
            to_device in proptest::collection::vec(fault(), 0..80),
            to_host in proptest::collection::vec(fault(), 0..80),
            cut in proptest::option::of((0..400u64, 1..20_000u64)),
            reset_at_ms in proptest::option::of(0..400u64),
            flash_cut in proptest::option::of(1..40u64),
        ) {
            let image = container(8_000, 16);
            let mut d = device();
            if let Some(n) = flash_cut {
                d.target.cut_power_at(n);
            }
            let faults = Faults {
                to_device,
                to_host,
                cut_ms: cut.map(|(from, len)| (from, from + len)),
                reset_at_ms,
            };
            let (result, trace) = push(&image, &mut d, &faults);
            match &result {
                Ok(_) => assert_committed(&d, &image, &result),
                // The device committed but every answer since was lost: the sender cannot
                // know, and says it stopped hearing from the device while committing.
                Err(Error::Timeout { phase: Phase::Committing, .. }) if d.target.pending().is_some() => {
                    prop_assert_eq!(d.target.pending(), Some(&image[..]));
                }
                Err(e) => {
                    prop_assert!(matches!(e, Error::Timeout { .. } | Error::TooManyRestarts), "{e:?}");
                    prop_assert_eq!(d.target.pending(), None);
                }
            }
            let (again, _) = push_from(&image, &mut d, &Faults::default(), 77, trace.end_ns);
            prop_assert!(again.is_ok(), "{again:?}");
            prop_assert_eq!(d.target.pending(), Some(&image[..]));
        }
    }
}
