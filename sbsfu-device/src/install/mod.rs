//! Programming a verified container into flash.
//!
//! The [`Installer`] drives an [`Opener`] and writes each authenticated chunk to the region the
//! header names. Region, load address, size and write alignment are checked when the verified
//! header arrives, before the first erase; sectors are then erased one at a time as writing
//! reaches them, so uneven sectors cost exactly one erase each. The final write is padded with
//! the erased value `0xFF` up to the write size.

pub(crate) mod digest;
pub(crate) mod head;
pub(crate) mod opener;
mod payload;
mod resume;
mod source;

#[cfg(feature = "fast-sha256")]
pub use digest::UnrolledSha256;
pub use digest::{ImageHasher, ImageSha256};
pub use head::verify_head;
pub use opener::{Event, Opener};
pub use resume::{INSTALL_PROGRESS_STEP, RegionBegun, RegionInstaller};

#[cfg(feature = "std")]
pub use source::IoSource;
pub use source::{Source, install_from};

use sbsfu_format::Header;
use sbsfu_format::{SIGNATURE_LEN, SignedMessage};

use crate::Error;
use crate::flash::{Region, SequentialWriter};
use crate::keys::Policy;
use digest::image_sha256;
use head::HeadCopy;

/// A completed install: the image is in flash and matched its signed digest.
///
/// Holds the signed head so that the caller can store it next to the image and verify both again
/// at boot ([`crate::boot::verify::verify_region`]).
#[derive(Clone)]
pub struct Installed {
    header: Header,
    head: HeadCopy,
}

impl Installed {
    fn new(
        header: Header,
        message: &SignedMessage,
        signature: &[u8; SIGNATURE_LEN],
    ) -> Result<Self, Error> {
        let mut installed = Self {
            header,
            head: HeadCopy::EMPTY,
        };
        // A verified head always fits: the signed message is bounded by the same constant.
        installed
            .head
            .set(message.container_bytes(), signature)
            .ok_or(Error::TrailingBytes)?;
        Ok(installed)
    }

    /// The verified header.
    pub fn header(&self) -> &Header {
        &self.header
    }

    /// The container's head exactly as received: prefix, header, signature.
    pub fn signed_head(&self) -> &[u8] {
        self.head.as_bytes()
    }
}

/// Installs one container into one of `regions`, with a chunk buffer of `N` bytes; the image
/// digest is computed by `H` (SHA-256 in line unless given another [`ImageHasher`]).
///
/// Region, load address, size and write alignment are checked when the verified header arrives,
/// before the first erase; sectors are then erased one at a time as writing reaches them, so
/// uneven sectors cost exactly one erase each; the final write is padded with `0xFF`.
///
/// # What chunk authentication proves
///
/// Nothing reaches flash before the header's signature verified, and no chunk's plaintext
/// before that chunk authenticated. For an encrypted container, a chunk authenticates (AES-GCM)
/// under the container's content key, which is wrapped under a **device key**: it proves the
/// chunk was sealed by someone holding that content key, that is, by the signer, or by anyone
/// who holds the device key. Where one device key is shared by a device class, whoever extracts
/// it from one device can take any signed container of that class, unwrap its content key and
/// seal chunks of their own that pass: this installer then programs them, and only
/// [`Installer::finish`] fails, on the image digest (the last chunk is never released). The
/// image is then not valid and never booted, but attacker bytes were written to the region.
/// For a signed-only container every chunk is checked against a hash chain the signature
/// covers, so a chunk that reaches flash is the signer's.
///
/// Where device keys are shared, **stage** ([`crate::boot::Stager`] and
/// [`crate::boot::BootManager`]): the container is kept as received and verified in full
/// (every chunk and the digest) before the active slot is touched.
pub struct Installer<'a, const N: usize, H: ImageHasher = ImageSha256> {
    opener: Opener<'a, N, H>,
    regions: &'a mut [&'a mut dyn Region],
    target: Option<usize>,
    writer: SequentialWriter,
}

impl<'a, const N: usize> Installer<'a, N> {
    /// An installer enforcing `policy` that may write to `regions`.
    pub fn new(policy: &'a Policy<'a>, regions: &'a mut [&'a mut dyn Region]) -> Self {
        Self::with_hasher(policy, regions, image_sha256())
    }
}

