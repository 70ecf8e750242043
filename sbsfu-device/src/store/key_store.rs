//! Key rotation and revocation: which keys may sign firmware, under a root key.

use sbsfu_format::{MAX_KEYSET_KEYS, MAX_KEYSET_LEN, SignedKeySet};

use crate::Error;
use crate::flash::Region;
use crate::keys::TrustedKey;
use crate::store::CounterStore;
use crate::store::record_log::{MAX_PAYLOAD, RecordLog};

const _: () = assert!(MAX_KEYSET_LEN <= MAX_PAYLOAD);

/// The signing keys in force, and the epoch of the set they came from.
#[derive(Clone)]
pub struct TrustedSet {
    epoch: u32,
    keys: [TrustedKey; MAX_KEYSET_KEYS],
    count: usize,
}

impl TrustedSet {
    /// The factory set (epoch 0): the keys compiled into the firmware. `root` may not be among
    /// them (the root key signs key sets, never firmware).
    pub fn factory(root: &TrustedKey, keys: &[TrustedKey]) -> Result<Self, Error> {
        if keys.iter().any(|k| k.id() == root.id()) {
            return Err(sbsfu_format::Error::InvalidKeySet.into());
        }
        Self::new(0, keys)
    }

    fn new(epoch: u32, keys: &[TrustedKey]) -> Result<Self, Error> {
        let first = keys.first().ok_or(sbsfu_format::Error::InvalidKeySet)?;
        if keys.len() > MAX_KEYSET_KEYS {
            return Err(sbsfu_format::Error::InvalidKeySet.into());
        }
        Ok(Self {
            epoch,
            // Unused slots repeat the first key; only `..count` is ever handed out.
            keys: core::array::from_fn(|i| keys.get(i).unwrap_or(first).clone()),
            count: keys.len(),
        })
    }

    /// The set a key-set update puts in force, once [`check_key_set`] passed for `root` and
    /// `target`.
    pub fn from_update(set: &SignedKeySet, root: &TrustedKey, target: &str) -> Result<Self, Error> {
        check_key_set(set, root, target)?;
        Self::from_signed(set)
    }

    fn from_signed(set: &SignedKeySet) -> Result<Self, Error> {
        let mut keys: [Option<TrustedKey>; MAX_KEYSET_KEYS] = Default::default();
        for (slot, k) in keys.iter_mut().zip(set.set.keys()) {
            *slot = Some(TrustedKey::from_bytes(k)?);
        }
        let first = keys
            .first()
            .cloned()
            .flatten()
            .ok_or(sbsfu_format::Error::InvalidKeySet)?;
        Ok(Self {
            epoch: set.set.epoch,
            keys: keys.map(|k| k.unwrap_or_else(|| first.clone())),
            count: set.set.keys().len(),
        })
    }

    /// Epoch of the set (0 for the factory set).
    pub fn epoch(&self) -> u32 {
        self.epoch
    }

    /// The keys, for [`crate::Policy::signers`].
    pub fn signers(&self) -> &[TrustedKey] {
        self.keys.get(..self.count).unwrap_or(&[])
    }
}

/// The applied key sets, in their own power-safe record log (two banks of flash), with an
/// optional counter under which the epoch in force never goes.
///
/// A device ships with a factory set of signing keys (epoch 0) and the public half of a root key
/// that signs nothing but key sets. A key-set update (`sbsfu keyset create`) names new signing
/// keys under a higher epoch; [`KeyStore::apply`] verifies it under the root key and records it in
/// a power-safe record log, after which [`KeyStore::current`] gives the new keys and containers
/// signed by dropped keys fail with [`Error::UnknownSigner`]. An update with a lower epoch than
/// the set in force, or the same epoch but other keys, is [`Error::StaleKeySet`]. The stored set
/// is verified again under the root key every time it is loaded.
///
/// The set in force is the stored set with the **highest epoch**, not the newest record: an old,
/// validly signed set appended to the log again (by anything that can program the flash) cannot
/// bring a revoked key back. Erasing the log can (the factory set comes back), unless the store
/// is given a [`CounterStore`] ([`KeyStore::with_counter`], OTP on the STM32F4): the epoch in
/// force then never goes below the counter, which follows every applied set.
pub struct KeyStore<'r> {
    log: RecordLog<'r>,
    counter: Option<&'r mut dyn CounterStore>,
}

