//! The `sbsfu` command line, as a library: each command is a function the binary and the tests
//! call. Verification runs the `sbsfu-device` installer itself, so the host accepts exactly what
//! a device accepts.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod cli;
pub mod error;
pub mod inspect;
pub mod keygen;
pub mod keys;
pub mod output;
pub mod report;
pub mod sign;
pub mod verify;

use std::fmt::Write as _;
use std::io::{self, Write};

use serde_json::{Map, Value, json};

use crate::cli::{Cli, Command};
use crate::error::{Error, Result};
use crate::output::{Output, PUBLIC};
use crate::verify::run_device;

/// Runs one command and returns what it prints on standard output.
pub fn run(cli: &Cli) -> Result<Vec<u8>> {
    let mut out = String::new();
    match &cli.command {
        Command::Keygen(a) => {
            let _ = writeln!(out, "{}", keygen::keygen(a)?);
        }
        Command::Pubkey(a) => return keygen::pubkey(a),
        Command::Sign(a) => {
            let signed = sign::sign(a)?;
            let h = &signed.sealed.header;
            let header_len = signed.sealed.message.header_bytes().len();
            if a.json {
                let mut m = report::header_json(h, header_len);
                m.insert("file".into(), json!(a.out.display().to_string()));
                json_into(&mut out, m);
            } else {
                let _ = writeln!(out, "wrote {}", a.out.display());
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
            let v = run_device(&a.container, &a.device, &mut io::sink())?;
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
            let mut file = Output::create(&a.out, true, PUBLIC)?;
            let v = {
                let mut w = file.writer();
                let v = run_device(&a.container, &a.device, &mut w)?;
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
    }
    Ok(out.into_bytes())
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
