//! `sbsfu keyset create | inspect | verify`: key-set updates that rotate and revoke the signing
//! keys devices trust, signed by a root key that signs nothing else.

use std::fmt::Write as _;
use std::fs::File;
use std::io::Read;
use std::path::Path;

use ed25519_dalek::VerifyingKey;
use sbsfu_device::TrustedKey;
use sbsfu_device::{TrustedSet, check_newer};
use sbsfu_format::KeyId;
use sbsfu_format::SIGNATURE_LEN;
use sbsfu_format::{KEYSET_VERSION, KeySet, MAX_KEYSET_KEYS, MAX_KEYSET_LEN, SignedKeySet};
use serde_json::{Map, Value, json};

use crate::cli::{KeysetCreateArgs, KeysetVerifyArgs};
use crate::error::{Error, Result};
use crate::keys::{is_dev_key, read_public_key, read_signing_key};
use crate::output::{Output, PUBLIC, commit_all};
use crate::passphrase::Passphrase;

/// Reads and parses a key-set file (nothing verified).
pub fn read(path: &Path) -> Result<SignedKeySet> {
    let mut bytes = Vec::new();
    File::open(path)
        .and_then(|f| f.take(MAX_KEYSET_LEN as u64 + 1).read_to_end(&mut bytes))
        .map_err(|e| Error::io(path, e))?;
    SignedKeySet::parse(&bytes).map_err(|e| Error::rejected(path, e))
}

/// Verifies `set` as a device holding `root` for `target` would (the device's own check), and,
/// given the epoch the device holds, that it is newer; returns the keys it puts in force.
pub fn check(
    path: &Path,
    set: &SignedKeySet,
    root: (&Path, &VerifyingKey),
    target: &str,
    current_epoch: Option<u32>,
) -> Result<TrustedSet> {
    let (root_path, root) = root;
    let root = TrustedKey::from_bytes(root.as_bytes())
        .map_err(|_| Error::key(root_path, "is a weak or invalid Ed25519 key"))?;
    let trusted =
        TrustedSet::from_update(set, &root, target).map_err(|e| Error::rejected(path, e))?;
    if let Some(current) = current_epoch {
        check_newer(set.set.epoch, current).map_err(|e| Error::rejected(path, e))?;
    }
    Ok(trusted)
}

/// `keyset create`: returns the set and the file(s) written.
pub fn create(args: &KeysetCreateArgs, pass: &Passphrase) -> Result<SignedKeySet> {
    if args.signers.len() > MAX_KEYSET_KEYS {
        return Err(Error::Usage(format!(
            "a key set trusts at most {MAX_KEYSET_KEYS} keys; {} given",
            args.signers.len()
        )));
    }
    let (root_key, root_path) = match (&args.root_key, &args.root_pubkey) {
        (Some(p), _) => (Some(read_signing_key(p, pass)?), p),
        (None, Some(p)) => (None, p),
        (None, None) => return Err(Error::Usage("give --root-key or --root-pubkey".into())),
    };
    let root = match &root_key {
        Some(k) => k.verifying_key(),
        None => read_public_key(root_path, pass)?,
    };
    let root_id = KeyId::of_ed25519(root.as_bytes());
    if is_dev_key(root_id) && !args.allow_dev_key {
        return Err(Error::DevKey(root_path.clone()));
    }
    let mut keys: Vec<[u8; 32]> = Vec::new();
    for p in &args.signers {
        let k = read_public_key(p, pass)?.to_bytes();
        let id = KeyId::of_ed25519(&k);
        if id == root_id {
            return Err(Error::Usage(format!(
                "{}: is the root key; the root key signs key sets only, never firmware",
                p.display()
            )));
        }
        if keys.contains(&k) {
            return Err(Error::Usage(format!(
                "{}: key {id} is listed twice",
                p.display()
            )));
        }
        keys.push(k);
    }
    let set =
        KeySet::new(args.epoch, &args.target, root.as_bytes(), &keys).map_err(|e| match e {
            sbsfu_format::Error::InvalidName => Error::Usage(format!(
                "invalid target `{}`: 1 to 32 of a-z 0-9 . _ -, starting with a letter or digit",
                args.target
            )),
            other => Error::Usage(format!("invalid key set: {other}")),
        })?;
    let mut buf = [0u8; MAX_KEYSET_LEN];
    match (&root_key, &args.out, &args.unsigned_out, &args.tbs_out) {
        (Some(k), Some(out_path), _, _) => {
            let signed = SignedKeySet::sign(set, k)
                .map_err(|e| Error::Usage(format!("signing failed: {e}")))?;
            let mut out = Output::create(out_path, true, PUBLIC)?;
            out.write_all(signed.encode(&mut buf))?;
            out.commit()?;
            Ok(signed)
        }
        (None, _, Some(unsigned_path), Some(tbs_path)) => {
            let message = set
                .message()
                .map_err(|e| Error::Usage(format!("encoding failed: {e}")))?;
            let unsigned = SignedKeySet {
                set,
                message,
                signature: [0; SIGNATURE_LEN],
            };
            let mut u = Output::create(unsigned_path, true, PUBLIC)?;
            u.write_all(unsigned.encode(&mut buf))?;
            let mut t = Output::create(tbs_path, true, PUBLIC)?;
            t.write_all(unsigned.message.as_bytes())?;
            commit_all(vec![t, u])?;
            Ok(unsigned)
        }
        _ => Err(Error::Usage(
            "give --root-key with --out, or --root-pubkey with --unsigned-out and --tbs-out".into(),
        )),
    }
}

/// `keyset verify`.
pub fn verify(args: &KeysetVerifyArgs, pass: &Passphrase) -> Result<SignedKeySet> {
    let set = read(&args.keyset)?;
    let root = read_public_key(&args.root, pass)?;
    let target = args
        .target
        .clone()
        .unwrap_or_else(|| set.set.target.as_str().to_owned());
    check(
        &args.keyset,
        &set,
        (&args.root, &root),
        &target,
        args.current_epoch,
    )?;
    Ok(set)
}

/// The key set's fields as JSON (stable names, documented in the README).
pub fn json(set: &SignedKeySet) -> Map<String, Value> {
    let mut m = Map::new();
    m.insert("format_version".into(), json!(KEYSET_VERSION));
    m.insert("epoch".into(), json!(set.set.epoch));
    m.insert("target".into(), json!(set.set.target.as_str()));
    m.insert("root_key_id".into(), json!(set.set.root.to_string()));
    let ids: Vec<String> = set
        .set
        .keys()
        .iter()
        .map(|k| KeyId::of_ed25519(k).to_string())
        .collect();
    m.insert("signer_key_ids".into(), json!(ids));
    m.insert("signed".into(), json!(set.signature != [0; SIGNATURE_LEN]));
    m
}

/// The key set's fields as aligned lines.
pub fn lines(set: &SignedKeySet) -> String {
    let mut s = String::new();
    let mut line = |k: &str, v: String| {
        let _ = writeln!(s, "  {k:<17}{v}");
    };
    line("epoch", set.set.epoch.to_string());
    line("target", set.set.target.to_string());
    line("root key id", set.set.root.to_string());
    for (i, k) in set.set.keys().iter().enumerate() {
        let name = if i == 0 { "trusted key ids" } else { "" };
        line(name, KeyId::of_ed25519(k).to_string());
    }
    if set.signature == [0; SIGNATURE_LEN] {
        line("signature", "none yet (attach-signature)".into());
    }
    s
}
