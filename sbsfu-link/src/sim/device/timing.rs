//! How long the simulated flash takes: the STM32F4's erase and program times.

/// STM32F4 flash timings (RM0090, x32 parallelism).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct FlashTiming {
    /// Erase of a 16 KiB sector.
    pub erase_16k_ms: u64,
    /// Erase of a 64 KiB sector.
    pub erase_64k_ms: u64,
    /// Erase of a 128 KiB sector.
    pub erase_128k_ms: u64,
    /// Programming one 32-bit word.
    pub program_word_us: u64,
    /// Verifying the container at commit, per byte (reading it back, decrypting, hashing).
    pub verify_ns_per_byte: u64,
}

impl FlashTiming {
    /// RM0090's typical figures: 250 ms, 550 ms and 1 s per sector, 16 µs per word; no
    /// verification cost at commit.
    pub const F4_TYPICAL: Self = Self {
        erase_16k_ms: 250,
        erase_64k_ms: 550,
        erase_128k_ms: 1000,
        program_word_us: 16,
        verify_ns_per_byte: 0,
    };

    /// RM0090's maximum figures: 500 ms, 1.1 s and 2 s per sector, 100 µs per word.
    pub const F4_MAX: Self = Self {
        erase_16k_ms: 500,
        erase_64k_ms: 1100,
        erase_128k_ms: 2000,
        program_word_us: 100,
        verify_ns_per_byte: 0,
    };

    /// No time at all (for tests that only care about behaviour).
    pub const INSTANT: Self = Self {
        erase_16k_ms: 0,
        erase_64k_ms: 0,
        erase_128k_ms: 0,
        program_word_us: 0,
        verify_ns_per_byte: 0,
    };

    /// Erase time of a sector of `len` bytes, in nanoseconds.
    pub fn erase_ns(&self, len: u32) -> u64 {
        let ms = match len {
            0..=0x4000 => self.erase_16k_ms,
            0x4001..=0x1_0000 => self.erase_64k_ms,
            _ => self.erase_128k_ms,
        };
        ms * 1_000_000
    }

    /// Programming time of `len` bytes, in nanoseconds.
    pub fn program_ns(&self, len: usize) -> u64 {
        (len as u64).div_ceil(4) * self.program_word_us * 1000
    }
}
