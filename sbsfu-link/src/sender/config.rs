//! How the sender paces itself.

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
