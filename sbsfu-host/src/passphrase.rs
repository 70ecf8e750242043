//! Where the passphrase of an encrypted key file comes from: `--passphrase-file`, then the
//! `SBSFU_KEY_PASSPHRASE` environment variable, then a prompt, but only on a terminal (CI never
//! hangs waiting for input that cannot come).

use std::cell::RefCell;
use std::io::IsTerminal;
use std::path::{Path, PathBuf};

use zeroize::Zeroizing;

use crate::error::{Error, Result};

/// Environment variable holding the passphrase of encrypted key files.
pub const PASSPHRASE_ENV: &str = "SBSFU_KEY_PASSPHRASE";

/// The passphrase sources of one command.
pub struct Passphrase {
    file: Option<PathBuf>,
    /// What was read or typed once, for the next key of the same command.
    cached: RefCell<Option<Zeroizing<String>>>,
}

impl Passphrase {
    /// Sources: `file` (from `--passphrase-file`), the environment, a terminal.
    pub fn new(file: Option<PathBuf>) -> Self {
        Self {
            file,
            cached: RefCell::new(None),
        }
    }

    /// No passphrase anywhere but the environment and the terminal.
    #[cfg(test)]
    pub fn none() -> Self {
        Self::new(None)
    }

    /// Whether `--passphrase-file` was given.
    pub fn has_file(&self) -> bool {
        self.file.is_some()
    }

    /// The passphrase to decrypt the key at `key`.
    pub fn for_key(&self, key: &Path) -> Result<Zeroizing<String>> {
        if let Some(p) = self.cached.borrow().as_ref() {
            return Ok(p.clone());
        }
        let p = match self.configured()? {
            Some(p) => p,
            None if interactive() => prompt(&format!("Passphrase for {}: ", key.display()))?,
            None => {
                return Err(Error::key(
                    key,
                    format!(
                        "is passphrase-protected: give --passphrase-file FILE or set {PASSPHRASE_ENV}"
                    ),
                ));
            }
        };
        *self.cached.borrow_mut() = Some(p.clone());
        Ok(p)
    }

    /// The passphrase to protect a new key written to `out`: from the file or the environment,
    /// else typed twice on a terminal.
    pub fn for_new_key(&self, out: &Path) -> Result<Zeroizing<String>> {
        if let Some(p) = self.configured()? {
            return Ok(p);
        }
        if !interactive() {
            return Err(Error::Usage(format!(
                "--protect needs a passphrase: give --passphrase-file FILE or set {PASSPHRASE_ENV} \
                 (standard input is not a terminal to ask on)"
            )));
        }
        let first = prompt(&format!("New passphrase for {}: ", out.display()))?;
        let again = prompt("Repeat it: ")?;
        if first != again {
            return Err(Error::Usage("the passphrases differ".into()));
        }
        check(first, "the passphrase")
    }

    /// The passphrase from `--passphrase-file` or the environment, if either is set.
    fn configured(&self) -> Result<Option<Zeroizing<String>>> {
        if let Some(path) = &self.file {
            let bytes = Zeroizing::new(std::fs::read(path).map_err(|e| Error::io(path, e))?);
            let text = std::str::from_utf8(&bytes).map_err(|_| Error::Input {
                path: path.clone(),
                reason: "the passphrase file is not UTF-8 text".into(),
            })?;
            // The first line, as `openssl -passin file:F` reads it.
            let line = text.lines().next().unwrap_or_default();
            let name = format!("the first line of {}", path.display());
            return check(Zeroizing::new(line.to_owned()), &name).map(Some);
        }
        match std::env::var(PASSPHRASE_ENV) {
            Ok(v) => check(Zeroizing::new(v), PASSPHRASE_ENV).map(Some),
            Err(std::env::VarError::NotPresent) => Ok(None),
            Err(std::env::VarError::NotUnicode(_)) => {
                Err(Error::Usage(format!("{PASSPHRASE_ENV} is not valid UTF-8")))
            }
        }
    }
}

fn check(p: Zeroizing<String>, what: &str) -> Result<Zeroizing<String>> {
    if p.is_empty() {
        return Err(Error::Usage(format!(
            "{what} is empty; a passphrase cannot be empty"
        )));
    }
    Ok(p)
}

/// Prompting needs a person: standard input and standard error both on a terminal.
fn interactive() -> bool {
    std::io::stdin().is_terminal() && std::io::stderr().is_terminal()
}

fn prompt(text: &str) -> Result<Zeroizing<String>> {
    rpassword::prompt_password(text)
        .map(Zeroizing::new)
        .map_err(|e| Error::io(Path::new("/dev/tty"), e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_gives_its_first_line_and_is_cached() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("pass");
        std::fs::write(&f, "correct horse\r\nsecond line\n").unwrap();
        let p = Passphrase::new(Some(f.clone()));
        assert_eq!(p.for_key(Path::new("k")).unwrap().as_str(), "correct horse");
        std::fs::remove_file(&f).unwrap();
        assert_eq!(
            p.for_key(Path::new("k2")).unwrap().as_str(),
            "correct horse"
        );
    }

    #[test]
    fn empty_or_missing_file_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("pass");
        std::fs::write(&f, "\n").unwrap();
        let e = Passphrase::new(Some(f))
            .for_key(Path::new("k"))
            .unwrap_err();
        assert!(e.to_string().contains("cannot be empty"), "{e}");
        let e = Passphrase::new(Some(dir.path().join("nope")))
            .for_key(Path::new("k"))
            .unwrap_err();
        assert!(matches!(e, Error::Io { .. }));
    }
}
