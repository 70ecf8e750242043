//! Hands the CPU to the application as a reset would: no interrupt enabled or pending, SysTick
//! stopped, the vector table and main stack pointer the application's own, thread mode on the
//! main stack, and interrupts unmasked (PRIMASK 0) as the very last step before the branch.
//!
//! An application written for reset state (as every cortex-m-rt one is) then takes its
//! interrupts without knowing a bootloader ran first. Two things persist, by design: the
//! independent watchdog, which cannot be stopped once started (the application must feed it),
//! and the clocks, which this bootloader never changed (it runs on the reset HSI). The flash
//! interface, the only other peripheral it used, is locked after every operation.
#![allow(unsafe_code)]

use cortex_m::peripheral::{NVIC, SCB, SYST};
use sbsfu_device::boot::VectorTable;

/// Starts the verified image whose vector table is at `table` (its load address), with the
/// stack pointer and reset vector checked by the boot manager (read from the verified bytes).
pub fn jump(table: u32, vectors: VectorTable, mut syst: SYST, nvic: NVIC, scb: SCB) -> ! {
    cortex_m::interrupt::disable();
    syst.disable_interrupt();
    syst.disable_counter();
    syst.set_reload(0);
    syst.clear_current();
    for (icer, icpr) in nvic.icer.iter().zip(nvic.icpr.iter()) {
        // SAFETY: writing ones to ICER and ICPR disables and unpends interrupts; nothing can be
        // left half-configured by that, and the bootloader relies on no interrupt.
        unsafe {
            icer.write(u32::MAX);
            icpr.write(u32::MAX);
        }
    }
    SCB::clear_pendst();
    SCB::clear_pendsv();
    // SAFETY: `table` is the load address of the image the boot manager verified (signature and
    // digest over the bytes in flash, vector table checked inside them); it is 128K-aligned (the
    // active slot starts a sector), more than VTOR needs, and no interrupt can be taken before
    // the application runs.
    unsafe { scb.vtor.write(table) };
    cortex_m::asm::dsb();
    cortex_m::asm::isb();
    // SAFETY: `stack_pointer` lies in RAM and `reset` (Thumb bit set) inside the verified image,
    // both checked by `VectorTable::check`. CONTROL is cleared (privileged, main stack, no FP
    // context), MSP set, then interrupts unmasked and the reset handler entered; nothing uses
    // the old stack after the switch, and the bootloader never gets control back.
    unsafe {
        core::arch::asm!(
            "msr CONTROL, {zero}",
            "isb",
            "msr MSP, {sp}",
            "cpsie i",
            "bx {reset}",
            zero = in(reg) 0u32,
            sp = in(reg) vectors.stack_pointer,
            reset = in(reg) vectors.reset,
            options(noreturn, nostack),
        )
    }
}
