//! The streaming installer fed fuzzer bytes at fuzzer-chosen split points, with the example
//! keys, into a simulated NOR flash. The seed corpus holds valid containers, so mutations reach
//! the payload checks too. The invariants are asserted in `sbsfu_fuzz::install_checked`.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    // The first byte says how many split points follow (2 bytes each); the rest is the stream.
    let (cuts, stream) = match data.split_first() {
        Some((n, rest)) if rest.len() >= usize::from(n % 8) * 2 => {
            let (c, s) = rest.split_at(usize::from(n % 8) * 2);
            (c.chunks(2).map(|p| u16::from_le_bytes([p[0], p[1]])).collect::<Vec<_>>(), s)
        }
        _ => (Vec::new(), data),
    };
    let pieces = sbsfu_fuzz::split(stream, &cuts);
    sbsfu_fuzz::example_policy(0, |policy| {
        let _ = sbsfu_fuzz::install_checked(policy, &pieces);
    });
});
