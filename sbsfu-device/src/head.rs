//! The checks every container head must pass, in one place: the installer, boot-time
//! verification and the host's header-only `verify` all call [`verify_head`].

use sbsfu_format::Header;
use sbsfu_format::signed::{SIGNATURE_LEN, SignedMessage};

use crate::Error;
use crate::keys::Policy;

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
    if policy.require_encryption && header.device_key().is_none() {
        return Err(Error::EncryptionRequired);
    }
    Ok(header)
}