impl<'a, const N: usize, H: ImageHasher> Installer<'a, N, H> {
    /// An installer enforcing `policy` that may write to `regions`, computing the image digest
    /// with `hasher`.
    pub fn with_hasher(
        policy: &'a Policy<'a>,
        regions: &'a mut [&'a mut dyn Region],
        hasher: H,
    ) -> Self {
        Self {
            opener: Opener::with_hasher(policy, hasher),
            regions,
            target: None,
            writer: SequentialWriter::default(),
        }
    }

    /// End of the last sector erased so far (everything after it is as it was before).
    pub(crate) fn erased_until(&self) -> u32 {
        self.writer.erased_until()
    }

    /// Feeds the next bytes of the container, in any slice size (one byte at a time works).
    pub fn feed(&mut self, bytes: &[u8]) -> Result<(), Error> {
        // The opener latches the first error, this installer's own (a region refused, flash
        // failing) included: every later call returns it.
        self.drive(bytes).map_err(|e| self.opener.fail(e))
    }

    /// Ends the container. Succeeds only if every chunk arrived, authenticated and was programmed,
    /// and the image digest matched. (It borrows rather than consumes the installer, which is
    /// mostly its chunk buffer: moving it would copy kilobytes of stack. Any later `feed` fails.)
    pub fn finish(&mut self) -> Result<Installed, Error> {
        self.feed(&[])?;
        let (header, message, signature) = self.opener.finished()?;
        Installed::new(*header, message, signature)
    }

    /// [`Self::finish`], without copying the signed head out: the verified header, and the
    /// head as received (prefix and header, then the signature).
    pub(crate) fn finish_in_place(
        &mut self,
    ) -> Result<(Header, &[u8], &[u8; SIGNATURE_LEN]), Error> {
        self.feed(&[])?;
        let (header, message, signature) = self.opener.finished()?;
        Ok((*header, message.container_bytes(), signature))
    }

    fn drive(&mut self, bytes: &[u8]) -> Result<(), Error> {
        let mut rest = bytes;
        loop {
            let (used, event) = self.opener.push(rest)?;
            rest = rest.get(used..).unwrap_or(&[]);
            let Some(event) = event else {
                if rest.is_empty() {
                    return Ok(());
                }
                continue;
            };
            match event {
                Event::Header(h) => {
                    self.target = Some(select_region(self.regions, h)?);
                }
                Event::Chunk { offset, data, .. } => {
                    let region = self
                        .target
                        .and_then(|i| self.regions.get_mut(i))
                        .ok_or(Error::UnknownRegion)?;
                    self.writer.program(&mut **region, offset, data)?;
                }
            }
        }
    }
}

/// Picks the region the verified header names and checks that the image fits it.
fn select_region(regions: &[&mut dyn Region], h: &Header) -> Result<usize, Error> {
    let index = regions
        .iter()
        .position(|r| r.name() == h.region.as_str())
        .ok_or(Error::UnknownRegion)?;
    let region = regions.get(index).ok_or(Error::UnknownRegion)?;
    check_region(&**region, h)?;
    Ok(index)
}

/// Checks the length a link announced for a container against the one its verified head
/// implies: shorter is [`Error::Truncated`], longer [`Error::TrailingBytes`].
pub(crate) fn check_container_len(announced: u32, expected: u32) -> Result<(), Error> {
    match announced.cmp(&expected) {
        core::cmp::Ordering::Less => Err(Error::Truncated),
        core::cmp::Ordering::Greater => Err(Error::TrailingBytes),
        core::cmp::Ordering::Equal => Ok(()),
    }
}

