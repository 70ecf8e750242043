//! Key rotation and revocation: which keys may sign firmware, under a root key.
//!
//! A device ships with a factory set of signing keys (epoch 0) and the public half of a root key
//! that signs nothing but key sets. A key-set update (`sbsfu keyset create`) names new signing
//! keys under a higher epoch; [`KeyStore::apply`] verifies it under the root key and records it in
//! a power-safe [`RecordLog`], after which [`KeyStore::current`] gives the new keys and containers
//! signed by dropped keys fail with [`Error::UnknownSigner`]. An update with a lower epoch than
//! the set in force, or the same epoch but other keys, is [`Error::StaleKeySet`]. The stored set
//! is verified again under the root key every time it is loaded.

use sbsfu_format::keyset::{MAX_KEYSET_KEYS, MAX_KEYSET_LEN, SignedKeySet};

use crate::Error;
use crate::flash::Region;
use crate::journal::{MAX_PAYLOAD, RecordLog};
use crate::keys::TrustedKey;

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

/// The applied key sets, in their own power-safe record log (two banks of flash).
pub struct KeyStore<'r> {
    log: RecordLog<'r>,
}

impl<'r> KeyStore<'r> {
    /// Mounts the store on two banks.
    pub fn mount(banks: [&'r mut dyn Region; 2]) -> Result<Self, Error> {
        Ok(Self {
            log: RecordLog::mount(banks)?,
        })
    }

    /// The newest stored key set, verified again under `root` for `target`; `None` if no update
    /// was ever applied. A stored set that no longer verifies is [`Error::CorruptState`]: the
    /// device fails closed rather than fall back to older keys.
    fn stored(&mut self, root: &TrustedKey, target: &str) -> Result<Option<SignedKeySet>, Error> {
        let mut buf = [0u8; MAX_PAYLOAD];
        let Some(len) = self.log.read_latest(&mut buf)? else {
            return Ok(None);
        };
        let bytes = buf.get(..len).ok_or(Error::CorruptState)?;
        let set = SignedKeySet::parse(bytes).map_err(|_| Error::CorruptState)?;
        check(&set, root, target).map_err(|_| Error::CorruptState)?;
        Ok(Some(set))
    }

    /// The keys in force: the newest applied set, else `factory`.
    pub fn current(
        &mut self,
        root: &TrustedKey,
        target: &str,
        factory: &TrustedSet,
    ) -> Result<TrustedSet, Error> {
        match self.stored(root, target)? {
            Some(set) => TrustedSet::from_signed(&set),
            None => Ok(factory.clone()),
        }
    }

    /// Verifies the key-set file `update` under `root` and makes it the set in force. Power
    /// safe: a cut at any point leaves either the previous set or the new one in force. Applying
    /// the set already in force again succeeds and writes nothing.
    pub fn apply(
        &mut self,
        update: &[u8],
        root: &TrustedKey,
        target: &str,
        factory: &TrustedSet,
    ) -> Result<TrustedSet, Error> {
        let new = SignedKeySet::parse(update)?;
        check(&new, root, target)?;
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
        };
        if new.set.epoch <= current_epoch {
            return Err(Error::StaleKeySet {
                epoch: new.set.epoch,
                current: current_epoch,
            });
        }
        let trusted = TrustedSet::from_signed(&new)?;
        self.log.append(update)?;
        Ok(trusted)
    }
}

/// Root key, signature, target: in that order, so a set signed by any other key (a firmware key
/// included) is named as such before its signature is even looked at.
fn check(set: &SignedKeySet, root: &TrustedKey, target: &str) -> Result<(), Error> {
    if set.set.root != root.id() {
        return Err(Error::UnknownSigner(set.set.root));
    }
    set.verify(root.verifying_key())?;
    if set.set.target.as_str() != target {
        return Err(Error::WrongTarget);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::flash::{FlashRegion, Shared};
    use crate::sim::{SimFlash, Tear, each_power_cut};
    use ed25519_dalek::SigningKey;
    use sbsfu_format::KeyId;
    use sbsfu_format::keyset::KeySet;
    use std::vec::Vec;

    fn sk(seed: u8) -> SigningKey {
        SigningKey::from_bytes(&[seed; 32])
    }

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
        let map = flash.geometry();
        let cell = core::cell::RefCell::new(flash);
        let mut a = FlashRegion::new("a", Shared(&cell), map.clone(), 0, 0x8000, 0x4000).unwrap();
        let mut b = FlashRegion::new("b", Shared(&cell), map, 0, 0xC000, 0x4000).unwrap();
        let mut s = KeyStore::mount([&mut a, &mut b]).unwrap();
        f(&mut s)
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
        let tears = [
            Tear::Before,
            Tear::After,
            Tear::Prefix(100),
            Tear::PartialByte { n: 300, mask: 0x0f },
        ];
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
