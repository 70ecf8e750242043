//! `sbsfu sign`: image in, container out, streamed.

use std::fs::File;
use std::io::{BufReader, Write};
use std::path::Path;

use sbsfu_format::header::MAX_IMAGE_LEN;
use sbsfu_format::seal::{EncryptParams, SealParams, Sealed, seal, write_signature};
use sbsfu_format::{ContentKey, KeyId};

use crate::cli::SignArgs;
use crate::error::{Error, Result};
use crate::keys::{is_dev_key, random_bytes, read_device_key, read_signing_key};
use crate::output::{Output, PUBLIC};

/// What `sign` produced.
pub struct Signed {
    /// The sealed, signed container's header and message.
    pub sealed: Sealed,
}

/// Signs (and encrypts) `args.input` into `args.out`.
pub fn sign(args: &SignArgs) -> Result<Signed> {
    let key = read_signing_key(&args.key)?;
    let public = key.verifying_key().to_bytes();
    if is_dev_key(KeyId::of_ed25519(&public)) && !args.allow_dev_key {
        return Err(Error::DevKey(args.key.clone()));
    }
    let device_key = match &args.encrypt_key {
        Some(p) => {
            let k = read_device_key(p)?;
            if is_dev_key(k.id()) && !args.allow_dev_key {
                return Err(Error::DevKey(p.clone()));
            }
            Some(k)
        }
        None => None,
    };

    let file = File::open(&args.input).map_err(|e| Error::io(&args.input, e))?;
    let len = file
        .metadata()
        .map_err(|e| Error::io(&args.input, e))?
        .len();
    let image_len = u32::try_from(len)
        .ok()
        .filter(|l| *l <= MAX_IMAGE_LEN)
        .ok_or_else(|| Error::Input {
            path: args.input.clone(),
            reason: format!("image is {len} bytes; the maximum is {MAX_IMAGE_LEN}"),
        })?;
    let load_address = args.load_address.ok_or_else(|| {
        Error::Usage("a raw binary carries no address: give --load-address".into())
    })?;

    let rng_err = |e| Error::io(&args.out, e);
    let encryption = match &device_key {
        Some(device_key) => Some(EncryptParams {
            device_key,
            content_key: ContentKey::from_bytes(random_bytes().map_err(rng_err)?),
            wrap_nonce: random_bytes().map_err(rng_err)?,
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
    params
        .header_template(image_len)
        .map_err(|e| Error::Usage(format!("invalid header: {e}")))?;

    let mut out = Output::create(&args.out, true, PUBLIC)?;
    let sealed = write_container(&params, &key, &args.input, file, image_len, &mut out)?;
    out.commit()?;
    Ok(Signed { sealed })
}

fn write_container(
    params: &SealParams<'_>,
    key: &ed25519_dalek::SigningKey,
    input_path: &Path,
    input: File,
    image_len: u32,
    out: &mut Output,
) -> Result<Sealed> {
    let path = out.path().to_owned();
    let mut reader = BufReader::with_capacity(1 << 16, input);
    let mut writer = out.writer();
    let sealed = seal(params, &mut reader, image_len, &mut writer).map_err(|e| {
        if e.kind() == std::io::ErrorKind::UnexpectedEof {
            Error::Input {
                path: input_path.to_owned(),
                reason: "image changed size while it was being read".into(),
            }
        } else {
            Error::io(&path, e)
        }
    })?;
    let signature = sealed.message.sign(key);
    write_signature(&mut writer, &sealed, &signature).map_err(|e| Error::io(&path, e))?;
    writer.flush().map_err(|e| Error::io(&path, e))?;
    Ok(sealed)
}
