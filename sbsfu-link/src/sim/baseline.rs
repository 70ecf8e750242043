//! The stop-and-wait protocols sbsfu-link is measured against, on the same line and flash
//! models: YMODEM-1K (X-CUBE-SBSFU's loader) and AN3155's Write Memory (the STM32 ROM
//! bootloader). Both send a request, wait for the device to act on it, then wait for its
//! one-byte answer: nothing overlaps, so each exchange costs its bytes on the line, both
//! latencies and the device's work.

use super::device::FlashTiming;
use super::link::Line;

/// The time a stop-and-wait transfer took.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Timeline {
    /// Everything, in nanoseconds.
    pub total_ns: u64,
    /// The data exchanges alone (after the erase), in nanoseconds.
    pub data_ns: u64,
    /// Erasing, in nanoseconds.
    pub erase_ns: u64,
}

struct Clock<'a> {
    line: &'a Line,
    now: u64,
}

impl Clock<'_> {
    /// The host sends `request` bytes, the device works `work_ns`, then answers `reply` bytes.
    fn exchange(&mut self, request: usize, work_ns: u64, reply: usize) {
        self.now += self.line.bytes_ns(request)
            + self.line.latency_ns()
            + work_ns
            + self.line.bytes_ns(reply)
            + self.line.latency_ns();
    }
}

fn erase_ns(flash: &FlashTiming, sectors: &[u32]) -> u64 {
    sectors.iter().map(|&s| flash.erase_ns(s)).sum()
}

/// YMODEM-1K: block 0 (file name and size, 128 bytes) after the device's `C`; the device erases
/// the destination, then acknowledges; then 1024-byte blocks (STX, block number and its
/// complement, data, CRC-16: 1029 bytes), each programmed before its ACK; then EOT twice and an
/// empty block 0.
pub fn ymodem_1k(line: &Line, flash: &FlashTiming, len: usize, sectors: &[u32]) -> Timeline {
    let mut c = Clock { line, now: 0 };
    let erase = erase_ns(flash, sectors);
    c.now += line.bytes_ns(1) + line.latency_ns(); // the device's 'C'
    c.exchange(3 + 128 + 2, erase, 2); // block 0; ACK and 'C' after the erase
    let start = c.now;
    let blocks = len.div_ceil(1024);
    for _ in 0..blocks {
        c.exchange(3 + 1024 + 2, flash.program_ns(1024), 1);
    }
    let data = c.now - start;
    c.exchange(1, 0, 1); // EOT, NAK
    c.exchange(1, 0, 2); // EOT, ACK and 'C'
    c.exchange(3 + 128 + 2, 0, 1); // empty block 0, ACK
    Timeline {
        total_ns: c.now,
        data_ns: data,
        erase_ns: erase,
    }
}

/// AN3155 on a line with 8E1 framing (`line.bits_per_byte` should be 11): synchronisation
/// (0x7F, ACK), Extended Erase of the destination's sectors (command, ACK, sector list and
/// checksum, ACK after erasing), then Write Memory per 256 bytes: command and complement,
/// ACK; address and checksum, ACK; length, data and checksum, ACK after programming.
pub fn an3155(line: &Line, flash: &FlashTiming, len: usize, sectors: &[u32]) -> Timeline {
    let mut c = Clock { line, now: 0 };
    let erase = erase_ns(flash, sectors);
    c.exchange(1, 0, 1); // 0x7F, ACK
    c.exchange(2, 0, 1); // Extended Erase 0x44 0xBB, ACK
    c.exchange(2 + 2 * sectors.len() + 1, erase, 1); // N-1, sector numbers, checksum; ACK
    let start = c.now;
    let mut left = len;
    while left > 0 {
        let n = left.min(256);
        c.exchange(2, 0, 1); // 0x31 0xCE, ACK
        c.exchange(5, 0, 1); // address and checksum, ACK
        c.exchange(1 + n + 1, flash.program_ns(n), 1); // N-1, data, checksum; ACK
        left -= n;
    }
    Timeline {
        total_ns: c.now,
        data_ns: c.now - start,
        erase_ns: erase,
    }
}
