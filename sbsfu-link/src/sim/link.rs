//! A serial line in simulated time, with faults, between a [`Sender`] and a simulated device
//! (a [`Receiver`] driving a [`SimTarget`]).
//!
//! Time is a number of nanoseconds; nothing sleeps. Each direction is a line of `baud` bits per
//! second and `bits_per_byte` bits per byte, plus a fixed latency (half the turnaround) per
//! frame. The host hands a frame to its line when the line is idle (a blocking write). The
//! device buffers what arrives (a DMA ring of `rx_buffer` bytes; what overflows is lost, as in
//! a UART overrun) and is busy for the time its flash operations take, plus a little CPU time
//! per byte; its replies go out on the other line.

use std::collections::VecDeque;
use std::vec::Vec;

use super::device::SimTarget;
use crate::receiver::Receiver;
use crate::sender::{Phase, Sender, Source};

/// A serial line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Line {
    /// Bits per second.
    pub baud: u32,
    /// Bits per byte on the wire: 10 for 8N1, 11 for 8E1.
    pub bits_per_byte: u32,
    /// One-way latency per frame (half the turnaround), in microseconds.
    pub latency_us: u64,
}

impl Line {
    /// 921,600 baud 8N1 with 2 ms of turnaround (1 ms each way).
    pub const UART_921600: Self = Self {
        baud: 921_600,
        bits_per_byte: 10,
        latency_us: 1000,
    };

    /// Time of `n` bytes on the wire, in nanoseconds.
    pub fn bytes_ns(&self, n: usize) -> u64 {
        (n as u64 * u64::from(self.bits_per_byte) * 1_000_000_000).div_ceil(u64::from(self.baud))
    }

    /// Payload bytes per second the line carries (8N1: baud / 10).
    pub fn bytes_per_s(&self) -> f64 {
        f64::from(self.baud) / f64::from(self.bits_per_byte)
    }

    /// The one-way latency in nanoseconds.
    pub fn latency_ns(&self) -> u64 {
        self.latency_us * 1000
    }
}

/// What happens to one frame on the line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// Lost.
    Drop,
    /// One bit flipped, at byte `at` (modulo the frame's length).
    Corrupt {
        /// Byte index.
        at: u16,
        /// Bit index (0 to 7).
        bit: u8,
    },
    /// Arrives twice.
    Duplicate,
    /// Arrives `ms` late (frames sent after it may overtake it).
    Delay {
        /// Extra delay.
        ms: u16,
    },
    /// `len` bytes of noise (zeros included) go out before the frame.
    Garbage {
        /// Noise length.
        len: u8,
        /// Noise seed.
        seed: u8,
    },
}

/// The faults of one run. Frame `k` sent in a direction gets the `k`-th entry of that
/// direction's list (`None`: delivered intact).
#[derive(Debug, Clone, Default)]
pub struct Faults {
    /// Host to device.
    pub to_device: Vec<Option<Fault>>,
    /// Device to host.
    pub to_host: Vec<Option<Fault>>,
    /// The link is down (everything sent is lost) between these times, in milliseconds.
    pub cut_ms: Option<(u64, u64)>,
    /// The device loses power at this time (milliseconds) and comes back after
    /// [`Device::reboot_ms`].
    pub reset_at_ms: Option<u64>,
}

/// The simulated device: a receiver, its storage and how it is wired.
pub struct Device<const G: usize> {
    /// The protocol end.
    pub receiver: Receiver<G>,
    /// The storage.
    pub target: SimTarget,
    /// The window it announces.
    pub window: u8,
    /// Its receive buffer (a DMA ring), in bytes.
    pub rx_buffer: usize,
    /// CPU time per received byte (decoding, CRC), in nanoseconds.
    pub cpu_ns_per_byte: u64,
    /// Time from a power loss to the receiver running again, in milliseconds.
    pub reboot_ms: u64,
}

impl<const G: usize> Device<G> {
    /// A device with a receive buffer of `window + 1` frames, 60 ns of CPU per byte (about ten
    /// cycles at 168 MHz) and 50 ms reboots.
    pub fn new(target: SimTarget, window: u8) -> Self {
        Self {
            receiver: Receiver::new(window),
            target,
            window,
            rx_buffer: G * (usize::from(window) + 1),
            cpu_ns_per_byte: 60,
            reboot_ms: 50,
        }
    }

