//! The commands that read a container: `inspect`, `verify`, `decrypt`.

use std::path::PathBuf;

use clap::Args;

use super::OutputArgs;
use super::parse::parse_u32;

/// `sbsfu inspect`
#[derive(Debug, Args)]
pub struct InspectArgs {
    /// The container.
    #[arg(value_name = "CONTAINER")]
    pub container: PathBuf,
    /// How the result is printed.
    #[command(flatten)]
    pub output: OutputArgs,
}

/// Options shared by `verify` and `decrypt`: what the device the container is checked for
/// trusts, and its policy.
#[derive(Debug, Args)]
pub struct TrustArgs {
    /// A trusted signing public key (PEM); repeat for several.
    #[arg(
        long = "pubkey",
        required_unless_present = "keyset",
        value_name = "PEM"
    )]
    pub pubkeys: Vec<PathBuf>,
    /// Trust the keys of this key set (verified under --root) instead of --pubkey.
    #[arg(
        long,
        value_name = "FILE",
        requires = "root",
        conflicts_with = "pubkeys"
    )]
    pub keyset: Option<PathBuf>,
    /// The root public key that signs key sets.
    #[arg(long, value_name = "PEM", requires = "keyset")]
    pub root: Option<PathBuf>,
    /// A device key to decrypt with (X25519 private key or AES-256 key); repeat for several.
    #[arg(long = "decrypt-key", value_name = "KEY")]
    pub decrypt_keys: Vec<PathBuf>,
    /// The device's target; defaults to the one in the header.
    #[arg(long, value_name = "NAME")]
    pub target: Option<String>,
    /// The device's minimum security counter.
    #[arg(long, value_parser = parse_u32, default_value_t = 0, value_name = "N")]
    pub min_security_counter: u32,
    /// Refuse signed-only (unencrypted) containers, as a device configured so would.
    #[arg(long)]
    pub require_encryption: bool,
}

/// `sbsfu verify`
#[derive(Debug, Args)]
pub struct VerifyArgs {
    /// What the device trusts.
    #[command(flatten)]
    pub trust: TrustArgs,
    /// The container.
    #[arg(value_name = "CONTAINER")]
    pub container: PathBuf,
    /// How the result is printed.
    #[command(flatten)]
    pub output: OutputArgs,
}

/// `sbsfu decrypt`
#[derive(Debug, Args)]
pub struct DecryptArgs {
    /// What the device trusts.
    #[command(flatten)]
    pub trust: TrustArgs,
    /// The container.
    #[arg(value_name = "CONTAINER")]
    pub container: PathBuf,
    /// Where to write the installed image.
    #[arg(long, value_name = "FILE")]
    pub out: PathBuf,
}
