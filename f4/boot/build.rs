//! Links with cortex-m-rt's `link.x` and this crate's memory.x (only for the MCU).
//! `SBSFU_BOOT_FLASH` (e.g. `128K`) overrides the flash length, for size experiments only
//! (`cargo xtask f4-bench` links the unrolled-SHA variant, which does not fit 63K, that way).

fn main() {
    let out = std::path::PathBuf::from(std::env::var("OUT_DIR").unwrap());
    let mut memory = std::fs::read_to_string("memory.x").unwrap();
    if let Ok(len) = std::env::var("SBSFU_BOOT_FLASH") {
        memory = memory.replace("LENGTH = 63K", &format!("LENGTH = {len}"));
    }
    std::fs::write(out.join("memory.x"), memory).unwrap();
    println!("cargo:rerun-if-changed=memory.x");
    println!("cargo:rerun-if-env-changed=SBSFU_BOOT_FLASH");
    if std::env::var("CARGO_CFG_TARGET_OS").as_deref() == Ok("none") {
        println!("cargo:rustc-link-search={}", out.display());
        println!("cargo:rustc-link-arg=-Tlink.x");
    }
}
