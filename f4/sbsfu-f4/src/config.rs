//! How the example bootloader is configured: its chunk buffer and its boot policy. The bench
//! and the host-side provisioning in `cargo xtask` use the same values, so that what they
//! measure and prepare is what the bootloader does.

use sbsfu_device::TrustedKey;
use sbsfu_device::boot::BootConfig;
use sbsfu_device::format::DeviceKey;

use crate::keys::TARGET;
use crate::layout::RAM;

/// The installer's chunk buffer: containers for this device are signed with chunks of at most
/// this size (`sbsfu sign --chunk-size 1024`); it is most of the bootloader's RAM.
pub const CHUNK: usize = 1024;

/// The boot policy: encrypted images only, one trial boot to confirm a new image.
pub const fn boot_config<'a>(
    signers: &'a [TrustedKey],
    device_keys: &'a [DeviceKey],
) -> BootConfig<'a> {
    BootConfig {
        target: TARGET,
        signers,
        device_keys,
        require_encryption: true,
        trial_boots: 1,
        ram: RAM,
    }
}
