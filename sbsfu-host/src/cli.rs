//! The command line, as clap sees it.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};
use sbsfu_format::DEFAULT_CHUNK_SIZE;
use sbsfu_format::Version;

pub use crate::image::extents::Window;

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

/// Where `push` reaches the device: exactly one of a serial port and a TCP address.
#[derive(Debug, Args)]
#[group(required = true, multiple = false)]
pub struct LinkArgs {
    /// The device's serial port (`/dev/ttyUSB0`, `/dev/ttyACM0`, `COM3`).
    #[arg(long, value_name = "PATH")]
    pub port: Option<String>,
    /// A device (or `device-sim`, a bridge, QEMU's serial port) listening on TCP.
    #[arg(long, value_name = "HOST:PORT")]
    pub tcp: Option<String>,
}

/// `sbsfu push`
#[derive(Debug, Args)]
pub struct PushArgs {
    /// Where the device is.
    #[command(flatten)]
    pub link: LinkArgs,
    /// Line speed of --port, 8N1.
    #[arg(
        long,
        default_value_t = 921_600,
        value_name = "BAUD",
        requires = "port"
    )]
    pub baud: u32,
    /// Only print the device's Hello: its target, limits, and what each region runs, has
    /// pending and has partly received.
    #[arg(long, conflicts_with = "container")]
    pub info: bool,
    /// After the commit, ask the device to reset so that its bootloader installs the container
    /// now (if the device accepts resets).
    #[arg(long, conflicts_with = "info")]
    pub reset: bool,
    /// The container to send.
    #[arg(value_name = "CONTAINER", required_unless_present = "info")]
    pub container: Option<PathBuf>,
    /// How the result is printed.
    #[command(flatten)]
    pub output: OutputArgs,
}

/// `sbsfu provision`
#[derive(Debug, Args)]
pub struct ProvisionArgs {
    /// The bootloader (ELF, Intel HEX, or a raw binary loaded at the layout's bootloader address).
    #[arg(long, value_name = "FILE")]
    pub bootloader: PathBuf,
    /// The application's container, as `sign` made it.
    #[arg(long, value_name = "FILE")]
    pub container: PathBuf,
    /// The device key the container is encrypted to (not needed for a signed-only container).
    #[arg(long, value_name = "KEY")]
    pub decrypt_key: Option<PathBuf>,
    /// One device: its serial number.
    #[arg(
        long,
        value_name = "SN",
        required_unless_present = "batch",
        conflicts_with = "batch"
    )]
    pub serial: Option<String>,
    /// A user field of the device record; repeat for several.
    #[arg(long = "field", value_name = "NAME=VALUE", requires = "serial")]
    pub fields: Vec<String>,
    /// The device's calibration bytes (a binary file, up to 256 bytes), into its record.
    #[arg(long, value_name = "FILE", requires = "serial")]
    pub calibration: Option<PathBuf>,
    /// Where to write the device's image: `.hex` (Intel HEX) or `.bin` (the raw flash).
    #[arg(long, value_name = "FILE", requires = "serial")]
    pub out: Option<PathBuf>,
    /// A batch: a CSV file with a header line `serial[,NAME]...` and one row per device.
    #[arg(long, value_name = "CSV", requires = "out_dir")]
    pub batch: Option<PathBuf>,
    /// Where a batch's images (`SERIAL.hex`) and `fleet.json` go.
    #[arg(long, value_name = "DIR", requires = "batch")]
    pub out_dir: Option<PathBuf>,
    /// The chip's layout (TOML; default: the example STM32F405).
    #[arg(long, value_name = "FILE")]
    pub layout: Option<PathBuf>,
    /// Replace existing output files.
    #[arg(long)]
    pub force: bool,
    /// How the result is printed.
    #[command(flatten)]
    pub output: OutputArgs,
}

