//! What a device trusts and how it runs trials: shared by the bootloader and the application.

use sbsfu_format::Header;

use super::container::open_stored;
use super::layout::Area;
use super::vector_table::VectorTable;
use crate::flash::Region;
use crate::keys::{Policy, TrustedKey};
use crate::{Error, format::DeviceKey};

/// What a device trusts and how it runs trials.
pub struct BootConfig<'a> {
    /// The device class.
    pub target: &'a str,
    /// The RAM an image's initial stack pointer must point into (checked with its reset vector
    /// before it boots: [`VectorTable::check`]).
    pub ram: Area,
    /// Keys trusted to sign images.
    pub signers: &'a [TrustedKey],
    /// Device keys (to unwrap content keys).
    pub device_keys: &'a [DeviceKey],
    /// Boots a new image gets to confirm itself (at least 1).
    pub trial_boots: u8,
    /// Refuse signed-only images.
    pub require_encryption: bool,
}

impl BootConfig<'_> {
    /// The installer's policy, with the anti-rollback floor in force.
    pub(super) fn policy(&self, floor: u32) -> Policy<'_> {
        Policy {
            target: self.target,
            signers: self.signers,
            device_keys: self.device_keys,
            min_security_counter: floor,
            require_encryption: self.require_encryption,
        }
    }

    /// Verifies the container stored in `region` in full (head, every chunk, digest, exact
    /// length), and the vector table at the start of its image.
    pub(super) fn check<const N: usize>(
        &self,
        region: &mut dyn Region,
        floor: u32,
    ) -> Result<Header, Error> {
        let (header, first) = open_stored::<N>(region, &self.policy(floor))?;
        VectorTable::check(&first, header.load_address, header.image_len, self.ram)?;
        Ok(header)
    }
}
