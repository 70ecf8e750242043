//! `sbsfu attach-signature`: completes an unsigned container or key set with a raw Ed25519
//! signature made elsewhere, after checking it.

use std::fs::{self, File};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::path::Path;

use ed25519_dalek::VerifyingKey;
use sbsfu_format::KeyId;
use sbsfu_format::PayloadLayout;
use sbsfu_format::{KEYSET_MAGIC, MAX_KEYSET_LEN, SignedKeySet};
use sbsfu_format::{MAX_HEAD_LEN, SIGNATURE_LEN, SignedHeader};

use crate::cli::AttachArgs;
use crate::error::{Error, Result};
use crate::keys::read_public_key;
use crate::output::{Output, PUBLIC};
use crate::passphrase::Passphrase;

/// Reads a raw 64-byte signature; 128 hex digits (whitespace ignored) are accepted too, as some
/// signing services print them.
pub fn read_signature(path: &Path) -> Result<[u8; SIGNATURE_LEN]> {
    let bytes = fs::read(path).map_err(|e| Error::io(path, e))?;
    if let Ok(raw) = <[u8; SIGNATURE_LEN]>::try_from(bytes.as_slice()) {
        return Ok(raw);
    }
    let digits: Vec<u8> = bytes
        .iter()
        .copied()
        .filter(|b| !b.is_ascii_whitespace())
        .collect();
    if digits.len() == 2 * SIGNATURE_LEN && digits.iter().all(u8::is_ascii_hexdigit) {
        let mut sig = [0u8; SIGNATURE_LEN];
        for (o, pair) in sig.iter_mut().zip(digits.chunks_exact(2)) {
            let s = std::str::from_utf8(pair).unwrap_or("00");
            *o = u8::from_str_radix(s, 16).unwrap_or(0);
        }
        return Ok(sig);
    }
    Err(Error::Input {
        path: path.to_owned(),
        reason: format!(
            "is {} bytes; a raw Ed25519 signature is 64 bytes (what `openssl pkeyutl -sign -rawin` writes)",
            bytes.len()
        ),
    })
}

/// Checks `args.sig` against `args.unsigned` under `args.pubkey` and writes the signed file;
/// returns what it prints.
pub fn attach(args: &AttachArgs, pass: &Passphrase) -> Result<String> {
    let what = attach_to(args, pass)?;
    Ok(format!(
        "wrote {} (signed {what}; the signature verified under {})\n",
        args.out.display(),
        args.pubkey.display()
    ))
}

/// [`attach`]; returns what was signed.
fn attach_to(args: &AttachArgs, pass: &Passphrase) -> Result<&'static str> {
    let key = read_public_key(&args.pubkey, pass)?;
    let signature = read_signature(&args.sig)?;
    let path = &args.unsigned;
    let mut file = File::open(path).map_err(|e| Error::io(path, e))?;
    let file_len = file.metadata().map_err(|e| Error::io(path, e))?.len();
    let mut head = Vec::new();
    Read::by_ref(&mut file)
        .take(MAX_HEAD_LEN.max(MAX_KEYSET_LEN) as u64 + 1)
        .read_to_end(&mut head)
        .map_err(|e| Error::io(path, e))?;

    if head.starts_with(&KEYSET_MAGIC) {
        let mut set = SignedKeySet::parse(&head).map_err(|e| Error::rejected(path, e))?;
        if set.signature != [0; SIGNATURE_LEN] {
            return Err(already_signed(path));
        }
        check_signer(&args.pubkey, &key, set.set.root, "key set's root")?;
        set.message
            .verify(&key, &signature)
            .map_err(|_| bad_signature(args))?;
        set.signature = signature;
        let mut buf = [0u8; MAX_KEYSET_LEN];
        let mut out = Output::create(&args.out, true, PUBLIC)?;
        out.write_all(set.encode(&mut buf))?;
        out.commit()?;
        return Ok("key set");
    }

    let (parsed, _) = SignedHeader::parse(&head).map_err(|e| Error::rejected(path, e))?;
    if parsed.signature != [0; SIGNATURE_LEN] {
        return Err(already_signed(path));
    }
    check_signer(
        &args.pubkey,
        &key,
        parsed.header.signer,
        "container's signer",
    )?;
    parsed
        .message
        .verify(&key, &signature)
        .map_err(|_| bad_signature(args))?;
    let header_len = parsed.message.header_bytes().len();
    let declared = PayloadLayout::of(&parsed.header)
        .map_err(|e| Error::rejected(path, e))?
        .container_len(header_len);
    if file_len != declared {
        let e = if file_len < declared {
            sbsfu_device::Error::Truncated
        } else {
            sbsfu_device::Error::TrailingBytes
        };
        return Err(Error::rejected(path, e));
    }
    let mut out = Output::create(&args.out, true, PUBLIC)?;
    copy_with_signature(
        &mut file,
        out.file(),
        parsed.message.container_bytes().len() as u64,
        &signature,
    )
    .map_err(|e| Error::io(&args.out, e))?;
    out.commit()?;
    Ok("container")
}

fn copy_with_signature(
    from: &mut File,
    to: &mut File,
    at: u64,
    signature: &[u8; SIGNATURE_LEN],
) -> io::Result<()> {
    from.seek(SeekFrom::Start(0))?;
    let mut w = io::BufWriter::with_capacity(1 << 16, to);
    io::copy(from, &mut w)?;
    w.seek(SeekFrom::Start(at))?;
    w.write_all(signature)?;
    w.flush()
}

fn check_signer(path: &Path, key: &VerifyingKey, named: KeyId, what: &str) -> Result<()> {
    let id = KeyId::of_ed25519(key.as_bytes());
    if id != named {
        return Err(Error::key(
            path,
            format!("is key {id}, but the {what} is key {named}"),
        ));
    }
    Ok(())
}

fn already_signed(path: &Path) -> Error {
    Error::Usage(format!(
        "{}: already carries a signature; attach-signature completes the --unsigned-out file",
        path.display()
    ))
}

fn bad_signature(args: &AttachArgs) -> Error {
    Error::Signature {
        sig: args.sig.clone(),
        pubkey: args.pubkey.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signatures_raw_or_hex() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("s");
        let sig: [u8; 64] = core::array::from_fn(|i| i as u8);
        fs::write(&p, sig).unwrap();
        assert_eq!(read_signature(&p).unwrap(), sig);
        let hex: String = sig.iter().map(|b| format!("{b:02X}")).collect();
        fs::write(&p, format!("{}\n{}\n", &hex[..64], &hex[64..])).unwrap();
        assert_eq!(read_signature(&p).unwrap(), sig);
        fs::write(&p, [0u8; 63]).unwrap();
        let e = read_signature(&p).unwrap_err().to_string();
        assert!(e.contains("is 63 bytes"), "{e}");
    }
}
