use super::*;

fn example(name: &str) -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../keys-example")
        .join(name)
}

fn none() -> Passphrase {
    Passphrase::none()
}

#[test]
fn dev_key_ids_match_the_published_files() {
    let signing = read_signing_key(&example("signing.pem"), &none()).unwrap();
    let public = read_public_key(&example("signing.pub.pem"), &none()).unwrap();
    assert_eq!(signing.verifying_key(), public);
    assert_eq!(
        KeyId::of_ed25519(public.as_bytes()).to_string(),
        DEV_SIGNING_KEY_ID
    );
    let device = read_device_key(&example("device.key"), &none()).unwrap();
    assert_eq!(device.id().to_string(), DEV_DEVICE_KEY_ID);
    let x25519 = read_device_key(&example("device-x25519.pem"), &none()).unwrap();
    assert_eq!(x25519.id().to_string(), DEV_X25519_KEY_ID);
    assert_eq!(
        x25519_key_id(&read_recipient_key(&example("device-x25519.pub.pem")).unwrap()),
        x25519.id()
    );
    let root = read_signing_key(&example("root.pem"), &none()).unwrap();
    assert_eq!(
        read_public_key(&example("root.pub.pem"), &none()).unwrap(),
        root.verifying_key()
    );
    assert_eq!(
        KeyId::of_ed25519(root.verifying_key().as_bytes()).to_string(),
        DEV_ROOT_KEY_ID
    );
}

#[test]
fn small_order_recipient_keys_are_refused() {
    // The zero point and a point of order 8: DH with them gives a known (all-zero) secret.
    let dir = tempfile::tempdir().unwrap();
    let order_8 = [
        0xe0, 0xeb, 0x7a, 0x7c, 0x3b, 0x41, 0xb8, 0xae, 0x16, 0x56, 0xe3, 0xfa, 0xf1, 0x9f, 0xc4,
        0x6a, 0xda, 0x09, 0x8d, 0xeb, 0x9c, 0x32, 0xb1, 0xfd, 0x86, 0x62, 0x05, 0x16, 0x5f, 0x49,
        0xb8, 0x00,
    ];
    for (i, key) in [[0u8; 32], order_8].iter().enumerate() {
        let p = dir.path().join(format!("{i}.pub.pem"));
        fs::write(&p, x25519_public_key_pem(key).unwrap()).unwrap();
        let e = read_recipient_key(&p).unwrap_err();
        assert!(e.to_string().contains("small-order"), "{e}");
        assert_eq!(e.exit_code(), crate::error::EXIT_KEY);
    }
    let good = dir.path().join("good.pub.pem");
    fs::write(&good, x25519_public_key_pem(&[9; 32]).unwrap()).unwrap();
    assert_eq!(read_recipient_key(&good).unwrap(), [9; 32]);
}

#[test]
fn a_missing_key_file_is_an_io_error() {
    let missing = Path::new("/nonexistent/device.key");
    assert!(matches!(
        read_device_key(missing, &none()),
        Err(Error::Io { .. })
    ));
    assert!(matches!(
        read_signing_key(missing, &none()),
        Err(Error::Io { .. })
    ));
}

#[test]
fn pem_round_trips() {
    let k = SigningKey::from_bytes(&random_bytes().unwrap());
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("k.pem");
    fs::write(&p, signing_key_pem(&k).unwrap().as_bytes()).unwrap();
    assert_eq!(
        read_signing_key(&p, &none()).unwrap().to_bytes(),
        k.to_bytes()
    );
    let q = dir.path().join("k.pub.pem");
    fs::write(&q, public_key_pem(&k.verifying_key()).unwrap()).unwrap();
    assert_eq!(read_public_key(&q, &none()).unwrap(), k.verifying_key());
    assert!(matches!(
        read_device_key(&q, &none()),
        Err(Error::Key { .. })
    ));
    assert!(matches!(
        read_signing_key(&q, &none()),
        Err(Error::Key { .. })
    ));
    let d = DeviceKey::from_bytes(random_bytes().unwrap());
    let r = dir.path().join("d.key");
    fs::write(&r, device_key_pem(&d).unwrap().as_bytes()).unwrap();
    assert_eq!(
        read_device_key(&r, &none()).unwrap().as_bytes(),
        d.as_bytes()
    );
    assert!(matches!(
        read_signing_key(&r, &none()),
        Err(Error::Key { .. })
    ));
}

#[test]
fn encrypted_keys_round_trip_and_refuse_wrong_passphrases() {
    let dir = tempfile::tempdir().unwrap();
    let good = dir.path().join("good");
    fs::write(&good, "hunter2 but longer\n").unwrap();
    let bad = dir.path().join("bad");
    fs::write(&bad, "hunter3 but longer\n").unwrap();
    let good = Passphrase::new(Some(good));
    let bad = Passphrase::new(Some(bad));

    let k = SigningKey::from_bytes(&random_bytes().unwrap());
    let p = dir.path().join("k.pem");
    let pem = encrypted_signing_key_pem(&k, "hunter2 but longer").unwrap();
    assert!(pem.starts_with("-----BEGIN ENCRYPTED PRIVATE KEY-----"));
    fs::write(&p, pem.as_bytes()).unwrap();
    assert_eq!(
        read_signing_key(&p, &good).unwrap().to_bytes(),
        k.to_bytes()
    );
    assert_eq!(read_public_key(&p, &good).unwrap(), k.verifying_key());
    let e = read_signing_key(&p, &bad).unwrap_err();
    assert!(e.to_string().contains("wrong passphrase"), "{e}");
    assert_eq!(e.exit_code(), crate::error::EXIT_KEY);
    // A device key has no Debug (it is a secret): its refusal is taken with `err()`.
    let device_key_refusal =
        |p: &Path, pass: &Passphrase| read_device_key(p, pass).err().unwrap().to_string();
    assert!(device_key_refusal(&p, &good).contains("is an Ed25519 signing key"));

    let d = DeviceKey::from_bytes(random_bytes().unwrap());
    let r = dir.path().join("d.key");
    fs::write(
        &r,
        encrypted_device_key_pem(&d, "hunter2 but longer")
            .unwrap()
            .as_bytes(),
    )
    .unwrap();
    assert_eq!(read_device_key(&r, &good).unwrap().as_bytes(), d.as_bytes());
    assert!(device_key_refusal(&r, &bad).contains("wrong passphrase"));
    assert!(
        read_signing_key(&r, &good)
            .unwrap_err()
            .to_string()
            .contains("is a device key")
    );
}
