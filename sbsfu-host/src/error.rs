//! The CLI's error type and its exit codes.

use std::fmt;
use std::io;
use std::path::{Path, PathBuf};

/// Exit code for I/O problems and unusable inputs.
pub const EXIT_FAILURE: u8 = 1;
/// Exit code for invalid arguments (also what clap uses).
pub const EXIT_USAGE: u8 = 2;
/// Exit code for a container that is malformed or that a device would reject.
pub const EXIT_REJECTED: u8 = 3;
/// Exit code for key problems: unreadable key file, wrong passphrase, refused development key.
pub const EXIT_KEY: u8 = 4;

/// Why a command failed. Each variant prints as one line.
#[derive(Debug)]
#[non_exhaustive]
pub enum Error {
    /// Reading or writing `path` failed.
    Io {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: io::Error,
    },
    /// The output exists and `--force` was not given.
    Exists(PathBuf),
    /// A key file is not the expected kind of key.
    Key {
        /// The key file.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
    /// A published development key was about to be used without `--allow-dev-key`.
    DevKey(PathBuf),
    /// The arguments are inconsistent.
    Usage(String),
    /// The input image cannot be used.
    Input {
        /// The input file.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
    /// An external signature does not verify.
    Signature {
        /// The signature file.
        sig: PathBuf,
        /// The public key it was checked under.
        pubkey: PathBuf,
    },
    /// The device refused the container (`push`): its reason, as it sent it.
    Refused(String),
    /// The link to the device failed or gave up (`push`, `device-sim`), saying how far it got.
    Link(String),
    /// The container is malformed, or a device would reject it.
    Rejected {
        /// The container.
        path: PathBuf,
        /// The device installer's verdict.
        error: sbsfu_device::Error,
    },
}

impl Error {
    /// The process exit code for this error.
    pub fn exit_code(&self) -> u8 {
        match self {
            Error::Io { .. } | Error::Exists(_) | Error::Input { .. } | Error::Link(_) => {
                EXIT_FAILURE
            }
            Error::Refused(_) => EXIT_REJECTED,
            Error::Usage(_) => EXIT_USAGE,
            Error::Rejected { .. } | Error::Signature { .. } => EXIT_REJECTED,
            Error::Key { .. } | Error::DevKey(_) => EXIT_KEY,
        }
    }

    /// An I/O error on `path`.
    pub fn io(path: &Path, source: io::Error) -> Self {
        Error::Io {
            path: path.to_owned(),
            source,
        }
    }

    /// A key error on `path`.
    pub fn key(path: &Path, reason: impl Into<String>) -> Self {
        Error::Key {
            path: path.to_owned(),
            reason: reason.into(),
        }
    }

    /// A rejected container at `path`.
    pub fn rejected(path: &Path, error: impl Into<sbsfu_device::Error>) -> Self {
        Error::Rejected {
            path: path.to_owned(),
            error: error.into(),
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Io { path, source } => write!(f, "{}: {source}", path.display()),
            Error::Exists(p) => write!(
                f,
                "{}: already exists (use --force to replace it)",
                p.display()
            ),
            Error::Key { path, reason } => write!(f, "{}: {reason}", path.display()),
            Error::DevKey(p) => write!(
                f,
                "{}: is a published development key from keys-example/; anyone can sign with it. \
                 Use your own key, or pass --allow-dev-key for development builds",
                p.display()
            ),
            Error::Usage(m) | Error::Refused(m) | Error::Link(m) => f.write_str(m),
            Error::Input { path, reason } => write!(f, "{}: {reason}", path.display()),
            Error::Signature { sig, pubkey } => write!(
                f,
                "{}: does not verify under {}: it must be the Ed25519 signature of exactly the \
                 .tbs bytes of this file, made with that key",
                sig.display(),
                pubkey.display()
            ),
            Error::Rejected { path, error } => write!(f, "{}: rejected: {error}", path.display()),
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Error::Io { source, .. } => Some(source),
            Error::Rejected { error, .. } => Some(error),
            _ => None,
        }
    }
}

/// Result of a command.
pub type Result<T> = std::result::Result<T, Error>;
