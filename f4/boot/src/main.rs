//! Example sbsfu bootloader for the STM32F405 (sectors 0-3).
//!
//! At every reset: start the independent watchdog; run the sbsfu `BootManager` over the
//! internal flash, with the anti-rollback counter in OTP (install a pending update, revert an
//! unconfirmed one, restore a damaged image), which verifies the application from flash
//! (signature, digest, vector table) before returning it; then hand the CPU over as a reset
//! would and jump to it. If nothing verifies, say why and stop (the watchdog then resets the
//! chip, which tries again).
#![cfg_attr(target_os = "none", no_std, no_main)]
#![deny(unsafe_code)]

#[cfg(target_os = "none")]
mod firmware;
#[cfg(target_os = "none")]
mod jump;

#[cfg(not(target_os = "none"))]
fn main() {
    println!("f4-boot is STM32F4 firmware: see `cargo xtask f4-test` and the README");
}
