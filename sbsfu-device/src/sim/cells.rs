//! The cells behind a simulated flash: what a read returns after a power cut left some of them
//! **weak** (marginal: they read as programmed or erased for a while, or differently from read
//! to read, then settle back) or, on flash with ECC, **torn** (a read of the word raises an
//! error instead of returning bits).

use std::collections::BTreeSet;
use std::vec::Vec;

use super::{Decay, SimError};

/// Cells that took an operation only weakly.
#[derive(Clone, Debug)]
struct WeakRange {
    start: usize,
    /// Per byte, the bits that are weak (they read as done until they decay).
    mask: Vec<u8>,
    /// What the weak bits settle to: their value before the operation.
    undo: Vec<u8>,
    decay: Decay,
    reads: u32,
}

impl WeakRange {
    fn end(&self) -> usize {
        self.start + self.mask.len()
    }

    fn overlaps(&self, start: usize, end: usize) -> bool {
        self.start < end && start < self.end()
    }
}

/// Bytes of NOR flash (or OTP) with their weak and torn cells.
#[derive(Clone, Debug)]
pub(super) struct Cells {
    /// What the cells hold while no weak bit has decayed.
    pub bytes: Vec<u8>,
    weak: Vec<WeakRange>,
    /// ECC mode: the word size, and the words (by offset) a cut left torn.
    ecc: Option<(usize, BTreeSet<usize>)>,
}

impl Cells {
    pub fn new(bytes: Vec<u8>) -> Self {
        Self {
            bytes,
            weak: Vec::new(),
            ecc: None,
        }
    }

    /// Reads of a word a cut left torn fail, as on flash with ECC; `word` bytes per ECC word.
    pub fn enable_ecc(&mut self, word: usize) {
        self.ecc = Some((word, BTreeSet::new()));
    }

    /// Whether anything weak or torn remains.
    pub fn is_marginal(&self) -> bool {
        !self.weak.is_empty() || self.ecc.as_ref().is_some_and(|(_, t)| !t.is_empty())
    }

    /// Reads `out.len()` bytes at `start`; every read of a weak range counts towards its decay.
    pub fn read(&mut self, start: usize, out: &mut [u8]) -> Result<(), SimError> {
        let end = start + out.len();
        let src = self.bytes.get(start..end).ok_or(SimError::OutOfBounds)?;
        if let Some((word, torn)) = &self.ecc {
            let first = start - start % word;
            if torn.range(first..end).next().is_some() {
                return Err(SimError::Ecc);
            }
        }
        out.copy_from_slice(src);
        let mut settled = false;
        for w in self.weak.iter_mut().filter(|w| w.overlaps(start, end)) {
            let decayed = match w.decay {
                Decay::AfterReads(n) => w.reads >= n,
                Decay::Flicker => w.reads % 2 == 1,
            };
            w.reads = w.reads.saturating_add(1);
            if !decayed {
                continue;
            }
            for i in start.max(w.start)..end.min(w.end()) {
                let (m, u) = (w.mask[i - w.start], w.undo[i - w.start]);
                out[i - start] = (out[i - start] & !m) | (u & m);
            }
            if matches!(w.decay, Decay::AfterReads(_)) {
                // Settled for good: the cells now hold what they decayed to.
                for i in 0..w.mask.len() {
                    let b = &mut self.bytes[w.start + i];
                    *b = (*b & !w.mask[i]) | (w.undo[i] & w.mask[i]);
                }
                w.mask.fill(0);
                settled = true;
            }
        }
        if settled {
            self.weak.retain(|w| w.mask.iter().any(|m| *m != 0));
        }
        Ok(())
    }

    /// Whether `start..end` may be programmed: erased, and (with ECC) no torn word in it.
    pub fn check_blank(&self, start: usize, end: usize) -> Result<(), SimError> {
        let dst = self.bytes.get(start..end).ok_or(SimError::OutOfBounds)?;
        if let Some(i) = dst.iter().position(|b| *b != 0xFF) {
            return Err(SimError::NotErased {
                offset: (start + i) as u32,
            });
        }
        if let Some((word, torn)) = &self.ecc
            && let Some(t) = torn.range(start - start % word..end).next()
        {
            return Err(SimError::NotErased {
                offset: (*t).max(start) as u32,
            });
        }
        Ok(())
    }

    /// Programs `bytes` at `start` solidly, clearing bits only (AND): weak bits it clears are
    /// solid from now on.
    pub fn program(&mut self, start: usize, bytes: &[u8]) {
        for (i, b) in bytes.iter().enumerate() {
            self.bytes[start + i] &= *b;
        }
        let end = start + bytes.len();
        for w in self.weak.iter_mut().filter(|w| w.overlaps(start, end)) {
            for i in start.max(w.start)..end.min(w.end()) {
                w.mask[i - w.start] &= bytes[i - start];
            }
        }
    }

    /// Erases `start..end` solidly to `0xFF`.
    pub fn erase(&mut self, start: usize, end: usize) {
        self.bytes[start..end].fill(0xFF);
        for w in self.weak.iter_mut().filter(|w| w.overlaps(start, end)) {
            for i in start.max(w.start)..end.min(w.end()) {
                w.mask[i - w.start] = 0;
            }
        }
        self.weak.retain(|w| w.mask.iter().any(|m| *m != 0));
        if let Some((_, torn)) = &mut self.ecc {
            let cut: Vec<usize> = torn.range(start..end).copied().collect();
            for t in cut {
                torn.remove(&t);
            }
        }
    }

    /// Bytes `start..start + target.len()` took an operation that would have made them
    /// `target`, but only `solid` of them for good and `weak` after those only weakly.
    pub fn apply_partly(
        &mut self,
        start: usize,
        target: &[u8],
        solid: usize,
        weak: usize,
        decay: Decay,
    ) {
        let solid = solid.min(target.len());
        let weak = weak.min(target.len() - solid);
        self.bytes[start..start + solid].copy_from_slice(&target[..solid]);
        if weak == 0 {
            return;
        }
        let from = start + solid;
        let old = self.bytes[from..from + weak].to_vec();
        let new = &target[solid..solid + weak];
        if let Some((word, torn)) = &mut self.ecc {
            // With ECC a half-done word is not bits that wander: it is a read error.
            self.bytes[from..from + weak].copy_from_slice(new);
            let mut w = from - from % *word;
            while w < from + weak {
                torn.insert(w);
                w += *word;
            }
            return;
        }
        let mask: Vec<u8> = old.iter().zip(new).map(|(o, n)| o ^ n).collect();
        self.bytes[from..from + weak].copy_from_slice(new);
        if mask.iter().any(|m| *m != 0) {
            self.weak.push(WeakRange {
                start: from,
                mask,
                undo: old,
                decay,
                reads: 0,
            });
        }
    }

    /// With ECC, marks the word holding byte `at` as torn (a cut in the middle of it).
    pub fn tear_word(&mut self, at: usize) {
        if let Some((word, torn)) = &mut self.ecc
            && at < self.bytes.len()
        {
            torn.insert(at - at % *word);
        }
    }
}
