//! On-target round trip: containers produced by the host CLI (`cargo xtask f4-test` makes them)
//! are streamed from the host over semihosting, in several read sizes, through the real
//! sbsfu-device installer into a NOR flash with the STM32F405's sector sizes, and each outcome
//! is checked. One `PASS`/`FAIL` line per case; the exit status is the number of failures.
#![cfg_attr(target_os = "none", no_std, no_main)]
#![forbid(unsafe_code)]

#[cfg(target_os = "none")]
mod firmware;

#[cfg(not(target_os = "none"))]
fn main() {
    println!("f4-test is STM32F4 firmware: run `cargo xtask f4-test`");
}
