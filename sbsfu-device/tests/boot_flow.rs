//! The update flow on a simulated STM32F405: stage, install at reset, trial, confirm, revert,
//! anti-rollback, and what happens with bad input at each step.

mod common;

use common::*;
use sbsfu_device::Error;
use sbsfu_device::boot::Phase;

#[test]
fn update_trial_confirm() {
    for encrypted in [true, false] {
        for external in [false, true] {
            let im = Images::new(encrypted);
            let mut dev = provisioned(
                &im,
                if external {
                    Counter::Flash
                } else {
                    Counter::None
                },
            );
            dev.stage(&im.new_c, true).unwrap();
            assert_eq!(dev.state().phase, Phase::Pending { slot: 1 });
            let b = dev.boot().unwrap();
            assert!(b.trial);
            assert_eq!(im.which(&dev, &b), "new");
            assert_eq!(
                dev.floor(),
                5,
                "the floor must not rise before confirmation"
            );
            assert!(dev.confirm().unwrap());
            assert_eq!(dev.floor(), 7);
            assert!(!dev.confirm().unwrap(), "nothing left to confirm");
            let b = dev.boot().unwrap();
            assert!(!b.trial);
            assert_eq!(im.which(&dev, &b), "new");
            // The next update goes into the other slot, keeping the confirmed container.
            let newer = container(&image(1000, 9), 8, encrypted, 0x33);
            dev.stage(&newer, true).unwrap();
            assert_eq!(dev.state().phase, Phase::Pending { slot: 0 });
        }
    }
}

#[test]
fn an_unconfirmed_image_is_reverted_at_the_next_reset() {
    let im = Images::new(true);
    let mut dev = provisioned(&im, Counter::None);
    dev.stage(&im.new_c, true).unwrap();
    let b = dev.boot().unwrap();
    assert_eq!(im.which(&dev, &b), "new");
    // No confirmation; reset.
    let b = dev.boot().unwrap();
    assert!(!b.trial);
    assert_eq!(im.which(&dev, &b), "old");
    assert_eq!(dev.floor(), 5);
    assert_eq!(dev.state().confirmed, Some(0));
    // And it stays reverted.
    let b = dev.boot().unwrap();
    assert_eq!(im.which(&dev, &b), "old");
}

#[test]
fn no_downgrade_once_confirmed_not_even_through_the_revert_path() {
    let im = Images::new(true);
    let mut dev = provisioned(&im, Counter::Flash);
    dev.stage(&im.new_c, true).unwrap();
    dev.boot().unwrap();
    dev.confirm().unwrap();
    // The old container is still in slot 0. Staging it again is refused at its head.
    assert_eq!(
        dev.stage(&im.old_c, true),
        Err(Error::Rollback {
            counter: 5,
            minimum: 7
        })
    );
    // Even a state forced back to "revert to slot 0" cannot bring it back: the install is
    // refused and the confirmed image keeps running.
    let mut forged = dev.clone();
    forged.with_state(|s| {
        s.phase = Phase::Reverting { slot: 0 };
    });
    match forged.boot() {
        Ok(b) => assert_eq!(im.which(&forged, &b), "new"),
        Err(e) => assert_eq!(e, Error::NoImage),
    }
    assert!(forged.active(im.old.len()) != &im.old[..]);
}

#[test]
fn a_bad_download_never_touches_the_running_image() {
    let im = Images::new(true);
    let mut dev = provisioned(&im, Counter::None);
    let before = dev.flash.data().to_vec();
    // Tampered payload, without the device key on the app side: staged (head verified),
    // refused by the boot manager's full check before the active slot is erased.
    let mut bad = im.new_c.clone();
    let n = bad.len();
    bad[n - 5000] ^= 1;
    dev.stage(&bad, false).unwrap();
    let active = (LAYOUT.active.address - FLASH) as usize;
    let b = dev.boot().unwrap();
    assert_eq!(im.which(&dev, &b), "old");
    assert_eq!(
        &dev.flash.data()[active..active + 0x4_0000],
        &before[active..active + 0x4_0000]
    );
    assert_eq!(dev.state().phase, Phase::Idle);
    // With the device key the app catches it itself.
    assert_eq!(dev.stage(&bad, true), Err(Error::Authentication));
    // A wrong signature is refused before the slot is even erased.
    let mut forged = im.new_c.clone();
    forged[100] ^= 1;
    let slot1 = (LAYOUT.slots[1].address - FLASH) as usize;
    let slot_before = dev.flash.data()[slot1..slot1 + 0x4_0000].to_vec();
    assert!(dev.stage(&forged, true).is_err());
    assert_eq!(&dev.flash.data()[slot1..slot1 + 0x4_0000], &slot_before[..]);
    // Truncated and extended downloads are not marked pending.
    assert_eq!(
        dev.stage(&im.new_c[..im.new_c.len() - 1], true),
        Err(Error::Truncated)
    );
    let mut long = im.new_c.clone();
    long.push(0);
    assert_eq!(dev.stage(&long, true), Err(Error::TrailingBytes));
    assert_eq!(dev.state().phase, Phase::Idle);
}

