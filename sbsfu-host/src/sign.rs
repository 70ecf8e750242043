//! `sbsfu sign`: image in, container out, streamed. With a local key the container is signed at
//! once; with `--pubkey` it is written unsigned beside the exact bytes an external signer (HSM,
//! signing service, `openssl pkeyutl`) must sign, for `attach-signature` to complete.

use std::io::Write;
use std::path::Path;

use sbsfu_format::MAX_IMAGE_LEN;
use sbsfu_format::{ContentKey, MAX_RECIPIENTS};
use sbsfu_format::{
    EncryptParams, Prepared, RecipientKey, SealParams, Sealed, Threads, Wrap, write_signature,
};
use serde::Serialize;
use zeroize::Zeroizing;

use crate::cli::SignArgs;
use crate::error::{Error, Result};
use crate::image::extents::LeftOut;
use crate::image::{self, Image, Kind, Options};
use crate::keys::{is_dev_key, random_bytes, read_device_key, read_recipient_key, x25519_key_id};
use crate::output::{Output, PUBLIC, commit_all};
use crate::passphrase::Passphrase;
use crate::report::{HeaderFields, Report, line};
use crate::signer::Signing;

/// What `sign` wrote.
#[derive(Serialize)]
pub struct Signed {
    /// Where the container went.
    file: String,
    /// What the input was.
    input_format: &'static str,
    /// False with `--pubkey`: the container waits for `attach-signature`.
    signed: bool,
    /// What the input holds that is not in the image (`--address-range`, unloaded sections).
    left_out: Vec<LeftOut>,
    /// With `--pubkey`: where the bytes to sign went.
    #[serde(skip_serializing_if = "Option::is_none")]
    tbs_file: Option<String>,
    #[serde(flatten)]
    fields: HeaderFields,
    /// Length of the bytes to sign.
    #[serde(skip)]
    tbs_len: usize,
}

impl Signed {
    /// What the input holds that is not in the image.
    pub fn left_out(&self) -> &[LeftOut] {
        &self.left_out
    }
}

impl Report for Signed {
    fn text(&self) -> String {
        let mut s = match &self.tbs_file {
            None => format!("wrote {}\n", self.file),
            Some(tbs) => format!(
                "wrote {} (unsigned) and {tbs} ({} bytes to sign with Ed25519); then \
                 `sbsfu attach-signature`\n",
                self.file, self.tbs_len
            ),
        };
        line(&mut s, "input", self.input_format);
        s.push_str(&self.fields.lines());
        s
    }
}

impl Signed {
    fn new(
        sealed: &Sealed,
        input: Kind,
        file: &Path,
        tbs: Option<&Path>,
        left_out: Vec<LeftOut>,
    ) -> Self {
        Self {
            file: file.display().to_string(),
            input_format: input.name(),
            signed: tbs.is_none(),
            left_out,
            tbs_file: tbs.map(|t| t.display().to_string()),
            fields: HeaderFields::new(&sealed.header, sealed.message.header_bytes().len()),
            tbs_len: sealed.message.as_bytes().len(),
        }
    }
}

