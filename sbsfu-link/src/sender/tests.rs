use super::*;
use crate::ContainerId;
use crate::Refusal;
use crate::error::ErrorCode;
use crate::frame::FrameReader as Requests;
use crate::frame::max_body_len;
use crate::hello::{Description, Regions};
use crate::message::DATA_OVERHEAD;
use crate::sim::container;
use sbsfu_format::Name;
use std::vec;
use std::vec::Vec;

const F: usize = 1024;

/// Bytes of container in a full `Data` frame of `F` bytes.
const D: usize = max_body_len(F) - DATA_OVERHEAD;

fn config() -> Config {
    Config {
        session: 7,
        ..Config::for_baud(921_600)
    }
}

fn hello(window: u8, max_frame: u16) -> Reply {
    Reply::Hello(Hello {
        max_frame,
        window,
        accepts_reset: false,
        device: Description {
            target: Name::new("sim").unwrap(),
            chunk_size: 1024,
            busy_ms: 2000,
            regions: Regions::new(),
        },
    })
}

fn wire(reply: Reply) -> Vec<u8> {
    let mut out = vec![0u8; 2 * F];
    let mut w = FrameWriter::new(&mut out);
    reply.encode(&mut w);
    let n = w.finish().unwrap();
    out.truncate(n);
    out
}

/// The device's acknowledgement of `received` bytes in order, `durable` of them stored.
fn ack(session: u16, received: u32, durable: u32) -> Vec<u8> {
    wire(Reply::Ack {
        session,
        received,
        durable,
    })
}

/// The device's report of a gap: it waits for `expected`.
fn nak(session: u16, expected: u32) -> Vec<u8> {
    wire(Reply::Nak { session, expected })
}

/// The device's acceptance of the head: data from `resume_from`, after erasing `erase_total`.
fn accepted(session: u16, resume_from: u32, erase_total: u32) -> Vec<u8> {
    wire(Reply::Accepted {
        session,
        id: ContainerId([1; 32]),
        resume_from,
        erase_total,
    })
}

/// What the sender transmits at `now`, parsed: (kind, session, offset, length).
fn sent<S: Source>(s: &mut Sender<S, F>, now: u64) -> Vec<(u8, u16, u32, usize)> {
    let mut reader = Requests::<F>::new();
    let mut out = Vec::new();
    while let Some(frame) = s.transmit(now) {
        let frame = frame.to_vec();
        for &b in &frame {
            if let Some(f) = reader.push(b) {
                out.push(match Request::parse(f.body).unwrap() {
                    Request::Query => (1, 0, 0, 0),
                    Request::Begin { session, head, .. } => (2, session, 0, head.len()),
                    Request::Data {
                        session,
                        offset,
                        bytes,
                    } => (3, session, offset, bytes.len()),
                    Request::Commit { session } => (4, session, 0, 0),
                    Request::Reset { session } => (5, session, 0, 0),
                });
            }
        }
    }
    out
}

/// A sender with data flowing: Hello (window 3), Accepted, Ack from 0.
fn flowing(image: &[u8]) -> Sender<&[u8], F> {
    let mut s = Sender::<_, F>::new(image, config()).unwrap();
    assert_eq!(sent(&mut s, 0), vec![(1, 0, 0, 0)]);
    s.receive(&wire(hello(3, 1024)), 1);
    assert_eq!(sent(&mut s, 1), vec![(2, 7, 0, 100)]);
    s.receive(&accepted(7, 0, 4096), 2);
    s.receive(
        &wire(Reply::Erasing {
            session: 7,
            done: 2048,
            total: 4096,
        }),
        3,
    );
    assert_eq!(
        s.progress().erase,
        EraseProgress {
            done: 2048,
            total: 4096
        }
    );
    assert_eq!(sent(&mut s, 3), vec![]);
    s.receive(&ack(7, 0, 0), 4);
    s
}

#[test]
fn anything_but_a_container_is_refused_before_a_byte_is_sent() {
    let text: &[u8] = b"this is not a container, just some text";
    assert_eq!(
        Sender::<_, F>::new(text, config()).err(),
        Some(Error::NotAContainer(sbsfu_format::Error::BadMagic))
    );
    let short = &container(1000, 1)[..11];
    assert_eq!(
        Sender::<_, F>::new(short, config()).err(),
        Some(Error::NotAContainer(sbsfu_format::Error::Truncated))
    );
    // A prefix that promises a head longer than what follows.
    let cut = &container(1000, 1)[..50];
    assert_eq!(
        Sender::<_, F>::new(cut, config()).err(),
        Some(Error::NotAContainer(sbsfu_format::Error::Truncated))
    );
}

#[test]
fn the_window_bounds_frames_in_flight() {
    let image = container(20_000, 2);
    let mut s = flowing(&image);
    let (d, n) = (D as u32, D);
    assert_eq!(
        sent(&mut s, 5),
        vec![(3, 7, 0, n), (3, 7, d, n), (3, 7, 2 * d, n)]
    );
    assert_eq!(sent(&mut s, 6), vec![]);
    s.receive(&ack(7, d, 0), 7);
    assert_eq!(sent(&mut s, 7), vec![(3, 7, 3 * d, n)]);
    assert_eq!(s.progress().acked, d);
}

