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

use sbsfu_format::PREFIX_LEN;
use sbsfu_format::Prefix;
use sbsfu_format::SIGNATURE_LEN;

use crate::error::ErrorCode;
use crate::frame::{FrameReader, FrameStats, FrameWriter, Put, max_body_len};
use crate::hello::Hello;
use crate::message::{BEGIN_OVERHEAD, DATA_OVERHEAD, Outcome, Reply, Request};
use crate::target::EraseProgress;
use crate::text::ContainerId;
use crate::{Error, MAX_FRAME_LEN, MIN_FRAME_LEN, Refusal};

/// Where the container comes from: memory, a file, external flash.
pub trait Source {
    /// Its length in bytes.
    fn len(&self) -> u32;

    /// Whether it is empty.
    fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Fills `buf` with the bytes at `offset` (`offset + buf.len() <= len()`).
    fn read(&mut self, offset: u32, buf: &mut [u8]) -> Result<(), Error>;
}

impl Source for &[u8] {
    fn len(&self) -> u32 {
        u32::try_from(<[u8]>::len(self)).unwrap_or(u32::MAX)
    }

    fn read(&mut self, offset: u32, buf: &mut [u8]) -> Result<(), Error> {
        let start = usize::try_from(offset).map_err(|_| Error::Source)?;
        let end = start.checked_add(buf.len()).ok_or(Error::Source)?;
        buf.copy_from_slice(self.get(start..end).ok_or(Error::Source)?);
        Ok(())
    }
}

/// How the sender paces itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Config {
    /// The line's speed in bytes per second (baud / 10 for 8N1), to size the timeouts.
    pub bytes_per_s: u32,
    /// Round-trip allowance beyond the bytes' own time: USB-serial latency, scheduling, a TCP
    /// hop. Added to every timeout.
    pub latency_ms: u32,
    /// Data frames in flight at most (the device's `Hello` may lower it).
    pub window: u8,
    /// Timeouts in a row, without progress, before the push fails.
    pub max_retries: u8,
    /// Sessions lost by the device (resets) that one push recovers from.
    pub max_restarts: u8,
    /// The first session number (a host should pick it at random, so that frames of an
    /// earlier push still in a buffer are not taken for this one's). 0 is never used.
    pub session: u16,
    /// After a commit that left the container pending, ask the device to reset (if it says
    /// it accepts that), so that the bootloader installs it now.
    pub reset: bool,
}

impl Config {
    /// Defaults for a serial line at `baud` (8N1): 8 frames in flight, 100 ms of latency
    /// allowance, 8 retries.
    pub const fn for_baud(baud: u32) -> Self {
        Self {
            bytes_per_s: baud / 10,
            latency_ms: 100,
            window: 8,
            max_retries: 8,
            max_restarts: 8,
            session: 1,
            reset: false,
        }
    }
}

/// Where a push is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// Asking for the device's `Hello`.
    Connecting,
    /// Sent the head; waiting for the device to verify it.
    Beginning,
    /// The device is erasing the destination.
    Erasing,
    /// Data is flowing.
    Sending,
    /// Waiting for the device to verify and store the container.
    Committing,
    /// Waiting for the device to acknowledge a reset.
    Resetting,
    /// Finished: see [`Sender::result`].
    Done,
    /// Failed: see [`Sender::result`].
    Failed,
}

impl Phase {
    /// A few words for messages.
    pub const fn as_str(self) -> &'static str {
        match self {
            Phase::Connecting => "connecting",
            Phase::Beginning => "sending the head",
            Phase::Erasing => "erasing",
            Phase::Sending => "sending data",
            Phase::Committing => "committing",
            Phase::Resetting => "resetting",
            Phase::Done => "done",
            Phase::Failed => "failed",
        }
    }
}

/// Where a push is, for a progress bar.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Progress {
    /// The phase.
    pub phase: Phase,
    /// Bytes the device has received in order.
    pub acked: u32,
    /// Bytes the device reported durable.
    pub durable: u32,
    /// The container's length.
    pub total: u32,
    /// Erase progress.
    pub erase: EraseProgress,
}

