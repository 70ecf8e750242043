//! What a release engineer runs: `sign` and `keyset create`, with a signer here or elsewhere
//! (`attach-signature` completes either), and `inspect`, `verify`, `decrypt`, `keyset inspect`
//! and `keyset verify` to check what was made.

use std::marker::PhantomData;
use std::path::PathBuf;

use clap::{Args, Subcommand, ValueEnum};
use sbsfu_format::DEFAULT_CHUNK_SIZE;
use sbsfu_format::Version;

use super::OutputArgs;
use super::parse::{parse_size, parse_u32, parse_version};
use crate::image::extents::Window;

/// What `sign --in` holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum InputFormat {
    /// Tell from the content: ELF magic; Intel HEX or S-records by the first non-blank line;
    /// other text is refused; anything else is a raw binary.
    Auto,
    /// Raw binary (needs --load-address).
    Bin,
    /// Intel HEX.
    Hex,
    /// Motorola S-records (.s19, .s28, .s37, .srec, .mot).
    Srec,
    /// ELF executable (allocated sections at their load addresses, as objcopy takes them).
    Elf,
}

/// `sbsfu sign`
#[derive(Debug, Args)]
pub struct SignArgs {
    /// Who signs: --key, or --pubkey to sign elsewhere.
    #[command(flatten)]
    pub signer: SignerArgs<FirmwareSigner>,
    /// Encrypt the payload for devices holding this AES-256 device key.
    #[arg(long, value_name = "KEY", conflicts_with = "encrypt_to")]
    pub encrypt_key: Option<PathBuf>,
    /// Encrypt the payload to this device's X25519 public key (HPKE): repeat for up to 4
    /// recipients (a key rotation, a lab key). The signer holds no key that decrypts.
    #[arg(long = "encrypt-to", value_name = "PUB_PEM")]
    pub encrypt_to: Vec<PathBuf>,
    /// Encrypt to one device of a fleet registry (`fleet.json`, written by `provision --batch`):
    /// the X25519 public key of the device --serial names.
    #[arg(
        long,
        value_name = "FLEET_JSON",
        requires = "serial",
        conflicts_with = "encrypt_key"
    )]
    pub encrypt_to_fleet: Option<PathBuf>,
    /// The device of --encrypt-to-fleet, by serial number.
    #[arg(long, value_name = "SN", requires = "encrypt_to_fleet")]
    pub serial: Option<String>,
    /// Image version, major.minor.patch (informational; rollback uses --security-counter).
    #[arg(long, value_parser = parse_version, value_name = "X.Y.Z")]
    pub version: Version,
    /// Anti-rollback counter: devices refuse images below their stored minimum.
    #[arg(long, value_parser = parse_u32, value_name = "N")]
    pub security_counter: u32,
    /// Device class the image is for, e.g. stm32f405.
    #[arg(long, value_name = "NAME")]
    pub target: String,
    /// Plaintext bytes per chunk: a power of two from 64 to 65536, at most the device's buffer.
    #[arg(long, value_parser = parse_u32, default_value_t = DEFAULT_CHUNK_SIZE, value_name = "BYTES")]
    pub chunk_size: u32,
    /// Address the image is installed at (the start of its region on the device). HEX and ELF
    /// files carry it; if given too, it must agree with them.
    #[arg(long, value_parser = parse_u32, value_name = "ADDR")]
    pub load_address: Option<u32>,
    /// Destination region on the device: `app`, or a data region (e.g. `data`, `qspi`).
    #[arg(long, default_value = "app", value_name = "NAME")]
    pub region: String,
    /// The image: raw binary, Intel HEX, Motorola S-records or ELF.
    #[arg(long = "in", value_name = "IMAGE")]
    pub input: PathBuf,
    /// What --in holds.
    #[arg(long, value_enum, default_value_t = InputFormat::Auto)]
    pub input_format: InputFormat,
    /// Sign only the data inside START..END (end exclusive, decimal or 0x hex); the data left
    /// out is listed on standard error.
    #[arg(long, value_name = "START..END")]
    pub address_range: Option<Window>,
    /// Refuse an image whose gaps (0xFF fill) add up to more than this: a stray record far
    /// from the code (bytes, or with a K, M or G suffix).
    #[arg(long, value_parser = parse_size, default_value = "64M", value_name = "BYTES")]
    pub max_span: u64,
    /// Where it is written, and how the result is printed.
    #[command(flatten)]
    pub signed: SignedOutputArgs,
}

