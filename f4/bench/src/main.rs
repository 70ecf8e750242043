//! Instruction counts of the sbsfu device code on an emulated STM32F405 (QEMU `-icount shift=0`,
//! where TIM2 counts one per instruction). `cargo xtask f4-bench` prepares the inputs, runs it,
//! and turns its `bench:` lines into the report.
#![cfg_attr(target_os = "none", no_std, no_main)]
#![forbid(unsafe_code)]

#[cfg(target_os = "none")]
mod firmware;

#[cfg(not(target_os = "none"))]
fn main() {
    println!("f4-bench is STM32F4 firmware: run `cargo xtask f4-bench`");
}
