//! `sbsfu keyset create | inspect | verify`: key-set updates that rotate and revoke the signing
//! keys devices trust, signed by a root key that signs nothing else.

use std::fs::File;
use std::io::Read;
use std::path::Path;

use ed25519_dalek::VerifyingKey;
use sbsfu_device::{TrustedSet, check_newer};
use sbsfu_format::KeyId;
use sbsfu_format::SIGNATURE_LEN;
use sbsfu_format::{KEYSET_VERSION, KeySet, MAX_KEYSET_KEYS, MAX_KEYSET_LEN, SignedKeySet};
use serde::Serialize;

use crate::cli::{KeysetCreateArgs, KeysetVerifyArgs};
use crate::error::{Error, Result};
use crate::keys::{read_public_key, trusted_key};
use crate::output::{Output, PUBLIC, commit_all};
use crate::passphrase::Passphrase;
use crate::report::{Report, line};
use crate::signer::Signing;

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
    let root = trusted_key(root_path, root)?;
    let trusted =
        TrustedSet::from_update(set, &root, target).map_err(|e| Error::rejected(path, e))?;
    if let Some(current) = current_epoch {
        check_newer(set.set.epoch, current).map_err(|e| Error::rejected(path, e))?;
    }
    Ok(trusted)
}

/// `keyset create`: writes the set (signed, or unsigned beside the bytes to sign).
pub fn create(args: &KeysetCreateArgs, pass: &Passphrase) -> Result<Created> {
    if args.signers.len() > MAX_KEYSET_KEYS {
        return Err(Error::Usage(format!(
            "a key set trusts at most {MAX_KEYSET_KEYS} keys; {} given",
            args.signers.len()
        )));
    }
    let signing = Signing::read(&args.signer, &args.signed, pass)?;
    let root = signing.public();
    let root_id = KeyId::of_ed25519(root.as_bytes());
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
    match signing {
        Signing::Here { key, out: out_path } => {
            let signed = SignedKeySet::sign(set, &key)
                .map_err(|e| Error::Usage(format!("signing failed: {e}")))?;
            let mut out = Output::create(out_path, true, PUBLIC)?;
            out.write_all(signed.encode(&mut buf))?;
            out.commit()?;
            Ok(Created {
                file: out_path.display().to_string(),
                tbs_file: None,
                fields: KeySetFields::new(&signed),
            })
        }
        Signing::Elsewhere {
            unsigned: unsigned_path,
            tbs: tbs_path,
            ..
        } => {
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
            Ok(Created {
                file: unsigned_path.display().to_string(),
                tbs_file: Some(tbs_path.display().to_string()),
                fields: KeySetFields::new(&unsigned),
            })
        }
    }
}

/// `keyset inspect`: a key set's fields, nothing verified.
pub fn inspect(path: &Path) -> Result<Inspected> {
    let set = read(path)?;
    Ok(Inspected {
        file: path.display().to_string(),
        signature_verified: false,
        fields: KeySetFields::new(&set),
    })
}

/// `keyset verify`.
pub fn verify(args: &KeysetVerifyArgs, pass: &Passphrase) -> Result<Verified> {
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
    Ok(Verified {
        file: args.keyset.display().to_string(),
        verified: true,
        current_epoch: args.current_epoch,
        fields: KeySetFields::new(&set),
    })
}

/// A key set's fields, as `keyset create`, `inspect` and `verify` show them (stable JSON names,
/// documented in the README).
#[derive(Serialize)]
pub struct KeySetFields {
    format_version: u16,
    epoch: u32,
    target: String,
    root_key_id: String,
    signer_key_ids: Vec<String>,
    /// Whether the signature slot holds a signature.
    signed: bool,
}

impl KeySetFields {
    fn new(set: &SignedKeySet) -> Self {
        Self {
            format_version: KEYSET_VERSION,
            epoch: set.set.epoch,
            target: set.set.target.to_string(),
            root_key_id: set.set.root.to_string(),
            signer_key_ids: set
                .set
                .keys()
                .iter()
                .map(|k| KeyId::of_ed25519(k).to_string())
                .collect(),
            signed: set.signature != [0; SIGNATURE_LEN],
        }
    }

    /// The fields as aligned lines.
    fn lines(&self) -> String {
        let mut s = String::new();
        line(&mut s, "epoch", self.epoch);
        line(&mut s, "target", &self.target);
        line(&mut s, "root key id", &self.root_key_id);
        for (i, id) in self.signer_key_ids.iter().enumerate() {
            line(&mut s, if i == 0 { "trusted key ids" } else { "" }, id);
        }
        if !self.signed {
            line(&mut s, "signature", "none yet (attach-signature)");
        }
        s
    }
}

/// What `keyset create` wrote.
#[derive(Serialize)]
pub struct Created {
    file: String,
    /// With `--root-pubkey`: the bytes to sign.
    #[serde(skip_serializing_if = "Option::is_none")]
    tbs_file: Option<String>,
    #[serde(flatten)]
    fields: KeySetFields,
}

impl Report for Created {
    fn text(&self) -> String {
        let mut s = match &self.tbs_file {
            None => format!("wrote {}\n", self.file),
            Some(tbs) => format!(
                "wrote {} (unsigned) and {tbs}; sign that with the root key, then \
                 `sbsfu attach-signature`\n",
                self.file
            ),
        };
        s.push_str(&self.fields.lines());
        s
    }
}

/// `keyset inspect`.
#[derive(Serialize)]
pub struct Inspected {
    file: String,
    /// Always false: `inspect` verifies nothing.
    signature_verified: bool,
    #[serde(flatten)]
    fields: KeySetFields,
}

impl Report for Inspected {
    fn text(&self) -> String {
        let mut s = format!(
            "{}: signature NOT verified (use `sbsfu keyset verify`)\n",
            self.file
        );
        s.push_str(&self.fields.lines());
        s
    }
}

/// `keyset verify`.
#[derive(Serialize)]
pub struct Verified {
    file: String,
    /// Always true: a key set that does not verify is an error.
    verified: bool,
    #[serde(skip)]
    current_epoch: Option<u32>,
    #[serde(flatten)]
    fields: KeySetFields,
}

impl Report for Verified {
    fn text(&self) -> String {
        let newer = match self.current_epoch {
            Some(c) => format!(", newer than epoch {c}"),
            None => String::new(),
        };
        let mut s = format!(
            "OK: {}: signed by the root key, for {}{newer}\n",
            self.file, self.fields.target
        );
        s.push_str(&self.fields.lines());
        s
    }
}
