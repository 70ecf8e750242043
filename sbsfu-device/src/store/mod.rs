//! State that survives resets and power cuts: the record log every store is built on, the
//! anti-rollback counters (in flash, in OTP), and the key store.

pub mod counter;
pub mod key_store;
pub mod otp_counter;
pub mod record_log;