#[test]
fn staging_is_refused_while_an_update_is_on_trial() {
    let im = Images::new(true);
    let mut dev = provisioned(&im, Counter::None);
    dev.stage(&im.new_c, true).unwrap();
    dev.boot().unwrap();
    assert_eq!(dev.stage(&im.old_c, true), Err(Error::Busy));
}

#[test]
fn a_damaged_active_image_is_restored_from_its_container() {
    let im = Images::new(true);
    let mut dev = provisioned(&im, Counter::None);
    let active = (LAYOUT.active.address - FLASH) as usize;
    dev.flash.data_mut()[active + 1234] ^= 0x40;
    let b = dev.boot().unwrap();
    assert_eq!(im.which(&dev, &b), "old");
}

#[test]
fn a_blank_device_has_nothing_to_boot() {
    let mut dev = Device::new(Counter::None);
    assert_eq!(dev.boot(), Err(Error::NoImage));
}

#[test]
fn layouts_are_checked() {
    use sbsfu_device::boot::{Area, BootLayout, FlashMap};
    use sbsfu_device::{STM32F405_SECTORS, Sectors};
    let map = Sectors(&STM32F405_SECTORS);
    let flashes = [FlashMap {
        address: FLASH,
        size: 1 << 20,
        sectors: &map,
    }];
    assert!(LAYOUT.check(&flashes).is_ok());
    let overlapping = BootLayout {
        slots: [LAYOUT.active, LAYOUT.slots[1]],
        ..LAYOUT
    };
    assert_eq!(overlapping.check(&flashes), Err(Error::InvalidLayout));
    let misaligned = BootLayout {
        active: Area::new(0x0802_1000, 0x3_F000),
        ..LAYOUT
    };
    assert_eq!(misaligned.check(&flashes), Err(Error::InvalidLayout));
    let outside = BootLayout {
        active: Area::new(0x080E_0000, 0x4_0000),
        ..LAYOUT
    };
    assert_eq!(outside.check(&flashes), Err(Error::InvalidLayout));
    let tiny_state_log = BootLayout {
        state_log: [Area::new(0x0800_C000, 0), LAYOUT.state_log[1]],
        ..LAYOUT
    };
    assert_eq!(tiny_state_log.check(&flashes), Err(Error::InvalidLayout));
}

#[test]
fn container_slots_hold_only_what_was_received() {
    // Where the slots are external flash, neither the plaintext nor the content key may land
    // there: a slot holds the encrypted container byte for byte, and no 16-byte window of the
    // plaintext image appears anywhere in either slot.
    let im = Images::new(true);
    let mut dev = provisioned(&im, Counter::None);
    dev.stage(&im.new_c, true).unwrap();
    let b = dev.boot().unwrap();
    assert_eq!(im.which(&dev, &b), "new");
    let slot = |i: usize| {
        let start = (LAYOUT.slots[i].address - FLASH) as usize;
        dev.flash.data()[start..start + LAYOUT.slots[i].len as usize].to_vec()
    };
    let (s0, s1) = (slot(0), slot(1));
    assert_eq!(&s0[..im.old_c.len()], &im.old_c[..]);
    assert_eq!(&s1[..im.new_c.len()], &im.new_c[..]);
    for (image, name) in [(&im.old, "old"), (&im.new, "new")] {
        let windows: std::collections::HashSet<&[u8]> =
            image.chunks(16).filter(|w| w.len() == 16).collect();
        for s in [&s0, &s1] {
            assert!(
                s.windows(16).all(|w| !windows.contains(w)),
                "plaintext of the {name} image found in a container slot"
            );
        }
    }
}