/// Signs (and encrypts) `args.input`.
pub fn sign(args: &SignArgs, pass: &Passphrase) -> Result<Signed> {
    let signing = Signing::read(&args.signer, &args.signed, pass)?;
    let public = signing.public().to_bytes();
    let device_key = match &args.encrypt_key {
        Some(p) => {
            let k = read_device_key(p, pass)?;
            if k.public_key().is_some() {
                return Err(Error::key(
                    p,
                    "is an X25519 private key: encrypt to its public key with --encrypt-to",
                ));
            }
            if is_dev_key(k.id()) && !args.signed.allow_dev_key {
                return Err(Error::DevKey(p.clone()));
            }
            Some(k)
        }
        None => None,
    };
    let mut recipients = read_recipients(&args.encrypt_to, args.signed.allow_dev_key)?;
    if let (Some(fleet), Some(serial)) = (&args.encrypt_to_fleet, &args.serial) {
        let key = crate::provision::fleet_recipient(fleet, serial)?;
        if recipients.contains(&key) {
            return Err(Error::Usage(format!(
                "--encrypt-to names device {serial}'s key already"
            )));
        }
        if recipients.len() == MAX_RECIPIENTS {
            return Err(Error::Usage(format!(
                "a container has at most {MAX_RECIPIENTS} recipients"
            )));
        }
        recipients.push(key);
    }

    let image = image::open(
        &args.input,
        &Options {
            format: args.input_format,
            load_address: args.load_address,
            window: args.address_range,
            max_span: args.max_span,
        },
    )?;
    let len = image.len();
    // The bound itself is the header's to check (`MAX_IMAGE_LEN`, in `prepare` below); here it
    // is only said in terms of the input.
    let too_large = || Error::Input {
        path: args.input.clone(),
        reason: format!("image is {len} bytes; the maximum is {MAX_IMAGE_LEN}"),
    };
    let image_len = u32::try_from(len).map_err(|_| too_large())?;
    let load_address = image.load_address();

    let rng_err = |e| Error::io(&args.input, e);
    // Every secret of the container comes from the OS here, fresh: the content key, the
    // nonces, and one ephemeral X25519 key per recipient.
    let wrap = match (&device_key, recipients.is_empty()) {
        (Some(key), _) => Some(Wrap::DeviceKey {
            key,
            nonce: random_bytes().map_err(rng_err)?,
        }),
        (None, false) => Some(Wrap::Recipients(
            recipients
                .iter()
                .map(|public_key| {
                    Ok(RecipientKey {
                        public_key: *public_key,
                        ephemeral: Zeroizing::new(random_bytes().map_err(rng_err)?),
                    })
                })
                .collect::<Result<_>>()?,
        )),
        (None, true) => None,
    };
    let encryption = match wrap {
        Some(wrap) => Some(EncryptParams {
            wrap,
            content_key: ContentKey::from_bytes(random_bytes().map_err(rng_err)?),
            nonce_prefix: random_bytes().map_err(rng_err)?,
        }),
        None => None,
    };
    let params = SealParams {
        signer: public,
        target: &args.target,
        version: args.version,
        security_counter: args.security_counter,
        region: &args.region,
        load_address,
        chunk_size: args.chunk_size,
        encryption,
    };
    let prepared = params.prepare(image_len).map_err(|e| match e {
        sbsfu_format::Error::ImageTooLarge(_) => too_large(),
        e => Error::Usage(format!("invalid header: {e}")),
    })?;

    let input = image.kind();
    let left_out = image.left_out().to_vec();
    match signing {
        Signing::Here { key, out: out_path } => {
            let mut out = Output::create(out_path, true, PUBLIC)?;
            let sealed = seal_image(&prepared, &args.input, &image, &mut out)?;
            let signature = sealed.message.sign(&key);
            let mut w = out.writer();
            write_signature(&mut w, &sealed, &signature).map_err(|e| Error::io(out_path, e))?;
            w.flush().map_err(|e| Error::io(out_path, e))?;
            drop(w);
            out.commit()?;
            Ok(Signed::new(&sealed, input, out_path, None, left_out))
        }
        Signing::Elsewhere {
            unsigned: unsigned_path,
            tbs: tbs_path,
            ..
        } => {
            let mut unsigned = Output::create(unsigned_path, true, PUBLIC)?;
            let mut tbs = Output::create(tbs_path, true, PUBLIC)?;
            let sealed = seal_image(&prepared, &args.input, &image, &mut unsigned)?;
            tbs.write_all(sealed.message.as_bytes())?;
            commit_all(vec![tbs, unsigned])?;
            Ok(Signed::new(
                &sealed,
                input,
                unsigned_path,
                Some(tbs_path),
                left_out,
            ))
        }
    }
}

/// The X25519 public keys of `--encrypt-to`: at most [`MAX_RECIPIENTS`], each once.
fn read_recipients(paths: &[std::path::PathBuf], allow_dev_key: bool) -> Result<Vec<[u8; 32]>> {
    if paths.len() > MAX_RECIPIENTS {
        return Err(Error::Usage(format!(
            "--encrypt-to names {} keys; a container has at most {MAX_RECIPIENTS} recipients",
            paths.len()
        )));
    }
    let mut keys: Vec<[u8; 32]> = Vec::with_capacity(paths.len());
    for p in paths {
        let key = read_recipient_key(p)?;
        if is_dev_key(x25519_key_id(&key)) && !allow_dev_key {
            return Err(Error::DevKey(p.clone()));
        }
        if keys.contains(&key) {
            return Err(Error::Usage(format!(
                "--encrypt-to names key {} twice ({})",
                x25519_key_id(&key),
                p.display()
            )));
        }
        keys.push(key);
    }
    Ok(keys)
}

/// Seals `image` into `out`, leaving the signature slot zeroed: reading and hashing on a second
/// core while this one writes the payload (the bytes are those of a single-threaded seal). Each
/// byte of the input is read once, so a file rewritten meanwhile still seals into a container
/// that verifies.
fn seal_image(
    prepared: &Prepared,
    input_path: &Path,
    image: &Image,
    out: &mut Output,
) -> Result<Sealed> {
    let path = out.path().to_owned();
    let sealed = prepared
        .seal(image.reader(), out.file(), Threads::Two)
        .map_err(|e| {
            if e.kind() == std::io::ErrorKind::UnexpectedEof {
                Error::Input {
                    path: input_path.to_owned(),
                    reason: "image changed size while it was being read".into(),
                }
            } else {
                Error::io(&path, e)
            }
        })?;
    Ok(sealed)
}
