//! The fault model: what a power cut leaves of the operation it interrupts, and a driver that
//! cuts power at every operation of a scenario.

use super::SimError;
use super::SimFlash;

/// What the operation that power is lost in leaves behind.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tear {
    /// Nothing: the operation never started.
    Before,
    /// Everything: it completed, and power was lost right after.
    After,
    /// Only the first `n` bytes of its range took effect.
    Prefix(usize),
    /// The first `n` bytes took effect, and byte `n` only partly: of the bits the operation would
    /// change in it, only those in `mask` changed.
    PartialByte {
        /// Bytes fully done.
        n: usize,
        /// Bits of byte `n` that changed.
        mask: u8,
    },
    /// The first `n` bytes took effect, the next `len` only weakly: they read as done until they
    /// decay as `decay` says, back to what they held before. `Weak { n: 0, len: usize::MAX, .. }`
    /// of an erase is a whole sector left weakly erased (reading `0xFF`, decaying later).
    Weak {
        /// Bytes fully done.
        n: usize,
        /// Bytes weakly done after them.
        len: usize,
        /// How they decay.
        decay: Decay,
    },
    /// Everything took effect, the last `len` bytes only weakly (a cut at the very end of a
    /// program operation: marginal bits that read correctly at first).
    WeakTail {
        /// Bytes weakly done at the end.
        len: usize,
        /// How they decay.
        decay: Decay,
    },
}

impl Tear {
    /// The clean cuts and two torn ones: nothing done, everything done, a prefix of `prefix`
    /// bytes done, and `n` bytes done with byte `n` changed only in the bits of `mask`.
    pub const fn clean_and_torn(prefix: usize, n: usize, mask: u8) -> [Tear; 4] {
        [
            Tear::Before,
            Tear::After,
            Tear::Prefix(prefix),
            Tear::PartialByte { n, mask },
        ]
    }
}

/// How weak cells decay ([`Tear::Weak`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decay {
    /// They read as done `n` times, then settle to their old value for good.
    AfterReads(u32),
    /// They read as done, then as before, then as done again, read after read.
    Flicker,
}

/// A power cut: during the `op`-th erase or write (counting from 1) after [`SimFlash::arm`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cut {
    /// Which operation.
    pub op: usize,
    /// What it leaves behind.
    pub tear: Tear,
}

impl<const W: usize, const E: usize> SimFlash<W, E> {
    /// Applies `tear` of an operation that would turn `range` of the flash (or of the OTP area)
    /// into `target`; power is then off.
    pub(super) fn tear(&mut self, otp: bool, start: usize, target: &[u8], tear: Tear) -> SimError {
        let cells = if otp { &mut self.otp } else { &mut self.data };
        let len = target.len();
        let no_decay = Decay::AfterReads(0);
        match tear {
            Tear::Before => {}
            Tear::After => cells.apply_partly(start, target, len, 0, no_decay),
            Tear::Prefix(n) => {
                cells.apply_partly(start, target, n, 0, no_decay);
                if n < len {
                    // Only with ECC: the word being worked on when power went is torn.
                    cells.tear_word(start + n);
                }
            }
            Tear::PartialByte { n, mask } => {
                let n = n.min(len);
                cells.apply_partly(start, target, n, 0, no_decay);
                if let Some(t) = target.get(n) {
                    let old = cells.bytes[start + n];
                    let changing = old ^ *t;
                    cells.bytes[start + n] = old ^ (changing & mask);
                    cells.tear_word(start + n);
                }
            }
            Tear::Weak {
                n,
                len: weak,
                decay,
            } => cells.apply_partly(start, target, n, weak, decay),
            Tear::WeakTail { len: weak, decay } => {
                let weak = weak.min(len);
                cells.apply_partly(start, target, len - weak, weak, decay)
            }
        }
        self.dead = true;
        SimError::PowerLost
    }
}

/// Cuts power at every erase or write of a scenario, in each of `tears`, and checks the outcome.
///
/// `steps` runs the scenario on `flash`, step by step, stopping at the first failed step, and
/// returns how many steps were acknowledged. It is first run once without a cut to count the
/// operations; then, for each operation and tear, on a fresh flash from `fresh` with that cut
/// armed, after which power comes back and `check(flash, acknowledged, cut)` judges the state.
/// Returns the number of cut points run.
pub fn each_power_cut<const W: usize, const E: usize>(
    tears: &[Tear],
    mut fresh: impl FnMut() -> SimFlash<W, E>,
    mut steps: impl FnMut(&mut SimFlash<W, E>) -> usize,
    mut check: impl FnMut(&mut SimFlash<W, E>, usize, Cut),
) -> usize {
    let mut probe = fresh();
    probe.count_from_here();
    steps(&mut probe);
    let n = probe.ops();
    let mut points = 0;
    for op in 1..=n {
        for tear in tears {
            let cut = Cut { op, tear: *tear };
            let mut flash = fresh();
            flash.arm(cut);
            let acknowledged = steps(&mut flash);
            flash.revive();
            check(&mut flash, acknowledged, cut);
            points += 1;
        }
    }
    points
}
