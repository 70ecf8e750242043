//! STM32F4 support shared by the on-target test firmware, the benchmarks and the example
//! bootloader: the internal flash and OTP driver, the independent watchdog, a RAM-backed NOR
//! flash with the F405's sector sizes and a RAM-backed OTP area (QEMU's flash is ROM and its OTP
//! unmapped), the example F405 boot layout and configuration, the embedded keys and the device
//! keys from the factory record, and an
//! instruction counter for QEMU `-icount`.
//!
//! Everything but the hardware drivers also builds for the host, where it is unit tested.
#![no_std]
// The exceptions: `internal_flash` talks to the flash controller and memory-mapped flash and OTP,
// `ram_otp` to a static that QEMU's loader may preload.
#![deny(unsafe_code)]
#![warn(missing_docs)]

#[cfg(test)]
extern crate std;

pub mod config;
pub mod device_keys;
#[cfg(target_os = "none")]
pub mod icount;
#[cfg(target_os = "none")]
pub mod internal_flash;
pub mod keys;
pub mod layout;
pub mod ram_flash;
pub mod ram_otp;
#[cfg(target_os = "none")]
pub mod watchdog;

pub use ram_flash::{Counting, RamFlash};
