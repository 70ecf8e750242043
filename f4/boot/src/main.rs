//! Example sbsfu bootloader for the STM32F405 (sectors 0-3).
//!
//! At every reset: run the sbsfu `BootManager` over the internal flash (install a pending
//! update, revert an unconfirmed one, restore a damaged image), which verifies the application
//! from flash (signature and digest) before returning it; then jump to it. If nothing verifies,
//! say why and stop.
#![cfg_attr(target_os = "none", no_std, no_main)]
#![deny(unsafe_code)]

#[cfg(target_os = "none")]
mod firmware;

#[cfg(not(target_os = "none"))]
fn main() {
    println!("f4-boot is STM32F4 firmware: see `cargo xtask f4-test` and the README");
}
