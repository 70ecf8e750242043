//! The commands that reach a device: `push`, `device-sim`, `provision`.

use std::path::PathBuf;

use clap::Args;

use super::OutputArgs;

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
