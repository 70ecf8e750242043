//! The pull side: an installer fed from a byte source (a UART driver, a file, external flash)
//! until it ends.

use super::digest::ImageHasher;
use super::{Installed, Installer};
use crate::Error;

/// A byte source for [`install_from`]: a UART driver, a file, external flash.
pub trait Source {
    /// Reads up to `buf.len()` bytes; `Ok(0)` means the end of the container.
    fn read(&mut self, buf: &mut [u8]) -> Result<usize, Error>;
}

/// The pull helper: reads `source` to its end in `scratch`-sized pieces, feeding `installer`.
pub fn install_from<const N: usize, H: ImageHasher>(
    installer: &mut Installer<'_, N, H>,
    source: &mut dyn Source,
    scratch: &mut [u8],
) -> Result<Installed, Error> {
    loop {
        let n = source.read(scratch)?;
        if n == 0 {
            return installer.finish();
        }
        installer.feed(scratch.get(..n).ok_or(Error::Source)?)?;
    }
}

#[cfg(feature = "std")]
pub use io::IoSource;

#[cfg(feature = "std")]
mod io {
    use super::Source;
    use crate::Error;

    /// Adapts a `std::io::Read` as a [`Source`], keeping the I/O error for the caller.
    pub struct IoSource<R> {
        /// The reader.
        pub inner: R,
        /// The last I/O error, if reading failed.
        pub error: Option<std::io::Error>,
        /// Whether the reader reached its end (the installer was then asked to finish).
        pub ended: bool,
    }

    impl<R: std::io::Read> IoSource<R> {
        /// Wraps `inner`.
        pub fn new(inner: R) -> Self {
            Self {
                inner,
                error: None,
                ended: false,
            }
        }
    }

    impl<R: std::io::Read> Source for IoSource<R> {
        fn read(&mut self, buf: &mut [u8]) -> Result<usize, Error> {
            loop {
                match self.inner.read(buf) {
                    Ok(n) => {
                        self.ended = n == 0;
                        return Ok(n);
                    }
                    Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                    Err(e) => {
                        self.error = Some(e);
                        return Err(Error::Source);
                    }
                }
            }
        }
    }
}
