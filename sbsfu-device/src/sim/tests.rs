//! The simulated flash's own tests: NOR semantics, power cuts, the fault model.

use super::*;

#[test]
fn nor_semantics() {
    let mut f = SimFlash::stm32f405();
    assert!(f.data().iter().all(|b| *b == 0xFF));
    f.write(0, &[1, 2, 3, 4]).unwrap();
    assert_eq!(
        f.write(0, &[1, 2, 3, 4]),
        Err(SimError::NotErased { offset: 0 })
    );
    assert_eq!(f.write(2, &[0; 4]), Err(SimError::NotAligned));
    assert_eq!(f.write(4, &[0; 3]), Err(SimError::NotAligned));
    assert_eq!(f.write(0x10_0000, &[0; 4]), Err(SimError::OutOfBounds));
    assert_eq!(f.erase(0x1000, 0x4000), Err(SimError::NotAligned));
    assert_eq!(f.erase(0, 0x2000), Err(SimError::NotAligned));
    assert_eq!(f.erase(0x10000, 0x18000), Err(SimError::NotAligned));
    f.erase(0, 0x4000).unwrap();
    f.write(0, &[1, 2, 3, 4]).unwrap();
    assert_eq!(f.erase_count(), 1);
    assert_eq!(f.write_count(), 2);
    assert_eq!(
        f.log(),
        &[
            Op::Write { offset: 0, len: 4 },
            Op::Erase {
                from: 0,
                to: 0x4000
            },
            Op::Write { offset: 0, len: 4 }
        ]
    );
    // Erasing the whole 1 MiB counts twelve sectors.
    f.clear_log();
    f.erase(0, 0x10_0000).unwrap();
    assert_eq!(f.erase_count(), 12);
}

#[test]
fn power_cuts_tear_operations_and_stop_everything() {
    let mut f = SimFlash::stm32f405();
    f.arm(Cut {
        op: 2,
        tear: Tear::Prefix(3),
    });
    f.write(0, &[1, 2, 3, 4]).unwrap();
    assert_eq!(f.write(4, &[5, 6, 7, 8]), Err(SimError::PowerLost));
    assert_eq!(&f.data()[..8], &[1, 2, 3, 4, 5, 6, 7, 0xFF]);
    assert!(f.is_dead());
    assert_eq!(f.read(0, &mut [0; 4]), Err(SimError::PowerLost));
    assert_eq!(f.erase(0, 0x4000), Err(SimError::PowerLost));
    f.revive();
    f.arm(Cut {
        op: 1,
        tear: Tear::PartialByte { n: 1, mask: 0x0F },
    });
    assert_eq!(f.write(8, &[0x00, 0x00, 0, 0]), Err(SimError::PowerLost));
    assert_eq!(&f.data()[8..12], &[0x00, 0xF0, 0xFF, 0xFF]);
    f.revive();
    f.write(0x2000, &[0; 4]).unwrap();
    f.arm(Cut {
        op: 1,
        tear: Tear::Prefix(0x2000),
    });
    assert_eq!(f.erase(0, 0x4000), Err(SimError::PowerLost));
    assert!(f.data()[..0x2000].iter().all(|b| *b == 0xFF));
    assert_eq!(&f.data()[0x2000..0x2001], &[0x00]);
    f.revive();
    f.arm(Cut {
        op: 1,
        tear: Tear::Before,
    });
    assert_eq!(f.erase(0, 0x4000), Err(SimError::PowerLost));
    assert_eq!(f.data()[0x2000], 0);
    f.revive();
    f.count_from_here();
    f.erase(0, 0x4000).unwrap();
    f.write(0, &[9; 4]).unwrap();
    assert_eq!(f.ops(), 2);
}

