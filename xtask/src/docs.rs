//! The docs name the test behind every claim (`crate::module::tests::name`, `file::name` for a
//! workspace test file, `cmd/case` for a CLI golden test); this checks that each one exists, so a
//! renamed or deleted test cannot leave a claim pointing at nothing.

use std::fs;
use std::path::{Path, PathBuf};

use crate::{Result, root};

/// The documents whose references are checked.
const DOCS: [&str; 5] = [
    "docs/FORMAT.md",
    "docs/LINK.md",
    "docs/SECURITY.md",
    "docs/BOOT.md",
    "docs/PERFORMANCE.md",
];

/// Crates whose `src/` holds modules, by the name references use.
const CRATES: [(&str, &str); 5] = [
    ("sbsfu_format", "sbsfu-format"),
    ("sbsfu_device", "sbsfu-device"),
    ("sbsfu_host", "sbsfu-host"),
    ("sbsfu_f4", "f4/sbsfu-f4"),
    ("sbsfu_link", "sbsfu-link"),
];

/// Directories of workspace test files (`file::test`).
const TEST_DIRS: [&str; 3] = ["tests", "sbsfu-device/tests", "sbsfu-host/tests"];

/// Placeholders in the docs' own explanations, and paths outside the workspace (the standard
/// library, and dependencies' functions named in profiles).
const NOT_REFERENCES: [&str; 5] = [
    "crate::module::test",
    "file::test",
    "core::fmt",
    "std::",
    "sha2::",
];

fn read(path: &Path) -> String {
    fs::read_to_string(path).unwrap_or_default()
}

/// Code spans of a Markdown text.
fn spans(text: &str) -> impl Iterator<Item = &str> {
    text.split('`').skip(1).step_by(2)
}

fn test_file(name: &str) -> Option<PathBuf> {
    TEST_DIRS
        .iter()
        .map(|d| root().join(d).join(format!("{name}.rs")))
        .find(|p| p.exists())
}

fn module_file(krate_dir: &str, modules: &[&str]) -> Option<PathBuf> {
    let src = root().join(krate_dir).join("src");
    if modules.is_empty() {
        return Some(src.join("lib.rs"));
    }
    let rel = modules.join("/");
    [
        src.join(format!("{rel}.rs")),
        src.join(rel.clone()).join("mod.rs"),
    ]
    .into_iter()
    .find(|p| p.exists())
}

/// Whether `file` defines `item` (a whole identifier, not a prefix of a longer one).
fn defines(file: &Path, item: &str) -> bool {
    let text = read(file);
    [
        "fn ", "struct ", "enum ", "mod ", "trait ", "type ", "const ",
    ]
    .iter()
    .any(|k| {
        let needle = format!("{k}{item}");
        text.match_indices(&needle).any(|(at, _)| {
            !text[at + needle.len()..].starts_with(|c: char| c.is_ascii_alphanumeric() || c == '_')
        })
    })
}

/// Whether a file in the folder of the module file `file` (a crate root or a `mod.rs`), or
/// below it, defines `item`: what a module re-exports from its submodules.
fn defines_below(file: &Path, item: &str) -> bool {
    let is_folder_module = file
        .file_name()
        .is_some_and(|n| n == "mod.rs" || n == "lib.rs");
    let Some(dir) = file.parent().filter(|_| is_folder_module) else {
        return false;
    };
    let mut dirs = vec![dir.to_path_buf()];
    while let Some(d) = dirs.pop() {
        for entry in fs::read_dir(&d).into_iter().flatten().flatten() {
            let path = entry.path();
            if path.is_dir() {
                dirs.push(path);
            } else if path.extension().is_some_and(|e| e == "rs") && defines(&path, item) {
                return true;
            }
        }
    }
    false
}

/// Whether the reference `r` names something that exists.
fn resolves(r: &str) -> bool {
    if let Some(case) = r.strip_prefix("cmd/") {
        let dir = root().join("sbsfu-host/tests/cmd");
        return match case.strip_suffix('*') {
            Some(prefix) => fs::read_dir(&dir).is_ok_and(|mut d| {
                d.any(|e| {
                    e.is_ok_and(|e| {
                        let n = e.file_name().to_string_lossy().into_owned();
                        n.starts_with(prefix) && n.ends_with(".toml")
                    })
                })
            }),
            None => dir.join(format!("{case}.toml")).exists(),
        };
    }
    let parts: Vec<&str> = r.split("::").collect();
    if let [file, test] = parts.as_slice()
        && let Some(path) = test_file(file)
    {
        return defines(&path, test);
    }
    let (krate_dirs, rest): (Vec<&str>, &[&str]) =
        match CRATES.iter().find(|(name, _)| *name == parts[0]) {
            Some((_, dir)) => (vec![*dir], &parts[1..]),
            // A module path without its crate (BOOT.md's `journal::tests::...`): any crate.
            None => (CRATES.iter().map(|(_, d)| *d).collect(), &parts[..]),
        };
    krate_dirs.iter().any(|dir| {
        if let Some(t) = rest.iter().position(|p| *p == "tests") {
            let Some(file) = module_file(dir, &rest[..t]) else {
                return false;
            };
            // The tests of a module are in its file, or in its own `tests.rs` (`mod tests;`).
            let own = module_file(dir, &rest[..=t]);
            return match rest.get(t + 1) {
                Some(&"*") => read(&file).contains("mod tests"),
                Some(name) => defines(&file, name) || own.is_some_and(|f| defines(&f, name)),
                None => false,
            };
        }
        // A module, or an item in one (defined there, or in a submodule it re-exports from).
        module_file(dir, rest).is_some()
            || rest.split_last().is_some_and(|(item, modules)| {
                module_file(dir, modules)
                    .is_some_and(|f| defines(&f, item) || defines_below(&f, item))
            })
    })
}

/// Fails listing every reference in the docs that names nothing.
pub fn check_test_references() -> Result {
    let mut missing = Vec::new();
    let mut checked = 0;
    for doc in DOCS {
        // A missing document must fail, not pass with nothing to check.
        let text = fs::read_to_string(root().join(doc)).map_err(|e| format!("{doc}: {e}"))?;
        for span in spans(&text) {
            let reference = span.trim();
            // `Type::method` names code, not a test: only lower-case paths are references.
            let looks_like = match reference.strip_prefix("cmd/") {
                Some(case) => case
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '*'),
                None => {
                    reference.contains("::")
                        && reference.starts_with(|c: char| c.is_ascii_lowercase())
                        && reference
                            .chars()
                            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':' || c == '*')
                }
            };
            if !looks_like || NOT_REFERENCES.iter().any(|n| reference.starts_with(n)) {
                continue;
            }
            checked += 1;
            if !resolves(reference) {
                missing.push(format!("{doc}: `{reference}`"));
            }
        }
    }
    if checked == 0 {
        Err("the docs name no tests at all: is the reference syntax still `file::test`?".into())
    } else if missing.is_empty() {
        println!("{checked} test references in the docs all resolve");
        Ok(())
    } else {
        Err(format!(
            "the docs name tests that do not exist:\n  {}",
            missing.join("\n  ")
        ))
    }
}
