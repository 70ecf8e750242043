//! The delivery benchmark: a 512 KiB container over a simulated 921,600-baud line with 2 ms of
//! turnaround into a simulated STM32F4 (RM0090 typical flash timings), with sbsfu-link, and on
//! the same line and flash with YMODEM-1K and AN3155's Write Memory. Simulated time: the
//! figures are exact and repeatable, whatever the machine's load.
//!
//! `cargo run --release -p sbsfu-link --example bench_link`

use sbsfu_link::frame::max_body_len;
use sbsfu_link::message::DATA_OVERHEAD;
use sbsfu_link::sim::baseline::{Timeline, an3155, ymodem_1k};
use sbsfu_link::sim::{Device, Faults, FlashTiming, Line, SimTarget, Trace, container, run};
use sbsfu_link::{Config, Report, Sender};

const LEN: usize = 512 * 1024;
const SECTORS: [u32; 4] = [0x2_0000; 4];
/// The F4's install path: 328 k instructions per KiB (docs/PERFORMANCE.md) at 168 MHz.
const VERIFY_NS_PER_BYTE: u64 = 1_906;

struct Row {
    name: String,
    goodput: f64,
    total_s: f64,
    ideal_s: f64,
}

fn secs(ns: u64) -> f64 {
    ns as f64 / 1e9
}

fn push<const F: usize>(
    image: &[u8],
    window: u8,
    timing: FlashTiming,
    faults: &Faults,
    device: Option<Device<F>>,
    start_ns: u64,
) -> (Report, Trace, Device<F>) {
    let mut device = device.unwrap_or_else(|| Device::new(SimTarget::f405_slot(timing), window));
    let config = Config {
        session: (start_ns % 60_000) as u16 + 1,
        ..Config::for_baud(Line::UART_921600.baud)
    };
    let mut sender = Sender::<_, F>::new(image, config).expect("a container");
    let trace = run(
        &mut sender,
        &mut device,
        &Line::UART_921600,
        faults,
        start_ns,
        600_000,
    );
    let report = match sender.result() {
        Some(Ok(r)) => r,
        Some(Err(e)) if faults.cut_ms.is_none() => panic!("push failed: {e}"),
        _ => Report::default(),
    };
    assert!(device.target.violations().is_empty());
    (report, trace, device)
}

fn link_row<const F: usize>(name: &str, window: u8, timing: FlashTiming, image: &[u8]) -> Row {
    let (report, trace, device) = push::<F>(image, window, timing, &Faults::default(), None, 0);
    assert_eq!(device.target.pending(), Some(image));
    assert_eq!(trace.overruns, 0);
    let line = Line::UART_921600;
    let data_ns = trace.data_end_ns.unwrap() - trace.data_start_ns.unwrap();
    let goodput = (LEN as f64 / secs(data_ns)) / line.bytes_per_s();
    let ideal = LEN as f64 / line.bytes_per_s() + secs(device.target.erase_ns());
    println!(
        "  {name}: {} frames to the device, Data frames carry up to {} container bytes, wire bytes / container bytes {:.4}, retransmits {}",
        trace.frames_to_device,
        max_body_len(F) - DATA_OVERHEAD,
        report.wire_bytes as f64 / report.bytes_sent as f64,
        report.retransmits
    );
    Row {
        name: name.into(),
        goodput,
        total_s: secs(trace.end_ns),
        ideal_s: ideal,
    }
}

/// A baseline protocol's row, measured against `line`'s byte rate.
fn baseline_row(name: &str, t: &Timeline, line: &Line) -> Row {
    Row {
        name: name.into(),
        goodput: (LEN as f64 / secs(t.data_ns)) / line.bytes_per_s(),
        total_s: secs(t.total_ns),
        ideal_s: LEN as f64 / line.bytes_per_s() + secs(t.erase_ns),
    }
}

fn main() {
    let image = container(LEN, 2026);
    let line = Line::UART_921600;
    println!(
        "512 KiB container; line 921,600 baud 8N1 ({} B/s), 2 ms turnaround; STM32F4 flash: \
         4 x 128 KiB sectors at 1 s each, 16 us per 32-bit word (RM0090 typical)\n",
        line.bytes_per_s()
    );
    let verified = FlashTiming {
        verify_ns_per_byte: VERIFY_NS_PER_BYTE,
        ..FlashTiming::F4_TYPICAL
    };
    let mut rows = vec![
        link_row::<1024>(
            "sbsfu-link, 1 KiB frames, window 4",
            4,
            FlashTiming::F4_TYPICAL,
            &image,
        ),
        link_row::<4096>(
            "sbsfu-link, 4 KiB frames, window 2",
            2,
            FlashTiming::F4_TYPICAL,
            &image,
        ),
        link_row::<1024>(
            "sbsfu-link, 1 KiB frames, commit re-verifies 512 KiB (1 s)",
            4,
            verified,
            &image,
        ),
    ];
    let flash = FlashTiming::F4_TYPICAL;
    let y = ymodem_1k(&line, &flash, LEN, &SECTORS);
    rows.push(baseline_row(
        "YMODEM-1K (SBSFU loader), stop-and-wait",
        &y,
        &line,
    ));
    let line_8e1 = Line {
        bits_per_byte: 11,
        ..line
    };
    let a = an3155(&line_8e1, &flash, LEN, &SECTORS);
    // Against the 8N1 line's byte rate, as every other row.
    rows.push(baseline_row(
        "AN3155 Write Memory (ROM bootloader), 8E1",
        &a,
        &line,
    ));

    println!();
    println!(
        "| protocol | goodput once data flows (% of 92,160 B/s) | whole push | bytes/line rate + erase | ratio |"
    );
    println!("|---|---|---|---|---|");
    for r in &rows {
        println!(
            "| {} | {:.1} % | {:.2} s | {:.2} s | {:.3}x |",
            r.name,
            r.goodput * 100.0,
            r.total_s,
            r.ideal_s,
            r.total_s / r.ideal_s
        );
    }
    let headline = &rows[0];
    println!(
        "\ntargets: goodput >= 90 %: {:.1} % ({}); whole push <= 1.15x: {:.3}x ({})",
        headline.goodput * 100.0,
        if headline.goodput >= 0.90 {
            "met"
        } else {
            "MISSED"
        },
        headline.total_s / headline.ideal_s,
        if headline.total_s / headline.ideal_s <= 1.15 {
            "met"
        } else {
            "MISSED"
        },
    );

    // Resume: the link drops half way through the data, a second push finishes the job.
    let (_, clean, _) = push::<1024>(&image, 4, flash, &Faults::default(), None, 0);
    let half_ms = (clean.data_start_ns.unwrap() + clean.data_end_ns.unwrap()) / 2 / 1_000_000;
    let cut = Faults {
        cut_ms: Some((half_ms, u64::MAX / 2_000_000)),
        ..Faults::default()
    };
    let (_, first, device) = push::<1024>(&image, 4, flash, &cut, None, 0);
    let (report, second, device) = push::<1024>(
        &image,
        4,
        flash,
        &Faults::default(),
        Some(device),
        first.end_ns,
    );
    assert_eq!(device.target.pending(), Some(&image[..]));
    println!(
        "\nresume: link cut at {:.2} s; the second push resumed from byte {} and sent {} of {} bytes \
         in {:.2} s (no erase: the destination was already erased)",
        half_ms as f64 / 1e3,
        report.resumed_from,
        report.bytes_sent,
        LEN,
        secs(second.end_ns - first.end_ns),
    );
}
