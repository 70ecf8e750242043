//! The device side: frames in, one [`Target`] driven, replies out.
//!
//! The device's main loop feeds received bytes to [`Receiver::receive`], sends what
//! [`Receiver::transmit`] returns, and calls [`Receiver::poll`] when idle (that is where the
//! destination is erased, one step at a time, with a progress reply after each). The receiver
//! holds at most one reply: while one waits, `receive` takes no more bytes and `poll` does no
//! work, so a device that cannot send right now simply keeps the bytes in its own buffer.
//!
//! ```text
//!  Idle ──Begin, head verified──▶ Erasing ──erase done──▶ Receiving ──Commit, verified──▶ Committed
//!    ▲                               │                        │
//!    └──── Begin (any state) ◀───────┴── target refuses ──▶ Failed
//! ```
//!
//! Every reply about a container carries the sender's session number; requests for another
//! session get `Error(NO_SESSION)`, so stale frames from an earlier connection cannot touch
//! the current one. A repeated request is answered with the current state.

use crate::error::ErrorCode;
use crate::frame::{FrameReader, FrameStats, FrameWriter};
use crate::hello::Hello;
use crate::message::{Outcome, Reply, Request};
use crate::target::{EraseProgress, Target};
use crate::text::ContainerId;
use crate::{Error, MAX_FRAME_LEN, MAX_WINDOW, MIN_FRAME_LEN, Refusal};

/// One container being received.
#[derive(Debug, Clone, Copy)]
struct Session {
    /// The sender's session number.
    number: u16,
    /// CRC of the `Begin` frame: with the number, tells a repeated `Begin` from a new one.
    tag: u32,
    id: ContainerId,
    len: u32,
    resume_from: u32,
    erase_total: u32,
}

#[derive(Debug, Clone, Copy)]
enum State {
    Idle,
    Erasing {
        s: Session,
        progress: EraseProgress,
    },
    Receiving {
        s: Session,
        /// Every byte below it went to the target.
        expected: u32,
        /// The gap already reported with a `Nak` (one per gap).
        nak_for: Option<u32>,
    },
    Committed {
        s: Session,
        outcome: Outcome,
    },
    Failed {
        number: u16,
        tag: u32,
        reason: Refusal,
    },
}

impl State {
    fn number(&self) -> Option<u16> {
        match self {
            State::Idle => None,
            State::Erasing { s, .. } | State::Receiving { s, .. } | State::Committed { s, .. } => {
                Some(s.number)
            }
            State::Failed { number, .. } => Some(*number),
        }
    }