#[test]
fn a_container_changed_after_its_check_is_caught_by_the_install() {
    // The staged container passed the full check (the state says Installing); then the slot
    // changes (an attacker with access to external flash, or bit rot). The install verifies
    // every chunk again, fails, and the device ends up on the old image: nothing checked earlier
    // is trusted.
    let im = Images::new(true);
    let mut dev = provisioned(&im, Counter::None);
    dev.stage(&im.new_c, true).unwrap();
    dev.with_state(|s| s.phase = Phase::Installing { slot: 1 });
    let slot1 = (LAYOUT.slots[1].address - FLASH) as usize;
    dev.flash.data_mut()[slot1 + im.new_c.len() - 3000] ^= 0x01;
    let b = dev.boot().unwrap();
    assert_eq!(im.which(&dev, &b), "old");
    assert!(!b.trial);
    assert_eq!(dev.floor(), 5);
}

/// The factory's device record (docs/BOOT.md, "Layout"): no update, revert or state-log
/// compaction touches its bytes, and `device_record` reads it back after all of them.
#[test]
fn device_record_survives_updates_reverts_and_compaction() {
    use sbsfu_device::boot::{STM32F405_FLASH, STM32F405_RECORD};
    use sbsfu_device::format::{DeviceKey, MAX_RECORD_LEN, RecordFields};
    let im = Images::new(true);
    let mut dev = Device::new(Counter::None);
    let key = DeviceKey::from_bytes([9; 32]);
    let mut record = [0u8; MAX_RECORD_LEN];
    let len = RecordFields {
        serial: "SN-42",
        target: "stm32f405",
        key: &key,
        calibration: &[],
        fields: &[],
    }
    .encode(&mut record)
    .unwrap();
    let at = (STM32F405_RECORD.address - STM32F405_FLASH) as usize;
    let region = at..at + STM32F405_RECORD.len as usize;
    dev.flash.data_mut()[at..at + len].copy_from_slice(&record[..len]);
    let before = dev.flash.data()[region.clone()].to_vec();
    let mut dev = provisioned_on(dev, &im);
    // An update confirmed, one reverted, and enough of them to compact the state log.
    let (mut compacted, mut free) = (false, dev.free_state_slots());
    for round in 0..60u32 {
        let c = container(&image(1000, round as u8), 6 + round, true, round as u8);
        dev.stage(&c, true).unwrap();
        dev.boot().unwrap();
        if round % 2 == 0 {
            dev.confirm().unwrap();
        } else {
            dev.boot().unwrap();
        }
        compacted |= dev.free_state_slots() > free;
        free = dev.free_state_slots();
    }
    assert!(compacted, "the state log was never compacted");
    assert_eq!(dev.flash.data()[region], before[..]);
    let mut buf = [0u8; MAX_RECORD_LEN];
    let read =
        sbsfu_device::device_record(&mut dev.flash, at as u32, "stm32f405", &mut buf).unwrap();
    assert_eq!(read.serial(), "SN-42");
    assert_eq!(read.device_key().as_bytes(), &[9; 32]);
    let mut buf = [0u8; MAX_RECORD_LEN];
    assert_eq!(
        sbsfu_device::device_record(&mut dev.flash, at as u32, "stm32f407", &mut buf).err(),
        Some(Error::WrongTarget)
    );
    // Blank and torn, as the device sees them.
    let mut blank = Device::new(Counter::None);
    let mut buf = [0u8; MAX_RECORD_LEN];
    assert_eq!(
        sbsfu_device::device_record(&mut blank.flash, at as u32, "stm32f405", &mut buf).err(),
        Some(Error::Format(sbsfu_device::format::Error::BlankRecord))
    );
    blank.flash.data_mut()[at..at + len / 2].copy_from_slice(&record[..len / 2]);
    assert_eq!(
        sbsfu_device::device_record(&mut blank.flash, at as u32, "stm32f405", &mut buf).err(),
        Some(Error::Format(sbsfu_device::format::Error::TornRecord))
    );
}
