//! Atomic output files: written to a temporary file next to the destination and renamed over it
//! only when the command succeeded, so a failed command leaves no file behind.

use std::fs::{File, Permissions};
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use tempfile::NamedTempFile;

use crate::error::{Error, Result};

/// Who may read an output, and whether it must reach the disk before it appears.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Mode {
    /// Unix permission bits.
    pub bits: u32,
    /// Flush to disk before the rename.
    pub sync: bool,
}

/// Private key files: mode 0600, on disk before their name appears.
pub const PRIVATE: Mode = Mode {
    bits: 0o600,
    sync: true,
};
/// Secrets that can be made again (decrypted images, exported device keys): mode 0600.
pub const SECRET: Mode = Mode {
    bits: 0o600,
    sync: false,
};
/// Everything else: mode 0644.
pub const PUBLIC: Mode = Mode {
    bits: 0o644,
    sync: false,
};

/// An output being written.
pub struct Output {
    tmp: NamedTempFile,
    path: PathBuf,
    replace: bool,
    /// Flush to disk before the rename (private keys).
    sync: bool,
}

impl Output {
    /// Starts writing `path`. Unless `replace`, an existing file is an error, checked now (before
    /// any work) and again at the final rename (without a race).
    pub fn create(path: &Path, replace: bool, mode: Mode) -> Result<Self> {
        if !replace && path.exists() {
            return Err(Error::Exists(path.to_owned()));
        }
        let dir = match path.parent() {
            Some(d) if !d.as_os_str().is_empty() => d,
            _ => Path::new("."),
        };
        let mut builder = tempfile::Builder::new();
        builder.prefix(".sbsfu-").suffix(".tmp");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            builder.permissions(Permissions::from_mode(mode.bits));
        }
        #[cfg(not(unix))]
        let _ = mode;
        let tmp = builder.tempfile_in(dir).map_err(|e| Error::io(path, e))?;
        Ok(Self {
            tmp,
            path: path.to_owned(),
            replace,
            sync: mode.sync,
        })
    }

    /// The destination path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The temporary file, to write to.
    pub fn file(&mut self) -> &mut File {
        self.tmp.as_file_mut()
    }

    /// Writes all of `bytes`.
    pub fn write_all(&mut self, bytes: &[u8]) -> Result<()> {
        let path = self.path.clone();
        self.file()
            .write_all(bytes)
            .map_err(|e| Error::io(&path, e))
    }

    /// A buffered writer over the temporary file.
    pub fn writer(&mut self) -> BufWriter<&mut File> {
        BufWriter::with_capacity(1 << 16, self.tmp.as_file_mut())
    }

    /// Moves the file into place (flushing it to disk first if it is a private key).
    pub fn commit(self) -> Result<()> {
        let Output {
            tmp,
            path,
            replace,
            sync,
        } = self;
        // Keys are made once and cannot be made again: they reach the disk before their name
        // appears. Containers and images can always be made again from the build, and syncing
        // a 64 MiB container costs more than signing it, so they are left to the page cache
        // (like `cp` or `openssl` outputs); the rename still makes them appear whole or not at all.
        if sync {
            tmp.as_file().sync_all().map_err(|e| Error::io(&path, e))?;
        }
        let result = if replace {
            tmp.persist(&path).map(drop)
        } else {
            tmp.persist_noclobber(&path).map(drop)
        };
        result.map_err(|e| {
            if e.error.kind() == std::io::ErrorKind::AlreadyExists {
                Error::Exists(path.clone())
            } else {
                Error::io(&path, e.error)
            }
        })
    }
}

/// Commits several outputs of one command: all of them, or (as far as the file system allows)
/// none. A later rename that fails removes the files already moved into place.
pub fn commit_all(outputs: Vec<Output>) -> Result<()> {
    let mut done: Vec<PathBuf> = Vec::new();
    for o in outputs {
        let path = o.path().to_owned();
        if let Err(e) = o.commit() {
            for p in &done {
                let _ = std::fs::remove_file(p);
            }
            return Err(e);
        }
        done.push(path);
    }
    Ok(())
}
