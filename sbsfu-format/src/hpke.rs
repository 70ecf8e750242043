//! HPKE (RFC 9180) base mode, single-shot, for one suite: DHKEM(X25519, HKDF-SHA256) (KEM
//! 0x0020), HKDF-SHA256 (KDF 0x0001), AES-256-GCM (AEAD 0x0002). It seals and opens one
//! message (a content key) under sequence number 0; nothing else of HPKE is needed here.
//!
//! Written from the RFC: `LabeledExtract` and `LabeledExpand` (section 4: HKDF-SHA256 of RFC 5869
//! on one HMAC-SHA256 of RFC 2104 over sha2, see [`hmac`]), DHKEM's `Encap` and
//! `Decap` with `ExtractAndExpand` (section 4.1), the all-zero Diffie-Hellman output refused
//! (section 7.1.4), `KeySchedule` for mode 0 (section 5.1). The CFRG test vector of this suite
//! checks it (`tests::cfrg_vector_mode_0_x25519_sha256_aes256gcm`).

#[cfg(any(feature = "std", test))]
use aes_gcm::aead::{AeadInOut, KeyInit};
#[cfg(any(feature = "std", test))]
use aes_gcm::{Aes256Gcm, Nonce};
use sha2::{Digest, Sha256};
use zeroize::Zeroizing;

use crate::Error;

/// KEM id of DHKEM(X25519, HKDF-SHA256).
pub const KEM_ID: u16 = 0x0020;
/// KDF id of HKDF-SHA256.
pub const KDF_ID: u16 = 0x0001;
/// AEAD id of AES-256-GCM.
pub const AEAD_ID: u16 = 0x0002;

/// `suite_id` of the KEM: `"KEM" || I2OSP(kem_id, 2)`.
const KEM_SUITE: [u8; 5] = [b'K', b'E', b'M', 0x00, 0x20];
/// `suite_id` of the key schedule: `"HPKE" || I2OSP(kem_id, 2) || I2OSP(kdf_id, 2) ||
/// I2OSP(aead_id, 2)`.
const HPKE_SUITE: [u8; 10] = [b'H', b'P', b'K', b'E', 0x00, 0x20, 0x00, 0x01, 0x00, 0x02];
const VERSION_LABEL: &[u8] = b"HPKE-v1";

/// `HMAC-SHA256(key, parts[0] || parts[1] || ...)` (RFC 2104), the one HMAC of the key
/// schedule: both HKDF steps go through it. Written on sha2's `Sha256`, which the firmware holds
/// already (key ids, hash-chain links): 0.8 KB less bootloader flash than the `hmac` crate's,
/// which is what fits the 64 KiB (docs/PERFORMANCE.md). RFC 4231's vectors and the CFRG vector
/// check it.
#[inline(never)]
fn hmac(key: &[u8], parts: &[&[u8]]) -> Zeroizing<[u8; 32]> {
    const BLOCK: usize = 64;
    let mut k = Zeroizing::new([0u8; BLOCK]);
    if key.len() > BLOCK {
        k.iter_mut()
            .zip(Sha256::digest(key).iter())
            .for_each(|(o, b)| *o = *b);
    } else {
        k.iter_mut().zip(key).for_each(|(o, b)| *o = *b);
    }
    let mut pad = Zeroizing::new([0u8; BLOCK]);
    let mut hash_padded = |x: u8, rest: &[&[u8]]| {
        pad.iter_mut().zip(k.iter()).for_each(|(p, b)| *p = b ^ x);
        let mut h = Sha256::new().chain_update(pad.as_slice());
        rest.iter().for_each(|r| h.update(r));
        let mut out = Zeroizing::new([0u8; 32]);
        out.iter_mut()
            .zip(h.finalize().iter())
            .for_each(|(o, b)| *o = *b);
        out
    };
    let inner = hash_padded(0x36, parts);
    hash_padded(0x5c, &[&*inner])
}

