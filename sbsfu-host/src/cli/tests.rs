use super::parse::{parse_size, parse_u32};
use super::*;
use clap::CommandFactory;

#[test]
fn cli_is_well_formed() {
    Cli::command().debug_assert();
}

#[test]
fn numbers() {
    assert_eq!(parse_u32("0x0802_0000"), Ok(0x0802_0000));
    assert_eq!(parse_u32("4096"), Ok(4096));
    assert!(parse_u32("0x1_0000_0000").is_err());
    assert!(parse_u32("-1").is_err());
    assert!(parse_u32("").is_err());
    assert_eq!(parse_size("64M"), Ok(64 << 20));
    assert_eq!(parse_size("64MiB"), Ok(64 << 20));
    assert_eq!(parse_size("1G"), Ok(1 << 30));
    assert_eq!(parse_size("512k"), Ok(512 << 10));
    assert_eq!(parse_size("0x1000"), Ok(4096));
    assert_eq!(parse_size("100"), Ok(100));
    assert!(parse_size("M").is_err());
    assert!(parse_size("1T").is_err());
}
