//! Verification of an installed image from what is in flash, as at every boot.
//!
//! Nothing cached from the install is trusted: the stored head is parsed and its signature checked
//! again, and the image is hashed from flash, exactly `image_len` bytes.

use sbsfu_format::Header;
use sbsfu_format::SignedHeader;

use crate::Error;
use crate::flash::{Region, read_pieces};
use crate::install::digest::{ImageHasher, image_sha256};
use crate::install::head::verify_head;
use crate::keys::Policy;

/// Verifies `head` (prefix, header, signature, as stored) against `policy` and the image in
/// `region` against the header's digest. Reads flash in `scratch`-sized pieces. Returns the
/// verified header.
///
/// The head passes the same [`verify_head`] as at install time (so the security counter is
/// checked against `policy.min_security_counter`); the device keys are not needed, the image in
/// flash being plaintext.
pub fn verify_region(
    region: &mut dyn Region,
    head: &[u8],
    policy: &Policy<'_>,
    scratch: &mut [u8],
) -> Result<Header, Error> {
    let (signed, used) = SignedHeader::parse(head)?;
    if used != head.len() {
        return Err(Error::TrailingBytes);
    }
    let h = verify_head(&signed.message, &signed.signature, policy)?;
    if h.region.as_str() != region.name() {
        return Err(Error::UnknownRegion);
    }
    if h.load_address != region.address() {
        return Err(Error::WrongLoadAddress {
            expected: region.address(),
            found: h.load_address,
        });
    }
    if h.image_len > region.capacity() {
        return Err(Error::RegionTooSmall {
            image_len: h.image_len,
            capacity: region.capacity(),
        });
    }
    if region_digest(region, h.image_len, scratch)? != h.digest {
        return Err(Error::Authentication);
    }
    Ok(h)
}

/// SHA-256 of the first `len` bytes of `region`.
pub fn region_digest(
    region: &mut dyn Region,
    len: u32,
    scratch: &mut [u8],
) -> Result<[u8; 32], Error> {
    let mut hasher = image_sha256();
    read_pieces(region, len, scratch, &mut |piece| {
        hasher.update(piece);
        Ok(())
    })?;
    Ok(hasher.finalize_reset())
}
