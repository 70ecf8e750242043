//! `sbsfu keyset`: create, inspect and verify key sets.

use std::path::PathBuf;

use clap::{Args, Subcommand};

use super::OutputArgs;
use super::parse::parse_u32;
use super::sign::{EXTERNAL_SIGNER, SignedOutputArgs};

/// `sbsfu keyset ...`
#[derive(Debug, Subcommand)]
pub enum KeysetCommand {
    /// Make a key-set update: the keys devices trust from now on, signed by the root key.
    Create(KeysetCreateArgs),
    /// Print a key set's fields (nothing verified).
    Inspect(KeysetInspectArgs),
    /// Check a key set's signature under the root key, and its target and epoch.
    Verify(KeysetVerifyArgs),
}

/// `sbsfu keyset create`
#[derive(Debug, Args)]
pub struct KeysetCreateArgs {
    /// The root key (PKCS#8 PEM). It signs key sets only, never firmware.
    #[arg(
        long,
        value_name = "PEM",
        required_unless_present = EXTERNAL_SIGNER,
        conflicts_with = EXTERNAL_SIGNER
    )]
    pub root_key: Option<PathBuf>,
    /// Sign elsewhere: the root public key. Writes --unsigned-out and --tbs-out.
    #[arg(id = EXTERNAL_SIGNER, long = "root-pubkey", value_name = "PEM", requires_all = ["unsigned_out", "tbs_out"])]
    pub root_pubkey: Option<PathBuf>,
    /// Epoch: higher than the set devices hold now.
    #[arg(long, value_parser = parse_u32, value_name = "N")]
    pub epoch: u32,
    /// Device class.
    #[arg(long, value_name = "NAME")]
    pub target: String,
    /// A public key to trust for firmware (up to 4; repeat). Keys not listed are revoked.
    #[arg(long = "signer", required = true, value_name = "PEM")]
    pub signers: Vec<PathBuf>,
    /// Where it is written, and how the result is printed.
    #[command(flatten)]
    pub signed: SignedOutputArgs,
}

/// `sbsfu keyset inspect`
#[derive(Debug, Args)]
pub struct KeysetInspectArgs {
    /// The key set.
    #[arg(value_name = "KEYSET")]
    pub keyset: PathBuf,
    /// How the result is printed.
    #[command(flatten)]
    pub output: OutputArgs,
}

/// `sbsfu keyset verify`
#[derive(Debug, Args)]
pub struct KeysetVerifyArgs {
    /// The root public key.
    #[arg(long, value_name = "PEM")]
    pub root: PathBuf,
    /// The key set.
    #[arg(value_name = "KEYSET")]
    pub keyset: PathBuf,
    /// The device's target; defaults to the key set's own.
    #[arg(long, value_name = "NAME")]
    pub target: Option<String>,
    /// The epoch the device holds now: the set must be newer.
    #[arg(long, value_parser = parse_u32, value_name = "N")]
    pub current_epoch: Option<u32>,
    /// How the result is printed.
    #[command(flatten)]
    pub output: OutputArgs,
}
