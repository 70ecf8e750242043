//! The measurements (MCU only). Inputs come from the host over semihosting into static buffers,
//! so that neither reading them nor their size is counted. At the end the firmware halts, and
//! `cargo xtask f4-bench` reads the painted stack from the halted machine.

use core::cell::RefCell;

use cortex_m_rt::entry;
use critical_section::Mutex;
use sbsfu_device::boot::verify_region;
use sbsfu_device::boot::{Area, BootFlash, BootLayout, BootManager, Stager};
use sbsfu_device::format::DeviceKey;
use sbsfu_device::format::PayloadLayout;
use sbsfu_device::format::Protection;
use sbsfu_device::format::{ChunkCipher, TAG_LEN, payload_aad};
use sbsfu_device::format::{MAX_HEAD_LEN, SignedHeader};
use sbsfu_device::format::{hpke_wrap_aad, unwrap_content_key, unwrap_from_recipient};
use sbsfu_device::{FlashRegion, Region, Sectors};
use sbsfu_device::{ImageHasher, ImageSha256};
use sbsfu_device::{Installer, Policy, TrustedKey};
use sbsfu_f4::RamFlash;
use sbsfu_f4::config::{CHUNK, boot_config};
use sbsfu_f4::icount::Icount;
use sbsfu_f4::internal_flash::InternalFlash;
use sbsfu_f4::keys::{DEVICE_KEY, DEVICE_X25519_KEY, SIGNING_KEY, TARGET};
use semihosting::io::Read;
use semihosting::{println, process};
use stm32f4::stm32f405 as pac;

/// Largest container the bench reads.
const MAX_CONTAINER: usize = 20 * 1024;
static CONTAINER: Mutex<RefCell<[u8; MAX_CONTAINER]>> =
    Mutex::new(RefCell::new([0; MAX_CONTAINER]));

/// A RAM flash holding a whole boot layout: two 2 KiB state banks (two records each), then the
/// active slot and two container slots of 20 KiB each.
static BOOT_SECTORS: [u32; 5] = [2048, 2048, 20 * 1024, 20 * 1024, 20 * 1024];
const BOOT_FLASH: usize = 4 * 1024 + 3 * 20 * 1024;
static BOOT: Mutex<RefCell<RamFlash<'static, BOOT_FLASH>>> =
    Mutex::new(RefCell::new(RamFlash::new(&BOOT_SECTORS)));
/// Where the CPU would see that RAM flash: its active slot is where the bench container is
/// linked.
const BOOT_ADDRESS: u32 = 0x0802_0000 - 4 * 1024;
/// Its layout.
const LAYOUT: BootLayout = BootLayout {
    state_log: [
        Area::new(BOOT_ADDRESS, 2048),
        Area::new(BOOT_ADDRESS + 2048, 2048),
    ],
    active: Area::new(0x0802_0000, 20 * 1024),
    slots: [
        Area::new(0x0802_0000 + 20 * 1024, 20 * 1024),
        Area::new(0x0802_0000 + 40 * 1024, 20 * 1024),
    ],
};

/// That RAM flash, where the CPU would see it.
fn boot_flash<'c, F>(cell: &'c RefCell<F>) -> BootFlash<'c, F, Sectors<'static>> {
    BootFlash {
        flash: cell,
        sectors: Sectors(&BOOT_SECTORS),
        address: BOOT_ADDRESS,
    }
}

#[panic_handler]
fn panic(_: &core::panic::PanicInfo<'_>) -> ! {
    println!("bench: panic");
    process::exit(100)
}

fn fail(what: &str) -> ! {
    println!("bench: error: {what}");
    process::exit(1)
}

fn read_file<'b>(path: &core::ffi::CStr, buf: &'b mut [u8]) -> &'b [u8] {
    let Ok(mut f) = semihosting::fs::File::open(path) else {
        fail("cannot open an input file")
    };
    let mut n = 0;
    loop {
        match f.read(buf.get_mut(n..).unwrap_or(&mut [])) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(_) => fail("cannot read an input file"),
        }
    }
    buf.get(..n).unwrap_or(&[])
}

