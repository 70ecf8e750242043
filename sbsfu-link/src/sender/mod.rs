//! The host side: pushes one container (`sbsfu push`, an ESP32 bridge).
//!
//! ```text
//! Connecting ─Hello─▶ Beginning ─Accepted─▶ Erasing ─Ack─▶ Sending ─all acked─▶ Committing ─Committed─▶ Done
//!     ▲                                                       │                      │
//!     └──────────────── Error(NO_SESSION): the device was reset, begin again ◀───────┘
//! ```
//!
//! The sender is sans-IO: [`Sender::transmit`] returns the frames to write now,
//! [`Sender::receive`] takes the bytes the device sent, and [`Sender::deadline`] says when to
//! call `transmit` again if nothing arrives. Data flows in a window of frames, acknowledged
//! cumulatively; a timeout or a `Nak` sends again from the first unacknowledged byte
//! (go-back-N: the device keeps no reorder buffer). Every wait is bounded: after
//! `max_retries` timeouts in a row without progress the push fails with
//! [`Error::Timeout`], saying how far it got, and the next push resumes from there.

mod config;
mod progress;
mod replies;
mod source;

pub use config::Config;
pub use progress::{Phase, Progress, Report};
pub use source::Source;

use sbsfu_format::PREFIX_LEN;
use sbsfu_format::Prefix;
use sbsfu_format::SIGNATURE_LEN;

use crate::frame::{FrameReader, FrameStats, FrameWriter};
use crate::hello::Hello;
use crate::message::{Reply, Request};
use crate::target::EraseProgress;
use crate::{Error, MAX_FRAME_LEN, MIN_FRAME_LEN};
use source::Carrying;

/// Pushes one container read from `S`, with frames of up to `F` bytes
/// ([`MIN_FRAME_LEN`] `<= F <=` [`MAX_FRAME_LEN`]; the device's `max_frame` may lower it).
pub struct Sender<S: Source, const F: usize> {
    source: S,
    len: u32,
    head_len: u16,
    config: Config,
    frames: FrameReader<F>,
    out: [u8; F],
    hello: Option<Hello>,
    /// Only ask for the `Hello` ([`Sender::info`]).
    info_only: bool,
    session: u16,
    phase: Phase,
    send_due: bool,
    deadline: Option<u64>,
    retries: u8,
    /// Frame length and payload per `Data` frame, once the `Hello` is in.
    frame_len: usize,
    data_len: u32,
    window: u32,
    /// The device's cumulative acknowledgement.
    acked: u32,
    durable: u32,
    /// The next offset to send.
    next: u32,
    /// The furthest offset sent: anything below it sent again is a retransmission.
    highest: u32,
    last_nak: Option<u32>,
    erase: EraseProgress,
    started: bool,
    report: Report,
    result: Option<Result<Report, Error>>,
}

impl<const F: usize> Sender<&'static [u8], F> {
    /// Asks for the device's `Hello` and stops there (`sbsfu push --info`): read it with
    /// [`Sender::hello`] once [`Sender::is_finished`].
    pub fn info(config: Config) -> Self {
        let mut s = Self::blank(&[], 0, 0, config);
        s.info_only = true;
        s
    }
}

impl<S: Source, const F: usize> Sender<S, F> {
    const FRAME_LEN_OK: () = assert!(
        F >= MIN_FRAME_LEN && F <= MAX_FRAME_LEN,
        "the frame length must be within MIN_FRAME_LEN..=MAX_FRAME_LEN"
    );

