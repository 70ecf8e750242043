//! What the sender does with each reply of the device.

use super::{Phase, Sender, Source};
use crate::error::ErrorCode;
use crate::frame::max_body_len;
use crate::hello::Hello;
use crate::message::{BEGIN_OVERHEAD, DATA_OVERHEAD, Outcome, Reply};
use crate::target::EraseProgress;
use crate::{Error, Refusal};

impl<S: Source, const F: usize> Sender<S, F> {
    pub(super) fn on_reply(&mut self, parsed: Result<Reply, Error>, now: u64) {
        if self.result.is_some() {
            return;
        }
        let reply = match parsed {
            Ok(reply) => reply,
            // A device that speaks another version will not understand us either.
            Err(e @ Error::UnsupportedVersion(_)) => return self.fail(e),
            // Our own frames echoed back, or a malformed reply: the timers handle the loss.
            Err(_) => return,
        };
        if let Reply::Hello(hello) = reply {
            if self.phase == Phase::Connecting {
                self.on_hello(hello);
            }
            return;
        }
        // Replies about another session are stale: from before a restart, or another sender.
        if reply.session() != Some(self.session) {
            return;
        }
        match reply {
            Reply::Accepted {
                id,
                resume_from,
                erase_total,
                ..
            } if matches!(self.phase, Phase::Beginning | Phase::Erasing) => {
                if resume_from > self.len {
                    let reason = Refusal::new(ErrorCode::INTERNAL, "resume offset past the end");
                    return self.fail(Error::Protocol(reason));
                }
                self.report.id = id;
                self.start_at(resume_from);
                self.erase = EraseProgress {
                    done: 0,
                    total: erase_total,
                };
                self.waiting(Phase::Erasing, now);
            }
            Reply::Erasing { done, total, .. }
                if matches!(self.phase, Phase::Beginning | Phase::Erasing) =>
            {
                self.erase = EraseProgress { done, total };
                self.waiting(Phase::Erasing, now);
            }
            Reply::Ack {
                received, durable, ..
            } => self.on_ack(received, durable, now),
            // A Nak below what is acknowledged is stale; one past what was sent is not ours.
            Reply::Nak { expected, .. }
                if self.phase == Phase::Sending
                    && expected >= self.acked
                    && expected <= self.highest =>
            {
                // Everything below the gap arrived.
                self.acked = expected;
                if self.last_nak != Some(expected) && expected < self.next {
                    self.next = expected.max(self.acked);
                    self.last_nak = Some(expected);
                }
            }
            Reply::Committed { outcome, id, .. } if self.phase == Phase::Committing => {
                self.report.id = id;
                self.report.outcome = Some(outcome);
                let reset = self.config.reset && self.hello.is_some_and(|h| h.accepts_reset);
                if reset && outcome == Outcome::Pending {
                    self.phase = Phase::Resetting;
                    self.send_due = true;
                    self.deadline = None;
                    self.retries = 0;
                } else {
                    self.done();
                }
            }
            Reply::Resetting { .. } if self.phase == Phase::Resetting => {
                self.report.reset = true;
                self.done();
            }
            Reply::Error { reason, .. } => self.on_error(reason),
            _ => {}
        }
    }

    fn on_hello(&mut self, hello: Hello) {
        self.hello = Some(hello);
        if self.info_only {
            return self.done();
        }
        self.frame_len = F.min(usize::from(hello.max_frame));
        let body = max_body_len(self.frame_len);
        if body < BEGIN_OVERHEAD.saturating_add(usize::from(self.head_len)) {
            return self.fail(Error::FrameTooSmall);
        }
        self.data_len = u32::try_from(body.saturating_sub(DATA_OVERHEAD))
            .unwrap_or(0)
            .min(u32::from(u16::MAX));
        self.window = u32::from(self.config.window.min(hello.window).max(1));
        self.phase = Phase::Beginning;
        self.send_due = true;
        self.deadline = None;
        self.retries = 0;
    }

    /// The device accepted the head: data will start at `offset`.
    fn start_at(&mut self, offset: u32) {
        if !self.started {
            self.started = true;
            self.report.resumed_from = offset;
        }
        self.acked = offset;
        self.durable = self.durable.min(offset);
        self.next = offset;
        self.highest = self.highest.max(offset);
    }

    fn waiting(&mut self, phase: Phase, now: u64) {
        self.phase = phase;
        self.retries = 0;
        let ms = self.busy_ms();
        self.arm(now, ms);
    }

    fn on_ack(&mut self, received: u32, durable: u32, now: u64) {
        match self.phase {
            Phase::Beginning | Phase::Erasing => {
                if received > self.len {
                    return;
                }
                // Erased: the first Ack says where data starts.
                self.start_at(received);
                self.durable = durable;
                self.phase = Phase::Sending;
                self.deadline = None;
                self.retries = 0;
            }
            Phase::Sending => {
                // Acks of bytes never sent are not from this push: ignore them.
                if received <= self.acked || received > self.highest {
                    return;
                }
                self.acked = received;
                self.durable = self.durable.max(durable);
                self.next = self.next.max(received);
                self.retries = 0;
                self.deadline = (self.next > self.acked).then(|| {
                    let ms = self.data_ms();
                    now.saturating_add(u64::from(ms))
                });
            }
            _ => return,
        }
        if self.acked >= self.len {
            self.phase = Phase::Committing;
            self.send_due = true;
            self.deadline = None;
        }
    }

    fn on_error(&mut self, reason: Refusal) {
        match (reason.code, self.phase) {
            // The device reset before our reply to Reset got through: that is the reset.
            (ErrorCode::NO_SESSION, Phase::Resetting) => {
                self.report.reset = true;
                self.done();
            }
            (ErrorCode::NO_SESSION, _) => self.restart(),
            (ErrorCode::UNSUPPORTED, Phase::Resetting) => self.done(),
            (code, _) if code.is_refusal() => self.fail(Error::Refused(reason)),
            _ => self.fail(Error::Protocol(reason)),
        }
    }

    /// The device lost our session (it was reset): begin again under a new number; the device
    /// resumes from what it stored durably.
    fn restart(&mut self) {
        self.report.restarts = self.report.restarts.saturating_add(1);
        if self.report.restarts > self.config.max_restarts {
            return self.fail(Error::TooManyRestarts);
        }
        self.session = match self.session.wrapping_add(1) {
            0 => 1,
            s => s,
        };
        self.phase = Phase::Connecting;
        self.send_due = true;
        self.deadline = None;
        self.retries = 0;
        self.last_nak = None;
    }
}