#[test]
fn weak_cells_decay_and_torn_ecc_words_fail_to_read() {
    let read = |f: &mut SimFlash, at: u32| {
        let mut b = [0u8; 4];
        f.read(at, &mut b).map(|()| b)
    };
    // The last word of a write weakly programmed: correct twice, then back to erased.
    let mut f = SimFlash::stm32f405();
    f.arm(Cut {
        op: 1,
        tear: Tear::WeakTail {
            len: 4,
            decay: Decay::AfterReads(2),
        },
    });
    assert_eq!(
        f.write(0, &[1, 2, 3, 4, 5, 6, 7, 8]),
        Err(SimError::PowerLost)
    );
    f.revive();
    assert!(f.is_marginal());
    assert_eq!(read(&mut f, 4), Ok([5, 6, 7, 8]));
    assert_eq!(read(&mut f, 4), Ok([5, 6, 7, 8]));
    assert_eq!(read(&mut f, 4), Ok([0xFF; 4]));
    assert_eq!(read(&mut f, 0), Ok([1, 2, 3, 4]));
    assert!(!f.is_marginal());
    // Flickering: every other read.
    let mut f = SimFlash::stm32f405();
    f.arm(Cut {
        op: 1,
        tear: Tear::Weak {
            n: 0,
            len: 4,
            decay: Decay::Flicker,
        },
    });
    assert!(f.write(0, &[0; 4]).is_err());
    f.revive();
    for i in 0..6 {
        let want = if i % 2 == 0 { [0; 4] } else { [0xFF; 4] };
        assert_eq!(read(&mut f, 0), Ok(want));
    }
    // A sector weakly erased reads erased, programming over it holds what it clears, and
    // the rest decays back to the old content; a real erase ends it all.
    let mut f = SimFlash::stm32f405();
    f.write(0, &[0x00, 0x0F, 0xF0, 0x55]).unwrap();
    f.arm(Cut {
        op: 1,
        tear: Tear::Weak {
            n: 0,
            len: usize::MAX,
            decay: Decay::AfterReads(1),
        },
    });
    assert!(f.erase(0, 0x4000).is_err());
    f.revive();
    f.write(0, &[0xFF, 0xFF, 0x0F, 0xFF]).unwrap();
    assert_eq!(read(&mut f, 0), Ok([0xFF, 0xFF, 0x0F, 0xFF]));
    assert_eq!(read(&mut f, 0), Ok([0x00, 0x0F, 0x00, 0x55]));
    f.erase(0, 0x4000).unwrap();
    assert_eq!(read(&mut f, 0), Ok([0xFF; 4]));
    // With ECC, a torn word is a read error and cannot be programmed until erased; the
    // words around it read normally.
    let mut f = SimFlash::stm32f405().with_ecc();
    f.arm(Cut {
        op: 1,
        tear: Tear::Prefix(6),
    });
    assert!(f.write(0, &[9; 12]).is_err());
    f.revive();
    assert_eq!(read(&mut f, 0), Ok([9; 4]));
    assert_eq!(read(&mut f, 4), Err(SimError::Ecc));
    assert_eq!(read(&mut f, 8), Ok([0xFF; 4]));
    assert!(matches!(
        f.write(4, &[0; 4]),
        Err(SimError::NotErased { .. })
    ));
    f.erase(0, 0x4000).unwrap();
    assert_eq!(read(&mut f, 4), Ok([0xFF; 4]));
    // The OTP area: programming only clears bits, and its operations count and can be cut.
    let mut f = SimFlash::stm32f405().with_otp(2);
    f.program_word(0, 0xF0F0_F0F0).unwrap();
    f.program_word(0, 0xFFFF_00FF).unwrap();
    assert_eq!(f.read_word(0), Ok(0xF0F0_00F0));
    f.arm(Cut {
        op: 1,
        tear: Tear::Prefix(2),
    });
    assert!(f.program_word(1, 0).is_err());
    f.revive();
    assert_eq!(f.read_word(1), Ok(0xFFFF_0000));
    assert_eq!(f.op_kind(1), Some(OpKind::OtpProgram));
}