#[entry]
fn main() -> ! {
    let Some(dp) = pac::Peripherals::take() else {
        fail("peripherals")
    };
    let ic = Icount::start(dp.TIM2);
    critical_section::with(|cs| {
        let mut container_buf = CONTAINER.borrow_ref_mut(cs);
        let container = read_file(c"target/f4-bench/bench.sfu", &mut container_buf[..]);
        measure(&ic, container, &mut BOOT.borrow_ref_mut(cs));
    });
    let mut head_buf = [0u8; MAX_HEAD_LEN];
    decapsulate(&ic, read_file(c"target/f4-bench/hpke.head", &mut head_buf));
    let flash_head = read_file(c"target/f4-bench/flash.head", &mut head_buf);
    boot_verify(&ic, flash_head, InternalFlash::new(dp.FLASH));
    println!("bench: done");
    // Halt, so that the host can read the painted stack.
    loop {
        cortex_m::asm::wfi();
    }
}

/// What each measurement checks against: the F405 target, no floor, signed-only allowed.
fn policy<'a>(signers: &'a [TrustedKey], device_keys: &'a [DeviceKey]) -> Policy<'a> {
    Policy {
        target: TARGET,
        signers,
        device_keys,
        min_security_counter: 0,
        require_encryption: false,
    }
}

fn measure(ic: &Icount, container: &[u8], boot: &mut RamFlash<'static, BOOT_FLASH>) {
    let signers = [TrustedKey::from_bytes(&SIGNING_KEY).unwrap_or_else(|_| fail("key"))];
    let device_keys = [DeviceKey::from_bytes(DEVICE_KEY)];
    let policy = policy(&signers, &device_keys);
    let Ok((head, head_len)) = SignedHeader::parse(container) else {
        fail("bench.sfu head")
    };
    let h = head.header;
    let payload = container.get(head_len..).unwrap_or(&[]);

    // 1. Ed25519 verify_strict of the head.
    let (ok, n) = ic.measure(|| head.verify(signers[0].verifying_key()));
    if ok.is_err() {
        fail("signature");
    }
    println!("bench: ed25519_verify {n}");

    // 2. The raw work per byte: AES-256-GCM open and SHA-256 of each chunk, nothing else.
    let Protection::Aes256Gcm(enc) = h.protection else {
        fail("bench.sfu must be encrypted")
    };
    let key = unwrap_content_key(&device_keys[0], &enc).unwrap_or_else(|_| fail("unwrap"));
    let aad = payload_aad(&h, &head.message).unwrap_or_else(|_| fail("aad"));
    let cipher = ChunkCipher::new(&key, enc.nonce_prefix, aad);
    let layout = PayloadLayout::of(&h).unwrap_or_else(|_| fail("layout"));
    let mut chunk = [0u8; CHUNK];
    let (mut aes, mut sha) = (0u32, 0u32);
    // The SHA-256 the installer uses (the unrolled one: `fast-sha256`).
    let mut hasher = ImageSha256::default();
    for i in 0..layout.chunk_count() {
        let start = layout.wire_offset(i) as usize;
        let len = layout.plain_len(i) as usize;
        let body = payload
            .get(start..start + len)
            .unwrap_or_else(|| fail("chunk"));
        let tag: [u8; TAG_LEN] = payload
            .get(start + len..start + len + TAG_LEN)
            .and_then(|t| t.try_into().ok())
            .unwrap_or_else(|| fail("tag"));
        let buf = chunk.get_mut(..len).unwrap_or_else(|| fail("chunk size"));
        buf.copy_from_slice(body);
        let (r, n) = ic.measure(|| cipher.open(i, layout.is_last(i), buf, &tag));
        r.unwrap_or_else(|_| fail("open"));
        aes += n;
        let ((), n) = ic.measure(|| hasher.update(buf));
        sha += n;
    }
    let (digest, n) = ic.measure(|| hasher.finalize_reset());
    sha += n;
    if digest != h.digest {
        fail("digest");
    }
    println!("bench: image_bytes {}", h.image_len);
    println!("bench: raw_aes_gcm {aes}");
    println!("bench: raw_sha256 {sha}");

    // 3. The install path: the installer into the RAM flash's active slot, fed the payload in
    //    one slice after the head (so that Ed25519 is not counted per byte).
    {
        let cell = RefCell::new(&mut *boot);
        let mut region = boot_flash(&cell)
            .region("app", LAYOUT.active)
            .unwrap_or_else(|_| fail("region"));
        let mut regions: [&mut dyn Region; 1] = [&mut region];
        let mut installer = Installer::<CHUNK>::new(&policy, &mut regions);
        installer
            .feed(container.get(..head_len).unwrap_or(&[]))
            .unwrap_or_else(|_| fail("head"));
        let (r, n) = ic.measure(|| {
            installer.feed(payload)?;
            installer.finish()
        });
        r.unwrap_or_else(|_| fail("install"));
        println!("bench: install_payload {n}");
    }

    // 4. What the bootloader does at reset after an update was staged: the whole boot manager
    //    (check the staged container, install it, verify it from flash), on the same RAM flash.
    *boot = RamFlash::new(&BOOT_SECTORS);
    let config = boot_config(&signers, &device_keys);
    let cell = RefCell::new(&mut *boot);
    let mut regions = LAYOUT
        .regions(&boot_flash(&cell))
        .unwrap_or_else(|_| fail("boot regions"));
    {
        let mut stager =
            Stager::<CHUNK>::new(&config, &mut regions).unwrap_or_else(|_| fail("stager"));
        stager.feed(container).unwrap_or_else(|_| fail("stage"));
        stager.finish().unwrap_or_else(|_| fail("stage finish"));
    }
    let mut manager = BootManager::<CHUNK>::new(&config, &mut regions, None)
        .unwrap_or_else(|_| fail("boot manager"));
    let (r, n) = ic.measure(|| manager.run());
    if r.is_err() {
        fail("boot manager run");
    }
    println!("bench: reset_install {n}");
}

