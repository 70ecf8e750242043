//! The device's link receiver (`sbsfu-link`'s `Receiver` over the real `Stager`, as
//! `boot::StagerTarget`, on a simulated STM32F405 with the example layout and keys) fed arbitrary
//! wire bytes at fuzzer-chosen split points. Asserted:
//! - nothing panics;
//! - no flash operation at all unless the stager accepted a head (an Ed25519 signature under the
//!   example key, which random bytes do not forge);
//! - bounded work per byte: each call into the stager is answered to a frame, and frames end at a
//!   0x00 byte, so the calls are at most the zero bytes received plus the erase steps of one slot.
#![no_main]

use std::cell::RefCell;
use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use sbsfu_device::boot::{
    Area, BootConfig, BootFlash, DeviceInfo, STM32F405_LAYOUT, Stager, StagerTarget,
};
use sbsfu_device::sim::SimFlash;
use sbsfu_device::TrustedKey;
use sbsfu_format::DeviceKey;
use sbsfu_link::target::{Begun, EraseProgress, Target};
use sbsfu_link::{Description, Outcome, Receiver, Refusal};

/// Counts the receiver's calls into the stager, and the heads it accepted.
struct Counted<T> {
    inner: T,
    calls: usize,
    accepted: usize,
}

impl<T: Target> Target for Counted<T> {
    fn describe(&mut self) -> Result<Description, Refusal> {
        self.calls += 1;
        self.inner.describe()
    }
    fn begin(&mut self, head: &[u8], len: u32) -> Result<Begun, Refusal> {
        self.calls += 1;
        let r = self.inner.begin(head, len);
        self.accepted += usize::from(r.is_ok());
        r
    }
    fn erase_step(&mut self) -> Result<EraseProgress, Refusal> {
        self.calls += 1;
        self.inner.erase_step()
    }
    fn write(&mut self, offset: u32, bytes: &[u8]) -> Result<(), Refusal> {
        self.calls += 1;
        self.inner.write(offset, bytes)
    }
    fn durable(&self) -> u32 {
        self.inner.durable()
    }
    fn commit(&mut self) -> Result<Outcome, Refusal> {
        self.calls += 1;
        self.inner.commit()
    }
}

/// A blank F405 (made once, then copied).
fn blank() -> SimFlash {
    static BASE: OnceLock<SimFlash> = OnceLock::new();
    BASE.get_or_init(SimFlash::stm32f405).clone()
}

thread_local! {
    /// The device of the last run, used again while no run wrote to it (copying 1 MiB of
    /// simulated flash per run would be most of the work).
    static FLASH: RefCell<Option<SimFlash>> = const { RefCell::new(None) };
}

fuzz_target!(|data: &[u8]| {
    let pieces = sbsfu_fuzz::stream_pieces(data);
    let zeros = pieces.iter().flat_map(|p| p.iter()).filter(|b| **b == 0).count();
    let signers = [TrustedKey::from_bytes(&sbsfu_f4::keys::SIGNING_KEY).expect("example key")];
    let device_keys = [DeviceKey::from_bytes(sbsfu_f4::keys::DEVICE_KEY)];
    let config = BootConfig {
        target: "stm32f405",
        ram: Area::new(0x2000_0000, 0x2_0000),
        signers: &signers,
        device_keys: &device_keys,
        trial_boots: 1,
        require_encryption: false,
    };
    let mut flash = FLASH
        .with(|f| f.borrow_mut().take())
        .unwrap_or_else(blank);
    flash.count_from_here();
    let (accepted, calls) = {
        let cell = RefCell::new(&mut flash);
        let mut regions = STM32F405_LAYOUT
            .regions(&BootFlash::stm32f405(&cell))
            .expect("regions");
        let stager = Stager::<4096>::new(&config, &mut regions).expect("stager");
        let info = DeviceInfo { busy_ms: 3000, accepts_reset: true };
        let mut target = Counted {
            inner: StagerTarget::new(stager, config.target, info),
            calls: 0,
            accepted: 0,
        };
        let mut receiver = Receiver::<1024>::new(4);
        for piece in pieces {
            let mut rest = piece;
            while !rest.is_empty() {
                let used = receiver.receive(&mut target, rest);
                let replied = receiver.transmit().is_some();
                assert!(used > 0 || replied, "the receiver took nothing and said nothing");
                rest = &rest[used..];
            }
            let mut steps = 0;
            while receiver.poll(&mut target) {
                let _ = receiver.transmit();
                steps += 1;
                assert!(steps <= 16, "poll never ends");
            }
        }
        (target.accepted, target.calls)
    };
    if accepted == 0 {
        assert_eq!(flash.ops(), 0, "flash touched without an authentic head");
    }
    if flash.ops() == 0 {
        FLASH.with(|f| *f.borrow_mut() = Some(flash));
    }
    assert!(calls <= zeros + 16 * pieces_len(data), "unbounded work: {calls} calls");
});

/// An upper bound on the pieces (each may end with a poll of a few erase steps).
fn pieces_len(data: &[u8]) -> usize {
    data.first().map_or(1, |n| usize::from(n % 8) + 1)
}
