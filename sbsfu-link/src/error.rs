//! The one error type of this crate, and the error codes a device sends.

use core::fmt;

use crate::sender::Phase;
use crate::text::Text;

/// An error code of an `Error` reply. Codes below [`ErrorCode::DEVICE_BASE`] are the link's
/// own; the others are the device's reasons for refusing a container, named below for
/// sbsfu-device's errors (docs/LINK.md lists them).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ErrorCode(pub u16);

impl ErrorCode {
    /// A frame with a good CRC did not parse as a request.
    pub const MALFORMED: Self = Self(0x0001);
    /// The request's protocol version is not the device's.
    pub const VERSION: Self = Self(0x0002);
    /// `Data`, `Commit` or `Reset` for a session the device does not have (it was reset, or
    /// another sender began since): begin again.
    pub const NO_SESSION: Self = Self(0x0003);
    /// `Data` past the container's end.
    pub const OUT_OF_RANGE: Self = Self(0x0004);
    /// `Commit` before every byte was received.
    pub const INCOMPLETE: Self = Self(0x0005);
    /// A request this device does not implement (an unknown kind, or `Reset`).
    pub const UNSUPPORTED: Self = Self(0x0006);
    /// The device's storage broke its contract with the receiver (a bug in the device).
    pub const INTERNAL: Self = Self(0x0007);

    /// The first code of the device's own reasons: the container is refused, retrying the same
    /// container will not help.
    pub const DEVICE_BASE: u16 = 0x0100;
    /// The container is structurally invalid (sbsfu-device `Error::Format`).
    pub const FORMAT: Self = Self(0x0101);
    /// Signed by a key the device does not trust (`UnknownSigner`).
    pub const UNKNOWN_SIGNER: Self = Self(0x0102);
    /// A signature, chunk or digest did not verify (`Authentication`).
    pub const AUTHENTICATION: Self = Self(0x0103);
    /// For another device class (`WrongTarget`).
    pub const WRONG_TARGET: Self = Self(0x0104);
    /// Security counter below the device's floor (`Rollback`).
    pub const ROLLBACK: Self = Self(0x0105);
    /// Signed only, and the device requires encryption (`EncryptionRequired`).
    pub const ENCRYPTION_REQUIRED: Self = Self(0x0106);
    /// Wrapped for a device key this device does not have (`UnknownDeviceKey`), or encrypted
    /// (HPKE) to other devices only (`NotARecipient`).
    pub const UNKNOWN_DEVICE_KEY: Self = Self(0x0107);
    /// Chunks larger than the installer's buffer (`ChunkTooLarge`, `ChunkMisaligned`).
    pub const CHUNK_SIZE: Self = Self(0x0108);
    /// A region the device does not have, or at another address (`UnknownRegion`,
    /// `WrongLoadAddress`).
    pub const REGION: Self = Self(0x0109);
    /// Larger than the destination (`RegionTooSmall`).
    pub const TOO_LARGE: Self = Self(0x010A);
    /// The container's length disagrees with its header (`Truncated`, `TrailingBytes`).
    pub const LENGTH: Self = Self(0x010B);
    /// The flash driver failed (`Flash`).
    pub const FLASH: Self = Self(0x010C);
    /// An update is in progress: confirm or reset first (`Busy`).
    pub const BUSY: Self = Self(0x010D);
    /// The device's boot state cannot be read or written (`CorruptState`, `InvalidLayout`).
    pub const STATE: Self = Self(0x010E);

    /// Whether this is a device's refusal of the container rather than a link error.
    pub const fn is_refusal(self) -> bool {
        self.0 >= Self::DEVICE_BASE
    }
}

/// A device's reason: an error code and a short printable text. What a [`crate::Target`]
/// returns when it refuses, and what an `Error` reply carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Refusal {
    /// The code.
    pub code: ErrorCode,
    /// The text, for people.
    pub text: Text,
}

impl Refusal {
    /// A refusal with `text` made printable and cut to [`crate::MAX_TEXT_LEN`] bytes.
    pub fn new(code: ErrorCode, text: &str) -> Self {
        Self {
            code,
            text: Text::lossy(text),
        }
    }
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} (code 0x{:04x})", self.text, self.code.0)
    }
}

/// Why a message did not parse, or a transfer did not complete.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Error {
    /// A message ended before its last field.
    Truncated,
    /// Bytes followed a message's last field.
    TrailingBytes,
    /// The message's protocol version is not [`crate::PROTOCOL_VERSION`].
    UnsupportedVersion(u8),
    /// An unknown message kind.
    UnknownKind(u8),
    /// A message of the other direction (an echo of our own frames).
    WrongDirection,
    /// A length field above its bound, or a field outside its range.
    InvalidField,
    /// A target or region name outside `[a-z0-9._-]` or too long.
    InvalidName,
    /// An error text that is not printable ASCII.
    InvalidText,
    /// A message does not fit the frame buffer.
    FrameTooSmall,
    /// The container to send is not an sbsfu container (its prefix, checked before anything is
    /// sent).
    NotAContainer(sbsfu_format::Error),
    /// Reading the container to send failed.
    Source,
    /// The device refused the container, for this reason.
    Refused(Refusal),
    /// The device answered with a link error (a protocol violation on one side or the other).
    Protocol(Refusal),
    /// The device stopped answering: the link is down. The next push resumes from what the
    /// device stored. In [`Phase::Committing`] the device may have committed: its `Hello` tells.
    Timeout {
        /// What the sender was doing.
        phase: Phase,
        /// Bytes of the container the device had acknowledged.
        acked: u32,
    },
    /// The device lost the session more often than the sender's `max_restarts`.
    TooManyRestarts,
}

impl From<sbsfu_format::Error> for Error {
    fn from(e: sbsfu_format::Error) -> Self {
        match e {
            sbsfu_format::Error::Truncated => Error::Truncated,
            sbsfu_format::Error::TrailingBytes => Error::TrailingBytes,
            sbsfu_format::Error::InvalidName => Error::InvalidName,
            other => Error::NotAContainer(other),
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Truncated => f.write_str("message is truncated"),
            Error::TrailingBytes => f.write_str("message has trailing bytes"),
            Error::UnsupportedVersion(v) => write!(
                f,
                "peer speaks link protocol version {v}, this side {}",
                crate::PROTOCOL_VERSION
            ),
            Error::UnknownKind(k) => write!(f, "unknown message kind 0x{k:02x}"),
            Error::WrongDirection => f.write_str("message of the other direction (an echo)"),
            Error::InvalidField => f.write_str("message field out of range"),
            Error::InvalidName => f.write_str("invalid target or region name"),
            Error::InvalidText => f.write_str("error text is not printable ASCII"),
            Error::FrameTooSmall => f.write_str("message does not fit the frame"),
            Error::NotAContainer(e) => write!(f, "not an sbsfu container: {e}"),
            Error::Source => f.write_str("reading the container failed"),
            Error::Refused(r) => write!(f, "device refused the container: {r}"),
            Error::Protocol(r) => write!(f, "device reported a link error: {r}"),
            Error::Timeout { phase, acked } => write!(
                f,
                "device stopped answering while {}, after {acked} bytes were acknowledged",
                phase.as_str()
            ),
            Error::TooManyRestarts => f.write_str("device kept losing the session (resets?)"),
        }
    }
}

#[cfg(feature = "std")]
impl std::error::Error for Error {}
