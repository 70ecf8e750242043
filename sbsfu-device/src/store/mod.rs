//! State that survives resets and power cuts: the record log every store is built on, the
//! anti-rollback counters (in flash, in OTP), and the key store.

mod counter;
mod key_store;
mod otp_counter;
pub(crate) mod record_log;

pub use counter::{CounterStore, FlashCounter};
pub use key_store::{KeyStore, TrustedSet, check_key_set, check_newer};
pub use otp_counter::{OtpCounter, OtpMemory};
pub use record_log::RECORD_SIZE;