/// What a finished push did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Report {
    /// The container's length.
    pub container_len: u32,
    /// The container's id, as the device computed it.
    pub id: ContainerId,
    /// Pending for the next reset, or installed (`None` for a [`Sender::info`] request).
    pub outcome: Option<Outcome>,
    /// Where the device resumed at the start of the push (0: from scratch).
    pub resumed_from: u32,
    /// Container bytes sent in `Data` frames, retransmissions included.
    pub bytes_sent: u64,
    /// Every byte written to the link.
    pub wire_bytes: u64,
    /// `Data` frames sent again (after a timeout or a `Nak`).
    pub retransmits: u32,
    /// Times the device lost the session (was reset) and the push began again.
    pub restarts: u8,
    /// Whether the device acknowledged a reset.
    pub reset: bool,
}

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
                encode_begin(
                    &mut self.out,
                    &mut self.source,
                    self.session,
                    self.len,
                    self.head_len,
                )
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
        let written = encode_data(&mut self.out, &mut self.source, self.session, offset, n);
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

    fn on_reply(&mut self, parsed: Result<Reply, Error>, now: u64) {
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

/// Copies `len` bytes of `source` from `offset` into a frame, through a small stack buffer.
fn put_source<S: Source>(
    w: &mut FrameWriter<'_>,
    source: &mut S,
    offset: u32,
    len: u32,
) -> Result<(), Error> {
    let mut buf = [0u8; 64];
    let mut at = offset;
    let end = offset.saturating_add(len);
    while at < end {
        let n = usize::try_from(end.saturating_sub(at))
            .unwrap_or(buf.len())
            .min(buf.len());
        let piece = buf.get_mut(..n).ok_or(Error::Source)?;
        source.read(at, piece)?;
        w.put(piece);
        at = at.saturating_add(u32::try_from(n).unwrap_or(u32::MAX));
    }
    Ok(())
}

fn encode_begin<S: Source>(
    out: &mut [u8],
    source: &mut S,
    session: u16,
    container_len: u32,
    head_len: u16,
) -> Result<usize, Error> {
    let mut w = FrameWriter::new(out);
    Request::begin_header(&mut w, session, container_len, usize::from(head_len));
    put_source(&mut w, source, 0, u32::from(head_len))?;
    w.finish().ok_or(Error::FrameTooSmall)
}

fn encode_data<S: Source>(
    out: &mut [u8],
    source: &mut S,
    session: u16,
    offset: u32,
    len: u32,
) -> Result<usize, Error> {
    let mut w = FrameWriter::new(out);
    Request::data_header(&mut w, session, offset, usize::try_from(len).unwrap_or(0));
    put_source(&mut w, source, offset, len)?;
    w.finish().ok_or(Error::FrameTooSmall)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::frame::FrameReader as Requests;
    use crate::hello::{Description, Regions};
    use crate::sim::container;
    use sbsfu_format::Name;
    use std::vec;
    use std::vec::Vec;

    const F: usize = 1024;

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
        s.receive(
            &wire(Reply::Accepted {
                session: 7,
                id: ContainerId([1; 32]),
                resume_from: 0,
                erase_total: 4096,
            }),
            2,
        );
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
        s.receive(
            &wire(Reply::Ack {
                session: 7,
                received: 0,
                durable: 0,
            }),
            4,
        );
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
        let d = (max_body_len(F) - DATA_OVERHEAD) as u32;
        let n = d as usize;
        assert_eq!(
            sent(&mut s, 5),
            vec![(3, 7, 0, n), (3, 7, d, n), (3, 7, 2 * d, n)]
        );
        assert_eq!(sent(&mut s, 6), vec![]);
        s.receive(
            &wire(Reply::Ack {
                session: 7,
                received: d,
                durable: 0,
            }),
            7,
        );
        assert_eq!(sent(&mut s, 7), vec![(3, 7, 3 * d, n)]);
        assert_eq!(s.progress().acked, d);
    }

    #[test]
    fn a_nak_or_a_timeout_goes_back_to_the_first_unacknowledged_byte() {
        let image = container(20_000, 3);
        let mut s = flowing(&image);
        let d = (max_body_len(F) - DATA_OVERHEAD) as u32;
        let n = d as usize;
        sent(&mut s, 5);
        // The device got frame 0, lost frame 1, saw frame 2 past the gap.
        s.receive(
            &wire(Reply::Ack {
                session: 7,
                received: d,
                durable: 0,
            }),
            6,
        );
        s.receive(
            &wire(Reply::Nak {
                session: 7,
                expected: d,
            }),
            6,
        );
        assert_eq!(
            sent(&mut s, 6),
            vec![(3, 7, d, n), (3, 7, 2 * d, n), (3, 7, 3 * d, n)]
        );
        // A second Nak for the same gap is a duplicate: no second rewind.
        s.receive(
            &wire(Reply::Nak {
                session: 7,
                expected: d,
            }),
            7,
        );
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
        s.receive(
            &wire(Reply::Ack {
                session: 7,
                received: 500,
                durable: 256,
            }),
            6,
        );
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
        s.receive(
            &wire(Reply::Ack {
                session: 6,
                received: 2000,
                durable: 2000,
            }),
            6,
        );
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
        s.receive(
            &wire(Reply::Ack {
                session: 7,
                received: 19_000,
                durable: 0,
            }),
            6,
        );
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
        s.receive(
            &wire(Reply::Accepted {
                session: 8,
                id: ContainerId([1; 32]),
                resume_from: 4096,
                erase_total: 0,
            }),
            8,
        );
        s.receive(
            &wire(Reply::Ack {
                session: 8,
                received: 4096,
                durable: 4096,
            }),
            8,
        );
        assert_eq!(
            sent(&mut s, 8)[0],
            (3, 8, 4096, max_body_len(F) - DATA_OVERHEAD)
        );
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
        s.receive(
            &wire(Reply::Ack {
                session: 7,
                received: 0,
                durable: 0,
            }),
            2,
        );
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
}
