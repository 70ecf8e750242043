//! An ESP32-C3 as the update bridge of an STM32 (the Wi-Fi module pushing what it downloaded):
//! it pushes an sbsfu container with `sbsfu-link`'s `Sender` over UART1 (GPIO21 TX, GPIO20 RX,
//! 921,600 baud 8N1) to the STM32's receiver, and reports progress and the device's answer on
//! UART0 (the console, 115,200 baud).
//!
//! The container is linked in (`SBSFU_CONTAINER=app.sfu cargo build --release`, see build.rs);
//! a real bridge reads it from its network or its flash through the same `Source` trait. Nothing
//! here runs on this machine: `cargo xtask test` builds it for `riscv32imc-unknown-none-elf`.
#![no_std]
#![no_main]
#![forbid(unsafe_code)]

use core::fmt::{self, Write as _};

use esp_hal::Blocking;
use esp_hal::time::Instant;
use esp_hal::uart::{Config as UartConfig, Uart};
use sbsfu_link::{Config, Error, Phase, Sender};

esp_bootloader_esp_idf::esp_app_desc!();

/// The container to push.
static CONTAINER: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/container.sfu"));

/// The link's line speed.
const BAUD: u32 = 921_600;
/// Frames of up to 1 KiB (the device's `Hello` may lower it).
const FRAME: usize = 1024;

#[panic_handler]
fn panic(_: &core::panic::PanicInfo<'_>) -> ! {
    halt()
}

/// Stops here (the console said why).
fn halt() -> ! {
    loop {
        core::hint::spin_loop();
    }
}

/// The console: `core::fmt` over UART0.
struct Console<'d>(Uart<'d, Blocking>);

impl fmt::Write for Console<'_> {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        let mut rest = s.as_bytes();
        while !rest.is_empty() {
            let n = self.0.write(rest).map_err(|_| fmt::Error)?;
            rest = rest.get(n..).unwrap_or_default();
        }
        Ok(())
    }
}

fn now_ms() -> u64 {
    Instant::now().duration_since_epoch().as_millis()
}

#[esp_hal::main]
fn main() -> ! {
    let p = esp_hal::init(esp_hal::Config::default());
    let console = Uart::new(p.UART0, UartConfig::default().with_baudrate(115_200))
        .map(|u| u.with_tx(p.GPIO21).with_rx(p.GPIO20));
    let Ok(console) = console else { halt() };
    let mut console = Console(console);
    let link = Uart::new(p.UART1, UartConfig::default().with_baudrate(BAUD))
        .map(|u| u.with_tx(p.GPIO4).with_rx(p.GPIO5));
    let Ok(mut link) = link else {
        let _ = writeln!(console, "bridge: UART1 would not start");
        halt()
    };

    let config = Config {
        // A fresh session number per boot: frames of an earlier push still in the STM32's
        // buffers are not taken for this one's.
        session: (now_ms() as u16) | 1,
        ..Config::for_baud(BAUD)
    };
    let mut sender = match Sender::<_, FRAME>::new(CONTAINER, config) {
        Ok(s) => s,
        Err(e) => {
            let _ = writeln!(console, "bridge: not a container: {e}");
            halt()
        }
    };
    let _ = writeln!(console, "bridge: pushing {} bytes", CONTAINER.len());

    let mut buf = [0u8; 256];
    let mut shown = (Phase::Connecting, u32::MAX);
    while !sender.is_finished() {
        while let Some(frame) = sender.transmit(now_ms()) {
            let mut rest = frame;
            while !rest.is_empty() {
                match link.write(rest) {
                    Ok(n) => rest = rest.get(n..).unwrap_or_default(),
                    Err(_) => break,
                }
            }
        }
        let _ = link.flush();
        if link.read_ready()
            && let Ok(n) = link.read(&mut buf)
        {
            sender.receive(buf.get(..n).unwrap_or_default(), now_ms());
        }
        // One console line per phase, and one per 10 % of the container acknowledged.
        let p = sender.progress();
        let tenth = p.acked.saturating_mul(10) / p.total.max(1);
        if (p.phase, tenth) != shown {
            shown = (p.phase, tenth);
            let _ = writeln!(
                console,
                "bridge: {} ({} of {} bytes acknowledged)",
                p.phase.as_str(),
                p.acked,
                p.total
            );
        }
    }
    match sender.result() {
        Some(Ok(r)) => {
            let _ = writeln!(
                console,
                "bridge: {} (id {}), resumed from {}, {} bytes sent, {} retransmitted frames",
                r.outcome.map_or("confirmed", |o| o.as_str()),
                r.id,
                r.resumed_from,
                r.bytes_sent,
                r.retransmits
            );
        }
        Some(Err(Error::Refused(r))) => {
            let _ = writeln!(console, "bridge: the device refused the container: {r}");
        }
        Some(Err(e)) => {
            let _ = writeln!(console, "bridge: push failed: {e}; the next push resumes");
        }
        None => {}
    }
    halt()
}
