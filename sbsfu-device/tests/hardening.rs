//! The device as an attacker who can write flash sees it (a compromised application, or anyone
//! with access to external flash), and as NOR flash that a power cut leaves marginal: the
//! anti-rollback floor never goes down, a decaying record never halts a boot, and what boots is
//! code that was verified.

mod common;

use common::*;
use sbsfu_device::boot::Phase;
use sbsfu_device::sim::{Cut, Decay, OpKind, Tear};
use sbsfu_device::{Error, RECORD_SIZE};

/// A device that updated from the old image (counter 5) to the new one (counter 7) and
/// confirmed it, then booted once more.
fn updated(im: &Images, counter: Counter) -> Device {
    let mut dev = provisioned(im, counter);
    dev.stage(&im.new_c, true).unwrap();
    assert!(dev.boot().unwrap().trial);
    assert!(dev.confirm().unwrap());
    let b = dev.boot().unwrap();
    assert_eq!(im.which(&dev, &b), "new");
    assert_eq!(dev.floor(), 7);
    dev
}

/// Boots a few times: always the new image, floor 7.
fn stays_on_the_new_image(dev: &mut Device, im: &Images, ctx: &str) {
    for _ in 0..3 {
        match dev.boot() {
            Ok(b) => assert_eq!(im.which(dev, &b), "new", "{ctx}"),
            Err(e) => panic!("{ctx}: unbootable: {e:?}"),
        }
        assert_eq!(dev.floor(), 7, "{ctx}");
    }
}

fn erase(dev: &mut Device, area: sbsfu_device::boot::Area) {
    let start = (area.address - FLASH) as usize;
    dev.flash.data_mut()[start..start + area.len as usize].fill(0xFF);
}

#[test]
fn a_forged_state_record_cannot_lower_the_floor() {
    // The record hash has no key: anything that can program the flash can append a valid
    // record. One saying "floor 0, revert to the old image's container" changes nothing.
    let im = Images::new(true);
    for counter in [Counter::None, Counter::Flash, Counter::Otp] {
        let mut dev = updated(&im, counter);
        dev.with_state(|s| {
            s.floor = 0;
            s.phase = Phase::Reverting { slot: 0 };
        });
        stays_on_the_new_image(&mut dev, &im, &format!("{counter:?}"));
        // The old container is still in slot 0, and is never installed.
        assert_eq!(dev.state().confirmed, Some(1), "{counter:?}");
    }
}

#[test]
fn the_otp_counter_holds_the_floor_when_the_flash_is_wiped() {
    // An attacker erases the state log, the active image and the new container: only the old,
    // validly signed container is left. The OTP counter, which no flash writer can lower,
    // still says 7: the old image is refused and nothing runs (a denial of service, not a
    // downgrade).
    let im = Images::new(true);
    let mut dev = updated(&im, Counter::Otp);
    for area in [
        LAYOUT.state_log[0],
        LAYOUT.state_log[1],
        LAYOUT.active,
        LAYOUT.slots[1],
    ] {
        erase(&mut dev, area);
    }
    assert_eq!(dev.boot(), Err(Error::NoImage));
    assert_eq!(dev.counter_value(), 7);
    let active = dev.active(im.old.len()).to_vec();
    assert_ne!(active, im.old, "the old image was installed");
    // With the new container left in its slot, the device recovers onto it.
    let mut dev = updated(&im, Counter::Otp);
    for area in [LAYOUT.state_log[0], LAYOUT.state_log[1], LAYOUT.active] {
        erase(&mut dev, area);
    }
    stays_on_the_new_image(&mut dev, &im, "state and active slot wiped");
}

#[test]
fn an_otp_writer_can_raise_the_floor_but_never_lower_it() {
    let im = Images::new(true);
    let mut dev = updated(&im, Counter::Otp);
    // Programming a lower value into a free word, or clearing bits of the words written,
    // changes nothing below 7.
    dev.flash.otp_program_raw(40, &(!1u32).to_le_bytes());
    stays_on_the_new_image(&mut dev, &im, "a lower value in OTP");
    // Raising it above every image is possible: a denial of service.
    dev.flash.otp_program_raw(44, &(!100u32).to_le_bytes());
    assert!(dev.boot().is_err());
    assert_eq!(dev.counter_value(), 100);
}

