//! What the [`crate::Receiver`] needs from the device: a place to put one container.
//!
//! The receiver speaks the protocol; the target keeps the bytes. On an sbsfu device the target
//! is the `Stager` (a container slot, installed at the next reset) or the installer of a data
//! region. The receiver calls the methods below in this order for one container:
//! [`begin`](Target::begin), [`erase_step`](Target::erase_step) until the erase is done, then
//! [`write`](Target::write) with consecutive offsets, then [`commit`](Target::commit); `begin`
//! may come again at any time (a new sender, a new container, a retry after a reset).
//!
//! The contract (docs/LINK.md, "The device's storage") is checked against the crate's test
//! double by `sim::tests`:
//!
//! 1. `begin` verifies the head completely (signature, target, anti-rollback floor, region,
//!    size, and that `container_len` is the length the header implies) **before it erases or
//!    writes anything**; a refused head changes nothing on the device.
//! 2. `begin` of the container already partly stored (same id, same length) resumes it: it
//!    reports in [`Begun::resume_from`] an offset below which every byte is stored, exactly as
//!    sent, and it does not erase those bytes. After a reset the offset is at most the last
//!    [`durable`](Target::durable) value before the reset; a write torn by the reset is not
//!    counted (the target may go back to the start of a sector to erase it again).
//!    `begin` of any other container abandons the partial one and starts from 0. `begin` of the
//!    container already pending may report `resume_from == container_len`: `commit` then only
//!    confirms it.
//! 3. The target erases everything the container will occupy (from `resume_from` on) in
//!    [`erase_step`](Target::erase_step)s, each short enough to finish within the `busy_ms` its
//!    [`describe`](Target::describe) announces, before the first `write`.
//! 4. `write` is called with `offset` equal to the end of the previous write (or
//!    `resume_from`), never past `container_len`. It never rewrites a byte already programmed:
//!    bytes go to erased flash only.
//! 5. `durable` only grows during a session and never exceeds the bytes written; what it
//!    reports survives a reset.
//! 6. `commit` is called once every byte is written. It stores what is still buffered, verifies
//!    the container exactly as a fresh one is verified, and marks it pending (or installs it).
//!    If verification fails, nothing is marked pending and the partial copy is discarded, so
//!    the next `begin` of that container starts from 0.

use crate::ContainerId;
use crate::Refusal;
use crate::hello::Description;
use crate::message::Outcome;

/// What [`Target::begin`] found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Begun {
    /// The container's id: SHA-256 of its head.
    pub id: ContainerId,
    /// Offset of the first byte the target needs; every byte before it is stored.
    pub resume_from: u32,
    /// Bytes [`Target::erase_step`] will erase before data may flow (0: nothing to erase).
    pub erase_total: u32,
}

/// Erase progress, in bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EraseProgress {
    /// Erased so far.
    pub done: u32,
    /// To erase in all ([`Begun::erase_total`]).
    pub total: u32,
}

/// The device's storage for one container at a time. See the module documentation for the
/// contract each method honours.
pub trait Target {
    /// Describes the device and what its regions hold (for `Hello`).
    fn describe(&mut self) -> Result<Description, Refusal>;

    /// Verifies `head` (all of it, before touching flash) and prepares to receive a container
    /// of `container_len` bytes, resuming a partial copy of the same container.
    fn begin(&mut self, head: &[u8], container_len: u32) -> Result<Begun, Refusal>;

    /// Erases the next piece (a sector, say). Called until `done == total`.
    fn erase_step(&mut self) -> Result<EraseProgress, Refusal>;

    /// Stores `bytes` at `offset`, the end of the previous write.
    fn write(&mut self, offset: u32, bytes: &[u8]) -> Result<(), Refusal>;

    /// Every byte below this offset survives a reset.
    fn durable(&self) -> u32;

    /// Stores what is buffered, verifies the whole container and marks it pending (or
    /// installs it).
    fn commit(&mut self) -> Result<Outcome, Refusal>;

    /// Whether the device resets on request (the caller of the receiver performs the reset,
    /// once the `Resetting` reply is out: see [`crate::Receiver::reset_requested`]).
    fn accepts_reset(&self) -> bool {
        false
    }
}

/// A target borrowed: what [`crate::Receiver`] and combinators of targets take.
impl<T: Target + ?Sized> Target for &mut T {
    fn describe(&mut self) -> Result<Description, Refusal> {
        (**self).describe()
    }

    fn begin(&mut self, head: &[u8], container_len: u32) -> Result<Begun, Refusal> {
        (**self).begin(head, container_len)
    }

    fn erase_step(&mut self) -> Result<EraseProgress, Refusal> {
        (**self).erase_step()
    }

    fn write(&mut self, offset: u32, bytes: &[u8]) -> Result<(), Refusal> {
        (**self).write(offset, bytes)
    }

    fn durable(&self) -> u32 {
        (**self).durable()
    }

    fn commit(&mut self) -> Result<Outcome, Refusal> {
        (**self).commit()
    }

    fn accepts_reset(&self) -> bool {
        (**self).accepts_reset()
    }
}