    fn reboot(&mut self) {
        self.target.reboot();
        self.receiver = Receiver::new(self.window);
    }
}

/// What a run measured.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Trace {
    /// When the sender finished (or the run stopped), in nanoseconds.
    pub end_ns: u64,
    /// When the first `Data` frame went out.
    pub data_start_ns: Option<u64>,
    /// When the device had acknowledged every byte.
    pub data_end_ns: Option<u64>,
    /// Bytes the device's receive buffer could not hold.
    pub overruns: u64,
    /// Frames sent by the host and by the device.
    pub frames_to_device: u64,
    /// Frames sent by the device.
    pub frames_to_host: u64,
    /// Times the device lost power.
    pub power_losses: u32,
}

#[derive(Debug)]
struct InFlight {
    at: u64,
    seq: u64,
    bytes: Vec<u8>,
}

/// Frames on their way in one direction.
#[derive(Debug, Default)]
struct Wire {
    free_at: u64,
    sent: usize,
    seq: u64,
    in_flight: Vec<InFlight>,
}

impl Wire {
    fn schedule(&mut self, at: u64, bytes: Vec<u8>) {
        self.seq += 1;
        self.in_flight.push(InFlight {
            at,
            seq: self.seq,
            bytes,
        });
    }

    /// Puts a frame on the line at `now` (after what is already on it), applying `fault`.
    fn send(&mut self, line: &Line, now: u64, mut frame: Vec<u8>, fault: Option<Fault>, cut: bool) {
        let start = now.max(self.free_at);
        let mut noise = Vec::new();
        if let Some(Fault::Garbage { len, seed }) = fault {
            let mut x = u32::from(seed).wrapping_mul(2_654_435_761).wrapping_add(1);
            noise = (0..len)
                .map(|_| {
                    x = x.wrapping_mul(1_103_515_245).wrapping_add(12345);
                    // Zeros included: noise that ends frames early is the hard case.
                    if x % 7 == 0 { 0 } else { (x >> 16) as u8 }
                })
                .collect();
        }
        let on_line = noise.len() + frame.len();
        self.free_at = start + line.bytes_ns(on_line);
        let arrive = self.free_at + line.latency_ns();
        self.sent += 1;
        if cut {
            return;
        }
        match fault {
            Some(Fault::Drop) => {}
            Some(Fault::Corrupt { at, bit }) => {
                let i = usize::from(at) % frame.len();
                frame[i] ^= 1 << (bit % 8);
                self.schedule(arrive, frame);
            }
            Some(Fault::Duplicate) => {
                let again = self.free_at + line.bytes_ns(frame.len());
                self.free_at = again;
                self.schedule(arrive, frame.clone());
                self.schedule(again + line.latency_ns(), frame);
            }
            Some(Fault::Delay { ms }) => {
                self.schedule(arrive + u64::from(ms) * 1_000_000, frame);
            }
            Some(Fault::Garbage { .. }) => {
                noise.extend_from_slice(&frame);
                self.schedule(arrive, noise);
            }
            None => self.schedule(arrive, frame),
        }
    }

    fn next_arrival(&self) -> Option<u64> {
        self.in_flight.iter().map(|f| f.at).min()
    }

    /// The earliest frame that has arrived by `now`.
    fn pop(&mut self, now: u64) -> Option<Vec<u8>> {
        let i = self
            .in_flight
            .iter()
            .enumerate()
            .filter(|(_, f)| f.at <= now)
            .min_by_key(|(_, f)| (f.at, f.seq))
            .map(|(i, _)| i)?;
        Some(self.in_flight.swap_remove(i).bytes)
    }
}

fn in_cut(faults: &Faults, now: u64) -> bool {
    faults
        .cut_ms
        .is_some_and(|(from, to)| now >= from * 1_000_000 && now < to * 1_000_000)
}

