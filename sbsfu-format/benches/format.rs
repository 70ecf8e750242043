//! Format primitives: parsing a head, sealing and opening a chunk, a hash-chain link, and
//! SHA-256 itself (the floor every byte of an image pays).
// `criterion_group!` generates an undocumented function.
#![allow(missing_docs)]

use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use sbsfu_format::ContentKey;
use sbsfu_format::Header;
use sbsfu_format::SignedHeader;
use sbsfu_format::{ChunkCipher, chain_link};
use sbsfu_format::{SealParams, Threads};
use sha2::{Digest, Sha256};

const KAT: &[u8] = include_bytes!("../../tests/vectors/kat-encrypted.sfu");
const CHUNK: usize = 4096;

fn parse(c: &mut Criterion) {
    let (head, used) = SignedHeader::parse(KAT).unwrap();
    let header = head.message.header_bytes().to_vec();
    c.bench_function("head parse (prefix, header, signature)", |b| {
        b.iter(|| SignedHeader::parse(black_box(&KAT[..used])).unwrap())
    });
    c.bench_function("header parse", |b| {
        b.iter(|| Header::parse(black_box(&header)).unwrap())
    });
}

fn chunks(c: &mut Criterion) {
    let cipher = ChunkCipher::new(&ContentKey::from_bytes([3; 32]), [5; 7], [9; 32]);
    let mut g = c.benchmark_group("4 KiB chunk");
    g.throughput(Throughput::Bytes(CHUNK as u64));
    let mut buf = vec![0x5au8; CHUNK];
    g.bench_function("seal (AES-256-GCM)", |b| {
        b.iter(|| cipher.seal(7, false, black_box(&mut buf)).unwrap())
    });
    let plain = vec![0x5au8; CHUNK];
    let mut sealed = plain.clone();
    let tag = cipher.seal(7, false, &mut sealed).unwrap();
    g.bench_function("open (AES-256-GCM)", |b| {
        b.iter(|| {
            buf.copy_from_slice(&sealed);
            cipher.open(7, false, black_box(&mut buf), &tag).unwrap()
        })
    });
    g.bench_function("chain link (SHA-256)", |b| {
        b.iter(|| chain_link(7, black_box(&plain), Some(&[1; 32])))
    });
    g.bench_function("SHA-256 alone", |b| {
        b.iter(|| Sha256::digest(black_box(&plain)))
    });
    g.finish();
}

fn whole(c: &mut Criterion) {
    const LEN: usize = 16 << 20;
    let image = vec![0xa5u8; LEN];
    let device_key = sbsfu_format::DeviceKey::from_bytes([2; 32]);
    let params = |encrypted: bool| SealParams {
        signer: [0x11; 32],
        target: "stm32f405",
        version: "1.0.0".parse().unwrap(),
        security_counter: 1,
        region: "app",
        load_address: 0x0802_0000,
        chunk_size: CHUNK as u32,
        encryption: encrypted.then(|| sbsfu_format::EncryptParams {
            wrap: sbsfu_format::Wrap::DeviceKey {
                key: &device_key,
                nonce: [4; 12],
            },
            content_key: ContentKey::from_bytes([3; 32]),
            nonce_prefix: [5; 7],
        }),
    };
    let mut g = c.benchmark_group("seal 16 MiB in memory");
    g.throughput(Throughput::Bytes(LEN as u64));
    g.sample_size(10);
    let mut out = std::io::Cursor::new(Vec::with_capacity(LEN + (LEN / CHUNK + 1) * 32 + 512));
    for (name, encrypted, threads) in [
        ("encrypted, 1 thread", true, Threads::One),
        ("encrypted, 2 threads", true, Threads::Two),
        ("signed only, 1 thread", false, Threads::One),
        ("signed only, 2 threads", false, Threads::Two),
    ] {
        let p = params(encrypted);
        let prepared = p.prepare(LEN as u32).unwrap();
        g.bench_function(name, |b| {
            b.iter(|| {
                out.set_position(0);
                prepared.seal(image.as_slice(), &mut out, threads).unwrap()
            })
        });
    }
    g.bench_function("SHA-256 alone", |b| {
        b.iter(|| Sha256::digest(black_box(&image)))
    });
    g.finish();
}

criterion_group!(benches, parse, chunks, whole);
criterion_main!(benches);
