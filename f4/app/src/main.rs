//! Example application for the sbsfu layout: linked at the active slot (0x0802_0000) and started
//! by f4-boot once verified. It says hello over semihosting, says which device it runs on (the
//! serial number in the factory's device record, read with `sbsfu_device::device_record`),
//! proves that the bootloader left the CPU as a reset would by taking SysTick interrupts (an
//! application that expects reset state never re-enables interrupts itself), feeds the watchdog
//! the bootloader started, and exits.
#![cfg_attr(target_os = "none", no_std, no_main)]
#![forbid(unsafe_code)]

#[cfg(all(target_os = "none", feature = "receive"))]
mod receive;

#[cfg(target_os = "none")]
mod firmware {
    use core::sync::atomic::{AtomicU32, Ordering};

    use cortex_m::peripheral::syst::SystClkSource;
    use cortex_m_rt::{entry, exception};
    use sbsfu_device::boot::STM32F405_RECORD;
    use sbsfu_device::device_record;
    use sbsfu_device::format::MAX_RECORD_LEN;
    use sbsfu_f4::internal_flash::InternalFlash;
    use sbsfu_f4::keys::TARGET;
    use sbsfu_f4::layout::offset;
    use stm32f4::stm32f405 as pac;
    use zeroize::Zeroize;

    /// SysTick interrupts taken.
    static TICKS: AtomicU32 = AtomicU32::new(0);

    /// Interrupts to take before saying so.
    const WANTED: u32 = 3;
    /// Polls of the counter before giving up (seconds of emulated time).
    const PATIENCE: u32 = 20_000_000;

    #[panic_handler]
    fn panic(_: &core::panic::PanicInfo<'_>) -> ! {
        semihosting::process::exit(100)
    }

    #[exception]
    fn SysTick() {
        TICKS.fetch_add(1, Ordering::Relaxed);
    }

    #[entry]
    fn main() -> ! {
        semihosting::println!(
            "f4-app {}: hello from the application, started by sbsfu-boot after verification",
            // A test builds two versions of the application from one source.
            option_env!("SBSFU_APP_VERSION").unwrap_or(env!("CARGO_PKG_VERSION"))
        );
        let (Some(core), Some(dp)) = (cortex_m::Peripherals::take(), pac::Peripherals::take())
        else {
            semihosting::process::exit(101)
        };
        // Which device this is: the serial number `sbsfu provision` wrote into its record.
        let mut flash = InternalFlash::new(dp.FLASH);
        let mut record = [0u8; MAX_RECORD_LEN];
        match device_record(&mut flash, offset(STM32F405_RECORD), TARGET, &mut record) {
            Ok(r) => semihosting::println!("f4-app: device record: serial {}", r.serial()),
            Err(e) => semihosting::println!("f4-app: no device record: {}", e.as_str()),
        }
        // It holds the device's secret key too.
        record.zeroize();
        let mut syst = core.SYST;
        syst.set_clock_source(SystClkSource::Core);
        syst.set_reload(10_000);
        syst.clear_current();
        syst.enable_interrupt();
        syst.enable_counter();
        let mut polls = 0u32;
        while TICKS.load(Ordering::Relaxed) < WANTED {
            // The bootloader's watchdog keeps running after the jump: feed it.
            dp.IWDG.kr().write(|w| w.key().feed());
            polls += 1;
            if polls == PATIENCE {
                semihosting::println!(
                    "f4-app: no interrupt taken after the jump (interrupts left masked?)"
                );
                semihosting::process::exit(3)
            }
        }
        semihosting::println!(
            "f4-app: took {} SysTick interrupts after the jump",
            TICKS.load(Ordering::Relaxed)
        );
        #[cfg(feature = "receive")]
        {
            let mut usart = crate::receive::Usart2::new(dp.USART2, &dp.RCC, &dp.GPIOA);
            semihosting::process::exit(crate::receive::run(&mut usart, &dp.IWDG))
        }
        #[cfg(not(feature = "receive"))]
        semihosting::process::exit(0)
    }
}

#[cfg(not(target_os = "none"))]
fn main() {
    println!("f4-app is STM32F4 firmware: see `cargo xtask f4-test` and the README");
}
