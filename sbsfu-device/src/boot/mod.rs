//! Power-safe updates: staging, install at reset, trial boot, confirmation, revert.
//!
//! The strategy (docs/BOOT.md has the rationale, the state machine and the flash cost): images
//! run from one **active** slot; two **container slots** hold signed (and usually encrypted)
//! containers exactly as received. The confirmed image's container stays in its slot; an update
//! is staged into the other one. Installing means streaming a container through the verifying
//! [`Installer`](crate::Installer) into the active slot, and reverting means installing the confirmed container
//! again. Both are the same idempotent operation, restarted from scratch after a power cut, so
//! no swap, no scratch sector and no per-sector journal are needed, and the plaintext image and
//! content key never leave the MCU (the container slots may be external flash).
//!
//! Every transition is one record in the [`StateLog`]; nothing is trusted from an earlier boot:
//! a staged container is verified in full from flash before the active slot is touched, the
//! installed image is verified again from flash after the install, and the active image is
//! verified (signature and digest) before every boot, its vector table checked inside the
//! verified bytes ([`VectorTable`]).
//!
//! The anti-rollback floor is the maximum of the state log's records and of the optional
//! [`CounterStore`](crate::CounterStore) (OTP on the STM32F4: [`crate::OtpCounter`]); whatever the log
//! says, no image below it is installed, reverted to or booted. Writing state is never what
//! stops a boot: a record that cannot be written is noted ([`BootManager::first_error`]) and the
//! device boots what verifies.

mod config;
mod container;
mod layout;
mod manager;
pub(crate) mod state;
mod update;
pub(crate) mod vector_table;
pub(crate) mod verify;

pub use config::BootConfig;
pub use layout::{
    ACTIVE_REGION, Area, BootFlash, BootLayout, BootRegion, BootRegions, FlashMap, STM32F405_FLASH,
    STM32F405_LAYOUT, SplitRegions,
};
pub use manager::{Boot, BootManager};
pub use state::{BootState, Phase, StateLog};
pub use update::{Stager, confirm};
pub use vector_table::VectorTable;
pub use verify::verify_region;