    /// Prepares to push the container in `source`. Its prefix is checked first, so that
    /// anything but an sbsfu container is refused before a byte is sent.
    pub fn new(mut source: S, config: Config) -> Result<Self, Error> {
        let len = source.len();
        let mut prefix = [0u8; PREFIX_LEN];
        if usize::try_from(len).map_or(true, |l| l < PREFIX_LEN) {
            return Err(Error::NotAContainer(sbsfu_format::Error::Truncated));
        }
        source.read(0, &mut prefix)?;
        let header_len = Prefix::parse(&prefix)?.header_len;
        let head_len = usize::from(header_len)
            .saturating_add(PREFIX_LEN)
            .saturating_add(SIGNATURE_LEN);
        if u32::try_from(head_len).map_or(true, |h| h > len) {
            return Err(Error::NotAContainer(sbsfu_format::Error::Truncated));
        }
        let head_len = u16::try_from(head_len).map_err(|_| Error::InvalidField)?;
        Ok(Self::blank(source, len, head_len, config))
    }

    fn blank(source: S, len: u32, head_len: u16, config: Config) -> Self {
        let () = Self::FRAME_LEN_OK;
        let session = if config.session == 0 {
            1
        } else {
            config.session
        };
        Self {
            source,
            len,
            head_len,
            config,
            frames: FrameReader::new(),
            out: [0; F],
            hello: None,
            info_only: false,
            session,
            phase: Phase::Connecting,
            send_due: true,
            deadline: None,
            retries: 0,
            frame_len: F,
            data_len: 0,
            window: 1,
            acked: 0,
            durable: 0,
            next: 0,
            highest: 0,
            last_nak: None,
            erase: EraseProgress { done: 0, total: 0 },
            started: false,
            report: Report {
                container_len: len,
                ..Report::default()
            },
            result: None,
        }
    }

    /// The device's `Hello`, once received.
    pub fn hello(&self) -> Option<&Hello> {
        self.hello.as_ref()
    }

    /// Whether the push is over (done or failed).
    pub fn is_finished(&self) -> bool {
        self.result.is_some()
    }

    /// The outcome, once finished.
    pub fn result(&self) -> Option<Result<Report, Error>> {
        self.result
    }

    /// What the frame reader has seen of the device's bytes (good frames, CRC errors...).
    pub fn stats(&self) -> FrameStats {
        self.frames.stats()
    }

    /// Where the push is.
    pub fn progress(&self) -> Progress {
        Progress {
            phase: self.phase,
            acked: self.acked,
            durable: self.durable,
            total: self.len,
            erase: self.erase,
        }
    }

    /// When to call [`transmit`](Self::transmit) again if nothing arrives (milliseconds, on
    /// the caller's clock); `None` once finished.
    pub fn deadline(&self) -> Option<u64> {
        if self.result.is_some() {
            None
        } else {
            self.deadline
        }
    }

    fn frame_ms(&self, bytes: usize) -> u32 {
        let bytes = u64::try_from(bytes).unwrap_or(u64::MAX);
        let rate = u64::from(self.config.bytes_per_s.max(1));
        u32::try_from(bytes.saturating_mul(1000).div_ceil(rate)).unwrap_or(u32::MAX)
    }

    /// Wait for a reply to a short request: the request and a largest reply on the line, and
    /// the latency allowance.
    fn reply_ms(&self) -> u32 {
        self.config
            .latency_ms
            .saturating_add(self.frame_ms(self.frame_len).saturating_mul(2))
    }

    /// Wait while the device may be busy (verifying, erasing a step, committing).
    fn busy_ms(&self) -> u32 {
        let busy = self.hello.map_or(0, |h| h.device.busy_ms);
        self.reply_ms().saturating_add(busy)
    }

    /// Retransmission timeout for data: the whole window on the line twice over.
    fn data_ms(&self) -> u32 {
        let window = self
            .frame_ms(self.frame_len)
            .saturating_mul(self.window.saturating_add(1));
        self.reply_ms().saturating_add(window.saturating_mul(2))
    }

    fn arm(&mut self, now: u64, ms: u32) {
        self.deadline = Some(now.saturating_add(u64::from(ms)));
        self.send_due = false;
    }

    fn fail(&mut self, e: Error) {
        self.phase = Phase::Failed;
        self.deadline = None;
        self.result = Some(Err(e));
    }

