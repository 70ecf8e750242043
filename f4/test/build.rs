//! Links with cortex-m-rt's `link.x`. The QEMU build uses memory.x (a RAM-backed flash window
//! needs 80K of the 128K of SRAM); the board build (`--features board`) memory-board.x, which
//! fits a NUCLEO-F401RE (96K of SRAM) and keeps the firmware below sector 6, the sector it tests
//! on. The board build embeds the test containers from target/f4-board (`SBSFU_F4_DATA`).

use std::path::PathBuf;

fn main() {
    let out = PathBuf::from(std::env::var("OUT_DIR").unwrap());
    let manifest = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").unwrap());
    let board = std::env::var_os("CARGO_FEATURE_BOARD").is_some();
    let memory = if board { "memory-board.x" } else { "memory.x" };
    std::fs::copy(memory, out.join("memory.x")).unwrap();
    println!("cargo:rerun-if-changed=memory.x");
    println!("cargo:rerun-if-changed=memory-board.x");
    if board {
        let data = manifest.join("../../target/f4-board");
        if !data.join("valid-encrypted.sfu").exists() {
            panic!(
                "no test data in {}: run `cargo xtask f4-board-data` first",
                data.display()
            );
        }
        println!("cargo:rustc-env=SBSFU_F4_DATA={}", data.display());
        println!("cargo:rerun-if-changed={}", data.display());
    }
    if std::env::var("CARGO_CFG_TARGET_OS").as_deref() == Ok("none") {
        println!("cargo:rustc-link-search={}", out.display());
        println!("cargo:rustc-link-arg=-Tlink.x");
    }
}
