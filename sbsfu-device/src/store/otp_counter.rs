//! The anti-rollback counter in one-time-programmable memory, which a flash writer cannot lower.

use crate::Error;
use crate::flash::Shared;
use crate::store::CounterStore;

/// One-time-programmable memory as 32-bit words: a word reads `0xFFFF_FFFF` until programmed,
/// programming only clears bits, nothing erases it.
pub trait OtpMemory {
    /// Number of words.
    fn words(&self) -> u32;
    /// Reads word `index`.
    fn read_word(&mut self, index: u32) -> Result<u32, Error>;
    /// Programs word `index`: the bits that are 0 in `value` are cleared (the others keep their
    /// state).
    fn program_word(&mut self, index: u32, value: u32) -> Result<(), Error>;
}

impl<T: OtpMemory + ?Sized> OtpMemory for &mut T {
    fn words(&self) -> u32 {
        (**self).words()
    }
    fn read_word(&mut self, index: u32) -> Result<u32, Error> {
        (**self).read_word(index)
    }
    fn program_word(&mut self, index: u32, value: u32) -> Result<(), Error> {
        (**self).program_word(index, value)
    }
}

/// The OTP of a flash shared between regions (on the STM32F4 one controller programs both).
impl<F: OtpMemory> OtpMemory for Shared<'_, F> {
    fn words(&self) -> u32 {
        self.0.try_borrow().map(|f| f.words()).unwrap_or(0)
    }
    fn read_word(&mut self, index: u32) -> Result<u32, Error> {
        self.0
            .try_borrow_mut()
            .map_err(|_| Error::CorruptState)?
            .read_word(index)
    }
    fn program_word(&mut self, index: u32, value: u32) -> Result<(), Error> {
        self.0
            .try_borrow_mut()
            .map_err(|_| Error::CorruptState)?
            .program_word(index, value)
    }
}

const BLANK: u32 = 0xFFFF_FFFF;

/// A [`CounterStore`] in OTP words, which a flash writer cannot lower.
///
/// OTP (the STM32F4's 512-byte area at 0x1FFF_7800, RM0090 section 3.8; eFuses elsewhere) is
/// programmed like flash but never erased: a bit goes from 1 to 0 once, for ever. [`OtpCounter`]
/// writes each new value into the next blank 32-bit words, as its **complement**, and reads the
/// **maximum** over all words:
///
/// - writing a lower value changes nothing (the maximum stays);
/// - clearing more bits of any word (all that programming can do) only raises what it holds, and
///   a blank word holds 0: whoever can program OTP can raise the counter (a denial of service,
///   burning the area) but never lower it;
/// - a power cut in the middle of a word leaves some of its bits cleared, so it holds a subset of
///   the bits of the new value: at most the new value, and the words before it still hold the
///   old one. The caller advances again (the boot manager does at every boot) and the next word
///   takes it;
/// - a cut can also leave a word's cells marginal: reading the new value at first, decaying
///   later. So each value is written into **two** words: a value held by one word only is
///   written again by the next `advance` to it (the boot manager asks at every boot), and one
///   marginal word can never be all that holds the counter up.
///
/// 128 words give 64 advances; [`CounterStore::remaining`] says how many are left, and a full
/// counter refuses to advance ([`Error::CounterExhausted`]) without writing anything.
pub struct OtpCounter<O> {
    otp: O,
}

impl<O: OtpMemory> OtpCounter<O> {
    /// The counter over all words of `otp` (give it a window of the OTP area if other words hold
    /// something else).
    pub fn new(otp: O) -> Self {
        Self { otp }
    }

    /// The value (the maximum held by any word), how many words hold it, and the first word
    /// after the last programmed one.
    fn scan(&mut self) -> Result<(u32, u32, u32), Error> {
        let (mut value, mut holders, mut next) = (0, 0u32, 0);
        for i in 0..self.otp.words() {
            let word = self.otp.read_word(i)?;
            if word != BLANK {
                if !word > value {
                    (value, holders) = (!word, 0);
                }
                if !word == value {
                    holders = holders.saturating_add(1);
                }
                next = i.saturating_add(1);
            }
        }
        Ok((value, holders, next))
    }
}

impl<O: OtpMemory> CounterStore for OtpCounter<O> {
    fn read(&mut self) -> Result<u32, Error> {
        Ok(self.scan()?.0)
    }

    /// Raises the value to `to` (two words); given the value it holds, makes sure two words
    /// hold it.
    fn advance(&mut self, to: u32) -> Result<(), Error> {
        let (value, holders, mut next) = self.scan()?;
        let mut copies = match to.cmp(&value) {
            core::cmp::Ordering::Less => return Ok(()),
            core::cmp::Ordering::Equal => 2u32.saturating_sub(holders),
            core::cmp::Ordering::Greater => 2,
        };
        if copies == 0 {
            return Ok(());
        }
        if self.otp.words().saturating_sub(next) < copies {
            return Err(Error::CounterExhausted);
        }
        while copies > 0 && next < self.otp.words() {
            self.otp.program_word(next, !to)?;
            // A word that did not take (marginal) holds at most `to`: the next one is used.
            if self.otp.read_word(next)? == !to {
                copies = copies.saturating_sub(1);
            }
            next = next.saturating_add(1);
        }
        if copies == 0 {
            Ok(())
        } else {
            Err(Error::CounterExhausted)
        }
    }