    fn done(&mut self) {
        self.phase = Phase::Done;
        self.deadline = None;
        self.result = Some(Ok(self.report));
    }

    fn check_timer(&mut self, now: u64) {
        let Some(deadline) = self.deadline else {
            return;
        };
        if now < deadline {
            return;
        }
        self.deadline = None;
        self.retries = self.retries.saturating_add(1);
        if self.retries > self.config.max_retries {
            let phase = self.phase;
            return self.fail(Error::Timeout {
                phase,
                acked: self.acked,
            });
        }
        if self.phase == Phase::Sending {
            // Go back to the first byte the device has not acknowledged.
            self.next = self.acked;
            self.last_nak = None;
        } else {
            self.send_due = true;
        }
    }

    /// The next frame to write to the link now, if any. Call it until it returns `None`, then
    /// wait for bytes from the device or for [`deadline`](Self::deadline).
    pub fn transmit(&mut self, now: u64) -> Option<&[u8]> {
        if self.result.is_some() {
            return None;
        }
        self.check_timer(now);
        let written = match self.phase {
            Phase::Connecting if self.send_due => {
                let ms = self.reply_ms();
                self.arm(now, ms);
                self.encode(&Request::Query)
            }
            Phase::Beginning | Phase::Erasing if self.send_due => {
                // In Erasing, a repeated Begin asks the device where it is.
                let ms = self.busy_ms();
                self.arm(now, ms);
                let begin = Carrying::Begin {
                    container_len: self.len,
                    head_len: self.head_len,
                };
                source::encode(&mut self.out, &mut self.source, self.session, begin)
            }
            Phase::Sending => self.next_data(now)?,
            Phase::Committing if self.send_due => {
                let ms = self.busy_ms();
                self.arm(now, ms);
                self.encode(&Request::Commit {
                    session: self.session,
                })
            }
            Phase::Resetting if self.send_due => {
                let ms = self.busy_ms();
                self.arm(now, ms);
                self.encode(&Request::Reset {
                    session: self.session,
                })
            }
            _ => return None,
        };
        match written {
            Ok(n) => {
                self.report.wire_bytes = self
                    .report
                    .wire_bytes
                    .saturating_add(u64::try_from(n).unwrap_or(0));
                self.out.get(..n)
            }
            Err(e) => {
                self.fail(e);
                None
            }
        }
    }

    fn encode(&mut self, request: &Request<'_>) -> Result<usize, Error> {
        let mut w = FrameWriter::new(&mut self.out);
        request.encode(&mut w);
        w.finish().ok_or(Error::FrameTooSmall)
    }

    /// The next `Data` frame, if the window has room.
    fn next_data(&mut self, now: u64) -> Option<Result<usize, Error>> {
        let in_flight = self.next.saturating_sub(self.acked);
        let room = self.window.saturating_mul(self.data_len);
        if self.next >= self.len || in_flight >= room {
            return None;
        }
        let n = self.data_len.min(self.len.saturating_sub(self.next));
        let offset = self.next;
        let data = Carrying::Data { offset, len: n };
        let written = source::encode(&mut self.out, &mut self.source, self.session, data);
        if written.is_ok() {
            if offset < self.highest {
                self.report.retransmits = self.report.retransmits.saturating_add(1);
            }
            self.report.bytes_sent = self.report.bytes_sent.saturating_add(u64::from(n));
            self.next = offset.saturating_add(n);
            self.highest = self.highest.max(self.next);
            if self.deadline.is_none() {
                let ms = self.data_ms();
                self.deadline = Some(now.saturating_add(u64::from(ms)));
            }
        }
        Some(written)
    }

    /// Takes bytes received from the device.
    pub fn receive(&mut self, bytes: &[u8], now: u64) {
        for &b in bytes {
            let Some(frame) = self.frames.push(b) else {
                continue;
            };
            let parsed = Reply::parse(frame.body);
            self.on_reply(parsed, now);
        }
    }
}

#[cfg(test)]
mod tests;
