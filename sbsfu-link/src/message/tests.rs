use super::*;
use crate::frame::{FrameReader, FrameWriter, max_body_len};
use crate::hello::{Description, Installed, Partial, RegionInfo, Regions};
use crate::{MAX_REGIONS, MIN_FRAME_LEN};
use proptest::prelude::*;
use sbsfu_format::Name;
use sbsfu_format::Version;
use std::vec;
use std::vec::Vec;

/// `Data` for session 1 at offset 0 with the bytes DE AD BE EF, on the wire.
const DATA_FRAME: [u8; 21] = [
    0x00, 0x03, 0x01, 0x03, 0x02, 0x01, 0x01, 0x01, 0x01, 0x01, 0x0A, 0x04, 0xDE, 0xAD, 0xBE, 0xEF,
    0xBD, 0x95, 0x5F, 0x20, 0x00,
];
/// `Ack` for session 0x1234, received 0x1000, durable 0x0C00, on the wire.
const ACK_FRAME: [u8; 19] = [
    0x00, 0x05, 0x01, 0x84, 0x12, 0x34, 0x01, 0x02, 0x10, 0x01, 0x01, 0x02, 0x0C, 0x05, 0xE7, 0xE7,
    0xE6, 0x8E, 0x00,
];

fn wire(encode: impl FnOnce(&mut FrameWriter<'_>)) -> Vec<u8> {
    let mut out = vec![0u8; 2048];
    let mut w = FrameWriter::new(&mut out);
    encode(&mut w);
    let n = w.finish().unwrap();
    out.truncate(n);
    out
}

fn body(encode: impl FnOnce(&mut Vec<u8>)) -> Vec<u8> {
    let mut v = Vec::new();
    encode(&mut v);
    v
}

#[test]
fn known_answer_frames() {
    let data = Request::Data {
        session: 1,
        offset: 0,
        bytes: &[0xDE, 0xAD, 0xBE, 0xEF],
    };
    assert_eq!(wire(|w| data.encode(w)), DATA_FRAME);
    let ack = Reply::Ack {
        session: 0x1234,
        received: 0x1000,
        durable: 0x0C00,
    };
    assert_eq!(wire(|w| ack.encode(w)), ACK_FRAME);
    let mut r = FrameReader::<64>::new();
    let got: Vec<Vec<u8>> = DATA_FRAME
        .iter()
        .chain(&ACK_FRAME)
        .filter_map(|&b| r.push(b).map(|f| f.body.to_vec()))
        .collect();
    assert_eq!(Request::parse(&got[0]), Ok(data));
    assert_eq!(Reply::parse(&got[1]), Ok(ack));
}

#[test]
fn version_is_checked_first() {
    // Version 2 with a kind and fields that version 1 would reject anyway.
    for bad in [&[2u8][..], &[2, 0x01], &[2, 0x7F, 1, 2, 3], &[0, 0x81]] {
        let v = bad[0];
        assert_eq!(Request::parse(bad), Err(Error::UnsupportedVersion(v)));
        assert_eq!(Reply::parse(bad), Err(Error::UnsupportedVersion(v)));
    }
    assert_eq!(Request::parse(&[]), Err(Error::Truncated));
}

#[test]
fn direction_and_kind_are_checked() {
    let ack = body(|w| {
        Reply::Nak {
            session: 1,
            expected: 2,
        }
        .encode(w)
    });
    assert_eq!(Request::parse(&ack), Err(Error::WrongDirection));
    let query = body(|w| Request::Query.encode(w));
    assert_eq!(Reply::parse(&query), Err(Error::WrongDirection));
    assert_eq!(Request::parse(&[1, 0x7F]), Err(Error::UnknownKind(0x7F)));
    assert_eq!(Request::parse(&[1, 0x00]), Err(Error::UnknownKind(0x00)));
    assert_eq!(Reply::parse(&[1, 0xFF]), Err(Error::UnknownKind(0xFF)));
}

fn samples() -> (Vec<Vec<u8>>, Vec<Vec<u8>>) {
    let head = [0x89u8; 40];
    let requests = [
        Request::Query,
        Request::Begin {
            session: 3,
            container_len: 1000,
            head: &head,
        },
        Request::Data {
            session: 3,
            offset: 77,
            bytes: &[1, 2, 3],
        },
        Request::Commit { session: 3 },
        Request::Reset { session: 3 },
    ]
    .iter()
    .map(|r| body(|w| r.encode(w)))
    .collect();
    let replies = [
        Reply::Hello(largest_hello()),
        Reply::Accepted {
            session: 3,
            id: ContainerId([7; 32]),
            resume_from: 5,
            erase_total: 9,
        },
        Reply::Erasing {
            session: 3,
            done: 1,
            total: 2,
        },
        Reply::Ack {
            session: 3,
            received: 9,
            durable: 8,
        },
        Reply::Nak {
            session: 3,
            expected: 9,
        },
        Reply::Committed {
            session: 3,
            outcome: Outcome::Installed,
            id: ContainerId([1; 32]),
        },
        Reply::Error {
            session: 3,
            reason: Refusal::new(ErrorCode::ROLLBACK, "downgrade"),
        },
        Reply::Resetting { session: 3 },
    ]
    .iter()
    .map(|r| body(|w| r.encode(w)))
    .collect();
    (requests, replies)
}

#[test]
fn trailing_bytes_are_rejected() {
    let (requests, replies) = samples();
    for mut b in requests {
        b.push(0);
        assert_eq!(Request::parse(&b), Err(Error::TrailingBytes), "{b:02x?}");
    }
    for mut b in replies {
        b.push(0);
        assert_eq!(Reply::parse(&b), Err(Error::TrailingBytes), "{b:02x?}");
    }
}

#[test]
fn every_truncation_is_rejected() {
    let (requests, replies) = samples();
    for b in requests {
        assert!(Request::parse(&b).is_ok());
        for n in 0..b.len() {
            assert!(Request::parse(&b[..n]).is_err(), "{:02x?}", &b[..n]);
        }
    }
    for b in replies {
        assert!(Reply::parse(&b).is_ok());
        for n in 0..b.len() {
            assert!(Reply::parse(&b[..n]).is_err(), "{:02x?}", &b[..n]);
        }
    }
}

#[test]
fn lengths_and_ranges_are_bounded() {
    // A head longer than MAX_HEAD_LEN is refused from its length field alone.
    let mut b = vec![1, 0x02, 0, 1, 0, 0, 0x10, 0];
    b.extend_from_slice(&(MAX_HEAD_LEN as u16 + 1).to_be_bytes());
    assert_eq!(Request::parse(&b), Err(Error::InvalidField));
    // A head longer than the container it heads.
    let head = [0u8; 20];
    let begin = body(|w| {
        Request::Begin {
            session: 1,
            container_len: 19,
            head: &head,
        }
        .encode(w)
    });
    assert_eq!(Request::parse(&begin), Err(Error::InvalidField));
    // Empty data, and data whose end overflows 32 bits.
    let empty = body(|w| Request::data_header(w, 1, 0, 0));
    assert_eq!(Request::parse(&empty), Err(Error::InvalidField));
    let wraps = body(|w| {
        Request::Data {
            session: 1,
            offset: u32::MAX,
            bytes: &[1, 2],
        }
        .encode(w)
    });
    assert_eq!(Request::parse(&wraps), Err(Error::InvalidField));
    // Error text: length above MAX_TEXT_LEN, and unprintable bytes.
    let mut e = vec![1, 0x87, 0, 1, 0x01, 0x03, MAX_TEXT_LEN as u8 + 1];
    e.extend_from_slice(&[b'a'; MAX_TEXT_LEN + 1]);
    assert_eq!(Reply::parse(&e), Err(Error::InvalidText));
    assert_eq!(
        Reply::parse(&[1, 0x87, 0, 1, 1, 3, 1, 0x1B]),
        Err(Error::InvalidText)
    );
    // Acks never say more is durable than received; erase progress stays within its total;
    // outcomes are 1 or 2.
    let ack = body(|w| {
        Reply::Ack {
            session: 1,
            received: 4,
            durable: 5,
        }
        .encode(w)
    });
    assert_eq!(Reply::parse(&ack), Err(Error::InvalidField));
    let erasing = body(|w| {
        Reply::Erasing {
            session: 1,
            done: 3,
            total: 2,
        }
        .encode(w)
    });
    assert_eq!(Reply::parse(&erasing), Err(Error::InvalidField));
    let mut committed = body(|w| {
        Reply::Committed {
            session: 1,
            outcome: Outcome::Pending,
            id: ContainerId::default(),
        }
        .encode(w)
    });
    committed[4] = 3;
    assert_eq!(Reply::parse(&committed), Err(Error::InvalidField));
}

fn hello_body(h: &Hello) -> Vec<u8> {
    body(|w| Reply::Hello(*h).encode(w))
}

#[test]
fn hello_fields_are_checked() {
    let good = largest_hello();
    let mut h = good;
    h.window = 0;
    assert_eq!(Reply::parse(&hello_body(&h)), Err(Error::InvalidField));
    h.window = crate::MAX_WINDOW + 1;
    assert_eq!(Reply::parse(&hello_body(&h)), Err(Error::InvalidField));
    let mut h = good;
    h.max_frame = MIN_FRAME_LEN as u16 - 1;
    assert_eq!(Reply::parse(&hello_body(&h)), Err(Error::InvalidField));
    let mut h = good;
    h.device.busy_ms = crate::MAX_BUSY_MS + 1;
    assert_eq!(Reply::parse(&hello_body(&h)), Err(Error::InvalidField));
    // Reserved flag bits, a fifth region, a durable count past the capacity, a bad name.
    let b = hello_body(&good);
    let target_len = usize::from(b[2]);
    let flags_at = 2 + 1 + target_len + 2 + 1;
    let mut bad = b.clone();
    bad[flags_at] |= 0x80;
    assert_eq!(Reply::parse(&bad), Err(Error::InvalidField));
    let count_at = flags_at + 1 + 8;
    let mut bad = b.clone();
    bad[count_at] = MAX_REGIONS as u8 + 1;
    assert_eq!(Reply::parse(&bad), Err(Error::InvalidField));
    let mut h = good;
    let mut regions = Regions::new();
    let mut r = *good.device.regions.iter().next().unwrap();
    r.capacity = 100;
    r.partial = Some(Partial {
        id: ContainerId::default(),
        durable: 101,
    });
    regions.push(r).unwrap();
    h.device.regions = regions;
    assert_eq!(Reply::parse(&hello_body(&h)), Err(Error::InvalidField));
    let mut bad = b.clone();
    bad[3] = b'A';
    assert_eq!(Reply::parse(&bad), Err(Error::InvalidName));
    let mut bad = b;
    bad[2] = 33;
    assert_eq!(Reply::parse(&bad), Err(Error::InvalidName));
}

fn largest_hello() -> Hello {
    let mut regions = Regions::new();
    for i in 0..MAX_REGIONS {
        let name = std::format!("region-{i}-abcdefg");
        regions
            .push(RegionInfo {
                name: Name::new(&name[..16]).unwrap(),
                capacity: u32::MAX,
                floor: u32::MAX,
                installed: Some(Installed {
                    version: Version {
                        major: u32::MAX,
                        minor: u32::MAX,
                        patch: u32::MAX,
                    },
                    security_counter: u32::MAX,
                }),
                pending: Some(ContainerId([0xEE; 32])),
                partial: Some(Partial {
                    id: ContainerId([0xDD; 32]),
                    durable: u32::MAX,
                }),
            })
            .unwrap();
    }
    Hello {
        max_frame: u16::MAX,
        window: crate::MAX_WINDOW,
        accepts_reset: true,
        device: Description {
            target: Name::new(&"t".repeat(32)).unwrap(),
            chunk_size: u32::MAX,
            busy_ms: crate::MAX_BUSY_MS,
            regions,
        },
    }
}

/// Every peer accepts MIN_FRAME_LEN, so the largest Hello and Begin must fit it, whatever
/// COBS adds.
#[test]
fn largest_hello_and_begin_fit_the_minimum_frame() {
    let hello = hello_body(&largest_hello());
    assert!(
        hello.len() <= max_body_len(MIN_FRAME_LEN),
        "{}",
        hello.len()
    );
    assert_eq!(Reply::parse(&hello), Ok(Reply::Hello(largest_hello())));
    let head = [0u8; MAX_HEAD_LEN];
    let begin = body(|w| {
        Request::Begin {
            session: 1,
            container_len: u32::MAX,
            head: &head,
        }
        .encode(w)
    });
    assert_eq!(begin.len(), BEGIN_OVERHEAD + MAX_HEAD_LEN);
    assert!(begin.len() <= max_body_len(MIN_FRAME_LEN));
}

fn name<const N: usize>() -> impl Strategy<Value = Name<N>> {
    proptest::string::string_regex(&std::format!("[a-z0-9][a-z0-9._-]{{0,{}}}", N - 1))
        .unwrap()
        .prop_map(|s| Name::new(&s).unwrap())
}

fn id() -> impl Strategy<Value = ContainerId> {
    any::<[u8; 32]>().prop_map(ContainerId)
}

fn region() -> impl Strategy<Value = RegionInfo> {
    (
        name::<16>(),
        any::<u32>(),
        any::<u32>(),
        proptest::option::of((any::<[u32; 3]>(), any::<u32>())),
        proptest::option::of(id()),
        proptest::option::of((id(), any::<u32>())),
    )
        .prop_map(
            |(name, capacity, floor, installed, pending, partial)| RegionInfo {
                name,
                capacity,
                floor,
                installed: installed.map(|(v, c)| Installed {
                    version: Version {
                        major: v[0],
                        minor: v[1],
                        patch: v[2],
                    },
                    security_counter: c,
                }),
                pending,
                partial: partial.map(|(id, d)| Partial {
                    id,
                    durable: d.min(capacity),
                }),
            },
        )
}

fn hello() -> impl Strategy<Value = Hello> {
    (
        name::<32>(),
        MIN_FRAME_LEN as u16..,
        1..=crate::MAX_WINDOW,
        any::<bool>(),
        any::<u32>(),
        0..=crate::MAX_BUSY_MS,
        proptest::collection::vec(region(), 0..=MAX_REGIONS),
    )
        .prop_map(
            |(target, max_frame, window, accepts_reset, chunk_size, busy_ms, rs)| {
                let mut regions = Regions::new();
                for r in rs {
                    regions.push(r).unwrap();
                }
                Hello {
                    max_frame,
                    window,
                    accepts_reset,
                    device: Description {
                        target,
                        chunk_size,
                        busy_ms,
                        regions,
                    },
                }
            },
        )
}

fn reply() -> impl Strategy<Value = Reply> {
    let s = any::<u16>();
    prop_oneof![
        hello().prop_map(Reply::Hello),
        (s, id(), any::<u32>(), any::<u32>()).prop_map(
            |(session, id, resume_from, erase_total)| {
                Reply::Accepted {
                    session,
                    id,
                    resume_from,
                    erase_total,
                }
            }
        ),
        (s, any::<u32>(), any::<u32>()).prop_map(|(session, a, b)| Reply::Erasing {
            session,
            done: a.min(b),
            total: a.max(b)
        }),
        (s, any::<u32>(), any::<u32>()).prop_map(|(session, a, b)| Reply::Ack {
            session,
            received: a.max(b),
            durable: a.min(b)
        }),
        (s, any::<u32>()).prop_map(|(session, expected)| Reply::Nak { session, expected }),
        (s, any::<bool>(), id()).prop_map(|(session, i, id)| Reply::Committed {
            session,
            outcome: if i {
                Outcome::Installed
            } else {
                Outcome::Pending
            },
            id
        }),
        (s, any::<u16>(), "[ -~]{0,64}").prop_map(|(session, code, text)| Reply::Error {
            session,
            reason: Refusal::new(ErrorCode(code), &text)
        }),
        s.prop_map(|session| Reply::Resetting { session }),
    ]
}

proptest! {
    #[test]
    fn requests_round_trip(
        which in 0..5u8,
        session in any::<u16>(),
        offset in 0..u32::MAX / 2,
        bytes in proptest::collection::vec(any::<u8>(), 1..MAX_HEAD_LEN),
    ) {
        let len = bytes.len() as u32;
        let request = match which {
            0 => Request::Query,
            1 => Request::Begin { session, container_len: offset.max(len), head: &bytes },
            2 => Request::Data { session, offset, bytes: &bytes },
            3 => Request::Commit { session },
            _ => Request::Reset { session },
        };
        let b = body(|w| request.encode(w));
        prop_assert_eq!(Request::parse(&b), Ok(request));
    }

    #[test]
    fn replies_round_trip(r in reply()) {
        let b = body(|w| r.encode(w));
        prop_assert_eq!(Reply::parse(&b), Ok(r));
    }

    #[test]
    fn parse_never_panics(b in proptest::collection::vec(any::<u8>(), 0..700)) {
        let _ = Request::parse(&b);
        let _ = Reply::parse(&b);
    }

    #[test]
    fn parse_never_panics_on_well_started_bodies(
        kind in any::<u8>(),
        rest in proptest::collection::vec(any::<u8>(), 0..700),
    ) {
        let b = [&[PROTOCOL_VERSION, kind][..], &rest].concat();
        let _ = Request::parse(&b);
        let _ = Reply::parse(&b);
    }
}