/// Checks that the image of the verified header `h` goes to `region`: its load address, its
/// chunks in whole write units, its padded length within the region.
pub(crate) fn check_region(region: &dyn Region, h: &Header) -> Result<(), Error> {
    if region.name() != h.region.as_str() {
        return Err(Error::UnknownRegion);
    }
    if region.address() != h.load_address {
        return Err(Error::WrongLoadAddress {
            expected: region.address(),
            found: h.load_address,
        });
    }
    let write_size = region.write_size();
    if write_size == 0 || !h.chunk_size.is_multiple_of(write_size) {
        return Err(Error::ChunkMisaligned {
            chunk_size: h.chunk_size,
            write_size,
        });
    }
    let padded = h
        .image_len
        .checked_next_multiple_of(write_size)
        .unwrap_or(u32::MAX);
    if padded > region.capacity() {
        return Err(Error::RegionTooSmall {
            image_len: padded,
            capacity: region.capacity(),
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::boot::verify::verify_region;
    use crate::flash::FlashRegion;
    use crate::sim::{Op, SimFlash};
    use crate::testkit::*;
    use std::vec::Vec;

    /// Installs `c` into the F405 `app` region (sectors 5..11), feeding `step` bytes at a time.
    fn install(
        policy: &Policy<'_>,
        flash: &mut SimFlash,
        c: &[u8],
        step: usize,
    ) -> Result<Installed, Error> {
        with_installer(policy, flash, APP, |inst| {
            c.chunks(step.max(1))
                .try_for_each(|piece| inst.feed(piece))?;
            inst.finish()
        })
    }

    /// Installs `c` fed `step` bytes at a time into a fresh flash that must stay untouched: the
    /// error.
    fn untouched(policy: &Policy<'_>, c: &[u8], step: usize) -> Option<Error> {
        let mut f = SimFlash::stm32f405();
        let refused = install(policy, &mut f, c, step).err();
        assert!(f.log().is_empty());
        refused
    }

    #[test]
    fn one_byte_at_a_time_installs_byte_exact_and_verifies_at_boot() {
        for encrypted in [true, false] {
            let img = image(3000);
            let c = container(encrypted, 512, &img);
            with_policy(|p| {
                let mut f = SimFlash::stm32f405();
                let done = install(p, &mut f, &c, 1).unwrap();
                assert_eq!(&f.data()[0x20000..0x20000 + 3000], &img[..]);
                assert_eq!(done.header().image_len, 3000);
                assert_eq!(done.signed_head(), &c[..done.signed_head().len()]);
                // Boot-time verification from flash.
                let map = f.geometry();
                let (name, address, start, len) = APP;
                let mut app = FlashRegion::new(name, &mut f, map, address, start, len).unwrap();
                let mut scratch = [0u8; 256];
                verify_region(&mut app, done.signed_head(), p, &mut scratch).unwrap();
                app.flash_mut().data_mut()[0x20000 + 2999] ^= 1;
                assert_eq!(
                    verify_region(&mut app, done.signed_head(), p, &mut scratch).err(),
                    Some(Error::Authentication)
                );
            });
        }
    }

    #[test]
    fn each_sector_is_erased_once_as_writing_reaches_it() {
        // 300 KiB crosses from the first 128K sector of the app region into the third.
        let img = image(300 * 1024);
        let c = container(true, 1024, &img);
        with_policy(|p| {
            let mut f = SimFlash::stm32f405();
            install(p, &mut f, &c, 4096).unwrap();
            let erases: Vec<_> = f
                .log()
                .iter()
                .filter_map(|o| match o {
                    Op::Erase { from, to } => Some((*from, *to)),
                    _ => None,
                })
                .collect();
            assert_eq!(
                erases,
                [(0x20000, 0x40000), (0x40000, 0x60000), (0x60000, 0x80000)]
            );
            // Nothing outside the region was touched.
            assert!(f.data()[..0x20000].iter().all(|b| *b == 0xFF));
        });
    }

    #[test]
    fn uneven_sectors_of_the_first_64k() {
        // A region over sectors 1..=4 (16K, 16K, 16K, 64K).
        let img = image(100 * 1024);
        let c = container(false, 1024, &img);
        with_policy(|p| {
            let mut f = SimFlash::stm32f405();
            with_installer(p, &mut f, ("app", APP_ADDRESS, 0x4000, 0x1C000), |inst| {
                inst.feed(&c).unwrap();
                inst.finish().unwrap();
            });
            assert_eq!(f.erase_count(), 4);
            assert_eq!(&f.data()[0x4000..0x4000 + img.len()], &img[..]);
        });
    }

    #[test]
    fn final_write_is_padded_with_erased_value() {
        let img = image(1001);
        let c = container(true, 512, &img);
        with_policy(|p| {
            let mut f = SimFlash::stm32f405();
            install(p, &mut f, &c, 100).unwrap();
            assert_eq!(&f.data()[0x20000..0x20000 + 1001], &img[..]);
            assert!(
                f.data()[0x20000 + 1001..0x20000 + 1004]
                    .iter()
                    .all(|b| *b == 0xFF)
            );
            assert_eq!(f.bytes_written(), 1004);
        });
    }

    #[test]
    fn nothing_touches_flash_before_the_signature_checks_out() {
        let c = container(true, 512, &image(2000));
        let head = c.len() - (2000 + 4 * 16);
        let mut bad = c.clone();
        bad[head - 1] ^= 1; // last signature byte
        with_policy(|p| {
            assert_eq!(untouched(p, &bad, 1), Some(Error::Authentication));
            // The full head of a good container, but not one payload byte: still nothing.
            assert_eq!(untouched(p, &c[..head], 1), Some(Error::Truncated));
        });
    }

    #[test]
    fn errors_are_latched() {
        let c = container(true, 512, &image(10));
        with_policy(|p| {
            let mut f = SimFlash::stm32f405();
            with_installer(p, &mut f, APP, |inst| {
                assert!(inst.feed(b"garbage").is_err());
                assert_eq!(
                    inst.feed(&c),
                    Err(Error::Format(sbsfu_format::Error::BadMagic))
                );
                assert_eq!(
                    inst.finish().err(),
                    Some(Error::Format(sbsfu_format::Error::BadMagic))
                );
            });
        });
    }

    #[test]
    fn region_checks_happen_before_erasing() {
        let c = container(true, 512, &image(10));
        with_policy(|p| {
            let mut f = SimFlash::stm32f405();
            let data = ("data", 0x0800_C000, 0xC000, 0x4000);
            let refused = with_installer(p, &mut f, data, |inst| inst.feed(&c));
            assert_eq!(refused, Err(Error::UnknownRegion));
            assert!(f.log().is_empty());
            let elsewhere = ("app", 0x0801_0000, 0x20000, 0xE0000);
            assert_eq!(
                with_installer(p, &mut f, elsewhere, |inst| inst.feed(&c)),
                Err(Error::WrongLoadAddress {
                    expected: 0x0801_0000,
                    found: APP_ADDRESS
                })
            );
            assert!(f.log().is_empty());
        });
    }

    #[test]
    fn image_larger_than_the_region_is_refused_before_erasing() {
        let img = image(20 * 1024);
        let c = container(false, 1024, &img);
        with_policy(|p| {
            let mut f = SimFlash::stm32f405();
            let small = ("app", APP_ADDRESS, 0x4000, 0x4000);
            assert_eq!(
                with_installer(p, &mut f, small, |inst| inst.feed(&c)),
                Err(Error::RegionTooSmall {
                    image_len: 20 * 1024,
                    capacity: 0x4000
                })
            );
            assert!(f.log().is_empty());
        });
    }

    #[test]
    fn chunks_larger_than_the_buffer_are_refused() {
        let c = container(true, 2048, &image(10));
        with_policy(|p| {
            assert_eq!(
                untouched(p, &c, 7),
                Some(Error::ChunkTooLarge {
                    chunk_size: 2048,
                    capacity: BUF as u32
                })
            );
        });
    }

    struct Slices<'a>(&'a [u8], usize);

    impl Source for Slices<'_> {
        fn read(&mut self, buf: &mut [u8]) -> Result<usize, Error> {
            let n = self.0.len().min(buf.len()).min(self.1);
            buf[..n].copy_from_slice(&self.0[..n]);
            self.0 = &self.0[n..];
            Ok(n)
        }
    }

    #[test]
    fn pull_helper_reads_to_the_end() {
        let img = image(5000);
        let c = container(true, 1024, &img);
        with_policy(|p| {
            let mut f = SimFlash::stm32f405();
            with_installer(p, &mut f, APP, |inst| {
                install_from(inst, &mut Slices(&c, 33), &mut [0u8; 64]).unwrap();
            });
            assert_eq!(&f.data()[0x20000..0x20000 + 5000], &img[..]);
        });
    }
}
