//! Links the container to push into the firmware: the file named by `SBSFU_CONTAINER` at build
//! time, or by default the repository's known-answer container (`tests/vectors/kat-encrypted.sfu`).

use std::path::PathBuf;
use std::{env, fs};

fn main() {
    println!("cargo:rerun-if-env-changed=SBSFU_CONTAINER");
    let manifest = PathBuf::from(env::var("CARGO_MANIFEST_DIR").expect("cargo sets it"));
    let source = env::var_os("SBSFU_CONTAINER")
        .map(PathBuf::from)
        .unwrap_or_else(|| manifest.join("../../tests/vectors/kat-encrypted.sfu"));
    println!("cargo:rerun-if-changed={}", source.display());
    let bytes =
        fs::read(&source).unwrap_or_else(|e| panic!("SBSFU_CONTAINER {}: {e}", source.display()));
    let out = PathBuf::from(env::var("OUT_DIR").expect("cargo sets it")).join("container.sfu");
    fs::write(out, bytes).expect("write OUT_DIR/container.sfu");
}