impl<'r> KeyStore<'r> {
    /// Mounts the store on two banks.
    pub fn mount(banks: [&'r mut dyn Region; 2]) -> Result<Self, Error> {
        Ok(Self {
            log: RecordLog::mount(banks)?,
            counter: None,
        })
    }

    /// Keeps the epoch in force in `counter` too (its own counter, not the anti-rollback
    /// floor's): a set older than it is never in force, whatever the log holds.
    pub fn with_counter(mut self, counter: &'r mut dyn CounterStore) -> Self {
        self.counter = Some(counter);
        self
    }

    /// The stored key set with the highest epoch (the newest record among equal epochs),
    /// verified again under `root` for `target`; `None` if no update was ever applied. If that
    /// set no longer verifies, it is [`Error::CorruptState`]: the device fails closed rather
    /// than fall back to older keys.
    fn stored(&mut self, root: &TrustedKey, target: &str) -> Result<Option<SignedKeySet>, Error> {
        let mut best: Option<(u32, u32, [u8; MAX_PAYLOAD], usize)> = None;
        self.log.for_each(&mut |seq, payload| {
            let Ok(set) = SignedKeySet::parse(payload) else {
                return;
            };
            let key = (set.set.epoch, seq);
            if best.as_ref().is_none_or(|(e, s, _, _)| key > (*e, *s)) {
                let mut bytes = [0u8; MAX_PAYLOAD];
                if let Some(dst) = bytes.get_mut(..payload.len()) {
                    dst.copy_from_slice(payload);
                    best = Some((key.0, key.1, bytes, payload.len()));
                }
            }
        })?;
        let Some((_, _, bytes, len)) = best else {
            return Ok(None);
        };
        let set = SignedKeySet::parse(bytes.get(..len).ok_or(Error::CorruptState)?)
            .map_err(|_| Error::CorruptState)?;
        check_key_set(&set, root, target).map_err(|_| Error::CorruptState)?;
        Ok(Some(set))
    }

    /// The epoch the counter holds (0 without one).
    fn counted(&mut self) -> Result<u32, Error> {
        self.counter.as_deref_mut().map_or(Ok(0), |c| c.read())
    }

    /// The keys in force: the stored set with the highest epoch, else `factory`. With a counter,
    /// a set older than the counter is [`Error::StaleKeySet`] (the stored sets were erased or
    /// rolled back: fail closed), and the counter catches up with a newer one.
    pub fn current(
        &mut self,
        root: &TrustedKey,
        target: &str,
        factory: &TrustedSet,
    ) -> Result<TrustedSet, Error> {
        let set = match self.stored(root, target)? {
            Some(set) => TrustedSet::from_signed(&set)?,
            None => factory.clone(),
        };
        let counted = self.counted()?;
        if set.epoch < counted {
            return Err(Error::StaleKeySet {
                epoch: set.epoch,
                current: counted,
            });
        }
        if let Some(c) = self.counter.as_deref_mut() {
            // An apply cut short before the counter followed: best effort, the log holds it.
            let _ = c.advance(set.epoch);
        }
        Ok(set)
    }

    /// Verifies the key-set file `update` under `root` and makes it the set in force. Power
    /// safe: a cut at any point leaves either the previous set or the new one in force. Applying
    /// the set already in force again succeeds and writes nothing. With a counter that cannot
    /// advance any more, a newer set is refused ([`Error::CounterExhausted`]) before anything is
    /// written.
    pub fn apply(
        &mut self,
        update: &[u8],
        root: &TrustedKey,
        target: &str,
        factory: &TrustedSet,
    ) -> Result<TrustedSet, Error> {
        let new = SignedKeySet::parse(update)?;
        check_key_set(&new, root, target)?;
        let current_epoch = match self.stored(root, target)? {
            Some(old) => {
                // Both parsed exactly (no trailing bytes): the same file is the same message
                // and signature.
                let same = old.message.file_bytes() == new.message.file_bytes()
                    && old.signature == new.signature;
                if same {
                    return TrustedSet::from_signed(&old);
                }
                old.set.epoch
            }
            None => factory.epoch,
        }
        .max(self.counted()?);
        check_newer(new.set.epoch, current_epoch)?;
        if let Some(c) = self.counter.as_deref_mut()
            && c.remaining()? == 0
        {
            return Err(Error::CounterExhausted);
        }
        let trusted = TrustedSet::from_signed(&new)?;
        self.log.append(update)?;
        if let Some(c) = self.counter.as_deref_mut() {
            c.advance(new.set.epoch)?;
        }
        Ok(trusted)
    }
}

/// Checks a key-set update as a device does before it looks at anything else in it: the root
/// key, the signature, the target, in that order, so that a set signed by any other key (a
/// firmware key included) is named as such before its signature is even looked at. The host's
/// `sbsfu keyset verify` and `sbsfu verify --keyset` call this same function.
pub fn check_key_set(set: &SignedKeySet, root: &TrustedKey, target: &str) -> Result<(), Error> {
    if set.set.root != root.id() {
        return Err(Error::UnknownSigner(set.set.root));
    }
    set.verify(root.verifying_key())?;
    if set.set.target.as_str() != target {
        return Err(Error::WrongTarget);
    }
    Ok(())
}

/// The epoch rule: an update replaces the set in force only with a higher epoch
/// ([`Error::StaleKeySet`] otherwise).
pub fn check_newer(epoch: u32, current: u32) -> Result<(), Error> {
    if epoch <= current {
        return Err(Error::StaleKeySet { epoch, current });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sim::kit::signing_key as sk;
    use crate::sim::{SimFlash, Tear, each_power_cut};
    use crate::store::CounterStore;
    use crate::store::OtpCounter;
    use crate::testkit::with_banks;
    use sbsfu_format::KeyId;
    use sbsfu_format::KeySet;
    use std::vec::Vec;

    fn pk(seed: u8) -> [u8; 32] {
        sk(seed).verifying_key().to_bytes()
    }

    fn trusted(seed: u8) -> TrustedKey {
        TrustedKey::from_bytes(&pk(seed)).unwrap()
    }

    const ROOT: u8 = 0x50;

    fn keyset(epoch: u32, keys: &[u8], signer: u8) -> Vec<u8> {
        let keys: Vec<[u8; 32]> = keys.iter().map(|s| pk(*s)).collect();
        let set = KeySet::new(epoch, "stm32f405", &pk(ROOT), &keys).unwrap();
        let message = set.message().unwrap();
        let signed = SignedKeySet {
            signature: message.sign(&sk(signer)),
            message,
            set,
        };
        let mut buf = [0u8; MAX_KEYSET_LEN];
        signed.encode(&mut buf).to_vec()
    }

    fn factory() -> TrustedSet {
        TrustedSet::factory(&trusted(ROOT), &[trusted(1)]).unwrap()
    }

    /// The store on sectors 2 and 3 of an F405.
    fn with_store<T>(flash: &mut SimFlash, f: impl FnOnce(&mut KeyStore<'_>) -> T) -> T {
        with_banks(flash, |banks, _| f(&mut KeyStore::mount(banks).unwrap()))
    }

    fn ids(set: &TrustedSet) -> Vec<KeyId> {
        set.signers().iter().map(|k| k.id()).collect()
    }

    fn current(flash: &mut SimFlash) -> Result<TrustedSet, Error> {
        with_store(flash, |s| {
            s.current(&trusted(ROOT), "stm32f405", &factory())
        })
    }

    fn apply(flash: &mut SimFlash, update: &[u8]) -> Result<TrustedSet, Error> {
        with_store(flash, |s| {
            s.apply(update, &trusted(ROOT), "stm32f405", &factory())
        })
    }

    #[test]
    fn rotation_replaces_the_keys_and_epochs_only_grow() {
        let mut f = SimFlash::stm32f405();
        assert_eq!(ids(&current(&mut f).unwrap()), [trusted(1).id()]);
        let e1 = keyset(1, &[1, 2], ROOT);
        assert_eq!(apply(&mut f, &e1).unwrap().epoch(), 1);
        let now = current(&mut f).unwrap();
        assert_eq!(ids(&now), [trusted(1).id(), trusted(2).id()]);
        // Applying the same set again is harmless and writes nothing.
        f.count_from_here();
        assert_eq!(apply(&mut f, &e1).unwrap().epoch(), 1);
        assert_eq!(f.ops(), 0);
        // Revoke key 1.
        apply(&mut f, &keyset(5, &[2], ROOT)).unwrap();
        assert_eq!(ids(&current(&mut f).unwrap()), [trusted(2).id()]);
        // Older, or the same epoch with other keys: refused, nothing changes.
        assert_eq!(
            apply(&mut f, &e1).err(),
            Some(Error::StaleKeySet {
                epoch: 1,
                current: 5
            })
        );
        assert_eq!(
            apply(&mut f, &keyset(5, &[1, 2], ROOT)).err(),
            Some(Error::StaleKeySet {
                epoch: 5,
                current: 5
            })
        );
        // Epoch 0 is the factory set's.
        let mut fresh = SimFlash::stm32f405();
        assert!(matches!(
            apply(&mut fresh, &keyset(0, &[2], ROOT)),
            Err(Error::StaleKeySet { epoch: 0, .. })
        ));
        assert_eq!(ids(&current(&mut f).unwrap()), [trusted(2).id()]);
    }

    #[test]
    fn a_replayed_key_set_does_not_bring_a_revoked_key_back() {
        // Anything that can program the flash can append a record; an old key set, validly
        // signed by the root, appended again is newer in the log but older in epoch.
        let mut f = SimFlash::stm32f405();
        let e1 = keyset(1, &[1, 2], ROOT);
        apply(&mut f, &e1).unwrap();
        apply(&mut f, &keyset(5, &[2], ROOT)).unwrap();
        with_store(&mut f, |s| s.log.append(&e1)).unwrap();
        let now = current(&mut f).unwrap();
        assert_eq!(now.epoch(), 5);
        assert_eq!(ids(&now), [trusted(2).id()]);
        // And applying the replayed set again is still refused as stale.
        assert!(matches!(
            apply(&mut f, &e1),
            Err(Error::StaleKeySet {
                epoch: 1,
                current: 5
            })
        ));
    }

    /// The store on sectors 2 and 3, with an epoch counter in OTP.
    fn with_counted_store<T>(flash: &mut SimFlash, f: impl FnOnce(&mut KeyStore<'_>) -> T) -> T {
        with_banks(flash, |[a, b], otp| {
            let mut counter = OtpCounter::new(otp);
            let store = KeyStore::mount([&mut *a, &mut *b]).unwrap();
            f(&mut store.with_counter(&mut counter))
        })
    }

    #[test]
    fn with_an_epoch_counter_an_erased_store_fails_closed() {
        let mut f = SimFlash::stm32f405().with_otp(8);
        let root = trusted(ROOT);
        with_counted_store(&mut f, |s| {
            s.apply(&keyset(5, &[2], ROOT), &root, "stm32f405", &factory())
        })
        .unwrap();
        assert_eq!(OtpCounter::new(&mut f).read(), Ok(5));
        // The log erased: the factory set (epoch 0) would bring key 1 back. Refused.
        f.data_mut()[0x8000..0x10000].fill(0xFF);
        let now = with_counted_store(&mut f, |s| s.current(&root, "stm32f405", &factory()));
        assert_eq!(
            now.err(),
            Some(Error::StaleKeySet {
                epoch: 0,
                current: 5
            })
        );
        // An older set re-applied is refused against the counter too.
        let e3 = keyset(3, &[1, 2], ROOT);
        assert!(matches!(
            with_counted_store(&mut f, |s| s.apply(&e3, &root, "stm32f405", &factory())),
            Err(Error::StaleKeySet {
                epoch: 3,
                current: 5
            })
        ));
        // A newer one is applied, and the counter follows.
        let e6 = keyset(6, &[2], ROOT);
        with_counted_store(&mut f, |s| s.apply(&e6, &root, "stm32f405", &factory())).unwrap();
        assert_eq!(OtpCounter::new(&mut f).read(), Ok(6));
        // Without the counter, the same erase brings the factory keys back: what the counter
        // is for.
        f.data_mut()[0x8000..0x10000].fill(0xFF);
        assert_eq!(current(&mut f).unwrap().epoch(), 0);
    }

    #[test]
    fn only_the_root_key_signs_key_sets() {
        let mut f = SimFlash::stm32f405();
        // Signed by a firmware key, root id left pointing at the root: the signature fails.
        assert_eq!(
            apply(&mut f, &keyset(1, &[2], 1)).err(),
            Some(Error::Authentication)
        );
        // A set naming a firmware key as its root: an unknown signer.
        let set = KeySet::new(1, "stm32f405", &pk(1), &[pk(2)]).unwrap();
        let signed = SignedKeySet::sign(set, &sk(1)).unwrap();
        let mut buf = [0u8; MAX_KEYSET_LEN];
        assert_eq!(
            apply(&mut f, signed.encode(&mut buf)).err(),
            Some(Error::UnknownSigner(trusted(1).id()))
        );
        // Another device class.
        let set = KeySet::new(1, "stm32f407", &pk(ROOT), &[pk(2)]).unwrap();
        let signed = SignedKeySet::sign(set, &sk(ROOT)).unwrap();
        assert_eq!(
            apply(&mut f, signed.encode(&mut buf)).err(),
            Some(Error::WrongTarget)
        );
        // The factory set may not hold the root key either.
        assert!(TrustedSet::factory(&trusted(ROOT), &[trusted(1), trusted(ROOT)]).is_err());
        assert_eq!(ids(&current(&mut f).unwrap()), [trusted(1).id()]);
    }

    #[test]
    fn a_stored_set_is_verified_again_on_load() {
        let mut f = SimFlash::stm32f405();
        apply(&mut f, &keyset(1, &[2], ROOT)).unwrap();
        // A device whose firmware now carries another root fails closed.
        let other = with_store(&mut f, |s| {
            s.current(&trusted(0x51), "stm32f405", &factory())
        });
        assert_eq!(other.err(), Some(Error::CorruptState));
    }

    #[test]
    fn power_cut_while_applying_leaves_old_or_new() {
        let updates: Vec<Vec<u8>> = (1..=40u32)
            .map(|e| keyset(e, &[1 + (e % 3) as u8, 9], ROOT))
            .collect();
        let tears = Tear::clean_and_torn(100, 300, 0x0f);
        let points = each_power_cut(
            &tears,
            SimFlash::stm32f405,
            |f| updates.iter().take_while(|u| apply(f, u).is_ok()).count(),
            |f, acknowledged, cut| {
                let epoch = current(f).unwrap().epoch() as usize;
                assert!(
                    epoch == acknowledged || epoch == acknowledged + 1,
                    "{cut:?}: epoch {epoch} after acknowledging {acknowledged}"
                );
            },
        );
        // 40 appends over 32-slot banks: the cut points include a compaction.
        assert!(points >= 160, "{points}");
    }
}