/// Offsets, sequence numbers and floors of the state records in flash (the record layout of
/// `journal` and `boot_state`).
fn state_records(dev: &Device) -> Vec<(usize, u32, u32)> {
    let mut out = Vec::new();
    for bank in LAYOUT.state_log {
        let start = (bank.address - FLASH) as usize;
        for slot in (start..start + bank.len as usize).step_by(RECORD_SIZE) {
            let r = &dev.flash.data()[slot..slot + RECORD_SIZE];
            if &r[..4] == b"SBRL" {
                let seq = u32::from_le_bytes(r[4..8].try_into().unwrap());
                let floor = u32::from_le_bytes(r[11..15].try_into().unwrap());
                out.push((slot, seq, floor));
            }
        }
    }
    out.sort_by_key(|(_, seq, _)| *seq);
    out
}

#[test]
fn the_floor_survives_any_one_record_decaying() {
    // A power cut at the end of a record's programming can leave weak cells that read
    // correctly at first and flip later. Whichever record holding the raised floor decays
    // (here: one bit flipped), the floor stays and the old image never comes back.
    let im = Images::new(true);
    for counter in [Counter::None, Counter::Flash, Counter::Otp] {
        let reference = updated(&im, counter);
        let holders: Vec<usize> = state_records(&reference)
            .into_iter()
            .filter(|(_, _, floor)| *floor == 7)
            .map(|(at, _, _)| at)
            .collect();
        assert!(!holders.is_empty());
        for at in holders {
            let mut dev = reference.clone();
            dev.flash.data_mut()[at + 300] ^= 0x10;
            stays_on_the_new_image(&mut dev, &im, &format!("{counter:?}, record at {at:#x}"));
        }
    }
}

#[test]
fn a_confirmation_cut_at_its_very_end_never_lowers_the_floor_later() {
    // The same with the fault model: the confirmation record's last word programmed only
    // weakly. It reads correctly for a while (one or two reads, or every other read), then
    // decays. Whatever the device saw first, the floor it saw never goes back.
    let im = Images::new(true);
    for counter in [Counter::None, Counter::Flash, Counter::Otp] {
        for decay in [
            Decay::AfterReads(1),
            Decay::AfterReads(2),
            Decay::AfterReads(3),
            Decay::Flicker,
        ] {
            let ctx = format!("{counter:?} {decay:?}");
            let mut dev = provisioned(&im, counter);
            dev.stage(&im.new_c, true).unwrap();
            dev.boot().unwrap();
            dev.flash.arm(Cut {
                op: 1,
                tear: Tear::WeakTail { len: 4, decay },
            });
            assert!(dev.confirm().is_err(), "{ctx}");
            dev.flash.revive();
            let mut seen = 5;
            for _ in 0..6 {
                let b = dev.boot().unwrap_or_else(|e| panic!("{ctx}: {e:?}"));
                let which = im.which(&dev, &b);
                let floor = dev.floor();
                assert!(
                    floor >= seen,
                    "{ctx}: floor went back from {seen} to {floor}"
                );
                if floor == 7 {
                    assert_eq!(which, "new", "{ctx}");
                }
                seen = floor;
                if b.trial {
                    // The new image confirms itself again, if it is still on trial.
                    let _ = dev.confirm();
                }
            }
            // Either the confirmation took (new image, floor 7) or it was lost (old image,
            // floor 5): never the old image above the floor.
            let b = dev.boot().unwrap();
            let end = (im.which(&dev, &b), dev.floor());
            assert!(end == ("new", 7) || end == ("old", 5), "{ctx}: {end:?}");
        }
    }
}

#[test]
fn a_record_that_stops_verifying_between_mount_and_use_does_not_halt_the_boot() {
    // The newest record verifies when the log is mounted and not when it is read again (one
    // unstable bit): the boot falls back to the newest record that still verifies, writes it
    // again fresh, and boots.
    let im = Images::new(true);
    for counter in [Counter::None, Counter::Otp] {
        let mut dev = provisioned(&im, counter);
        // The Pending record of a staged update: its last word is weak and decays after one read.
        let mut probe = dev.clone();
        probe.flash.count_from_here();
        probe.stage(&im.new_c, true).unwrap();
        let record_write = probe.flash.ops();
        dev.flash.arm(Cut {
            op: record_write,
            tear: Tear::WeakTail {
                len: 4,
                decay: Decay::AfterReads(1),
            },
        });
        assert!(dev.stage(&im.new_c, true).is_err());
        dev.flash.revive();
        let b = dev.boot().unwrap();
        assert_eq!(im.which(&dev, &b), "old");
        assert_eq!(dev.state().phase, Phase::Idle);
        // The device keeps working: the download is staged again, and installs.
        dev.stage(&im.new_c, true).unwrap();
        let b = dev.boot().unwrap();
        assert_eq!(im.which(&dev, &b), "new");
    }
}

