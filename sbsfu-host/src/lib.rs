//! The `sbsfu` command line, as a library: [`run`] takes the parsed command line and returns
//! what to print. Each command returns a report that renders itself as text and as JSON
//! (`--json`); `verify` and `decrypt` run the `sbsfu-device` installer itself, so the host
//! accepts exactly what a device accepts.
//!
//! This is host code: the no-panic lint style of the device crates (checked arithmetic and
//! `.get()` on every index, denied `unwrap`) does not apply here; clippy's defaults and the
//! workspace lints do.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod attach;
mod cli;
mod constant;
mod device_sim;
mod digest_thread;
mod error;
mod export_key;
mod image;
mod inspect;
mod keygen;
mod keys;
mod keyset;
mod output;
mod passphrase;
mod pem;
mod provision;
mod push;
mod report;
mod sign;
mod signer;
mod verify;

use std::io::{self, Write};

pub use cli::{Cli, Command};
pub use error::{EXIT_FAILURE, EXIT_KEY, EXIT_REJECTED, EXIT_USAGE, Error, Result};
pub use report::json_error;

use crate::cli::KeysetCommand;
use crate::passphrase::Passphrase;
use crate::report::render;

/// Runs one command and returns what it prints on standard output.
pub fn run(cli: &Cli) -> Result<Vec<u8>> {
    let pass = Passphrase::new(cli.passphrase_file.clone());
    Ok(match &cli.command {
        Command::Keygen(a) => format!("{}\n", keygen::keygen(a, &pass)?).into_bytes(),
        Command::Pubkey(a) => keygen::pubkey(a, &pass)?,
        Command::ExportKey(a) => export_key::export_key(a, &pass)?.to_vec(),
        Command::Sign(a) => {
            let signed = sign::sign(a, &pass)?;
            for l in signed.left_out() {
                note(&format!("{}: {l}", a.input.display()));
            }
            render(&signed, a.signed.output.json)
        }
        Command::Inspect(a) => render(&inspect::inspect(&a.container)?, a.output.json),
        Command::Verify(a) => render(&verify::verify(a, &pass)?, a.output.json),
        Command::Decrypt(a) => verify::decrypt(a, &pass)?.into_bytes(),
        Command::AttachSignature(a) => attach::attach(a, &pass)?.into_bytes(),
        Command::Keyset(KeysetCommand::Create(a)) => {
            render(&keyset::create(a, &pass)?, a.signed.output.json)
        }
        Command::Keyset(KeysetCommand::Inspect(a)) => {
            render(&keyset::inspect(&a.keyset)?, a.output.json)
        }
        Command::Keyset(KeysetCommand::Verify(a)) => {
            render(&keyset::verify(a, &pass)?, a.output.json)
        }
        Command::Push(a) => push::push(a)?,
        Command::DeviceSim(a) => device_sim::run(a, &pass)?,
        Command::Provision(a) => render(&provision::provision(a, &pass)?, a.output.json),
        Command::Completions(a) => {
            let mut cmd = <Cli as clap::CommandFactory>::command();
            let mut script = Vec::new();
            clap_complete::generate(a.shell, &mut cmd, "sbsfu", &mut script);
            script
        }
    })
}

/// A line on standard error that is not an error (what `sign` left out of the image).
fn note(line: &str) {
    let _ = writeln!(io::stderr(), "sbsfu: note: {line}");
}

/// Writes to standard output; a closed pipe (`sbsfu inspect x | head -1`) is not an error.
pub fn write_stdout(bytes: &[u8]) -> io::Result<()> {
    let mut stdout = io::stdout().lock();
    match stdout.write_all(bytes).and_then(|()| stdout.flush()) {
        Err(e) if e.kind() == io::ErrorKind::BrokenPipe => Ok(()),
        other => other,
    }
}