    fn tag(&self) -> Option<u32> {
        match self {
            State::Idle => None,
            State::Erasing { s, .. } | State::Receiving { s, .. } | State::Committed { s, .. } => {
                Some(s.tag)
            }
            State::Failed { tag, .. } => Some(*tag),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ResetState {
    No,
    /// The `Resetting` reply waits in the output buffer.
    Replying,
    /// The reply went out: reset now.
    Due,
}

/// Everything but the frame reader, so that a frame borrowed from the reader can be handled.
struct Core<const F: usize> {
    out: [u8; F],
    out_len: usize,
    state: State,
    /// Send the current state after the pending reply (after a repeated `Begin`).
    status_due: bool,
    window: u8,
    reset: ResetState,
}

/// The device side of the link, with frames of up to `F` bytes on the wire
/// ([`MIN_FRAME_LEN`] `<= F <=` [`MAX_FRAME_LEN`]). RAM: two buffers of `F` bytes and about
/// 100 bytes of state.
pub struct Receiver<const F: usize> {
    frames: FrameReader<F>,
    core: Core<F>,
}

impl<const F: usize> Receiver<F> {
    const FRAME_LEN_OK: () = assert!(
        F >= MIN_FRAME_LEN && F <= MAX_FRAME_LEN,
        "the frame length must be within MIN_FRAME_LEN..=MAX_FRAME_LEN"
    );

    /// A receiver that announces `window` frames in flight: as many frames of `F` bytes as the
    /// device can buffer while it programs flash (1 to [`MAX_WINDOW`]).
    pub fn new(window: u8) -> Self {
        let () = Self::FRAME_LEN_OK;
        Self {
            frames: FrameReader::new(),
            core: Core {
                out: [0; F],
                out_len: 0,
                state: State::Idle,
                status_due: false,
                window: window.clamp(1, MAX_WINDOW),
                reset: ResetState::No,
            },
        }
    }

    /// Feeds bytes received from the link; returns how many were taken. Stops early, right
    /// after a frame that produced a reply: send it ([`transmit`](Self::transmit)), then feed
    /// the rest.
    pub fn receive<T: Target>(&mut self, target: &mut T, bytes: &[u8]) -> usize {
        let mut used = 0usize;
        for &b in bytes {
            if self.core.out_len > 0 {
                break;
            }
            used = used.saturating_add(1);
            if let Some(frame) = self.frames.push(b) {
                self.core.on_frame(frame.body, frame.crc, target);
            }
        }
        used
    }

    /// Does background work: sends the state after a repeated request, or erases one step.
    /// Returns whether it did something (then [`transmit`](Self::transmit) and call again);
    /// `false` means it waits for bytes.
    pub fn poll<T: Target>(&mut self, target: &mut T) -> bool {
        self.core.poll(target)
    }

    /// The next frame to send, once.
    pub fn transmit(&mut self) -> Option<&[u8]> {
        let len = core::mem::take(&mut self.core.out_len);
        if len == 0 {
            return None;
        }
        if self.core.reset == ResetState::Replying {
            self.core.reset = ResetState::Due;
        }
        self.core.out.get(..len)
    }

    /// Whether the sender asked for a reset and the `Resetting` reply has been taken: finish
    /// sending it, then reset the device.
    pub fn reset_requested(&self) -> bool {
        self.core.reset == ResetState::Due
    }

    /// What the frame reader has seen (good frames, CRC errors, broken and oversized frames).
    pub fn stats(&self) -> FrameStats {
        self.frames.stats()
    }
}

impl<const F: usize> Core<F> {
    fn reply(&mut self, reply: Reply) {
        let mut w = FrameWriter::new(&mut self.out);
        reply.encode(&mut w);
        // F >= MIN_FRAME_LEN, which the largest reply fits.
        self.out_len = w.finish().unwrap_or(0);
    }

    fn error(&mut self, session: u16, code: ErrorCode, text: &str) {
        self.reply(Reply::Error {
            session,
            reason: Refusal::new(code, text),
        });
    }

    fn fail(&mut self, number: u16, tag: u32, reason: Refusal) {
        self.state = State::Failed {
            number,
            tag,
            reason,
        };
        self.reply(Reply::Error {
            session: number,
            reason,
        });
    }

    fn ack<T: Target>(&mut self, target: &T, number: u16, received: u32) {
        self.reply(Reply::Ack {
            session: number,
            received,
            durable: target.durable().min(received),
        });
    }

    /// Replies with the current state, as to a repeated request.
    fn status<T: Target>(&mut self, target: &T) {
        match self.state {
            State::Idle => {}
            State::Erasing { s, progress } => self.reply(Reply::Erasing {
                session: s.number,
                done: progress.done,
                total: progress.total,
            }),
            State::Receiving { s, expected, .. } => self.ack(target, s.number, expected),
            State::Committed { s, outcome } => self.reply(Reply::Committed {
                session: s.number,
                outcome,
                id: s.id,
            }),
            State::Failed { number, reason, .. } => self.reply(Reply::Error {
                session: number,
                reason,
            }),
        }
    }

    fn poll<T: Target>(&mut self, target: &mut T) -> bool {
        if self.out_len > 0 {
            return true;
        }
        if core::mem::take(&mut self.status_due) {
            self.status(target);
            return self.out_len > 0;
        }
        let State::Erasing { s, progress } = self.state else {
            return false;
        };
        if progress.done < progress.total {
            match target.erase_step() {
                // Progress must advance and stay within the total, or the erase would never end.
                Ok(p)
                    if p.total == progress.total && p.done > progress.done && p.done <= p.total =>
                {
                    self.state = State::Erasing { s, progress: p };
                    if p.done < p.total {
                        self.reply(Reply::Erasing {
                            session: s.number,
                            done: p.done,
                            total: p.total,
                        });
                        return true;
                    }
                }
                Ok(_) => {
                    let reason = Refusal::new(ErrorCode::INTERNAL, "erase made no progress");
                    self.fail(s.number, s.tag, reason);
                    return true;
                }
                Err(reason) => {
                    self.fail(s.number, s.tag, reason);
                    return true;
                }
            }
        }
        // Erased: data may flow. The first Ack says from where.
        self.state = State::Receiving {
            s,
            expected: s.resume_from,
            nak_for: None,
        };
        self.ack(target, s.number, s.resume_from);
        true
    }

    fn on_frame<T: Target>(&mut self, body: &[u8], tag: u32, target: &mut T) {
        match Request::parse(body) {
            Ok(request) => self.on_request(request, tag, target),
            // Our own replies echoed back: not for us.
            Err(Error::WrongDirection) => {}
            Err(Error::UnsupportedVersion(_)) => {
                self.error(0, ErrorCode::VERSION, "unsupported link protocol version")
            }
            Err(Error::UnknownKind(_)) => self.error(0, ErrorCode::UNSUPPORTED, "unknown request"),
            Err(_) => self.error(0, ErrorCode::MALFORMED, "malformed request"),
        }
    }

    fn on_request<T: Target>(&mut self, request: Request<'_>, tag: u32, target: &mut T) {
        match request {
            Request::Query => match target.describe() {
                Ok(device) => self.reply(Reply::Hello(Hello {
                    max_frame: u16::try_from(F).unwrap_or(u16::MAX),
                    window: self.window,
                    accepts_reset: target.accepts_reset(),
                    device,
                })),
                Err(reason) => self.reply(Reply::Error { session: 0, reason }),
            },
            Request::Begin {
                session,
                container_len,
                head,
            } => self.on_begin(session, tag, container_len, head, target),
            Request::Data {
                session,
                offset,
                bytes,
            } => self.on_data(session, offset, bytes, target),
            Request::Commit { session } => self.on_commit(session, target),
            Request::Reset { session } => {
                if self.state.number() != Some(session) {
                    self.error(session, ErrorCode::NO_SESSION, "no such session");
                } else if target.accepts_reset() {
                    self.reply(Reply::Resetting { session });
                    self.reset = ResetState::Replying;
                } else {
                    self.error(session, ErrorCode::UNSUPPORTED, "reset not supported");
                }
            }
        }
    }

    fn on_begin<T: Target>(
        &mut self,
        number: u16,
        tag: u32,
        container_len: u32,
        head: &[u8],
        target: &mut T,
    ) {
        if self.state.number() == Some(number) && self.state.tag() == Some(tag) {
            // The same Begin again (our reply was lost): say it again, then where we are.
            match self.state {
                State::Erasing { s, .. } | State::Receiving { s, .. } => {
                    self.accepted(&s);
                    self.status_due = true;
                }
                _ => self.status(target),
            }
            return;
        }
        match target.begin(head, container_len) {
            Ok(b) if b.resume_from <= container_len => {
                let s = Session {
                    number,
                    tag,
                    id: b.id,
                    len: container_len,
                    resume_from: b.resume_from,
                    erase_total: b.erase_total,
                };
                self.state = State::Erasing {
                    s,
                    progress: EraseProgress {
                        done: 0,
                        total: b.erase_total,
                    },
                };
                self.accepted(&s);
            }
            Ok(_) => self.fail(
                number,
                tag,
                Refusal::new(ErrorCode::INTERNAL, "resume offset past the container"),
            ),
            Err(reason) => self.fail(number, tag, reason),
        }
    }

    fn accepted(&mut self, s: &Session) {
        self.reply(Reply::Accepted {
            session: s.number,
            id: s.id,
            resume_from: s.resume_from,
            erase_total: s.erase_total,
        });
    }

    fn on_data<T: Target>(&mut self, number: u16, offset: u32, bytes: &[u8], target: &mut T) {
        let (s, expected, nak_for) = match self.state {
            State::Receiving {
                s,
                expected,
                nak_for,
            } if s.number == number => (s, expected, nak_for),
            // Data before the erase is done: the sender jumped the gun; it waits for an Ack.
            State::Erasing { s, .. } if s.number == number => return,
            State::Committed { s, .. } if s.number == number => return self.status(target),
            State::Failed { number: n, .. } if n == number => return self.status(target),
            _ => return self.error(number, ErrorCode::NO_SESSION, "no such session"),
        };
        // The parser checked that offset + len does not overflow.
        let end = offset.saturating_add(u32::try_from(bytes.len()).unwrap_or(u32::MAX));
        if end > s.len {
            let reason = Refusal::new(ErrorCode::OUT_OF_RANGE, "data past the container's end");
            return self.fail(number, s.tag, reason);
        }
        if end <= expected {
            // A duplicate (our Ack was lost, or the sender went back): acknowledge again.
            return self.ack(target, number, expected);
        }
        if offset > expected {
            // A gap: a frame was lost. Report it once; the sender goes back to `expected`.
            if nak_for != Some(expected) {
                self.state = State::Receiving {
                    s,
                    expected,
                    nak_for: Some(expected),
                };
                self.reply(Reply::Nak {
                    session: number,
                    expected,
                });
            }
            return;
        }
        // offset <= expected < end: write the new part only.
        let skip = usize::try_from(expected.saturating_sub(offset)).unwrap_or(usize::MAX);
        let fresh = bytes.get(skip..).unwrap_or(&[]);
        match target.write(expected, fresh) {
            Ok(()) => {
                self.state = State::Receiving {
                    s,
                    expected: end,
                    nak_for: None,
                };
                self.ack(target, number, end);
            }
            Err(reason) => self.fail(number, s.tag, reason),
        }
    }

    fn on_commit<T: Target>(&mut self, number: u16, target: &mut T) {
        match self.state {
            State::Receiving { s, expected, .. } if s.number == number => {
                if expected < s.len {
                    return self.error(number, ErrorCode::INCOMPLETE, "commit before all data");
                }
                match target.commit() {
                    Ok(outcome) => {
                        self.state = State::Committed { s, outcome };
                        self.status(target);
                    }
                    Err(reason) => self.fail(number, s.tag, reason),
                }
            }
            State::Erasing { s, .. } if s.number == number => {
                self.error(number, ErrorCode::INCOMPLETE, "commit before all data")
            }
            State::Committed { s, .. } if s.number == number => self.status(target),
            State::Failed { number: n, .. } if n == number => self.status(target),
            _ => self.error(number, ErrorCode::NO_SESSION, "no such session"),
        }
    }
}

#[cfg(test)]
mod tests {
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
        assert_eq!(
            replies.last(),
            Some(&Reply::Ack {
                session: 1,
                received: 0,
                durable: 0
            })
        );
        b
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
        assert!(b.target.violations().is_empty());
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
            .chain([Reply::Ack {
                session: 1,
                received: 0,
                durable: 0,
            }])
            .collect();
        assert_eq!(replies, expect);
        assert_eq!(
            b.data(&image, 0, 500),
            vec![Reply::Ack {
                session: 1,
                received: 500,
                durable: 256
            }]
        );
        assert!(
            b.target.violations().is_empty(),
            "{:?}",
            b.target.violations()
        );
    }

    #[test]
    fn duplicates_and_gaps_are_handled_by_offset() {
        let image = container(20_000, 3);
        let mut b = ready(&image);
        let ack = |received, durable| {
            vec![Reply::Ack {
                session: 1,
                received,
                durable,
            }]
        };
        assert_eq!(b.data(&image, 0, 300), ack(300, 256));
        // A duplicate is acknowledged again, not written again (the target would record a
        // write at the wrong offset).
        assert_eq!(b.data(&image, 0, 300), ack(300, 256));
        assert_eq!(b.data(&image, 100, 200), ack(300, 256));
        // Overlapping: only the new part is written.
        assert_eq!(b.data(&image, 200, 600), ack(600, 512));
        // A gap is reported once, then frames past it are dropped silently.
        assert_eq!(
            b.data(&image, 900, 1000),
            vec![Reply::Nak {
                session: 1,
                expected: 600
            }]
        );
        assert_eq!(b.data(&image, 1000, 1100), vec![]);
        assert_eq!(b.data(&image, 600, 900), ack(900, 768));
        assert_eq!(b.data(&image, 900, 1000), ack(1000, 768));
        // Past the end.
        let past = b.send(Request::Data {
            session: 1,
            offset: 19_990,
            bytes: &[0; 20],
        });
        assert_eq!(code(&past), Some(ErrorCode::OUT_OF_RANGE));
        assert!(
            b.target.violations().is_empty(),
            "{:?}",
            b.target.violations()
        );
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
        assert_eq!(
            b.poll_all(),
            vec![Reply::Ack {
                session: 1,
                received: 0,
                durable: 0
            }]
        );
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
        assert_eq!(
            b.data(&image, 1000, 1100),
            vec![Reply::Ack {
                session: 1,
                received: 1100,
                durable: 1024
            }]
        );
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
}