#[test]
fn a_nak_or_a_timeout_goes_back_to_the_first_unacknowledged_byte() {
    let image = container(20_000, 3);
    let mut s = flowing(&image);
    let (d, n) = (D as u32, D);
    sent(&mut s, 5);
    // The device got frame 0, lost frame 1, saw frame 2 past the gap.
    s.receive(&ack(7, d, 0), 6);
    s.receive(&nak(7, d), 6);
    assert_eq!(
        sent(&mut s, 6),
        vec![(3, 7, d, n), (3, 7, 2 * d, n), (3, 7, 3 * d, n)]
    );
    // A second Nak for the same gap is a duplicate: no second rewind.
    s.receive(&nak(7, d), 7);
    assert_eq!(sent(&mut s, 7), vec![]);
    // Silence: after the timeout, again from the first unacknowledged byte.
    let deadline = s.deadline().unwrap();
    assert_eq!(sent(&mut s, deadline - 1), vec![]);
    assert_eq!(
        sent(&mut s, deadline),
        vec![(3, 7, d, n), (3, 7, 2 * d, n), (3, 7, 3 * d, n)]
    );
    assert_eq!(s.result(), None);
}

#[test]
fn a_silent_device_ends_the_push_with_how_far_it_got() {
    let image = container(20_000, 4);
    let mut s = flowing(&image);
    sent(&mut s, 5);
    s.receive(&ack(7, 500, 256), 6);
    let mut retries = 0;
    while let Some(t) = s.deadline() {
        if !sent(&mut s, t).is_empty() {
            retries += 1;
        }
    }
    assert_eq!(retries, config().max_retries);
    assert_eq!(
        s.result(),
        Some(Err(Error::Timeout {
            phase: Phase::Sending,
            acked: 500
        }))
    );
    // Before any Hello: the Query is repeated, then the push gives up.
    let mut s = Sender::<_, F>::new(&image[..], config()).unwrap();
    let mut queries = 0;
    while let Some(t) = s.deadline().or(Some(0)).filter(|_| !s.is_finished()) {
        queries += sent(&mut s, t).len();
    }
    assert_eq!(queries, usize::from(config().max_retries) + 1);
    assert_eq!(
        s.result(),
        Some(Err(Error::Timeout {
            phase: Phase::Connecting,
            acked: 0
        }))
    );
}

#[test]
fn replies_of_other_sessions_are_ignored() {
    let image = container(20_000, 5);
    let mut s = flowing(&image);
    sent(&mut s, 5);
    s.receive(&ack(6, 2000, 2000), 6);
    s.receive(
        &wire(Reply::Error {
            session: 6,
            reason: Refusal::new(ErrorCode::AUTHENTICATION, "x"),
        }),
        6,
    );
    s.receive(
        &wire(Reply::Error {
            session: 8,
            reason: Refusal::new(ErrorCode::NO_SESSION, "x"),
        }),
        6,
    );
    assert_eq!(s.progress().acked, 0);
    assert_eq!(s.progress().phase, Phase::Sending);
    // And acknowledgements of bytes never sent are not believed.
    s.receive(&ack(7, 19_000, 0), 6);
    assert_eq!(s.progress().acked, 0);
}

#[test]
fn a_device_refusal_ends_the_push_with_its_reason() {
    let image = container(20_000, 6);
    let mut s = Sender::<_, F>::new(&image[..], config()).unwrap();
    sent(&mut s, 0);
    s.receive(&wire(hello(4, 1024)), 1);
    sent(&mut s, 1);
    let reason = Refusal::new(
        ErrorCode::ROLLBACK,
        "security counter below the device minimum",
    );
    s.receive(&wire(Reply::Error { session: 7, reason }), 2);
    assert_eq!(s.result(), Some(Err(Error::Refused(reason))));
    assert_eq!(sent(&mut s, 3), vec![]);
    // A link error from the device is a protocol failure, not a refusal.
    let mut s = flowing(&image);
    let reason = Refusal::new(ErrorCode::OUT_OF_RANGE, "data past the container's end");
    s.receive(&wire(Reply::Error { session: 7, reason }), 5);
    assert_eq!(s.result(), Some(Err(Error::Protocol(reason))));
}

#[test]
fn a_lost_session_begins_again_under_a_new_number() {
    let image = container(20_000, 7);
    let mut s = flowing(&image);
    sent(&mut s, 5);
    s.receive(
        &wire(Reply::Error {
            session: 7,
            reason: Refusal::new(ErrorCode::NO_SESSION, "no such session"),
        }),
        6,
    );
    assert_eq!(sent(&mut s, 6), vec![(1, 0, 0, 0)]);
    s.receive(&wire(hello(3, 1024)), 7);
    assert_eq!(sent(&mut s, 7), vec![(2, 8, 0, 100)]);
    s.receive(&accepted(8, 4096, 0), 8);
    s.receive(&ack(8, 4096, 4096), 8);
    assert_eq!(sent(&mut s, 8)[0], (3, 8, 4096, D));
    // The push started from scratch; the restart is counted.
    assert_eq!(s.report.restarts, 1);
    assert_eq!(s.report.resumed_from, 0);
}

#[test]
fn frames_shrink_to_the_devices_maximum() {
    let image = container(20_000, 8);
    let mut s = Sender::<_, 4096>::new(&image[..], config()).unwrap();
    s.transmit(0);
    s.receive(&wire(hello(2, 1100)), 1);
    s.transmit(1);
    s.receive(&ack(7, 0, 0), 2);
    let frame = s.transmit(2).unwrap();
    assert!(frame.len() <= 1100, "{}", frame.len());
}

#[test]
fn info_stops_at_the_hello() {
    let mut s = Sender::<_, F>::info(config());
    assert!(s.transmit(0).is_some());
    s.receive(&wire(hello(4, 1024)), 1);
    assert!(s.is_finished());
    assert_eq!(s.hello().map(|h| h.window), Some(4));
    assert_eq!(s.result().unwrap().unwrap().outcome, None);
}
