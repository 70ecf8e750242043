//! The `sbsfu` binary: parse, run, print one line on failure, exit with its code.

use std::io::Write as _;
use std::process::ExitCode;

use clap::Parser;
use sbsfu_host::Cli;
use sbsfu_host::EXIT_FAILURE;

fn main() -> ExitCode {
    let cli = Cli::parse();
    let (mut stdout, code) = match sbsfu_host::run(&cli) {
        Ok(out) => (out, ExitCode::SUCCESS),
        Err(e) => {
            let _ = writeln!(std::io::stderr(), "sbsfu: error: {e}");
            let out = if cli.command.json() {
                sbsfu_host::json_error(&e)
            } else {
                Vec::new()
            };
            (out, ExitCode::from(e.exit_code()))
        }
    };
    let written = sbsfu_host::write_stdout(&stdout);
    // `export-key` prints a secret key.
    zeroize::Zeroize::zeroize(&mut stdout);
    if let Err(e) = written {
        let _ = writeln!(
            std::io::stderr(),
            "sbsfu: error: writing to standard output: {e}"
        );
        return ExitCode::from(EXIT_FAILURE);
    }
    code
}
