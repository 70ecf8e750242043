//! The `sbsfu` command line, as a library: each command is a function the binary and the tests
//! call. Verification runs the `sbsfu-device` installer itself, so the host accepts exactly what
//! a device accepts.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod attach;
pub mod cli;
pub mod constant;
pub mod digest_thread;
pub mod error;
pub mod export_key;
pub mod image;
pub mod inspect;
pub mod keygen;
pub mod keys;
pub mod keyset;
pub mod output;
pub mod passphrase;
pub mod pem;
pub mod report;
pub mod sign;
pub mod verify;

use std::fmt::Write as _;
use std::io::{self, Write};

use serde_json::{Map, Value, json};

use crate::attach::Attached;
use crate::cli::{Cli, Command, KeysetCommand};
use crate::error::{Error, Result};
use crate::output::{Output, SECRET};
use crate::passphrase::Passphrase;
use crate::verify::run_device;

/// Runs one command and returns what it prints on standard output.
pub fn run(cli: &Cli) -> Result<Vec<u8>> {
    let pass = Passphrase::new(cli.passphrase_file.clone());
    let mut out = String::new();
    match &cli.command {
        Command::Keygen(a) => {
            let _ = writeln!(out, "{}", keygen::keygen(a, &pass)?);
        }
        Command::Pubkey(a) => return keygen::pubkey(a, &pass),
        Command::ExportKey(a) => return export_key::export_key(a, &pass).map(|b| b.to_vec()),
        Command::Sign(a) => {
            let signed = sign::sign(a, &pass)?;
            for l in &signed.left_out {
                note(&format!("{}: {l}", a.input.display()));
            }
            let h = &signed.sealed.header;
            let header_len = signed.sealed.message.header_bytes().len();
            let file = signed.file.display().to_string();
            if a.json {
                let mut m = report::header_json(h, header_len);
                m.insert("file".into(), json!(file));
                m.insert("input_format".into(), json!(signed.input.name()));
                m.insert("signed".into(), json!(signed.tbs.is_none()));
                let left_out: Vec<Value> = signed
                    .left_out
                    .iter()
                    .map(|l| json!({"start": l.start, "end": l.end, "from": l.origin.to_string()}))
                    .collect();
                m.insert("left_out".into(), Value::Array(left_out));
                if let Some(tbs) = &signed.tbs {
                    m.insert("tbs_file".into(), json!(tbs.display().to_string()));
                }
                json_into(&mut out, m);
            } else {
                match &signed.tbs {
                    None => {
                        let _ = writeln!(out, "wrote {file}");
                    }
                    Some(tbs) => {
                        let _ = writeln!(
                            out,
                            "wrote {file} (unsigned) and {} ({} bytes to sign with Ed25519); then \
                             `sbsfu attach-signature`",
                            tbs.display(),
                            signed.sealed.message.as_bytes().len()
                        );
                    }
                }
                let _ = writeln!(out, "  {:<17}{}", "input", signed.input.name());
                out.push_str(&report::header_lines(h, header_len));
            }
        }
        Command::Inspect(a) => {
            let i = inspect::inspect(&a.container)?;
            let header_len = i.head.message.header_bytes().len();
            if a.json {
                let mut m = report::header_json(&i.head.header, header_len);
                m.insert("file".into(), json!(a.container.display().to_string()));
                m.insert("file_len".into(), json!(i.file_len));
                m.insert("signature_verified".into(), json!(false));
                json_into(&mut out, m);
            } else {
                let length = match i.file_len.cmp(&i.declared_len) {
                    std::cmp::Ordering::Equal => "matches the header",
                    std::cmp::Ordering::Less => "SHORTER than the header declares (truncated)",
                    std::cmp::Ordering::Greater => {
                        "LONGER than the header declares (trailing bytes)"
                    }
                };
                let _ = writeln!(
                    out,
                    "{}: signature NOT verified (use `sbsfu verify`)",
                    a.container.display()
                );
                out.push_str(&report::header_lines(&i.head.header, header_len));
                let _ = writeln!(out, "  {:<17}{} bytes, {length}", "file", i.file_len);
            }
        }
        Command::Verify(a) => {
            let v = run_device(&a.container, &a.device, &pass, &mut io::sink())?;
            if a.json {
                let mut m = report::header_json(&v.header, v.header_len);
                m.insert("file".into(), json!(a.container.display().to_string()));
                m.insert("verified".into(), json!(true));
                m.insert("payload_checked".into(), json!(v.payload_checked));
                json_into(&mut out, m);
            } else {
                if v.payload_checked {
                    let _ = writeln!(
                        out,
                        "OK: {} would install on {}: signature, every chunk and the image digest verified",
                        a.container.display(),
                        v.header.target
                    );
                } else {
                    let _ = writeln!(
                        out,
                        "HEADER OK: {}: signature, target and security counter verified; payload NOT \
                         checked (encrypted, no --decrypt-key given)",
                        a.container.display()
                    );
                }
                out.push_str(&report::header_lines(&v.header, v.header_len));
            }
        }
        Command::Decrypt(a) => {
            // The plaintext image is private, like keys: mode 0600.
            let mut file = Output::create(&a.out, true, SECRET)?;
            let v = {
                let mut w = file.writer();
                let v = run_device(&a.container, &a.device, &pass, &mut w)?;
                w.flush().map_err(|e| Error::io(&a.out, e))?;
                v
            };
            if !v.payload_checked {
                return Err(Error::Usage(
                    "the container is encrypted: give --decrypt-key".into(),
                ));
            }
            file.commit()?;
            let _ = writeln!(
                out,
                "wrote {} ({} bytes, verified)",
                a.out.display(),
                v.header.image_len
            );
        }
        Command::AttachSignature(a) => {
            let what = match attach::attach(a, &pass)? {
                Attached::Container(..) => "container",
                Attached::KeySet(_) => "key set",
            };
            let _ = writeln!(
                out,
                "wrote {} (signed {what}; the signature verified under {})",
                a.out.display(),
                a.pubkey.display()
            );
        }
        Command::Keyset(KeysetCommand::Create(a)) => {
            let set = keyset::create(a, &pass)?;
            let (file, signed) = match (&a.out, &a.unsigned_out) {
                (Some(p), _) => (p, true),
                (None, Some(p)) => (p, false),
                (None, None) => return Err(Error::Usage("give --out or --unsigned-out".into())),
            };
            if a.json {
                let mut m = keyset::json(&set);
                m.insert("file".into(), json!(file.display().to_string()));
                if let Some(tbs) = &a.tbs_out {
                    m.insert("tbs_file".into(), json!(tbs.display().to_string()));
                }
                json_into(&mut out, m);
            } else {
                if signed {
                    let _ = writeln!(out, "wrote {}", file.display());
                } else {
                    let _ = writeln!(
                        out,
                        "wrote {} (unsigned) and {}; sign that with the root key, then \
                         `sbsfu attach-signature`",
                        file.display(),
                        a.tbs_out.as_deref().unwrap_or(file).display()
                    );
                }
                out.push_str(&keyset::lines(&set));
            }
        }
        Command::Keyset(KeysetCommand::Inspect(a)) => {
            let set = keyset::read(&a.keyset)?;
            if a.json {
                let mut m = keyset::json(&set);
                m.insert("file".into(), json!(a.keyset.display().to_string()));
                m.insert("signature_verified".into(), json!(false));
                json_into(&mut out, m);
            } else {
                let _ = writeln!(
                    out,
                    "{}: signature NOT verified (use `sbsfu keyset verify`)",
                    a.keyset.display()
                );
                out.push_str(&keyset::lines(&set));
            }
        }
        Command::Keyset(KeysetCommand::Verify(a)) => {
            let set = keyset::verify(a, &pass)?;
            if a.json {
                let mut m = keyset::json(&set);
                m.insert("file".into(), json!(a.keyset.display().to_string()));
                m.insert("verified".into(), json!(true));
                json_into(&mut out, m);
            } else {
                let _ = writeln!(
                    out,
                    "OK: {}: signed by the root key, for {}{}",
                    a.keyset.display(),
                    set.set.target,
                    match a.current_epoch {
                        Some(c) => format!(", newer than epoch {c}"),
                        None => String::new(),
                    }
                );
                out.push_str(&keyset::lines(&set));
            }
        }
        Command::Completions(a) => {
            let mut cmd = <Cli as clap::CommandFactory>::command();
            let mut script = Vec::new();
            clap_complete::generate(a.shell, &mut cmd, "sbsfu", &mut script);
            return Ok(script);
        }
    }
    Ok(out.into_bytes())
}

/// A line on standard error that is not an error (what `sign` left out of the image).
fn note(line: &str) {
    let _ = writeln!(io::stderr(), "sbsfu: note: {line}");
}

fn json_into(out: &mut String, m: Map<String, Value>) {
    let _ = writeln!(out, "{:#}", Value::Object(m));
}

/// A failure as a JSON object, for `--json` callers.
pub fn json_error(e: &Error) -> Vec<u8> {
    let mut s = String::new();
    let mut m = Map::new();
    m.insert("ok".into(), json!(false));
    m.insert("error".into(), json!(e.to_string()));
    m.insert("exit_code".into(), json!(e.exit_code()));
    json_into(&mut s, m);
    s.into_bytes()
}

/// Writes to standard output; a closed pipe (`sbsfu inspect x | head -1`) is not an error.
pub fn write_stdout(bytes: &[u8]) -> io::Result<()> {
    let mut stdout = io::stdout().lock();
    match stdout.write_all(bytes).and_then(|()| stdout.flush()) {
        Err(e) if e.kind() == io::ErrorKind::BrokenPipe => Ok(()),
        other => other,
    }
}