#[test]
fn torn_words_on_flash_with_ecc_are_read_errors_not_a_halt() {
    // On flash with ECC a torn word is not read at all. A cut in the middle of the Pending
    // record and in the middle of the install: the device still boots.
    let im = Images::new(true);
    let base = provisioned_on(Device::with_ecc(Counter::Otp), &im);
    let mut probe = base.clone();
    probe.flash.count_from_here();
    probe.stage(&im.new_c, true).unwrap();
    let stage_ops = probe.flash.ops();
    probe.boot().unwrap();
    let all_ops = probe.flash.ops();
    let flash_op = |k: usize| probe.flash.op_kind(k) != Some(OpKind::OtpProgram);
    let in_boot: Vec<usize> = (stage_ops + 1..=all_ops).filter(|k| flash_op(*k)).collect();
    for op in [stage_ops, in_boot[0], in_boot[in_boot.len() / 2], all_ops] {
        let mut dev = base.clone();
        dev.flash.arm(Cut {
            op,
            tear: Tear::Prefix(100),
        });
        let _ = dev
            .stage(&im.new_c, true)
            .and_then(|()| dev.boot().map(|_| ()));
        dev.flash.revive();
        assert!(
            dev.flash.is_marginal(),
            "op {op}: the cut left no torn word"
        );
        let b = dev.boot().unwrap_or_else(|e| panic!("op {op}: {e:?}"));
        let which = im.which(&dev, &b);
        assert!(which == "old" || which == "new", "op {op}");
    }
}

#[test]
fn a_signed_image_too_short_for_a_vector_table_never_boots() {
    // A validly signed 0- or 4-byte image: what the CPU would jump into is not in it (the old
    // image's vectors past its end). It is refused before it touches the active slot, and if
    // forced in, the device goes back to the old image.
    let im = Images::new(true);
    for len in [0usize, 4] {
        let tiny = container(&image(len, 3), 9, true, 0x40);
        let mut dev = provisioned(&im, Counter::None);
        // The application can check it (it has the device key): refused.
        assert_eq!(dev.stage(&tiny, true), Err(Error::InvalidVectorTable));
        // Staged by an application without the device key: refused at reset.
        dev.stage(&tiny, false).unwrap();
        let b = dev.boot().unwrap();
        assert_eq!(im.which(&dev, &b), "old", "{len} bytes");
        // Forced past the check into an install: refused after it, and reverted.
        dev.stage(&tiny, false).unwrap();
        dev.with_state(|s| s.phase = Phase::Installing { slot: 1 });
        let b = dev.boot().unwrap();
        assert_eq!(im.which(&dev, &b), "old", "{len} bytes");
        assert_eq!(dev.floor(), 5);
    }
    // An image whose reset vector points past its end (into whatever follows) is refused too.
    let mut img = image(4096, 4);
    img[4..8].copy_from_slice(&(LAYOUT.active.address + 4096 + 1).to_le_bytes());
    let outside = container(&img, 9, true, 0x41);
    let mut dev = provisioned(&im, Counter::None);
    assert_eq!(dev.stage(&outside, true), Err(Error::InvalidVectorTable));
}

#[test]
fn an_install_erases_what_an_older_image_left_behind() {
    // The old image spans both sectors of the active slot; the new one is 1 KiB. After the
    // install, nothing of the old image is left after the new one.
    let im = Images::new(true);
    let mut dev = provisioned(&im, Counter::None);
    let small = image(1024, 5);
    dev.stage(&container(&small, 7, true, 0x42), true).unwrap();
    let b = dev.boot().unwrap();
    assert_eq!(b.header.image_len, 1024);
    assert_eq!(dev.active(1024), &small[..]);
    let start = (LAYOUT.active.address - FLASH) as usize;
    let rest = &dev.flash.data()[start + 1024..start + LAYOUT.active.len as usize];
    assert!(
        rest.iter().all(|b| *b == 0xFF),
        "old code left in the active slot"
    );
    // The boot says where the verified image starts.
    assert_eq!(b.vectors.stack_pointer, RAM.address + RAM.len);
    assert_eq!(b.vectors.reset, LAYOUT.active.address + 9);
}

