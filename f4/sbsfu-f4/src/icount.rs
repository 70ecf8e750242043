//! Instruction counting under QEMU: with `-icount shift=0`, TIM2 (prescaler 0, auto-reload
//! 0xFFFF_FFFF) advances exactly once per instruction executed. (On a board it counts timer
//! clock cycles instead; the benchmarks are meant for QEMU.)

use stm32f4::stm32f405::TIM2;

/// A free-running 32-bit counter.
pub struct Icount {
    tim: TIM2,
}

impl Icount {
    /// Starts TIM2 counting.
    pub fn start(tim: TIM2) -> Self {
        tim.psc().write(|w| w.psc().set(0));
        tim.arr().write(|w| w.arr().set(0xFFFF_FFFF));
        tim.egr().write(|w| w.ug().set_bit());
        tim.cr1().modify(|_, w| w.cen().set_bit());
        Self { tim }
    }

    /// The current count.
    pub fn now(&self) -> u32 {
        self.tim.cnt().read().bits()
    }

    /// Instructions spent in `f` (wrapping; spans under 2^32 instructions).
    pub fn measure<T>(&self, f: impl FnOnce() -> T) -> (T, u32) {
        let start = self.now();
        let out = f();
        (out, self.now().wrapping_sub(start))
    }
}
