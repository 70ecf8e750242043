//! The link simulator: a [`SimTarget`] that honours the [`crate::Target`] contract on a
//! simulated NOR flash with the STM32F4's timings, a serial line in simulated time with faults
//! ([`link::run`]), and the stop-and-wait protocols it is measured against ([`baseline`]).
//! Host-only (the `sim` feature, and the tests).
#![allow(
    clippy::indexing_slicing,
    clippy::arithmetic_side_effects,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::cast_possible_truncation
)]

pub mod baseline;
pub mod device;
pub mod link;

pub use device::{FlashTiming, SimTarget, container};
pub use link::{Device, Fault, Faults, Line, Trace, run};
