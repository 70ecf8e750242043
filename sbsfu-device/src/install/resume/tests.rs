use super::record::{FIXED, Head, Stored};
use crate::store::record_log::MAX_PAYLOAD;
use sbsfu_format::LINK_LEN;

#[test]
fn records_round_trip() {
    let head = Head::new(&[7u8; 140]).unwrap();
    for s in [
        Stored::Empty,
        Stored::Receiving {
            head,
            chunk: 0x0102_0304,
            link: [9; LINK_LEN],
        },
        Stored::Installed { head },
    ] {
        let mut buf = [0u8; MAX_PAYLOAD];
        let n = s.encode(&mut buf).unwrap();
        let back = Stored::decode(&buf[..n]).unwrap();
        let mut again = [0u8; MAX_PAYLOAD];
        assert_eq!(back.encode(&mut again).unwrap(), n);
        assert_eq!(buf[..n], again[..n]);
        assert!(Stored::decode(&buf[..n - 1]).is_err() || n == FIXED);
    }
    assert!(Stored::decode(&[3; FIXED]).is_err());
}
