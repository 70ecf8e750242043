//! Containers stored in a slot: checking one in full, installing one into the active slot.

use sbsfu_format::Header;
use sbsfu_format::PayloadLayout;
use sbsfu_format::{MAX_HEAD_LEN, SignedHeader};

use super::state::BootState;
use super::vector_table::VECTOR_TABLE_CHECKED;
use super::verify::verify_region;
use crate::Error;
use crate::flash::{Region, erase_dirty_after, read_pieces};
use crate::install::Installer;
use crate::install::opener::{Event, Opener};
use crate::keys::Policy;

/// Bytes read from flash at a time when streaming a stored container (small: it sits on the
/// stack under the installer).
pub(super) const READ_CHUNK: usize = 128;

/// Length of the container stored at the start of `region`, from its head. Never inlined: its
/// head buffer is gone before the container is streamed.
#[inline(never)]
fn stored_len(region: &mut dyn Region) -> Result<u32, Error> {
    let mut head = [0u8; MAX_HEAD_LEN];
    let n = MAX_HEAD_LEN.min(usize::try_from(region.capacity()).unwrap_or(usize::MAX));
    let head = head.get_mut(..n).unwrap_or_default();
    region.read(0, head)?;
    let (signed, _) = SignedHeader::parse(head)?;
    let len = PayloadLayout::of(&signed.header)?.container_len(signed.message.header_bytes().len());
    u32::try_from(len)
        .ok()
        .filter(|l| *l <= region.capacity())
        .ok_or(Error::Truncated)
}

/// Streams the container stored at the start of `region` to `sink`, in small pieces.
fn stream_stored(
    region: &mut dyn Region,
    sink: &mut dyn FnMut(&[u8]) -> Result<(), Error>,
) -> Result<(), Error> {
    let len = stored_len(region)?;
    read_pieces(region, len, &mut [0u8; READ_CHUNK], sink)
}

/// Verifies the container stored in `region` in full, without writing anything: head, every
/// chunk, digest, exact length; returns its header and the first bytes of its image (its vector
/// table). Decrypted plaintext is discarded (and wiped).
///
/// Never inlined: its chunk buffer and the installer's then share the same stack.
#[inline(never)]
pub(super) fn open_stored<const N: usize>(
    region: &mut dyn Region,
    policy: &Policy<'_>,
) -> Result<(Header, [u8; VECTOR_TABLE_CHECKED]), Error> {
    let mut opener = Opener::<N>::new(policy);
    let mut first = [0u8; VECTOR_TABLE_CHECKED];
    stream_stored(region, &mut |mut bytes| {
        loop {
            let (used, event) = opener.push(bytes)?;
            bytes = bytes.get(used..).unwrap_or(&[]);
            if let Some(Event::Chunk {
                offset: 0, data, ..
            }) = event
            {
                let n = data.len().min(VECTOR_TABLE_CHECKED);
                if let (Some(d), Some(s)) = (first.get_mut(..n), data.get(..n)) {
                    d.copy_from_slice(s);
                }
            }
            if event.is_none() && bytes.is_empty() {
                return Ok(());
            }
        }
    })?;
    // A final zero-length chunk completes without input.
    while opener.push(&[])?.1.is_some() {}
    Ok((*opener.finished()?.0, first))
}

/// Installs the container stored in `from` into `to` with the verifying installer, erases every
/// sector of `to` after the image that is not blank (so that nothing of an older image stays
/// behind it), then verifies what landed in `to`, reading it back. Records the signed head of
/// what it installed as `state`'s active head (cleared if anything fails): no copy of the head
/// travels up the stack.
pub(super) fn install_into<const N: usize>(
    from: &mut dyn Region,
    to: &mut dyn Region,
    policy: &Policy<'_>,
    state: &mut BootState,
) -> Result<Header, Error> {
    let erased_until = run_installer::<N>(from, to, policy, state)?;
    let mut scratch = [0u8; READ_CHUNK];
    let checked = erase_dirty_after(to, erased_until, &mut scratch)
        .and_then(|()| verify_region(to, state.active().unwrap_or(&[]), policy, &mut scratch));
    if checked.is_err() {
        state.set_active(None)?;
    }
    checked
}

/// The install pass alone: records the head in `state`, returns the end of the last sector it
/// erased. Never inlined: the read-back above then does not reserve its stack on
/// top of the installer's (which holds the chunk buffer while Ed25519 runs).
#[inline(never)]
fn run_installer<const N: usize>(
    from: &mut dyn Region,
    to: &mut dyn Region,
    policy: &Policy<'_>,
    state: &mut BootState,
) -> Result<u32, Error> {
    let mut regions: [&mut dyn Region; 1] = [to];
    let mut installer = Installer::<N>::new(policy, &mut regions);
    stream_stored(from, &mut |bytes| installer.feed(bytes))?;
    let (_, message, signature) = installer.finish_in_place()?;
    state.set_active_parts(message, signature)?;
    Ok(installer.erased_until())
}
