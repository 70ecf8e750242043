//! The sbsfu delivery protocol: moves a signed container from a host (a laptop, a gateway, an
//! ESP32 bridge) into a device over any byte stream (UART, USB CDC-ACM, TCP), windowed, with
//! retransmission and resume after a dropped link or a device reset. `docs/LINK.md` specifies it
//! byte by byte.
//!
//! - [`frame`]: COBS framing with a CRC-32C per frame; garbage and damage cost only the frames
//!   they touch.
//! - [`message`]: the requests (host to device) and replies (device to host), parsed strictly.
//! - [`sender`]: the host side, a [`Sender`] that pushes one container (or, made with
//!   [`Sender::info`], only asks the device what it is).
//! - [`receiver`]: the device side, a [`Receiver`] that drives a [`Target`] (the device's
//!   storage: verify the head, erase, write, commit).
//!
//! Everything is sans-IO: bytes in, bytes out, time passed in as milliseconds. Nothing allocates;
//! RAM is bounded by the const-generic frame length `F` (two buffers of `F` bytes per end).
//!
//! Features: `std` (`std::error::Error` for [`Error`]); `sim` (implies `std`): the `sim`
//! module, a link simulator with the STM32F4's flash timings and a test double of the device's
//! storage, used by the tests and by `cargo run --release -p sbsfu-link --example bench_link`.
//!
//! ```
//! use sbsfu_link::sim::{SimTarget, container};
//! use sbsfu_link::{Config, Receiver, Sender};
//!
//! let image = container(20_000, 7);
//! let mut device = SimTarget::small(); // on a board: the Stager behind the `Target` trait
//! let mut receiver = Receiver::<1024>::new(4);
//! let mut sender = Sender::<_, 1024>::new(&image[..], Config::for_baud(921_600))?;
//!
//! // A perfect wire: whatever one side transmits, the other receives.
//! let mut now = 0;
//! while !sender.is_finished() {
//!     while let Some(frame) = sender.transmit(now) {
//!         let frame = frame.to_vec(); // on a host: port.write_all(frame)
//!         let mut rest = &frame[..];
//!         while !rest.is_empty() {
//!             let used = receiver.receive(&mut device, rest);
//!             rest = &rest[used..];
//!             if let Some(reply) = receiver.transmit() {
//!                 sender.receive(reply, now);
//!             }
//!         }
//!     }
//!     while receiver.poll(&mut device) {
//!         if let Some(reply) = receiver.transmit() {
//!             sender.receive(reply, now);
//!         }
//!     }
//!     now += 1;
//! }
//! let report = sender.result().unwrap().unwrap();
//! assert_eq!(report.container_len, 20_000);
//! assert_eq!(device.pending().unwrap(), &image[..]);
//! # Ok::<(), sbsfu_link::Error>(())
//! ```
#![no_std]
#![forbid(unsafe_code)]
#![warn(missing_docs)]
#![cfg_attr(
    not(test),
    deny(
        clippy::unwrap_used,
        clippy::expect_used,
        clippy::panic,
        clippy::indexing_slicing,
        clippy::arithmetic_side_effects
    )
)]

#[cfg(any(feature = "std", test))]
extern crate std;

pub mod cobs;
pub mod error;
pub mod frame;
pub mod hello;
pub mod message;
pub mod receiver;
pub mod sender;
#[cfg(any(feature = "sim", test))]
pub mod sim;
pub mod target;
pub mod text;

pub use error::{Error, ErrorCode, Refusal};
pub use hello::{Description, Hello, Installed, Partial, RegionInfo, Regions};
pub use message::{Outcome, Reply, Request};
pub use receiver::Receiver;
pub use sbsfu_format::ContainerId;
pub use sender::{Config, Phase, Progress, Report, Sender, Source};
pub use target::{Begun, EraseProgress, Target};
pub use text::Text;

/// The protocol version this crate speaks: the first byte of every message.
pub const PROTOCOL_VERSION: u8 = 1;

/// Every peer accepts frames of at least this many bytes on the wire (delimiter included), so
/// that the largest `Hello` and `Begin` always fit.
pub const MIN_FRAME_LEN: usize = 1024;

/// The largest frame a peer may announce (`max_frame` is a 16-bit field).
pub const MAX_FRAME_LEN: usize = 65_535;

/// The longest container head (prefix, header, signature): what `Begin` carries.
pub const MAX_HEAD_LEN: usize = sbsfu_format::MAX_HEAD_LEN;

/// The most regions a `Hello` lists.
pub const MAX_REGIONS: usize = 4;

/// The longest text of an `Error` reply, in bytes of printable ASCII.
pub const MAX_TEXT_LEN: usize = 64;

/// The most data frames a device may accept in flight.
pub const MAX_WINDOW: u8 = 64;

/// The longest a device may announce it stays silent while busy (one erase step, a commit).
pub const MAX_BUSY_MS: u32 = 60_000;
