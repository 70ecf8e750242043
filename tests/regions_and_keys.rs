//! Data payloads and key rotation on the device side: several regions on several flashes, each
//! its own `NorFlash`; and trusted keys that change under a root key.

use ed25519_dalek::SigningKey;
use sbsfu_device::sim::SimFlash;
use sbsfu_device::sim::kit::policy;
use sbsfu_device::{Error, Installer, KeyStore, Policy, TrustedKey, TrustedSet};
use sbsfu_device::{FlashRegion, Region, STM32F405_SECTORS, Sectors, Shared};
use sbsfu_format::DeviceKey;
use sbsfu_format::{KeySet, MAX_KEYSET_LEN, SignedKeySet};
use sbsfu_tests::{APP_ADDRESS, Spec, device_key, image, signing_key, trusted};

/// A 16 MiB QSPI NOR flash in 4 KiB sectors, mapped at 0x9000_0000 (STM32 QSPI memory-mapped).
type Qspi = SimFlash<1, 4096>;
const QSPI_ADDRESS: u32 = 0x9000_0000;
/// A per-device data region (serial number, calibration) in a 16K sector: the F405's 16K
/// sectors are its first four, so here sector 3 (0x0800_C000).
const DATA_ADDRESS: u32 = 0x0800_C000;

fn qspi() -> Qspi {
    SimFlash::new(&[4096; 4096])
}

/// Installs `container` on a device with three regions: `app` and `data` in internal flash,
/// `assets` on the QSPI flash.
fn install(container: &[u8], internal: &mut SimFlash, external: &mut Qspi) -> Result<(), Error> {
    let signers = trusted(&[1]);
    let device_keys = [device_key(2)];
    let policy = policy("stm32f405", &signers, &device_keys);
    let cell = core::cell::RefCell::new(internal);
    let map = Sectors(&STM32F405_SECTORS);
    let mut app = FlashRegion::new("app", Shared(&cell), map, APP_ADDRESS, 0x2_0000, 0xE_0000)?;
    let mut data = FlashRegion::new("data", Shared(&cell), map, DATA_ADDRESS, 0xC000, 0x4000)?;
    let qmap = external.geometry();
    let mut assets = FlashRegion::new("assets", external, qmap, QSPI_ADDRESS, 0, 0x100_0000)?;
    let mut regions: [&mut dyn Region; 3] = [&mut app, &mut data, &mut assets];
    let mut installer = Installer::<4096>::new(&policy, &mut regions);
    for piece in container.chunks(1000) {
        installer.feed(piece)?;
    }
    installer.finish().map(drop)
}

fn spec(region: &'static str, address: u32, encrypted: bool) -> Spec {
    Spec {
        region,
        load_address: address,
        ..Spec::new(encrypted, 1024)
    }
}

#[test]
fn each_region_gets_its_own_payload_on_its_own_flash() {
    let mut internal = SimFlash::stm32f405();
    let mut external = qspi();
    let calibration = image(700, 1);
    let assets = image(300_000, 2);
    let firmware = image(50_000, 3);
    install(
        &spec("data", DATA_ADDRESS, true).seal(&calibration),
        &mut internal,
        &mut external,
    )
    .unwrap();
    install(
        &spec("assets", QSPI_ADDRESS, true).seal(&assets),
        &mut internal,
        &mut external,
    )
    .unwrap();
    install(
        &spec("app", APP_ADDRESS, false).seal(&firmware),
        &mut internal,
        &mut external,
    )
    .unwrap();
    let mut buf = vec![0u8; 300_000];
    use embedded_storage::nor_flash::ReadNorFlash;
    internal.read(0xC000, &mut buf[..700]).unwrap();
    assert_eq!(&buf[..700], &calibration[..]);
    external.read(0, &mut buf).unwrap();
    assert_eq!(buf, assets);
    internal.read(0x2_0000, &mut buf[..50_000]).unwrap();
    assert_eq!(&buf[..50_000], &firmware[..]);
    // The data payload did not touch the bootloader sectors around it.
    internal.read(0x8000, &mut buf[..0x4000]).unwrap();
    assert!(buf[..0x4000].iter().all(|b| *b == 0xFF));
}

#[test]
fn a_region_the_device_does_not_have_is_refused_before_any_erase() {
    let mut internal = SimFlash::stm32f405();
    let mut external = qspi();
    internal.count_from_here();
    external.count_from_here();
    let e = install(
        &spec("calib", DATA_ADDRESS, true).seal(&image(100, 4)),
        &mut internal,
        &mut external,
    );
    assert_eq!(e, Err(Error::UnknownRegion));
    // A data payload addressed to another region's place is refused too.
    let e = install(
        &spec("data", QSPI_ADDRESS, true).seal(&image(100, 4)),
        &mut internal,
        &mut external,
    );
    assert!(matches!(e, Err(Error::WrongLoadAddress { .. })), "{e:?}");
    // Too large for the 16K data region.
    let e = install(
        &spec("data", DATA_ADDRESS, true).seal(&image(0x4001, 4)),
        &mut internal,
        &mut external,
    );
    assert!(matches!(e, Err(Error::RegionTooSmall { .. })), "{e:?}");
    assert_eq!((internal.ops(), external.ops()), (0, 0));
}

