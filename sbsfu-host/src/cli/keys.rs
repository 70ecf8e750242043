//! The commands that make and export keys: `keygen`, `pubkey`, `export-key`.

use std::path::PathBuf;

use clap::{Args, ValueEnum};

/// Kinds of key `keygen` makes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum KeyType {
    /// Ed25519 signing key.
    Ed25519,
    /// AES-256 device key (wraps the per-image content keys).
    Aes256,
    /// X25519 device key: containers are encrypted to its public key (`sign --encrypt-to`).
    X25519,
}

/// `sbsfu keygen`
#[derive(Debug, Args)]
pub struct KeygenArgs {
    /// Kind of key.
    #[arg(long = "type", value_enum)]
    pub key_type: KeyType,
    /// Where to write the key (created with mode 0600).
    #[arg(long, value_name = "FILE")]
    pub out: PathBuf,
    /// Replace an existing file.
    #[arg(long)]
    pub force: bool,
    /// Protect the key with a passphrase: from --passphrase-file, SBSFU_KEY_PASSPHRASE, or asked
    /// for twice on a terminal. Implied by --passphrase-file.
    #[arg(long)]
    pub protect: bool,
}

/// Output formats of `pubkey`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum PubkeyFormat {
    /// SubjectPublicKeyInfo PEM, as `openssl pkey -pubout` writes.
    Pem,
    /// A Rust constant.
    Rust,
    /// A C array.
    C,
    /// The 32 raw bytes.
    Raw,
}

/// `sbsfu pubkey`
#[derive(Debug, Args)]
pub struct PubkeyArgs {
    /// The signing key or X25519 device key (or a public key PEM, to convert it).
    #[arg(long, value_name = "PEM")]
    pub key: PathBuf,
    /// Where to write; standard output if absent.
    #[arg(long, value_name = "FILE")]
    pub out: Option<PathBuf>,
    /// Output format.
    #[arg(long, value_enum, default_value_t = PubkeyFormat::Pem)]
    pub format: PubkeyFormat,
}

/// Output formats of `export-key`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ExportFormat {
    /// A Rust constant.
    Rust,
    /// A C array.
    C,
    /// The raw key bytes.
    Raw,
}

/// `sbsfu export-key`
#[derive(Debug, Args)]
pub struct ExportKeyArgs {
    /// The device key file (plain or passphrase-protected).
    #[arg(long, value_name = "KEY")]
    pub key: PathBuf,
    /// Output format.
    #[arg(long, value_enum)]
    pub format: ExportFormat,
    /// Write to FILE (mode 0600) instead of standard output.
    #[arg(long, value_name = "FILE")]
    pub out: Option<PathBuf>,
}
