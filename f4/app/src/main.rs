//! Example application for the sbsfu layout: linked at the active slot (0x0802_0000) and started
//! by f4-boot once verified. It says hello over semihosting and exits.
#![cfg_attr(target_os = "none", no_std, no_main)]
#![forbid(unsafe_code)]

#[cfg(target_os = "none")]
mod firmware {
    use cortex_m_rt::entry;

    #[panic_handler]
    fn panic(_: &core::panic::PanicInfo<'_>) -> ! {
        semihosting::process::exit(100)
    }

    #[entry]
    fn main() -> ! {
        semihosting::println!(
            "f4-app {}: hello from the application, started by sbsfu-boot after verification",
            env!("CARGO_PKG_VERSION")
        );
        semihosting::process::exit(0)
    }
}

#[cfg(not(target_os = "none"))]
fn main() {
    println!("f4-app is STM32F4 firmware: see `cargo xtask f4-test` and the README");
}
