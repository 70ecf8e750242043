//! Valid containers (signed-only, encrypted and HPKE-encrypted, from the seed corpus) with fuzzer-chosen
//! mutations: rejected, unless the mutations cancel out and the bytes are unchanged.
#![no_main]

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;

const VALID: [&[u8]; 3] = [
    include_bytes!("../seeds/encrypted-3-chunks.sfu"),
    include_bytes!("../seeds/signed-3-chunks.sfu"),
    include_bytes!("../seeds/hpke-3-chunks.sfu"),
];

#[derive(Debug, Arbitrary)]
enum Mutation {
    Xor { at: u16, with: u8 },
    Set { at: u16, to: u8 },
    Insert { at: u16, bytes: Vec<u8> },
    Remove { at: u16, len: u8 },
    Truncate { at: u16 },
    Append { bytes: Vec<u8> },
    Swap { a: u16, b: u16, len: u8 },
}

#[derive(Debug, Arbitrary)]
struct Input {
    which: u8,
    mutations: Vec<Mutation>,
    cuts: Vec<u16>,
}

fuzz_target!(|input: Input| {
    let original = VALID[usize::from(input.which) % VALID.len()];
    let mut c = original.to_vec();
    for m in input.mutations.iter().take(8) {
        let n = c.len().max(1);
        match m {
            Mutation::Xor { at, with } => {
                if let Some(b) = c.get_mut(*at as usize % n) {
                    *b ^= with;
                }
            }
            Mutation::Set { at, to } => {
                if let Some(b) = c.get_mut(*at as usize % n) {
                    *b = *to;
                }
            }
            Mutation::Insert { at, bytes } => {
                let at = (*at as usize % (c.len() + 1)).min(c.len());
                c.splice(at..at, bytes.iter().take(64).copied());
            }
            Mutation::Remove { at, len } => {
                let at = *at as usize % n;
                let end = (at + *len as usize).min(c.len());
                if at < end {
                    c.drain(at..end);
                }
            }
            Mutation::Truncate { at } => c.truncate(*at as usize % n),
            Mutation::Append { bytes } => c.extend(bytes.iter().take(64)),
            Mutation::Swap { a, b, len } => {
                let len = *len as usize % 128;
                let (a, b) = (*a as usize % n, *b as usize % n);
                if a + len <= c.len() && b + len <= c.len() && (a + len <= b || b + len <= a) {
                    for i in 0..len {
                        c.swap(a + i, b + i);
                    }
                }
            }
        }
    }
    let pieces = sbsfu_fuzz::split(&c, &input.cuts);
    sbsfu_fuzz::example_policy(0, |policy| {
        let result = sbsfu_fuzz::install_checked(policy, &pieces);
        if c == original {
            assert!(result.is_ok(), "the unchanged container was rejected: {:?}", result.err());
        } else {
            assert!(result.is_err(), "a changed container was accepted");
        }
    });
});
