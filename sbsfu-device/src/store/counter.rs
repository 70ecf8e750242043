//! The anti-rollback floor: a monotonic counter behind a trait, so that a device can keep it in

use crate::Error;
use crate::flash::Region;
use crate::store::record_log::RecordLog;

/// A counter that never goes backwards, surviving resets and power cuts.
///
/// OTP ([`crate::store::OtpCounter`]), a secure element or RPMB, or in flash with
/// [`FlashCounter`].
///
/// Where it lives decides who can lower it: a [`FlashCounter`] in the same flash as the
/// application can be erased by anything that can erase that flash; an OTP counter cannot be
/// lowered by anything.
pub trait CounterStore {
    /// The current value (0 when never advanced).
    fn read(&mut self) -> Result<u32, Error>;
    /// Raises the value to `to`; a lower or equal `to` changes nothing. Once this returns `Ok`,
    /// no power cut can bring the value below `to`. A counter with no advance left refuses with
    /// [`Error::CounterExhausted`] and changes nothing.
    fn advance(&mut self, to: u32) -> Result<(), Error>;
    /// How many more advances it can take (`u32::MAX`: no fixed limit).
    fn remaining(&mut self) -> Result<u32, Error> {
        Ok(u32::MAX)
    }
}

/// A [`CounterStore`] in its own power-safe record log (two banks of flash).
///
/// Each advance appends one record holding the new value; a torn append leaves the previous
/// value. The value is the largest any valid record holds, so a record appended later with a
/// lower value changes nothing (erasing both banks does: see [`CounterStore`]).
pub struct FlashCounter<'r> {
    log: RecordLog<'r>,
}

impl<'r> FlashCounter<'r> {
    /// Mounts the counter on two banks.
    pub fn mount(banks: [&'r mut dyn Region; 2]) -> Result<Self, Error> {
        Ok(Self {
            log: RecordLog::mount(banks)?,
        })
    }
}

impl CounterStore for FlashCounter<'_> {
    fn read(&mut self) -> Result<u32, Error> {
        let mut value = 0;
        self.log.for_each(&mut |_, payload| {
            if let Ok(v) = <[u8; 4]>::try_from(payload) {
                value = value.max(u32::from_le_bytes(v));
            }
        })?;
        Ok(value)
    }

    fn advance(&mut self, to: u32) -> Result<(), Error> {
        if to > self.read()? {
            self.log.append(&to.to_le_bytes())?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sim::{SimFlash, Tear, each_power_cut};
    use crate::testkit::with_banks;

    fn with_counter<T>(flash: &mut SimFlash, f: impl FnOnce(&mut FlashCounter<'_>) -> T) -> T {
        with_banks(
            flash,
            |banks, _| f(&mut FlashCounter::mount(banks).unwrap()),
        )
    }

    #[test]
    fn never_goes_backwards() {
        let mut f = SimFlash::stm32f405();
        assert_eq!(with_counter(&mut f, |c| c.read()), Ok(0));
        with_counter(&mut f, |c| c.advance(5)).unwrap();
        with_counter(&mut f, |c| c.advance(3)).unwrap();
        assert_eq!(with_counter(&mut f, |c| c.read()), Ok(5));
        for v in 6..200 {
            with_counter(&mut f, |c| c.advance(v)).unwrap();
        }
        assert_eq!(with_counter(&mut f, |c| c.read()), Ok(199));
    }

    #[test]
    fn power_cut_during_advances_never_goes_backwards() {
        // Cut every operation of 70 advances (two compactions), in every way.
        let tears = Tear::clean_and_torn(7, 2, 0x3);
        let points = each_power_cut(
            &tears,
            SimFlash::stm32f405,
            |f| {
                let mut seen = 0;
                for v in 1..=70 {
                    if with_counter(f, |c| c.advance(v)).is_err() {
                        return v as usize - 1;
                    }
                    // While power is on, reads never go backwards either.
                    let r = with_counter(f, |c| c.read()).unwrap();
                    assert!(r >= seen);
                    seen = r;
                }
                70
            },
            |f, acknowledged, cut| {
                let after = with_counter(f, |c| c.read()).unwrap() as usize;
                assert!(
                    after == acknowledged || after == acknowledged + 1,
                    "{cut:?}: {after} after acknowledging {acknowledged}"
                );
            },
        );
        assert!(points > 200);
    }
}
