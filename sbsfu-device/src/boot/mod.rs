//! Power-safe updates: staging, install at reset, trial boot, confirmation, revert.
//!
//! Images run from one **active** slot; two **container slots** hold signed (and usually
//! encrypted) containers exactly as received. The confirmed image's container stays in its
//! slot; an update is staged into the other one. Installing means streaming a container through
//! the verifying [`Installer`](crate::Installer) into the active slot, and reverting means
//! installing the confirmed container again: the same idempotent operation, restarted from
//! scratch after a power cut, so no swap, no scratch sector and no per-sector journal are
//! needed, and the plaintext image and content key never leave the MCU (the container slots may
//! be external flash: [`BootLayout::regions_split`]). docs/BOOT.md has the rationale, the state
//! machine, the flash cost and the update time on an STM32F405.
//!
//! Every transition is one record in the [`StateLog`]; nothing is trusted from an earlier boot:
//! a staged container is verified in full from flash before the active slot is touched, the
//! installed image is verified again from flash after the install, and the active image is
//! verified (signature and digest) before every boot, its vector table checked inside the
//! verified bytes ([`VectorTable`]). The anti-rollback floor is the maximum of the state log's
//! records and of the optional [`CounterStore`](crate::CounterStore) (OTP on the STM32F4:
//! [`OtpCounter`](crate::OtpCounter)); whatever the log says, no image below it is installed,
//! reverted to or booted. Writing state is never what stops a boot: a record that cannot be
//! written is noted ([`BootManager::first_error`]) and the device boots what verifies.
//!
//! # Two sides, one layout
//!
//! A [`BootLayout`] says where everything is; [`BootLayout::regions`] builds the regions both
//! sides take from it and the flash ([`BootFlash`]: any embedded-storage `NorFlash` behind a
//! `RefCell`, its sector map, where the CPU sees it). [`STM32F405_LAYOUT`] is the example
//! layout. The keys are the constants of the crate's front page (`sbsfu pubkey --format rust`,
//! `sbsfu export-key --format rust`); the OTP area is any [`OtpMemory`](crate::OtpMemory) (the
//! STM32F4 driver of `f4/sbsfu-f4`, eFuses).
//!
//! The bootloader, at every reset: the whole of `f4/boot/src/firmware.rs` (which then hands the
//! CPU over as a reset would, `f4/boot/src/jump.rs`) is this and its reporting.
//!
//! ```
//! use core::cell::RefCell;
//!
//! use embedded_storage::nor_flash::NorFlash;
//! use sbsfu_device::boot::{Area, Boot, BootConfig, BootFlash, BootManager, STM32F405_LAYOUT};
//! use sbsfu_device::format::DeviceKey;
//! use sbsfu_device::{Error, OtpCounter, OtpMemory, TrustedKey};
//! # const SBSFU_SIGNING_KEY: [u8; 32] = [0; 32]; // the constants of the crate's front page
//! # const SBSFU_DEVICE_KEY: [u8; 32] = [0; 32];
//!
//! /// What to boot: verified, its vector table checked (`boot.vectors`: load the stack pointer,
//! /// jump to the reset vector).
//! fn decide(flash: impl NorFlash, otp: impl OtpMemory) -> Result<Boot, Error> {
//!     let signers = [TrustedKey::from_bytes(&SBSFU_SIGNING_KEY)?];
//!     let device_keys = [DeviceKey::from_bytes(SBSFU_DEVICE_KEY)];
//!     let config = BootConfig {
//!         target: "stm32f405",
//!         ram: Area::new(0x2000_0000, 0x2_0000), // where an image's stack pointer must point
//!         signers: &signers,
//!         device_keys: &device_keys,
//!         trial_boots: 1,
//!         require_encryption: true,
//!     };
//!     let flash = RefCell::new(flash);
//!     let mut regions = STM32F405_LAYOUT.regions(&BootFlash::stm32f405(&flash))?;
//!     let mut counter = OtpCounter::new(otp); // the floor, where no flash writer can lower it
//!     BootManager::<1024>::new(&config, &mut regions, Some(&mut counter))?.run()
//! }
//! ```
//!
//! The application: it stages a download into the free container slot (installed at the next
//! reset, on trial), and confirms itself once it has checked that it works (which also raises
//! the anti-rollback floor); an image that does not confirm itself is reverted at the next
//! reset. `f4/app` is an application the example bootloader starts (it feeds the watchdog the
//! bootloader left running).
//!
//! ```
//! use core::cell::RefCell;
//!
//! use embedded_storage::nor_flash::NorFlash;
//! use sbsfu_device::boot::{BootConfig, BootFlash, STM32F405_LAYOUT, Stager, confirm};
//! use sbsfu_device::{Error, OtpCounter, OtpMemory};
//!
//! /// Stores a download as it arrives; the next reset installs it.
//! fn stage<'a>(
//!     flash: impl NorFlash,
//!     config: &BootConfig<'_>, // as the bootloader's
//!     download: impl Iterator<Item = &'a [u8]>,
//! ) -> Result<(), Error> {
//!     let flash = RefCell::new(flash);
//!     let mut regions = STM32F405_LAYOUT.regions(&BootFlash::stm32f405(&flash))?;
//!     let mut stager = Stager::<1024>::new(config, &mut regions)?;
//!     for piece in download {
//!         stager.feed(piece)?; // the head is verified before the slot is erased
//!     }
//!     stager.finish()?; // complete, checked in full when this side holds the keys: pending
//!     Ok(())
//! }
//!
//! /// Once the new image has checked itself: it stays, and the floor rises to its counter.
//! fn confirm_this_image(flash: impl NorFlash, otp: impl OtpMemory) -> Result<bool, Error> {
//!     let flash = RefCell::new(flash);
//!     let mut regions = STM32F405_LAYOUT.regions(&BootFlash::stm32f405(&flash))?;
//!     confirm(&mut regions.state_log()?, Some(&mut OtpCounter::new(otp)))
//! }
//! ```

mod config;
mod container;
mod layout;
#[cfg(feature = "link")]
mod link;
mod manager;
pub(crate) mod state;
mod update;
pub(crate) mod vector_table;
pub(crate) mod verify;

pub use config::BootConfig;
pub use layout::{
    ACTIVE_REGION, Area, BootFlash, BootLayout, BootRegion, BootRegions, FlashMap, STM32F405_FLASH,
    STM32F405_LAYOUT, STM32F405_RECORD, SplitRegions,
};
#[cfg(feature = "link")]
pub use link::{DeviceInfo, InstallerTarget, Routed, StagerTarget, refusal};
pub use manager::{Boot, BootManager};
pub use state::{BootState, Phase, StateLog};
pub use update::{Begun, PROGRESS_STEP, Stager, confirm};
pub use vector_table::VectorTable;
pub use verify::verify_region;
