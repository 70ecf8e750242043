//! The command line, as clap sees it.

mod device;
mod keys;
mod parse;
mod release;

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

pub use device::{DeviceSimArgs, LinkArgs, ProvisionArgs, PushArgs};
pub use keys::{ExportFormat, ExportKeyArgs, KeyType, KeygenArgs, PubkeyArgs, PubkeyFormat};
pub use release::{
    AttachArgs, DecryptArgs, InputFormat, InspectArgs, KeysetCommand, KeysetCreateArgs,
    KeysetVerifyArgs, SignArgs, SignedOutputArgs, SignerArgs, SignerRole, TrustArgs, VerifyArgs,
};

/// Secure firmware update containers: sign, encrypt, inspect and verify.
#[derive(Debug, Parser)]
#[command(
    name = "sbsfu",
    version,
    about = "Secure firmware update containers: sign, encrypt, inspect, verify",
    after_help = "Exit codes: 0 success, 1 I/O or input error, 2 usage error, 3 container rejected, 4 key error."
)]
pub struct Cli {
    /// Read the passphrase of encrypted key files from the first line of FILE (otherwise from
    /// SBSFU_KEY_PASSPHRASE, otherwise asked for on a terminal).
    #[arg(long, global = true, value_name = "FILE")]
    pub passphrase_file: Option<PathBuf>,
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Generate a signing key (Ed25519, PKCS#8 PEM) or a device key (X25519 PKCS#8 PEM, or AES-256).
    Keygen(KeygenArgs),
    /// Export the public half of a signing key or of an X25519 device key, as PEM or as a constant.
    Pubkey(PubkeyArgs),
    /// Print a device key as a constant to build into firmware. The output is SECRET.
    ///
    /// The constant goes into the device's `DeviceKey`; `--format raw` prints the key's bytes.
    /// Anyone who has the output can decrypt every container made for the devices that hold
    /// this key: keep it out of logs and out of version control. --out writes it with mode 0600.
    ExportKey(ExportKeyArgs),
    /// Turn a firmware image into a signed (and optionally encrypted) update container.
    Sign(SignArgs),
    /// Print every header field of a container (no key needed, nothing verified).
    Inspect(InspectArgs),
    /// Check a container exactly as a device would, by running the device installer.
    Verify(VerifyArgs),
    /// Verify a container and write the image a device would install.
    Decrypt(DecryptArgs),
    /// Complete an unsigned container or key set with a signature made elsewhere (HSM, service).
    AttachSignature(AttachArgs),
    /// Key sets: rotate and revoke the keys devices trust, under a root key.
    #[command(subcommand)]
    Keyset(KeysetCommand),
    /// Send a container to a device over a serial port or TCP (the sbsfu link protocol,
    /// docs/LINK.md), resuming what an earlier push left; or, with --info, show what it holds.
    Push(PushArgs),
    /// Run a simulated device (receiver, stager and boot manager on an STM32F405 flash kept in
    /// a file) that `push --tcp` can update: killing it is a power cut, restarting it a reset.
    DeviceSim(DeviceSimArgs),
    /// Make each device's factory image (bootloader, the application installed, a device
    /// record with a fresh key) as Intel HEX or raw flash; with --batch, one per CSV row and
    /// the fleet registry. The images are SECRET (mode 0600): each holds its device's key.
    Provision(ProvisionArgs),
    /// Print a shell completion script.
    Completions(CompletionsArgs),
}

/// How a command that reports prints its result.
#[derive(Debug, Args)]
pub struct OutputArgs {
    /// Print the result as JSON.
    #[arg(long)]
    pub json: bool,
}

/// `sbsfu completions`
#[derive(Debug, Args)]
pub struct CompletionsArgs {
    /// The shell.
    #[arg(value_enum)]
    pub shell: clap_complete::Shell,
}

impl Command {
    /// Whether the command was asked for JSON output.
    pub fn json(&self) -> bool {
        let output = match self {
            Command::Sign(a) => &a.signed.output,
            Command::Inspect(a) => &a.output,
            Command::Verify(a) => &a.output,
            Command::Push(a) => &a.output,
            Command::Keyset(KeysetCommand::Create(a)) => &a.signed.output,
            Command::Keyset(KeysetCommand::Inspect(a)) => &a.output,
            Command::Keyset(KeysetCommand::Verify(a)) => &a.output,
            _ => return false,
        };
        output.json
    }
}

#[cfg(test)]
mod tests;
