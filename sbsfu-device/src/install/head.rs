//! The head of a container (prefix, header, signature): buffering it as bytes arrive
//! ([`HeadReader`]) and the checks it must pass, in one place ([`verify_head`]). The installer,
//! the stager, boot-time verification and the host's header-only `verify` all use them.

use sbsfu_format::Header;
use sbsfu_format::{MAX_HEAD_LEN, SIGNATURE_LEN, SignedMessage};
use sbsfu_format::{PREFIX_LEN, Prefix, check_magic_prefix};

use crate::Error;
use crate::keys::Policy;

/// A signed head (prefix, header, signature) copied into RAM: what an install hands to the
/// boot state, and what a resumable install keeps of the container it is receiving.
#[derive(Clone, Copy)]
pub(crate) struct HeadCopy {
    bytes: [u8; MAX_HEAD_LEN],
    len: usize,
}

impl HeadCopy {
    /// No head.
    pub(crate) const EMPTY: Self = Self {
        bytes: [0; MAX_HEAD_LEN],
        len: 0,
    };

    /// Holds `body` (prefix and header) then `signature` from now on; `None`, and the copy
    /// unchanged, if together they exceed [`MAX_HEAD_LEN`]. (In place: a head is kilobyte-sized
    /// next to the bootloader's stack, and a temporary would be a second one on it.)
    pub(crate) fn set(&mut self, body: &[u8], signature: &[u8]) -> Option<()> {
        let len = body.len().checked_add(signature.len())?;
        let (a, b) = self.bytes.get_mut(..len)?.split_at_mut(body.len());
        a.copy_from_slice(body);
        b.copy_from_slice(signature);
        self.len = len;
        Some(())
    }

    /// A head received whole; `None` if longer than [`MAX_HEAD_LEN`].
    pub(crate) fn new(head: &[u8]) -> Option<Self> {
        let mut copy = Self::EMPTY;
        copy.set(head, &[])?;
        Some(copy)
    }

    pub(crate) fn as_bytes(&self) -> &[u8] {
        self.bytes.get(..self.len).unwrap_or(&[])
    }
}

/// Two copies are equal when they hold the same head (whatever lies past it).
impl PartialEq for HeadCopy {
    fn eq(&self, other: &Self) -> bool {
        self.as_bytes() == other.as_bytes()
    }
}

impl Eq for HeadCopy {}

/// Copies as much of `src` as fits into `dst[*have..want]`; returns bytes taken.
pub(crate) fn fill(dst: &mut [u8], have: &mut usize, want: usize, src: &[u8]) -> usize {
    let need = want.saturating_sub(*have);
    let n = need.min(src.len());
    if let (Some(d), Some(s)) = (dst.get_mut(*have..have.saturating_add(n)), src.get(..n)) {
        d.copy_from_slice(s);
        *have = have.saturating_add(n);
        n
    } else {
        0
    }
}

/// Parses the header in `message` strictly, finds its signer among the trusted keys by key id,
/// verifies `signature` with `verify_strict`, then checks the target and the security counter.
/// Only an authentic header reaches the policy checks, so their errors describe a genuine image.
pub fn verify_head(
    message: &SignedMessage,
    signature: &[u8; SIGNATURE_LEN],
    policy: &Policy<'_>,
) -> Result<Header, Error> {
    let header = Header::parse(message.header_bytes())?;
    let signer = policy.signer(header.signer)?;
    message.verify(signer.verifying_key(), signature)?;
    if header.target.as_str() != policy.target {
        return Err(Error::WrongTarget);
    }
    if header.security_counter < policy.min_security_counter {
        return Err(Error::Rollback {
            counter: header.security_counter,
            minimum: policy.min_security_counter,
        });
    }
    if policy.require_encryption && !header.is_encrypted() {
        return Err(Error::EncryptionRequired);
    }
    Ok(header)
}

/// Buffers a container's head as it arrives, checking the magic byte by byte and the prefix as
/// soon as it is complete. Holds at most [`sbsfu_format::MAX_HEAD_LEN`] bytes.
#[derive(Clone)]
pub struct HeadReader {
    message: SignedMessage,
    header_len: usize,
    signature: [u8; SIGNATURE_LEN],
    signature_have: usize,
}

impl Default for HeadReader {
    fn default() -> Self {
        Self::new()
    }
}

impl HeadReader {
    /// An empty reader.
    pub fn new() -> Self {
        Self {
            message: SignedMessage::new(),
            header_len: 0,
            signature: [0; SIGNATURE_LEN],
            signature_have: 0,
        }
    }

    /// Takes head bytes from `input` and returns how many it used; stops at the end of the head.
    pub fn push(&mut self, input: &[u8]) -> Result<usize, Error> {
        let mut used = 0usize;
        while !self.is_complete() {
            let rest = input.get(used..).unwrap_or(&[]);
            if rest.is_empty() {
                break;
            }
            used = used.saturating_add(self.take(rest)?);
        }
        Ok(used)
    }

    fn take(&mut self, rest: &[u8]) -> Result<usize, Error> {
        let have = self.message.body_len();
        if have < PREFIX_LEN {
            let n = PREFIX_LEN.saturating_sub(have).min(rest.len());
            self.message.extend(rest.get(..n).unwrap_or(&[]))?;
            check_magic_prefix(self.message.container_bytes())?;
            if self.message.body_len() == PREFIX_LEN {
                let prefix = Prefix::parse(self.message.container_bytes())?;
                self.header_len = usize::from(prefix.header_len);
            }
            return Ok(n);
        }
        let head_len = PREFIX_LEN.saturating_add(self.header_len);
        if have < head_len {
            let n = head_len.saturating_sub(have).min(rest.len());
            self.message.extend(rest.get(..n).unwrap_or(&[]))?;
            return Ok(n);
        }
        Ok(fill(
            &mut self.signature,
            &mut self.signature_have,
            SIGNATURE_LEN,
            rest,
        ))
    }

    /// Whether prefix, header and signature are all in.
    pub fn is_complete(&self) -> bool {
        self.signature_have == SIGNATURE_LEN
    }

    /// The signed message (context, prefix, header).
    pub fn message(&self) -> &SignedMessage {
        &self.message
    }

    /// The signature.
    pub fn signature(&self) -> &[u8; SIGNATURE_LEN] {
        &self.signature
    }

    /// Verifies the complete head against `policy` ([`verify_head`]).
    pub fn verify(&self, policy: &Policy<'_>) -> Result<Header, Error> {
        if !self.is_complete() {
            return Err(Error::Truncated);
        }
        verify_head(&self.message, &self.signature, policy)
    }
}