/// `LabeledExtract(salt, label, ikm)` = HKDF-Extract(salt, "HPKE-v1" || suite_id || label ||
/// ikm) = HMAC(salt, ...) (RFC 5869: an empty salt is HashLen zeros, which HMAC pads to the
/// same key).
fn labeled_extract(suite: &[u8], salt: &[u8], label: &[u8], ikm: &[u8]) -> Zeroizing<[u8; 32]> {
    hmac(salt, &[VERSION_LABEL, suite, label, ikm])
}

/// `DH(sk, pk)`, refusing the all-zero output of a small-order `pk` (RFC 9180, 7.1.4).
fn dh(sk: &[u8; 32], pk: &[u8; 32]) -> Result<Zeroizing<[u8; 32]>, Error> {
    let out = Zeroizing::new(x25519_dalek::x25519(*sk, *pk));
    if out.iter().fold(0u8, |acc, b| acc | b) == 0 {
        return Err(Error::Authentication);
    }
    Ok(out)
}

/// DHKEM's `ExtractAndExpand(dh, enc || pkR)`: the KEM shared secret.
fn shared_secret(
    dh: &[u8; 32],
    enc: &[u8; 32],
    pk_r: &[u8; 32],
) -> Result<Zeroizing<[u8; 32]>, Error> {
    let eae_prk = labeled_extract(&KEM_SUITE, &[], b"eae_prk", dh);
    let mut out = Zeroizing::new([0u8; 32]);
    labeled_expand(
        &eae_prk,
        &KEM_SUITE,
        b"shared_secret",
        [enc, pk_r, &[]],
        &mut *out,
    )?;
    Ok(out)
}

/// `KeySchedule(mode_base, shared_secret, info, "", "")`: the AEAD key and base nonce.
fn key_schedule(shared: &[u8; 32], info: &[u8]) -> Result<(Zeroizing<[u8; 32]>, [u8; 12]), Error> {
    let psk_id_hash = labeled_extract(&HPKE_SUITE, &[], b"psk_id_hash", &[]);
    let info_hash = labeled_extract(&HPKE_SUITE, &[], b"info_hash", info);
    let mode = [0u8];
    // key_schedule_context = mode || psk_id_hash || info_hash
    let context: [&[u8]; 3] = [&mode, &*psk_id_hash, &*info_hash];
    let secret = labeled_extract(&HPKE_SUITE, shared, b"secret", &[]);
    let mut key = Zeroizing::new([0u8; 32]);
    let mut nonce = [0u8; 12];
    labeled_expand(&secret, &HPKE_SUITE, b"key", context, &mut *key)?;
    labeled_expand(&secret, &HPKE_SUITE, b"base_nonce", context, &mut nonce)?;
    Ok((key, nonce))
}

/// `LabeledExpand(prk, label, info, L)` with `L = out.len() <= 32`, `info` in up to three parts:
/// HKDF-Expand(prk, I2OSP(L, 2) || "HPKE-v1" || suite_id || label || info, L), whose output for
/// L <= HashLen is the first block alone, `T(1) = HMAC(prk, info' || 0x01)`.
fn labeled_expand(
    prk: &[u8; 32],
    suite: &[u8],
    label: &[u8],
    info: [&[u8]; 3],
    out: &mut [u8],
) -> Result<(), Error> {
    let len = u16::try_from(out.len())
        .ok()
        .filter(|l| *l <= 32)
        .ok_or(Error::Authentication)?
        .to_be_bytes();
    let [a, b, c] = info;
    let t1 = hmac(prk, &[&len, VERSION_LABEL, suite, label, a, b, c, &[1]]);
    out.iter_mut().zip(t1.iter()).for_each(|(o, t)| *o = *t);
    Ok(())
}