    fn remaining(&mut self) -> Result<u32, Error> {
        let (_, _, next) = self.scan()?;
        Ok(self.otp.words().saturating_sub(next) / 2)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sim::{Cut, Decay, SimFlash, Tear, each_power_cut};

    fn otp(words: usize) -> SimFlash {
        SimFlash::stm32f405().with_otp(words)
    }

    fn counter(f: &mut SimFlash) -> OtpCounter<&mut SimFlash> {
        OtpCounter::new(f)
    }

    #[test]
    fn the_value_is_the_maximum_and_a_lower_value_changes_nothing() {
        let mut f = otp(128);
        assert_eq!(counter(&mut f).read(), Ok(0));
        assert_eq!(counter(&mut f).remaining(), Ok(64));
        counter(&mut f).advance(5).unwrap();
        counter(&mut f).advance(3).unwrap();
        counter(&mut f).advance(5).unwrap();
        assert_eq!(counter(&mut f).read(), Ok(5));
        // Only the first advance wrote: two words holding the complement of 5.
        assert_eq!(&f.otp()[..4], &(!5u32).to_le_bytes());
        assert_eq!(&f.otp()[4..8], &(!5u32).to_le_bytes());
        assert_eq!(&f.otp()[8..12], &[0xFF; 4]);
        assert_eq!(counter(&mut f).remaining(), Ok(63));
        // Someone writes a lower value into the next word: the maximum stays.
        f.otp_program_raw(8, &(!2u32).to_le_bytes());
        assert_eq!(counter(&mut f).read(), Ok(5));
        counter(&mut f).advance(9).unwrap();
        assert_eq!(counter(&mut f).read(), Ok(9));
        assert_eq!(counter(&mut f).remaining(), Ok(61));
    }

    #[test]
    fn programming_more_bits_can_only_raise_it() {
        // Whatever an attacker with access to the flash controller clears, anywhere, the value
        // never drops below what was written.
        let mut f = otp(8);
        counter(&mut f).advance(0x1234).unwrap();
        counter(&mut f).advance(0x2000).unwrap();
        let mut x = 0x9E37_79B9u32;
        for _ in 0..200 {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            let at = (x as usize >> 8) % 32;
            let before = counter(&mut f).read().unwrap();
            f.otp_program_raw(at, &[x as u8]);
            let after = counter(&mut f).read().unwrap();
            assert!(after >= before, "{before:#x} -> {after:#x}");
        }
        assert!(counter(&mut f).read().unwrap() >= 0x2000);
    }

    #[test]
    fn a_full_counter_refuses_cleanly() {
        let mut f = otp(128);
        for v in 1..=64 {
            counter(&mut f).advance(v * 3).unwrap();
        }
        assert_eq!(counter(&mut f).remaining(), Ok(0));
        f.count_from_here();
        assert_eq!(counter(&mut f).advance(1000), Err(Error::CounterExhausted));
        assert_eq!(f.ops(), 0, "a full counter writes nothing");
        assert_eq!(counter(&mut f).read(), Ok(192));
        // Values it already holds are still accepted.
        assert_eq!(counter(&mut f).advance(192), Ok(()));
    }

    #[test]
    fn power_cuts_mid_word_never_lower_it_nor_overshoot() {
        let tears = [
            Tear::Before,
            Tear::After,
            Tear::Prefix(1),
            Tear::Prefix(3),
            Tear::PartialByte { n: 0, mask: 0x5A },
            Tear::PartialByte { n: 2, mask: 0x81 },
            Tear::Weak {
                n: 1,
                len: 2,
                decay: Decay::AfterReads(1),
            },
            Tear::WeakTail {
                len: 4,
                decay: Decay::Flicker,
            },
        ];
        // Values whose words differ in many bits from one another.
        let values: std::vec::Vec<u32> = (1..=12u32).map(|i| i.wrapping_mul(0x0101_0AB1)).collect();
        let points = each_power_cut(
            &tears,
            || otp(32),
            |f| {
                for (i, v) in values.iter().enumerate() {
                    if counter(f).advance(*v).is_err() {
                        return i;
                    }
                }
                values.len()
            },
            |f, acknowledged, cut| {
                let floor = acknowledged.checked_sub(1).map_or(0, |i| values[i]);
                let ceiling = values.get(acknowledged).copied().unwrap_or(floor);
                for _ in 0..3 {
                    // Read several times: weak bits may change between reads.
                    let now = counter(f).read().unwrap();
                    assert!(
                        now >= floor && now <= ceiling,
                        "{cut:?}: {now:#x} after acknowledging {floor:#x}, writing {ceiling:#x}"
                    );
                }
                // Advancing again completes it, and then no word decaying lowers it: the value
                // is held twice.
                counter(f).advance(ceiling).unwrap();
                for _ in 0..4 {
                    assert!(counter(f).read().unwrap() >= ceiling, "{cut:?}");
                }
            },
        );
        assert_eq!(points, 24 * tears.len());
    }

    #[test]
    fn a_value_held_by_one_word_is_written_again() {
        // A cut at the very end of the first word's programming: it reads correctly for a
        // while. Asked again for the value it holds, the counter writes the second copy, and
        // the marginal word decaying changes nothing.
        let mut f = otp(16);
        counter(&mut f).advance(5).unwrap();
        f.arm(Cut {
            op: 1,
            tear: Tear::WeakTail {
                len: 4,
                decay: Decay::AfterReads(3),
            },
        });
        assert!(counter(&mut f).advance(7).is_err());
        f.revive();
        assert_eq!(counter(&mut f).read(), Ok(7));
        counter(&mut f).advance(7).unwrap();
        for _ in 0..6 {
            assert_eq!(counter(&mut f).read(), Ok(7));
        }
    }
}
