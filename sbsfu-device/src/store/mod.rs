//! State that survives resets and power cuts: the record log every store is built on, the
//! anti-rollback counters (in flash, in OTP), the key store, and the factory's device record.

mod counter;
mod device_record;
mod key_store;
mod otp_counter;
pub(crate) mod record_log;

pub use counter::{CounterStore, FlashCounter};
pub use device_record::device_record;
pub use key_store::{KeyStore, TrustedSet, check_key_set, check_newer};
pub use otp_counter::{OtpCounter, OtpMemory};
pub use record_log::RECORD_SIZE;