/// The legitimate container `c` with every chunk's plaintext replaced by `fill`, sealed under
/// its own content key: what whoever extracted the class-wide device key from one device can
/// make. The signed header (and its digest) is the original's.
fn forged_under_the_device_key(c: &[u8], fill: u8) -> Vec<u8> {
    use sbsfu_device::sim::kit::reseal_chunks;
    use sbsfu_format::Protection;
    use sbsfu_format::SignedHeader;
    use sbsfu_format::unwrap_content_key;
    use sbsfu_format::{ChunkCipher, payload_aad};
    let signed = SignedHeader::parse(c).unwrap().0;
    let header = signed.header;
    let Protection::Aes256Gcm(enc) = header.protection else {
        panic!("an encrypted container")
    };
    let key = unwrap_content_key(&device_key(), &enc).unwrap();
    let cipher = ChunkCipher::new(
        &key,
        enc.nonce_prefix,
        payload_aad(&header, &signed.message).unwrap(),
    );
    let out = reseal_chunks(c, &cipher, fill);
    assert_eq!(out.len(), c.len());
    out
}

#[test]
fn a_class_wide_device_key_proves_less_than_a_signature() {
    // Chunk authentication proves that the chunk was sealed by someone holding the content key,
    // which anyone holding the class-wide device key can unwrap: chunks forged that way pass
    // AES-GCM. The direct installer programs them before `finish` fails on the digest; the
    // staged path verifies the whole container before the active slot is touched.
    use sbsfu_device::{FlashRegion, Region, STM32F405_SECTORS, Sectors};
    use sbsfu_device::{Installer, Policy, TrustedKey};
    let im = Images::new(true);
    let forged = forged_under_the_device_key(&im.new_c, 0xA5);

    let signers = [TrustedKey::from_bytes(signing_key().verifying_key().as_bytes()).unwrap()];
    let dks = [device_key()];
    let policy = Policy {
        target: "stm32f405",
        signers: &signers,
        device_keys: &dks,
        min_security_counter: 0,
        require_encryption: true,
    };
    let mut flash = sbsfu_device::sim::SimFlash::stm32f405();
    {
        let mut app = FlashRegion::new(
            "app",
            &mut flash,
            Sectors(&STM32F405_SECTORS),
            LAYOUT.active.address,
            LAYOUT.active.address - FLASH,
            LAYOUT.active.len,
        )
        .unwrap();
        let mut regions: [&mut dyn Region; 1] = [&mut app];
        let mut installer = Installer::<CHUNK_BUF>::new(&policy, &mut regions);
        // Every chunk but the last authenticates and is programmed...
        let last_chunk = forged.len() - (im.new.len() % 4096) - 16;
        installer.feed(&forged[..last_chunk]).unwrap();
        // ...the last one is released only once the image digest matched: it does not.
        assert_eq!(
            installer.feed(&forged[last_chunk..]),
            Err(Error::Authentication)
        );
        assert_eq!(installer.finish().err(), Some(Error::Authentication));
    }
    let start = (LAYOUT.active.address - FLASH) as usize;
    assert!(
        flash.data()[start..start + 4096].iter().all(|b| *b == 0xA5),
        "the forged chunks reached flash through the direct installer"
    );

    // Staged: the application holding the device key refuses it at `finish`; one without it
    // stages it, and the boot manager refuses it before erasing anything.
    let mut dev = provisioned(&im, Counter::Otp);
    let before = dev.flash.data().to_vec();
    let active = start..start + LAYOUT.active.len as usize;
    assert_eq!(dev.stage(&forged, true), Err(Error::Authentication));
    dev.stage(&forged, false).unwrap();
    let b = dev.boot().unwrap();
    assert_eq!(im.which(&dev, &b), "old");
    assert_eq!(&dev.flash.data()[active.clone()], &before[active]);
}
