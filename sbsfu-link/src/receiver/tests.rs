use super::*;
use crate::frame::FrameReader as Replies;
use crate::frame::Put;
use crate::sim::{SimTarget, container};
use crate::text::Text;
use proptest::prelude::*;
use std::vec;
use std::vec::Vec;

const F: usize = 1024;

struct Bench {
    rx: Receiver<F>,
    target: SimTarget,
    replies: Replies<F>,
}

fn bench() -> Bench {
    Bench {
        rx: Receiver::new(4),
        target: SimTarget::small(),
        replies: Replies::new(),
    }
}

fn frame_of(encode: impl FnOnce(&mut FrameWriter<'_>)) -> Vec<u8> {
    let mut out = vec![0u8; 2 * F];
    let mut w = FrameWriter::new(&mut out);
    encode(&mut w);
    let n = w.finish().unwrap();
    out.truncate(n);
    out
}

impl Bench {
    fn decode(&mut self, wire: &[u8]) -> Vec<Reply> {
        wire.iter()
            .filter_map(|&b| self.replies.push(b).map(|f| Reply::parse(f.body).unwrap()))
            .collect()
    }

    /// Feeds raw bytes; returns every reply.
    fn feed(&mut self, mut wire: &[u8]) -> Vec<Reply> {
        let mut out = Vec::new();
        while !wire.is_empty() {
            let used = self.rx.receive(&mut self.target, wire);
            wire = &wire[used..];
            if let Some(f) = self.rx.transmit().map(<[u8]>::to_vec) {
                out.extend(self.decode(&f));
            }
        }
        out
    }

    fn send(&mut self, request: Request<'_>) -> Vec<Reply> {
        let wire = frame_of(|w| request.encode(w));
        self.feed(&wire)
    }

    /// Polls until the receiver waits for bytes; returns every reply.
    fn poll_all(&mut self) -> Vec<Reply> {
        let mut out = Vec::new();
        while self.rx.poll(&mut self.target) {
            if let Some(f) = self.rx.transmit().map(<[u8]>::to_vec) {
                out.extend(self.decode(&f));
            }
        }
        out
    }

    /// The target saw no write out of order, no write to unerased flash.
    fn assert_no_violations(&self) {
        assert!(
            self.target.violations().is_empty(),
            "{:?}",
            self.target.violations()
        );
    }

    fn data(&mut self, image: &[u8], from: usize, to: usize) -> Vec<Reply> {
        self.send(Request::Data {
            session: 1,
            offset: from as u32,
            bytes: &image[from..to],
        })
    }
}

const HEAD: usize = 12 + 24 + 64;

fn begin(b: &mut Bench, image: &[u8], session: u16) -> Vec<Reply> {
    b.send(Request::Begin {
        session,
        container_len: image.len() as u32,
        head: &image[..HEAD],
    })
}

fn ready(image: &[u8]) -> Bench {
    let mut b = bench();
    begin(&mut b, image, 1);
    let replies = b.poll_all();
    assert_eq!(replies.last(), Some(&ack(0, 0)));
    b
}

/// Session 1's acknowledgement.
fn ack(received: u32, durable: u32) -> Reply {
    Reply::Ack {
        session: 1,
        received,
        durable,
    }
}

fn code(replies: &[Reply]) -> Option<ErrorCode> {
    match replies {
        [Reply::Error { reason, .. }] => Some(reason.code),
        _ => None,
    }
}

#[test]
fn the_head_is_verified_before_anything_is_erased() {
    let mut image = container(20_000, 1);
    image[HEAD - 1] ^= 0x80;
    let mut b = bench();
    let replies = begin(&mut b, &image, 1);
    assert_eq!(code(&replies), Some(ErrorCode::AUTHENTICATION));
    assert!(!b.rx.poll(&mut b.target));
    // The session stays refused: data and commit get the same reason, and nothing moves.
    assert_eq!(
        code(&b.data(&image, 0, 100)),
        Some(ErrorCode::AUTHENTICATION)
    );
    assert_eq!(
        code(&b.send(Request::Commit { session: 1 })),
        Some(ErrorCode::AUTHENTICATION)
    );
    assert_eq!(b.target.flash_ops(), 0);
    b.assert_no_violations();
}

#[test]
fn the_destination_is_erased_before_data_flows_with_progress() {
    let image = container(20_000, 2);
    let mut b = bench();
    let replies = begin(&mut b, &image, 1);
    let [
        Reply::Accepted {
            resume_from: 0,
            erase_total: 20_480,
            ..
        },
    ] = replies[..]
    else {
        panic!("{replies:?}")
    };
    // Data before the erase is done is not written (and not answered).
    assert_eq!(b.data(&image, 0, 500), vec![]);
    assert_eq!(b.target.durable(), 0);
    let replies = b.poll_all();
    let expect: Vec<Reply> = [4096, 8192, 12_288, 16_384]
        .iter()
        .map(|&done| Reply::Erasing {
            session: 1,
            done,
            total: 20_480,
        })
        .chain([ack(0, 0)])
        .collect();
    assert_eq!(replies, expect);
    assert_eq!(b.data(&image, 0, 500), vec![ack(500, 256)]);
    b.assert_no_violations();
}

#[test]
fn duplicates_and_gaps_are_handled_by_offset() {
    let image = container(20_000, 3);
    let mut b = ready(&image);
    assert_eq!(b.data(&image, 0, 300), vec![ack(300, 256)]);
    // A duplicate is acknowledged again, not written again (the target would record a
    // write at the wrong offset).
    assert_eq!(b.data(&image, 0, 300), vec![ack(300, 256)]);
    assert_eq!(b.data(&image, 100, 200), vec![ack(300, 256)]);
    // Overlapping: only the new part is written.
    assert_eq!(b.data(&image, 200, 600), vec![ack(600, 512)]);
    // A gap is reported once, then frames past it are dropped silently.
    assert_eq!(
        b.data(&image, 900, 1000),
        vec![Reply::Nak {
            session: 1,
            expected: 600
        }]
    );
    assert_eq!(b.data(&image, 1000, 1100), vec![]);
    assert_eq!(b.data(&image, 600, 900), vec![ack(900, 768)]);
    assert_eq!(b.data(&image, 900, 1000), vec![ack(1000, 768)]);
    // Past the end.
    let past = b.send(Request::Data {
        session: 1,
        offset: 19_990,
        bytes: &[0; 20],
    });
    assert_eq!(code(&past), Some(ErrorCode::OUT_OF_RANGE));
    b.assert_no_violations();
}

#[test]
fn requests_for_another_session_get_no_session() {
    let image = container(20_000, 4);
    let mut b = ready(&image);
    let other = b.send(Request::Data {
        session: 2,
        offset: 0,
        bytes: &image[..10],
    });
    assert_eq!(
        other,
        vec![Reply::Error {
            session: 2,
            reason: Refusal::new(ErrorCode::NO_SESSION, "no such session")
        }]
    );
    assert_eq!(
        code(&b.send(Request::Commit { session: 2 })),
        Some(ErrorCode::NO_SESSION)
    );
    assert_eq!(
        code(&b.send(Request::Reset { session: 2 })),
        Some(ErrorCode::NO_SESSION)
    );
    assert_eq!(b.target.durable(), 0);
    // A fresh receiver (a reset device) knows no session at all.
    let mut fresh = bench();
    assert_eq!(
        code(&fresh.data(&image, 0, 10)),
        Some(ErrorCode::NO_SESSION)
    );
}

#[test]
fn commit_before_every_byte_is_refused() {
    let image = container(20_000, 5);
    let mut b = ready(&image);
    b.data(&image, 0, 1000);
    assert_eq!(
        code(&b.send(Request::Commit { session: 1 })),
        Some(ErrorCode::INCOMPLETE)
    );
    // Not fatal: the transfer goes on.
    for at in (1000..20_000).step_by(1000) {
        b.data(&image, at, at + 1000);
    }
    let replies = b.send(Request::Commit { session: 1 });
    assert!(
        matches!(
            replies[..],
            [Reply::Committed {
                outcome: Outcome::Pending,
                ..
            }]
        ),
        "{replies:?}"
    );
    // A repeated commit gets the same answer; the container is stored once.
    assert_eq!(b.send(Request::Commit { session: 1 }), replies);
    assert_eq!(b.target.pending(), Some(&image[..]));
}

#[test]
fn a_repeated_begin_is_answered_with_the_current_state() {
    let image = container(20_000, 6);
    let mut b = bench();
    let first = begin(&mut b, &image, 1);
    b.rx.poll(&mut b.target);
    b.rx.transmit();
    // Same Begin again: Accepted again, then where the erase is; no second verification.
    assert_eq!(begin(&mut b, &image, 1), first);
    assert!(b.rx.poll(&mut b.target));
    let wire = b.rx.transmit().unwrap().to_vec();
    let status = b.decode(&wire);
    assert_eq!(
        status,
        vec![Reply::Erasing {
            session: 1,
            done: 4096,
            total: 20_480
        }]
    );
    b.poll_all();
    assert_eq!(begin(&mut b, &image, 1), first);
    assert_eq!(b.poll_all(), vec![ack(0, 0)]);
    // A new session number is a new Begin: the target resumes its container.
    b.data(&image, 0, 600);
    let again = begin(&mut b, &image, 2);
    assert!(
        matches!(
            again[..],
            [Reply::Accepted {
                session: 2,
                resume_from: 512,
                erase_total: 0,
                ..
            }]
        ),
        "{again:?}"
    );
}

#[test]
fn hello_reports_frame_window_and_the_partial_container() {
    let image = container(20_000, 7);
    let mut b = ready(&image);
    b.data(&image, 0, 1000);
    let [Reply::Hello(hello)] = b.send(Request::Query)[..] else {
        panic!()
    };
    assert_eq!(
        (hello.max_frame, hello.window, hello.accepts_reset),
        (F as u16, 4, false)
    );
    assert_eq!(hello.device.target.as_str(), "sim-f405");
    let app = hello.device.regions.get("app").unwrap();
    let (id, durable) = b.target.partial().unwrap();
    assert_eq!(app.partial, Some(crate::hello::Partial { id, durable }));
    assert_eq!(durable, 768);
    // Asking does not disturb the transfer.
    assert_eq!(b.data(&image, 1000, 1100), vec![ack(1100, 1024)]);
}

#[test]
fn link_errors_for_malformed_unknown_and_other_versions() {
    let mut b = bench();
    let unknown = frame_of(|w| w.put(&[1, 0x42]));
    assert_eq!(code(&b.feed(&unknown)), Some(ErrorCode::UNSUPPORTED));
    let version = frame_of(|w| w.put(&[2, 0x01]));
    assert_eq!(code(&b.feed(&version)), Some(ErrorCode::VERSION));
    let malformed = frame_of(|w| w.put(&[1, 0x04, 0]));
    assert_eq!(code(&b.feed(&malformed)), Some(ErrorCode::MALFORMED));
    // Replies (our own, echoed back by a loopback) are not answered.
    let echo = frame_of(|w| Reply::Resetting { session: 1 }.encode(w));
    assert_eq!(b.feed(&echo), vec![]);
    let text = match b.feed(&version)[..] {
        [Reply::Error { reason, .. }] => reason.text,
        _ => Text::EMPTY,
    };
    assert_eq!(text.as_str(), "unsupported link protocol version");
}

#[test]
fn reset_is_requested_once_the_reply_is_out() {
    let image = container(20_000, 8);
    let mut b = ready(&image);
    assert_eq!(
        code(&b.send(Request::Reset { session: 1 })),
        Some(ErrorCode::UNSUPPORTED)
    );
    b.target.set_accepts_reset(true);
    let wire = frame_of(|w| Request::Reset { session: 1 }.encode(w));
    b.rx.receive(&mut b.target, &wire);
    assert!(!b.rx.reset_requested());
    let reply = b.rx.transmit().unwrap().to_vec();
    assert!(b.rx.reset_requested());
    assert_eq!(b.decode(&reply), vec![Reply::Resetting { session: 1 }]);
}

#[test]
fn receive_stops_after_a_frame_that_needs_a_reply() {
    let mut b = bench();
    let two = [
        frame_of(|w| Request::Query.encode(w)),
        frame_of(|w| Request::Query.encode(w)),
    ]
    .concat();
    let used = b.rx.receive(&mut b.target, &two);
    assert!(used < two.len());
    // Nothing more is taken while the reply waits.
    assert_eq!(b.rx.receive(&mut b.target, &two[used..]), 0);
    assert!(b.rx.poll(&mut b.target));
    assert!(b.rx.transmit().is_some());
    assert_eq!(b.feed(&two[used..]).len(), 1);
}

proptest! {
    /// Arbitrary bytes, raw or in frames with good CRCs, never panic and never reach flash:
    /// nothing in them is an authentic head. The work is bounded: each frame is handled
    /// once, at its delimiter, and answered at most once.
    #[test]
    fn arbitrary_bytes_never_touch_flash(
        raw in proptest::collection::vec(any::<u8>(), 0..4000),
        bodies in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..600), 0..8),
        kinds in proptest::collection::vec(1..=5u8, 0..8),
    ) {
        let mut b = bench();
        let framed: Vec<u8> = bodies
            .iter()
            .zip(kinds.iter().chain(core::iter::repeat(&3)))
            .flat_map(|(body, &k)| frame_of(|w| { w.put(&[1, k]); w.put(body); }))
            .collect();
        let wire = [&raw[..], &framed].concat();
        let replies = b.feed(&wire);
        while b.rx.poll(&mut b.target) {
            b.rx.transmit();
        }
        prop_assert_eq!(b.target.flash_ops(), 0);
        prop_assert!(b.target.violations().is_empty());
        let s = b.rx.stats();
        let delimiters = wire.iter().filter(|&&x| x == 0).count() as u32;
        prop_assert!(s.good + s.crc_errors + s.broken + s.oversized <= delimiters);
        prop_assert!(replies.len() as u32 <= s.good);
    }
}
