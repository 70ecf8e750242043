//! A device's life, chosen by the fuzzer: staging, power cuts at any flash operation (torn,
//! marginal, weakly erased), resets, confirmations, and an attacker who writes the container
//! slots and the state banks (bit flips, whole valid records, planted containers, replays of
//! earlier flash contents). The invariants are asserted after every reset
//! (`sbsfu_fuzz::boot_sequence`).
#![no_main]

use libfuzzer_sys::fuzz_target;
use sbsfu_fuzz::boot_sequence::{Device, Step};

fuzz_target!(|steps: Vec<Step>| {
    let mut dev = Device::provisioned();
    for step in steps.iter().take(48) {
        dev.step(step);
    }
    dev.step(&Step::Reset);
});
