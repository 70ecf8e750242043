//! Who signs a container (`sign`) or a key set (`keyset create`), and where the result goes:
//! the one reading of `--key`/`--pubkey` (`--root-key`/`--root-pubkey`) and the output options.

use std::path::Path;

use ed25519_dalek::{SigningKey, VerifyingKey};
use sbsfu_format::KeyId;

use crate::cli::{SignedOutputArgs, SignerArgs, SignerRole};
use crate::error::{Error, Result};
use crate::keys::{is_dev_key, read_public_key, read_signing_key};
use crate::passphrase::Passphrase;

/// A signer here and its output, or a signer elsewhere and the two files it needs.
pub enum Signing<'a> {
    /// Sign with `key`, write the signed file to `out`.
    Here { key: SigningKey, out: &'a Path },
    /// Write the file with its signature zeroed to `unsigned`, and the bytes the signer
    /// elsewhere (holding `public`'s key) signs to `tbs`.
    Elsewhere {
        public: VerifyingKey,
        unsigned: &'a Path,
        tbs: &'a Path,
    },
}

impl<'a> Signing<'a> {
    /// Reads the signer's key and pairs it with its outputs. A published development key is
    /// refused unless `--allow-dev-key` is given.
    pub fn read<R: SignerRole>(
        signer: &'a SignerArgs<R>,
        output: &'a SignedOutputArgs,
        pass: &Passphrase,
    ) -> Result<Self> {
        let (signing, path) = match (
            &signer.key,
            &signer.pubkey,
            &output.out,
            &output.unsigned_out,
            &output.tbs_out,
        ) {
            (Some(key), _, Some(out), _, _) => (
                Signing::Here {
                    key: read_signing_key(key, pass)?,
                    out,
                },
                key,
            ),
            (None, Some(public), _, Some(unsigned), Some(tbs)) => (
                Signing::Elsewhere {
                    public: read_public_key(public, pass)?,
                    unsigned,
                    tbs,
                },
                public,
            ),
            // clap requires one of these pairings; say which, should it ever let another by.
            _ => {
                let [key, public] = R::OPTIONS;
                return Err(Error::Usage(format!(
                    "give --{key} with --out, or --{public} with --unsigned-out and --tbs-out"
                )));
            }
        };
        if is_dev_key(KeyId::of_ed25519(signing.public().as_bytes())) && !output.allow_dev_key {
            return Err(Error::DevKey(path.clone()));
        }
        Ok(signing)
    }

    /// The signer's public key.
    pub fn public(&self) -> VerifyingKey {
        match self {
            Signing::Here { key, .. } => key.verifying_key(),
            Signing::Elsewhere { public, .. } => *public,
        }
    }
}