/// Runs `sender` against `device` over `line` with `faults` from time `start_ns` until the
/// sender finishes, or `limit_ms` of simulated time pass. The sender's clock is the simulated
/// time in milliseconds.
pub fn run<S: Source, const F: usize, const G: usize>(
    sender: &mut Sender<S, F>,
    device: &mut Device<G>,
    line: &Line,
    faults: &Faults,
    start_ns: u64,
    limit_ms: u64,
) -> Trace {
    let limit = start_ns + limit_ms * 1_000_000;
    let mut trace = Trace::default();
    let mut now = start_ns;
    let mut to_device = Wire::default();
    let mut to_host = Wire::default();
    let mut rx: VecDeque<u8> = VecDeque::new();
    let mut busy_until = start_ns;
    let mut reboot_at: Option<u64> = None;
    let mut reset_done = false;
    loop {
        let mut acted = false;
        while let Some(bytes) = to_host.pop(now) {
            sender.receive(&bytes, now / 1_000_000);
        }
        let phase = sender.progress().phase;
        if trace.data_end_ns.is_none()
            && matches!(phase, Phase::Committing | Phase::Resetting | Phase::Done)
            && trace.data_start_ns.is_some()
        {
            trace.data_end_ns = Some(now);
        }
        if sender.is_finished() || now >= limit {
            break;
        }
        if to_device.free_at <= now
            && let Some(frame) = sender.transmit(now / 1_000_000)
        {
            let frame = frame.to_vec();
            if trace.data_start_ns.is_none() && sender.progress().phase == Phase::Sending {
                trace.data_start_ns = Some(now);
            }
            let fault = faults.to_device.get(to_device.sent).copied().flatten();
            to_device.send(line, now, frame, fault, in_cut(faults, now));
            trace.frames_to_device += 1;
            acted = true;
        }
        // The device.
        if !reset_done
            && reboot_at.is_none()
            && faults.reset_at_ms.is_some_and(|t| now >= t * 1_000_000)
        {
            reset_done = true;
            device.target.power_cut();
            trace.power_losses += 1;
            reboot_at = Some(now + device.reboot_ms * 1_000_000);
        }
        if let Some(t) = reboot_at
            && now >= t
        {
            device.reboot();
            rx.clear();
            reboot_at = None;
            busy_until = now;
        }
        while let Some(bytes) = to_device.pop(now) {
            if reboot_at.is_some() {
                continue;
            }
            let room = device.rx_buffer.saturating_sub(rx.len());
            trace.overruns += bytes.len().saturating_sub(room) as u64;
            rx.extend(bytes.iter().take(room));
        }
        if reboot_at.is_none() && busy_until <= now {
            let input = rx.make_contiguous();
            let used = device.receiver.receive(&mut device.target, input);
            rx.drain(..used);
            let mut cost = used as u64 * device.cpu_ns_per_byte + device.target.take_busy_ns();
            let mut worked = used > 0;
            let mut reply = device.receiver.transmit().map(<[u8]>::to_vec);
            if reply.is_none() && device.receiver.poll(&mut device.target) {
                cost += device.target.take_busy_ns();
                worked = true;
                reply = device.receiver.transmit().map(<[u8]>::to_vec);
            }
            // The reply leaves once the work is done.
            if device.target.is_dead() {
                trace.power_losses += 1;
                reboot_at = Some(now + cost + device.reboot_ms * 1_000_000);
            } else if let Some(frame) = reply {
                let fault = faults.to_host.get(to_host.sent).copied().flatten();
                to_host.send(line, now + cost, frame, fault, in_cut(faults, now + cost));
                trace.frames_to_host += 1;
            }
            if device.receiver.reset_requested() {
                device.target.power_cut();
                reboot_at = Some(now + cost + device.reboot_ms * 1_000_000);
            }
            busy_until = now + cost;
            acted |= worked;
        }
        if acted {
            continue;
        }
        // Nothing to do now: go to the next event.
        let ms = |t: u64| t * 1_000_000;
        let next = [
            to_host.next_arrival(),
            to_device.next_arrival(),
            (busy_until > now).then_some(busy_until),
            (to_device.free_at > now).then_some(to_device.free_at),
            sender.deadline().map(ms).map(|t| t.max(now + 1)),
            reboot_at,
            faults.reset_at_ms.filter(|_| !reset_done).map(ms),
        ]
        .into_iter()
        .flatten()
        .filter(|t| *t > now)
        .min();
        match next {
            Some(t) => now = t,
            // Nothing will ever happen again.
            None => break,
        }
    }
    trace.end_ns = now;
    trace
}