/// `sbsfu device-sim`
#[derive(Debug, Args)]
pub struct DeviceSimArgs {
    /// Address to listen on for `push --tcp`.
    #[arg(long, value_name = "HOST:PORT")]
    pub listen: String,
    /// The device's 1 MiB flash (STM32F405 layout); created blank if absent.
    #[arg(long, value_name = "FILE")]
    pub flash: PathBuf,
    /// A signing public key the device trusts (PEM); repeat for several.
    #[arg(long = "pubkey", required = true, value_name = "PEM")]
    pub pubkeys: Vec<PathBuf>,
    /// The device key it unwraps content keys with; repeat for several.
    #[arg(long = "decrypt-key", value_name = "KEY")]
    pub decrypt_keys: Vec<PathBuf>,
    /// The device class containers must name.
    #[arg(long, value_name = "NAME")]
    pub target: String,
    /// Take as long as an STM32F405's flash does (RM0090 typical: 1 s per 128 KiB sector
    /// erase, 16 us per 32-bit word programmed), for realistic pushes and time to cut them.
    #[arg(long)]
    pub f4_timing: bool,
    /// Also a data region NAME (installed at once, `push` says `installed`): the first 992 KiB
    /// of a 1 MiB external flash in 4 KiB sectors seen at 0x90000000 (`sign --region NAME
    /// --load-address 0x90000000`).
    #[arg(long, value_name = "NAME", requires = "data_flash")]
    pub data_region: Option<String>,
    /// The data region's external flash (1 MiB); created blank if absent.
    #[arg(long, value_name = "FILE", requires = "data_region")]
    pub data_flash: Option<PathBuf>,
}

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
    /// Ed25519 signing key (PKCS#8 PEM, plain or passphrase-protected).
    #[arg(
        long,
        value_name = "PEM",
        required_unless_present = EXTERNAL_SIGNER,
        conflicts_with = EXTERNAL_SIGNER
    )]
    pub key: Option<PathBuf>,
    /// Sign elsewhere (HSM, signing service): the signer's public key. Writes --unsigned-out and
    /// --tbs-out instead of --out; complete with `sbsfu attach-signature`.
    #[arg(id = EXTERNAL_SIGNER, long = "pubkey", value_name = "PEM", requires_all = ["unsigned_out", "tbs_out"])]
    pub pubkey: Option<PathBuf>,
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

/// The id that `sign --pubkey` and `keyset create --root-pubkey` share: the public key of a signer
/// elsewhere (an HSM, a signing service), which [`SignedOutputArgs`] depends on.
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

/// How a command that reports prints its result.
#[derive(Debug, Args)]
pub struct OutputArgs {
    /// Print the result as JSON.
    #[arg(long)]
    pub json: bool,
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

/// Parses a `u32` in decimal or `0x` hexadecimal; `_` may separate digits.
pub fn parse_u32(s: &str) -> Result<u32, String> {
    let clean: String = s.chars().filter(|c| *c != '_').collect();
    let parsed = match clean
        .strip_prefix("0x")
        .or_else(|| clean.strip_prefix("0X"))
    {
        Some(hex) => u32::from_str_radix(hex, 16),
        None => clean.parse(),
    };
    parsed.map_err(|_| format!("`{s}` is not a 32-bit number (decimal or 0x hex)"))
}

/// Parses a byte count: decimal or `0x` hex, optionally followed by K, M or G (powers of 1024,
/// also written KiB, MiB, GiB).
pub fn parse_size(s: &str) -> Result<u64, String> {
    let bad = || format!("`{s}` is not a size (bytes, or with a K, M or G suffix)");
    let t = s.trim();
    let t = t
        .strip_suffix("iB")
        .or_else(|| t.strip_suffix('B'))
        .unwrap_or(t);
    let (digits, shift) = match t.char_indices().last() {
        Some((i, 'k' | 'K')) => (t.get(..i), 10),
        Some((i, 'M')) => (t.get(..i), 20),
        Some((i, 'G')) => (t.get(..i), 30),
        _ => (Some(t), 0),
    };
    let n = u64::from(parse_u32(digits.ok_or_else(bad)?).map_err(|_| bad())?);
    n.checked_mul(1 << shift).ok_or_else(bad)
}

/// Parses `major.minor.patch`.
pub fn parse_version(s: &str) -> Result<Version, String> {
    s.parse()
        .map_err(|_| format!("`{s}` is not a version of the form major.minor.patch"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn cli_is_well_formed() {
        Cli::command().debug_assert();
    }

    #[test]
    fn numbers() {
        assert_eq!(parse_u32("0x0802_0000"), Ok(0x0802_0000));
        assert_eq!(parse_u32("4096"), Ok(4096));
        assert!(parse_u32("0x1_0000_0000").is_err());
        assert!(parse_u32("-1").is_err());
        assert!(parse_u32("").is_err());
        assert_eq!(parse_size("64M"), Ok(64 << 20));
        assert_eq!(parse_size("64MiB"), Ok(64 << 20));
        assert_eq!(parse_size("1G"), Ok(1 << 30));
        assert_eq!(parse_size("512k"), Ok(512 << 10));
        assert_eq!(parse_size("0x1000"), Ok(4096));
        assert_eq!(parse_size("100"), Ok(100));
        assert!(parse_size("M").is_err());
        assert!(parse_size("1T").is_err());
    }
}