/// One HPKE decapsulation: finding this device's recipient by key id (its X25519 public key, one
/// scalar multiplication) and opening the wrap (one X25519, the HKDF-SHA256 key schedule and
/// AES-256-GCM over 32 bytes), as the installer does at the head of an HPKE container.
fn decapsulate(ic: &Icount, head: &[u8]) {
    let device_keys = [DeviceKey::x25519(DEVICE_X25519_KEY)];
    let policy = policy(&[], &device_keys);
    let Ok((signed, _)) = SignedHeader::parse(head) else {
        fail("hpke.head")
    };
    let h = signed.header;
    let Protection::Hpke(hpke) = h.protection else {
        fail("hpke.head must be HPKE")
    };
    let aad = hpke_wrap_aad(&h, &signed.message).unwrap_or_else(|_| fail("wrap aad"));
    // The lookup: this device's key among the recipients' ids, then its entry in the header
    // bytes.
    let (found, lookup) = ic.measure(|| {
        let (key, public, i) = policy.recipient(&hpke).ok()?;
        Some((key, public, h.recipient(signed.message.header_bytes(), i)?))
    });
    let (key, public, recipient) = found.unwrap_or_else(|| fail("recipient"));
    let (r, open) = ic.measure(|| unwrap_from_recipient(key, &public, &recipient, &aad));
    r.unwrap_or_else(|_| fail("decapsulation"));
    println!("bench: hpke_lookup {lookup}");
    println!("bench: hpke_open {open}");
}

/// Boot verification of 1 MiB: the whole flash, as signed by the host (the head file).
fn boot_verify(ic: &Icount, flash_head: &[u8], flash: InternalFlash) {
    let signers = [TrustedKey::from_bytes(&SIGNING_KEY).unwrap_or_else(|_| fail("key"))];
    let policy = policy(&signers, &[]);
    let mut whole = FlashRegion::new(
        "app",
        flash,
        Sectors(&sbsfu_f4::layout::SECTORS),
        0x0800_0000,
        0,
        1024 * 1024,
    )
    .unwrap_or_else(|_| fail("flash region"));
    let mut scratch = [0u8; 256];
    let (r, n) = ic.measure(|| verify_region(&mut whole, flash_head, &policy, &mut scratch));
    if r.is_err() {
        fail("boot verification of the flash image");
    }
    println!("bench: boot_verify_1mib {n}");
}
