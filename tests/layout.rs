//! The core's layering (README "Module map") and file sizes, checked on the source tree.

use std::path::{Path, PathBuf};

/// Every `.rs` file under `dir` (or `dir` itself when it is a file).
fn rust_files(dir: &Path) -> Vec<PathBuf> {
    if dir.is_file() {
        return vec![dir.to_path_buf()];
    }
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            files.extend(rust_files(&path));
        } else if path.extension().is_some_and(|e| e == "rs") {
            files.push(path);
        }
    }
    files.sort();
    files
}

fn src() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("src")
}

/// `file:line` of every line under `roots` that names module `module` of the crate,
/// as a path (`crate::venv`) or inside a `use crate::{...}` group.
fn mentions(roots: &[&str], module: &str) -> Vec<String> {
    let path = format!("crate::{module}");
    let mut hits = Vec::new();
    for root in roots {
        for file in rust_files(&src().join(root)) {
            let text = std::fs::read_to_string(&file).unwrap();
            let mut in_group = false;
            for (n, line) in text.lines().enumerate() {
                let trimmed = line.trim();
                if trimmed.starts_with("use crate::{") {
                    in_group = true;
                }
                let in_use_group = in_group
                    && trimmed
                        .split(|c: char| !(c.is_alphanumeric() || c == '_'))
                        .any(|word| word == module);
                if line.contains(&path) || in_use_group {
                    hits.push(format!("{}:{}: {}", file.display(), n + 1, trimmed));
                }
                if in_group && trimmed.contains("};") {
                    in_group = false;
                }
            }
        }
    }
    hits
}

#[test]
fn lower_layers_do_not_call_higher_ones() {
    let backend = mentions(&["venv", "paths.rs", "runtime"], "backend");
    assert!(backend.is_empty(), "{}", backend.join("\n"));
    let venv = mentions(&["paths.rs", "runtime"], "venv");
    assert!(venv.is_empty(), "{}", venv.join("\n"));
}

#[test]
fn the_check_sees_a_layering_violation() {
    // The walk finds what the layering forbids where it is allowed (backend uses venv).
    assert!(!mentions(&["backend"], "venv").is_empty());
}

/// Files are split by noun before they grow past this (README "Module map", house style).
const MAX_LINES: usize = 600;

#[test]
fn no_source_file_is_over_the_line_limit() {
    let long: Vec<String> = rust_files(&src())
        .into_iter()
        .filter_map(|file| {
            let lines = std::fs::read_to_string(&file).unwrap().lines().count();
            (lines > MAX_LINES).then(|| format!("{}: {lines} lines", file.display()))
        })
        .collect();
    assert!(
        long.is_empty(),
        "over {MAX_LINES} lines:\n{}",
        long.join("\n")
    );
}
