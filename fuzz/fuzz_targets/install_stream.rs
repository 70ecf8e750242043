//! The streaming installer fed fuzzer bytes at fuzzer-chosen split points, with the example
//! keys, into a simulated NOR flash. The seed corpus holds valid containers, so mutations reach
//! the payload checks too. The invariants are asserted in `sbsfu_fuzz::install_checked`.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let pieces = sbsfu_fuzz::stream_pieces(data);
    sbsfu_fuzz::example_policy(0, |policy| {
        let _ = sbsfu_fuzz::install_checked(policy, &pieces);
    });
});
