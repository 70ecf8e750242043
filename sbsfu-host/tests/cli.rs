//! CLI golden tests: help texts, outputs and error lines, with their exit codes, checked against
//! `tests/cmd/*.toml`. Regenerate after a deliberate change with
//! `TRYCMD=overwrite cargo test -p sbsfu-host --test cli` and review the diff.

#[test]
fn cli_golden() {
    trycmd::TestCases::new().case("tests/cmd/*.toml");
}