/// `SealBase(pkR, info, aad, pt)` with the ephemeral private key `sk_e` given (the caller draws
/// it from a CSPRNG for every recipient of every container): encrypts `buf` in place and
/// returns `enc` and the tag.
#[cfg(any(feature = "std", test))]
pub fn seal_base(
    pk_r: &[u8; 32],
    sk_e: &[u8; 32],
    info: &[u8],
    aad: &[u8],
    buf: &mut [u8],
) -> Result<([u8; 32], [u8; 16]), Error> {
    let enc = crate::keys::x25519_public_key(sk_e);
    let dh = dh(sk_e, pk_r)?;
    let shared = shared_secret(&dh, &enc, pk_r)?;
    let (key, nonce) = key_schedule(&shared, info)?;
    let tag = Aes256Gcm::new((&*key).into())
        .encrypt_inout_detached(&Nonce::from(nonce), aad, buf.into())
        .map_err(|_| Error::BufferTooSmall)?;
    Ok((enc, tag.into()))
}

/// `OpenBase(enc, skR, info, aad, ct)`, with the recipient's public key `pk_r` (computed once by
/// the caller): decrypts `buf` in place if the tag verifies; otherwise `buf` is unspecified and
/// the result is [`Error::Authentication`].
pub fn open_base(
    sk_r: &[u8; 32],
    pk_r: &[u8; 32],
    enc: &[u8; 32],
    info: &[u8],
    aad: &[u8],
    buf: &mut [u8],
    tag: &[u8; 16],
) -> Result<(), Error> {
    let dh = dh(sk_r, enc)?;
    let shared = shared_secret(&dh, enc, pk_r)?;
    let (key, nonce) = key_schedule(&shared, info)?;
    crate::wrap::aes_gcm_open(&key, &nonce, aad, buf, tag)
}

#[cfg(test)]
mod tests {
    use super::*;
    use hex_literal::hex;

    // The CFRG test vector (`test-vectors.json` of draft-irtf-cfrg-hpke, final; BoringSSL's
    // `hpke_test_vectors.txt` and Tink carry it) for mode 0, kem_id 32, kdf_id 1, aead_id 2, its
    // first encryption: seal with the given ephemeral key gives `enc` and the ciphertext.
    const INFO: [u8; 20] = hex!("4f6465206f6e2061204772656369616e2055726e");
    const PK_RM: [u8; 32] =
        hex!("ac66bae9ffa270cf4a89ed9f274e30c0456babae2572aaaf002ff0d8884ab018");
    const SK_EM: [u8; 32] =
        hex!("28e212563a8b6f068af7ff17400ff1baf23612b7a738bbaf5dfb321b2b5b431a");
    const AAD: [u8; 7] = hex!("436f756e742d30");
    const PT: [u8; 29] = hex!("4265617574792069732074727574682c20747275746820626561757479");
    const CT: [u8; 45] = hex!(
        "23ded2d5d90ea89d975dac4792b297240f194952d7421aacbff0474100052b6bb8aa58d18ef6c42b6960e2e28f"
    );
    // RFC 9180 appendix A.1.1 (same KEM, AES-128-GCM): the recipient's side of DHKEM.
    const A11_SK_RM: [u8; 32] =
        hex!("4612c550263fc8ad58375df3f557aac531d26850903e55a9f23f21d8534e8ac8");
    const A11_PK_RM: [u8; 32] =
        hex!("3948cfe0ad1ddb695d780e59077195da6c56506b027329794ab02bca80815c4d");
    const A11_ENC: [u8; 32] =
        hex!("37fda3567bdbd628e88668c3c8d7e97d1d1253b6d4ea6d44c150f741f1bf4431");
    const A11_SHARED: [u8; 32] =
        hex!("fe0e18c9f024ce43799ae393c7e8fe8fce9d218875e8227b0187c04e7d2ea1fc");