/// Who signs a container (`sign`) or a key set (`keyset create`): a private key here, or the
/// public key of a signer elsewhere (an HSM, a signing service), with which [`SignedOutputArgs`]
/// writes --unsigned-out and --tbs-out instead of --out. `R` names the two options (clap cannot
/// rename the fields of a flattened struct) and gives their help.
#[derive(Debug, Args)]
pub struct SignerArgs<R: SignerRole> {
    /// The private key that signs here (`--key`, `--root-key`).
    #[arg(
        long = R::OPTIONS[0],
        help = R::HELP[0],
        value_name = "PEM",
        required_unless_present = EXTERNAL_SIGNER,
        conflicts_with = EXTERNAL_SIGNER
    )]
    pub key: Option<PathBuf>,
    /// The public key of the signer elsewhere (`--pubkey`, `--root-pubkey`).
    #[arg(
        id = EXTERNAL_SIGNER,
        long = R::OPTIONS[1],
        help = R::HELP[1],
        value_name = "PEM",
        requires_all = ["unsigned_out", "tbs_out"]
    )]
    pub pubkey: Option<PathBuf>,
    #[arg(skip)]
    role: PhantomData<R>,
}

/// What a [`SignerArgs`]' two options are called, and their help.
pub trait SignerRole {
    /// The private key's option and the signer-elsewhere public key's.
    const OPTIONS: [&'static str; 2];
    /// Their help.
    const HELP: [&'static str; 2];
}

/// `sign`'s signer: a firmware signing key.
#[derive(Debug)]
pub enum FirmwareSigner {}

/// `keyset create`'s signer: the root key.
#[derive(Debug)]
pub enum RootSigner {}

impl SignerRole for FirmwareSigner {
    const OPTIONS: [&'static str; 2] = ["key", "pubkey"];
    const HELP: [&'static str; 2] = [
        "Ed25519 signing key (PKCS#8 PEM, plain or passphrase-protected)",
        "Sign elsewhere (HSM, signing service): the signer's public key. Writes --unsigned-out \
         and --tbs-out instead of --out; complete with `sbsfu attach-signature`",
    ];
}

impl SignerRole for RootSigner {
    const OPTIONS: [&'static str; 2] = ["root-key", "root-pubkey"];
    const HELP: [&'static str; 2] = [
        "The root key (PKCS#8 PEM). It signs key sets only, never firmware",
        "Sign elsewhere: the root public key. Writes --unsigned-out and --tbs-out",
    ];
}

/// The id of [`SignerArgs::pubkey`], on which [`SignedOutputArgs`] depends.
const EXTERNAL_SIGNER: &str = "external_signer";

/// Where `sign` and `keyset create` write: the signed file, or, with a signer elsewhere, the file
/// with its signature zeroed and the bytes to sign (completed by `sbsfu attach-signature`).
#[derive(Debug, Args)]
pub struct SignedOutputArgs {
    /// The signed file to write (the container, or the key set).
    #[arg(
        long,
        value_name = "FILE",
        required_unless_present = EXTERNAL_SIGNER,
        conflicts_with = EXTERNAL_SIGNER
    )]
    pub out: Option<PathBuf>,
    /// With --pubkey (--root-pubkey): the file, its signature zeroed.
    #[arg(long, value_name = "FILE", requires = EXTERNAL_SIGNER)]
    pub unsigned_out: Option<PathBuf>,
    /// With --pubkey (--root-pubkey): the exact bytes to sign with Ed25519 (pure, not pre-hashed).
    #[arg(long, value_name = "FILE", requires = EXTERNAL_SIGNER)]
    pub tbs_out: Option<PathBuf>,
    /// Accept the published development keys from keys-example/.
    #[arg(long)]
    pub allow_dev_key: bool,
    /// How the result is printed.
    #[command(flatten)]
    pub output: OutputArgs,
}

/// `sbsfu attach-signature`
#[derive(Debug, Args)]
pub struct AttachArgs {
    /// The signer's public key (the one given to `sign --pubkey` or `keyset create --root-pubkey`).
    #[arg(long, value_name = "PEM")]
    pub pubkey: PathBuf,
    /// The raw 64-byte Ed25519 signature of the .tbs file.
    #[arg(long, value_name = "FILE")]
    pub sig: PathBuf,
    /// The unsigned container or key set.
    #[arg(value_name = "UNSIGNED")]
    pub unsigned: PathBuf,
    /// The signed file to write.
    #[arg(long, value_name = "FILE")]
    pub out: PathBuf,
}

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
    /// Who signs: --root-key, or --root-pubkey to sign elsewhere.
    #[command(flatten)]
    pub signer: SignerArgs<RootSigner>,
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
