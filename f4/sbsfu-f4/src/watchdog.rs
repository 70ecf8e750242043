//! The independent watchdog (IWDG): once started it cannot be stopped (not by software, not by
//! a jump to the application), and it resets the chip unless refreshed in time. It runs from the
//! ~32 kHz LSI (17 to 47 kHz over parts and temperature).

use stm32f4::stm32f405::IWDG;

/// The reload value the bootloader starts the watchdog with: the longest period there is
/// (prescaler 256, reload 4095): about 32 s at the typical LSI, 22 s at its fastest, so that the
/// application has time to take it over (it may shorten it) and feed it.
pub const RELOAD: u16 = 0xFFF;

/// The started watchdog.
pub struct Watchdog {
    iwdg: IWDG,
}

impl Watchdog {
    /// Starts the watchdog with the longest period ([`RELOAD`], prescaler 256). From here on a
    /// boot that hangs resets the chip. (QEMU does not model the IWDG: its writes are ignored.)
    pub fn start(iwdg: IWDG) -> Self {
        iwdg.kr().write(|w| w.key().start());
        iwdg.kr().write(|w| w.key().unlock());
        iwdg.pr().write(|w| w.pr().divide_by256());
        iwdg.rlr().write(|w| w.rl().set(RELOAD));
        iwdg.kr().write(|w| w.key().feed());
        Self { iwdg }
    }

    /// Restarts the countdown.
    pub fn feed(&self) {
        self.iwdg.kr().write(|w| w.key().feed());
    }
}