    #[test]
    fn cfrg_vector_mode_0_x25519_sha256_aes256gcm() {
        let mut buf = PT;
        let (enc, tag) = seal_base(&PK_RM, &SK_EM, &INFO, &AAD, &mut buf).unwrap();
        assert_eq!(enc, crate::keys::x25519_public_key(&SK_EM));
        assert_eq!(buf[..], CT[..29]);
        assert_eq!(tag[..], CT[29..]);

        // Decapsulation, on the RFC's own vector.
        assert_eq!(crate::keys::x25519_public_key(&A11_SK_RM), A11_PK_RM);
        let dh_out = dh(&A11_SK_RM, &A11_ENC).unwrap();
        assert_eq!(
            *shared_secret(&dh_out, &A11_ENC, &A11_PK_RM).unwrap(),
            A11_SHARED
        );
    }

    #[test]
    fn hmac_matches_rfc_4231() {
        // Test cases 1 (20-byte key), 2 (short key) and 6 (131-byte key, hashed first).
        let cases: [(&[u8], &[u8], [u8; 32]); 3] = [
            (
                &[0x0b; 20],
                b"Hi There",
                hex!("b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7"),
            ),
            (
                b"Jefe",
                b"what do ya want for nothing?",
                hex!("5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"),
            ),
            (
                &[0xaa; 131],
                b"Test Using Larger Than Block-Size Key - Hash Key First",
                hex!("60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54"),
            ),
        ];
        for (key, data, mac) in cases {
            // In pieces, as the key schedule passes them.
            let (a, b) = data.split_at(3);
            assert_eq!(*hmac(key, &[a, b]), mac);
        }
    }

    #[test]
    fn open_inverts_seal() {
        let sk_r = [0x42; 32];
        let pk_r = crate::keys::x25519_public_key(&sk_r);
        let mut buf = PT;
        let (enc, tag) = seal_base(&pk_r, &SK_EM, &INFO, &AAD, &mut buf).unwrap();
        open_base(&sk_r, &pk_r, &enc, &INFO, &AAD, &mut buf, &tag).unwrap();
        assert_eq!(buf, PT);
    }

    #[test]
    fn open_fails_on_any_change() {
        const SK_RM: [u8; 32] = [0x42; 32];
        let pk_r = crate::keys::x25519_public_key(&SK_RM);
        let mut ct = PT;
        let (enc0, tag) = seal_base(&pk_r, &SK_EM, &INFO, &AAD, &mut ct).unwrap();
        let open = |sk: &[u8; 32], enc: &[u8; 32], info: &[u8], aad: &[u8], tag: &[u8; 16]| {
            let mut buf = ct;
            open_base(sk, &pk_r, enc, info, aad, &mut buf, tag)
        };
        assert!(open(&SK_RM, &enc0, &INFO, &AAD, &tag).is_ok());
        let mut enc = enc0;
        enc[0] ^= 1;
        let mut bad_tag = tag;
        bad_tag[15] ^= 1;
        let mut other = SK_RM;
        other[5] ^= 1;
        for r in [
            open(&SK_RM, &enc, &INFO, &AAD, &tag),
            open(&SK_RM, &enc0, b"other info", &AAD, &tag),
            open(&SK_RM, &enc0, &INFO, b"Count-1", &tag),
            open(&SK_RM, &enc0, &INFO, &AAD, &bad_tag),
            open(&other, &enc0, &INFO, &AAD, &tag),
        ] {
            assert_eq!(r, Err(Error::Authentication));
        }
    }

    #[test]
    fn small_order_points_are_refused() {
        // The zero point and a point of order 8 (RFC 7748 implementations' usual list): the DH
        // output is all zero, which RFC 9180 section 7.1.4 says to refuse.
        let order_8 = hex!("e0eb7a7c3b41b8ae1656e3faf19fc46ada098deb9c32b1fd866205165f49b800");
        for pk in [[0u8; 32], order_8] {
            let mut buf = [0u8; 32];
            assert_eq!(
                seal_base(&pk, &SK_EM, &INFO, &AAD, &mut buf),
                Err(Error::Authentication)
            );
            let mut buf = [0u8; 32];
            assert_eq!(
                open_base(&A11_SK_RM, &A11_PK_RM, &pk, &INFO, &AAD, &mut buf, &[0; 16]),
                Err(Error::Authentication)
            );
        }
    }
}
