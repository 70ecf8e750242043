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

use crate::ContainerId;
use crate::error::ErrorCode;
use crate::frame::{FrameReader, FrameStats, FrameWriter};
use crate::hello::Hello;
use crate::message::{Outcome, Reply, Request};
use crate::target::{EraseProgress, Target};
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
    /// The session's number and `Begin` tag, if there is a session.
    fn session(&self) -> Option<(u16, u32)> {
        match self {
            State::Idle => None,
            State::Erasing { s, .. } | State::Receiving { s, .. } | State::Committed { s, .. } => {
                Some((s.number, s.tag))
            }
            State::Failed { number, tag, .. } => Some((*number, *tag)),
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
                if self.state.session().map(|(number, _)| number) != Some(session) {
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
        if self.state.session() == Some((number, tag)) {
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
mod tests;
