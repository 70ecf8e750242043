//! Messages: the body of one frame.
//!
//! ```text
//! body = BE8(version) || BE8(kind) || fields
//! ```
//!
//! Requests go from the sender to the device (kinds `0x01..`), replies back (kinds `0x81..`).
//! Integers are big-endian; every variable field has a length before it, bounded by a named
//! constant, and a message must end exactly at its last field. The version is checked before
//! anything else, so that a future version can change everything after it.

use sbsfu_format::Reader;

use crate::ContainerId;
use crate::frame::Put;
use crate::hello::Hello;
use crate::text::Text;
use crate::{Error, ErrorCode, MAX_HEAD_LEN, MAX_TEXT_LEN, PROTOCOL_VERSION, Refusal};

mod reply;
mod request;

/// Message kinds.
mod kind {
    pub const QUERY: u8 = 0x01;
    pub const BEGIN: u8 = 0x02;
    pub const DATA: u8 = 0x03;
    pub const COMMIT: u8 = 0x04;
    pub const RESET: u8 = 0x05;
    /// Replies have the high bit set.
    pub const REPLY: u8 = 0x80;
    pub const HELLO: u8 = 0x81;
    pub const ACCEPTED: u8 = 0x82;
    pub const ERASING: u8 = 0x83;
    pub const ACK: u8 = 0x84;
    pub const NAK: u8 = 0x85;
    pub const COMMITTED: u8 = 0x86;
    pub const ERROR: u8 = 0x87;
    pub const RESETTING: u8 = 0x88;
}

/// Bytes of a `Data` message before its payload: version, kind, session, offset, length.
pub const DATA_OVERHEAD: usize = 10;

/// Bytes of a `Begin` message before the head: version, kind, session, length, head length.
pub const BEGIN_OVERHEAD: usize = 10;

/// What a commit did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Stored and verified; installed at the next reset.
    Pending,
    /// Installed now (a data region).
    Installed,
}

impl Outcome {
    /// `pending` or `installed`: the words `sbsfu push --json` prints.
    pub const fn as_str(self) -> &'static str {
        match self {
            Outcome::Pending => "pending",
            Outcome::Installed => "installed",
        }
    }

    const fn code(self) -> u8 {
        match self {
            Outcome::Pending => 1,
            Outcome::Installed => 2,
        }
    }
}

/// A request, from the sender to the device. Borrows the frame it was parsed from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Request<'a> {
    /// Asks for a `Hello`.
    Query,
    /// Starts (or resumes) a container: its head, and its total length.
    Begin {
        /// The sender's session number, echoed by every reply about this container.
        session: u16,
        /// The container's length in bytes, head included.
        container_len: u32,
        /// Prefix, header and signature: what the device verifies before erasing.
        head: &'a [u8],
    },
    /// Container bytes at an offset.
    Data {
        /// Session.
        session: u16,
        /// Offset of `bytes[0]` in the container.
        offset: u32,
        /// At least one byte.
        bytes: &'a [u8],
    },
    /// Every byte is acknowledged: verify and store (or install).
    Commit {
        /// Session.
        session: u16,
    },
    /// Reset the device now (so the bootloader installs the pending container).
    Reset {
        /// Session.
        session: u16,
    },
}

/// A reply, from the device to the sender. Owns its contents.
// No heap to box the Hello into; it is one reply per connection, and the others are small.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reply {
    /// What the device is and holds.
    Hello(Hello),
    /// The head verified; the device will erase `erase_total` bytes, then wants data from
    /// `resume_from`.
    Accepted {
        /// Session.
        session: u16,
        /// The container's id (SHA-256 of its head).
        id: ContainerId,
        /// Offset of the first byte the device needs; everything before it is stored.
        resume_from: u32,
        /// Bytes the device will erase before data may flow (0: none).
        erase_total: u32,
    },
    /// Erase progress.
    Erasing {
        /// Session.
        session: u16,
        /// Bytes erased so far.
        done: u32,
        /// Bytes to erase in all.
        total: u32,
    },
    /// Cumulative acknowledgement: also "ready for data" after erasing.
    Ack {
        /// Session.
        session: u16,
        /// Every byte below this offset was received, in order: send from here.
        received: u32,
        /// Every byte below this offset survives a reset (at most `received`).
        durable: u32,
    },
    /// A gap: data arrived past `expected`; send again from there.
    Nak {
        /// Session.
        session: u16,
        /// The offset the device is waiting for.
        expected: u32,
    },
    /// The container is stored and verified.
    Committed {
        /// Session.
        session: u16,
        /// Pending for the next reset, or installed.
        outcome: Outcome,
        /// The container's id.
        id: ContainerId,
    },
    /// The request failed: a link error or the device's refusal.
    Error {
        /// The session of the request that failed (0 if it had none).
        session: u16,
        /// Code and text.
        reason: Refusal,
    },
    /// The device resets once this reply is out.
    Resetting {
        /// Session.
        session: u16,
    },
}

pub(crate) fn put_u8(w: &mut impl Put, v: u8) {
    w.put(&[v]);
}

pub(crate) fn put_u16(w: &mut impl Put, v: u16) {
    w.put(&v.to_be_bytes());
}

pub(crate) fn put_u32(w: &mut impl Put, v: u32) {
    w.put(&v.to_be_bytes());
}

pub(crate) fn take_u8(r: &mut Reader<'_>) -> Result<u8, Error> {
    Ok(u8::from_be_bytes(r.take_array()?))
}

pub(crate) fn take_u16(r: &mut Reader<'_>) -> Result<u16, Error> {
    Ok(u16::from_be_bytes(r.take_array()?))
}

pub(crate) fn take_u32(r: &mut Reader<'_>) -> Result<u32, Error> {
    Ok(u32::from_be_bytes(r.take_array()?))
}

/// Checks the version, then returns the kind.
fn start(r: &mut Reader<'_>) -> Result<u8, Error> {
    let version = take_u8(r)?;
    if version != PROTOCOL_VERSION {
        return Err(Error::UnsupportedVersion(version));
    }
    take_u8(r)
}

fn finish<T>(r: &Reader<'_>, value: T) -> Result<T, Error> {
    r.expect_end(sbsfu_format::Error::TrailingBytes)?;
    Ok(value)
}

fn header(w: &mut impl Put, kind: u8) {
    w.put(&[PROTOCOL_VERSION, kind]);
}

#[cfg(any(test, feature = "std"))]
impl Put for std::vec::Vec<u8> {
    fn put(&mut self, bytes: &[u8]) {
        self.extend_from_slice(bytes);
    }
}

#[cfg(test)]
mod tests;
