//! Where a push is, and what a finished push did.

use crate::ContainerId;
use crate::message::Outcome;
use crate::target::EraseProgress;

/// Where a push is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// Asking for the device's `Hello`.
    Connecting,
    /// Sent the head; waiting for the device to verify it.
    Beginning,
    /// The device is erasing the destination.
    Erasing,
    /// Data is flowing.
    Sending,
    /// Waiting for the device to verify and store the container.
    Committing,
    /// Waiting for the device to acknowledge a reset.
    Resetting,
    /// Finished: see [`Sender::result`](super::Sender::result).
    Done,
    /// Failed: see [`Sender::result`](super::Sender::result).
    Failed,
}

impl Phase {
    /// A few words for messages.
    pub const fn as_str(self) -> &'static str {
        match self {
            Phase::Connecting => "connecting",
            Phase::Beginning => "sending the head",
            Phase::Erasing => "erasing",
            Phase::Sending => "sending data",
            Phase::Committing => "committing",
            Phase::Resetting => "resetting",
            Phase::Done => "done",
            Phase::Failed => "failed",
        }
    }
}

/// Where a push is, for a progress bar.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Progress {
    /// The phase.
    pub phase: Phase,
    /// Bytes the device has received in order.
    pub acked: u32,
    /// Bytes the device reported durable.
    pub durable: u32,
    /// The container's length.
    pub total: u32,
    /// Erase progress.
    pub erase: EraseProgress,
}

/// What a finished push did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Report {
    /// The container's length.
    pub container_len: u32,
    /// The container's id, as the device computed it.
    pub id: ContainerId,
    /// Pending for the next reset, or installed (`None` for a [`Sender::info`](super::Sender::info) request).
    pub outcome: Option<Outcome>,
    /// Where the device resumed at the start of the push (0: from scratch).
    pub resumed_from: u32,
    /// Container bytes sent in `Data` frames, retransmissions included.
    pub bytes_sent: u64,
    /// Every byte written to the link.
    pub wire_bytes: u64,
    /// `Data` frames sent again (after a timeout or a `Nak`).
    pub retransmits: u32,
    /// Times the device lost the session (was reset) and the push began again.
    pub restarts: u8,
    /// Whether the device acknowledged a reset.
    pub reset: bool,
}