const ROOT: u8 = 0x60;

fn root() -> TrustedKey {
    trusted(&[ROOT]).remove(0)
}

fn keyset(epoch: u32, signers: &[u8]) -> Vec<u8> {
    let keys: Vec<[u8; 32]> = signers
        .iter()
        .map(|s| signing_key(*s).verifying_key().to_bytes())
        .collect();
    let root_key: SigningKey = signing_key(ROOT);
    let set = KeySet::new(
        epoch,
        "stm32f405",
        root_key.verifying_key().as_bytes(),
        &keys,
    )
    .unwrap();
    let mut buf = [0u8; MAX_KEYSET_LEN];
    SignedKeySet::sign(set, &root_key)
        .unwrap()
        .encode(&mut buf)
        .to_vec()
}

/// Installs `container` with whatever keys the key store says are in force.
fn install_with_store(container: &[u8], meta: &mut SimFlash) -> Result<(), Error> {
    let factory = TrustedSet::factory(&root(), &trusted(&[1]))?;
    let map = meta.geometry();
    let cell = core::cell::RefCell::new(meta);
    let mut a = FlashRegion::new("keys-a", Shared(&cell), map.clone(), 0, 0x8000, 0x4000)?;
    let mut b = FlashRegion::new("keys-b", Shared(&cell), map, 0, 0xC000, 0x4000)?;
    let keys = KeyStore::mount([&mut a, &mut b])?.current(&root(), "stm32f405", &factory)?;
    let device_keys: [DeviceKey; 1] = [device_key(2)];
    let policy = Policy {
        target: "stm32f405",
        signers: keys.signers(),
        device_keys: &device_keys,
        min_security_counter: 0,
        require_encryption: false,
    };
    let mut flash = SimFlash::stm32f405();
    let map = Sectors(&STM32F405_SECTORS);
    let mut app = FlashRegion::new("app", &mut flash, map, APP_ADDRESS, 0x2_0000, 0xE_0000)?;
    let mut regions: [&mut dyn Region; 1] = [&mut app];
    let mut installer = Installer::<4096>::new(&policy, &mut regions);
    installer.feed(container)?;
    installer.finish().map(drop)
}

fn apply(meta: &mut SimFlash, update: &[u8]) -> Result<u32, Error> {
    let factory = TrustedSet::factory(&root(), &trusted(&[1]))?;
    let map = meta.geometry();
    let cell = core::cell::RefCell::new(meta);
    let mut a = FlashRegion::new("keys-a", Shared(&cell), map.clone(), 0, 0x8000, 0x4000)?;
    let mut b = FlashRegion::new("keys-b", Shared(&cell), map, 0, 0xC000, 0x4000)?;
    KeyStore::mount([&mut a, &mut b])?
        .apply(update, &root(), "stm32f405", &factory)
        .map(|s| s.epoch())
}

#[test]
fn after_rotation_only_the_new_keys_sign_firmware() {
    let mut meta = SimFlash::stm32f405();
    let fw = image(5000, 9);
    let by = |signer: u8| {
        Spec {
            signer,
            ..Spec::new(true, 1024)
        }
        .seal(&fw)
    };
    // Factory: key 1 only.
    install_with_store(&by(1), &mut meta).unwrap();
    let k7 = signing_key(7).verifying_key().to_bytes();
    let id7 = sbsfu_format::KeyId::of_ed25519(&k7);
    assert_eq!(
        install_with_store(&by(7), &mut meta),
        Err(Error::UnknownSigner(id7))
    );
    // Epoch 1 adds key 7; epoch 2 revokes key 1.
    assert_eq!(apply(&mut meta, &keyset(1, &[1, 7])), Ok(1));
    install_with_store(&by(1), &mut meta).unwrap();
    install_with_store(&by(7), &mut meta).unwrap();
    assert_eq!(apply(&mut meta, &keyset(2, &[7])), Ok(2));
    let k1 = sbsfu_format::KeyId::of_ed25519(&signing_key(1).verifying_key().to_bytes());
    assert_eq!(
        install_with_store(&by(1), &mut meta),
        Err(Error::UnknownSigner(k1))
    );
    install_with_store(&by(7), &mut meta).unwrap();
    // Replaying epoch 1 (which trusted key 1) is refused.
    assert_eq!(
        apply(&mut meta, &keyset(1, &[1, 7])),
        Err(Error::StaleKeySet {
            epoch: 1,
            current: 2
        })
    );
    assert_eq!(
        install_with_store(&by(1), &mut meta),
        Err(Error::UnknownSigner(k1))
    );
    // A firmware key signing a key set that would trust itself: refused.
    let set = KeySet::new(
        3,
        "stm32f405",
        signing_key(ROOT).verifying_key().as_bytes(),
        &[signing_key(8).verifying_key().to_bytes()],
    )
    .unwrap();
    let message = set.message().unwrap();
    let forged = SignedKeySet {
        signature: message.sign(&signing_key(7)),
        message,
        set,
    };
    let mut buf = [0u8; MAX_KEYSET_LEN];
    assert_eq!(
        apply(&mut meta, forged.encode(&mut buf)),
        Err(Error::Authentication)
    );
}
