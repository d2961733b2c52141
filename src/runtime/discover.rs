//! Adopted interpreters: CPython already on the machine (PATH, pyenv, conda).
//!
//! Each candidate is run once to learn its version; answers are cached by path, size
//! and modification time in `<cache>/interpreters.json`, so listing stays fast.

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;

use super::{Runtime, RuntimeKind};
use crate::Paths;

/// What one interpreter said about itself.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct Probe {
    version: String,
    prefix: PathBuf,
    implementation: String,
    is_venv: bool,
    /// `sys.executable`: differs from the path run for a shim or wrapper script.
    #[serde(default)]
    executable: PathBuf,
}

#[derive(Debug, Default, Serialize, Deserialize)]
struct ProbeCache {
    /// Canonical path → (size, mtime seconds, probe).
    entries: BTreeMap<PathBuf, (u64, i64, Probe)>,
}

/// Imports nothing beyond `sys`: on a fresh runtime without bytecode, importing `json`
/// alone costs more than the interpreter's start.
/// It prints five lines: version, implementation, is-venv, `sys.executable`, prefix.
pub const PROBE_SCRIPT: &str = "import sys;print('%d.%d.%d'%sys.version_info[:3]);print(sys.implementation.name);print(int(sys.prefix!=sys.base_prefix));print(sys.executable);print(sys.prefix)";

#[cfg(test)]
mod tests {
    #[test]
    fn probe_answers_parse() {
        let p = super::parse_probe(b"3.11.7\ncpython\n0\n/opt/py thon/bin/python3\n/opt/py thon\n")
            .unwrap();
        assert_eq!(
            (p.version.as_str(), p.implementation.as_str(), p.is_venv),
            ("3.11.7", "cpython", false)
        );
        assert_eq!(p.prefix, std::path::PathBuf::from("/opt/py thon"));
        assert_eq!(
            p.executable,
            std::path::PathBuf::from("/opt/py thon/bin/python3")
        );
        assert!(super::parse_probe(b"garbage").is_none());
        assert!(super::parse_probe(b"x.y\ncpython\n0\n/p").is_none());
    }
}

/// Read the probe's five lines: version, implementation, is-venv, executable, prefix.
fn parse_probe(stdout: &[u8]) -> Option<Probe> {
    let text = std::str::from_utf8(stdout).ok()?;
    let mut lines = text.splitn(5, '\n');
    let version = lines.next()?.trim().to_string();
    let implementation = lines.next()?.trim().to_string();
    let is_venv = lines.next()?.trim() == "1";
    let executable = PathBuf::from(lines.next()?.trim_end_matches('\r'));
    let prefix = PathBuf::from(lines.next()?.trim_end_matches(['\r', '\n']));
    let valid = super::is_version_request(&version) && !implementation.is_empty();
    valid.then_some(Probe {
        version,
        prefix,
        implementation,
        is_venv,
        executable,
    })
}

/// Every adopted interpreter found, deduplicated by canonical path, newest first.
pub fn adopted(paths: &Paths) -> Vec<Runtime> {
    let mut seen = BTreeSet::new();
    let candidates: Vec<PathBuf> = candidates()
        .into_iter()
        .filter_map(|p| fs_err::canonicalize(&p).ok())
        .filter(|p| !p.starts_with(&paths.data))
        .filter(|p| seen.insert(p.clone()))
        .collect();
    let cache_path = paths.cache.join("interpreters.json");
    let mut cache: ProbeCache = fs_err::read(&cache_path)
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
        .unwrap_or_default();
    let mut changed = false;
    let mut found = Vec::new();
    for path in candidates {
        let Some((size, mtime)) = stamp(&path) else {
            continue;
        };
        let probe = match cache.entries.get(&path) {
            Some((s, m, probe)) if *s == size && *m == mtime => probe.clone(),
            _ => {
                let Some(probe) = probe(&path) else { continue };
                cache
                    .entries
                    .insert(path.clone(), (size, mtime, probe.clone()));
                changed = true;
                probe
            }
        };
        if probe.implementation != "cpython" || probe.is_venv {
            continue;
        }
        found.push(runtime_from(&path, probe));
    }
    if changed {
        let _ = fs_err::create_dir_all(&paths.cache);
        if let Ok(bytes) = serde_json::to_vec(&cache) {
            let tmp = cache_path.with_extension(format!("json.{}", std::process::id()));
            if fs_err::write(&tmp, bytes).is_ok() {
                let _ = fs_err::rename(&tmp, &cache_path);
            }
        }
    }
    found.sort_by_key(|r| std::cmp::Reverse(super::version_tuple(&r.version)));
    found
}

/// Adopt one interpreter named by path, without discovering the others: a working
/// CPython outside a virtual environment. A shim or wrapper (a script that runs another
/// interpreter, like pyenv's) is resolved to the interpreter it runs (`sys.executable`).
pub fn adopt_path(paths: &Paths, path: &Path) -> Result<Runtime, String> {
    let canonical = fs_err::canonicalize(path).map_err(|e| format!("it cannot be found: {e}"))?;
    let (canonical, probe) = match run(&canonical)? {
        probe
            if same_file(&probe.executable, &canonical)
                || probe.executable.as_os_str().is_empty() =>
        {
            (canonical, probe)
        }
        shim => {
            // A shim: adopt what it runs, if that answers for itself.
            let target = fs_err::canonicalize(&shim.executable).map_err(|e| {
                format!(
                    "it runs `{}`, which cannot be found: {e}",
                    shim.executable.display()
                )
            })?;
            let probe = run(&target)
                .map_err(|reason| format!("it runs `{}`, and {reason}", target.display()))?;
            if !same_file(&probe.executable, &target) {
                return Err(format!(
                    "it runs `{}`, which is itself a wrapper for `{}`",
                    target.display(),
                    probe.executable.display()
                ));
            }
            (target, probe)
        }
    };
    if canonical.starts_with(&paths.data) {
        return Err(format!(
            "it is inside the host's data dir `{}` (use the runtime's key)",
            paths.data.display()
        ));
    }
    if probe.implementation != "cpython" {
        return Err(format!("it is {}, not CPython", probe.implementation));
    }
    if probe.is_venv {
        return Err(format!(
            "it belongs to the virtual environment `{}`, not to a Python installation",
            probe.prefix.display()
        ));
    }
    Ok(runtime_from(&canonical, probe))
}

fn same_file(a: &Path, b: &Path) -> bool {
    fs_err::canonicalize(a).is_ok_and(|a| a == b)
}

/// Run the probe; the reason when it fails.
fn run(python: &Path) -> Result<Probe, String> {
    let out = Command::new(python)
        .args(["-I", "-S", "-c", PROBE_SCRIPT])
        .stdin(std::process::Stdio::null())
        .output()
        .map_err(|e| format!("it could not be started: {e}"))?;
    if !out.status.success() {
        let stderr = String::from_utf8_lossy(&out.stderr);
        return Err(format!("it exited with {}: {}", out.status, stderr.trim()));
    }
    parse_probe(&out.stdout).ok_or_else(|| {
        format!(
            "its answer was not understood: {}",
            String::from_utf8_lossy(&out.stdout).trim()
        )
    })
}

fn runtime_from(python: &Path, probe: Probe) -> Runtime {
    let digest = Sha256::digest(python.as_os_str().as_encoded_bytes());
    Runtime {
        key: format!("adopted-{}-{}", probe.version, &hex::encode(digest)[..6]),
        version: probe.version,
        path: probe.prefix,
        python: python.to_path_buf(),
        kind: RuntimeKind::Adopted,
        default: false,
        problem: None,
    }
}

fn stamp(path: &Path) -> Option<(u64, i64)> {
    let meta = fs_err::metadata(path).ok()?;
    let mtime = meta
        .modified()
        .ok()?
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0);
    Some((meta.len(), mtime))
}

/// Run an interpreter once; its version and prefix, or why it failed.
pub fn run_probe(python: &Path) -> Result<ProbeResult, String> {
    let probe = run(python)?;
    Ok(ProbeResult {
        version: probe.version,
        prefix: probe.prefix,
    })
}

/// What [`run_probe`] learns.
#[derive(Debug, Clone)]
pub struct ProbeResult {
    pub version: String,
    pub prefix: PathBuf,
}

fn probe(python: &Path) -> Option<Probe> {
    run(python).ok()
}

/// Candidate executables, unordered and possibly duplicated.
fn candidates() -> Vec<PathBuf> {
    let mut out = Vec::new();
    let names = python_names();
    if let Some(path) = std::env::var_os("PATH") {
        for dir in std::env::split_paths(&path) {
            // pyenv shims are scripts that pick an interpreter per directory: skip them,
            // the versions they point at are found below.
            if dir.ends_with("shims") || is_venv_bin(&dir) {
                continue;
            }
            for name in &names {
                let p = dir.join(name);
                if is_executable(&p) {
                    out.push(p);
                }
            }
        }
    }
    let home = std::env::var_os("HOME").map(PathBuf::from);
    let pyenv_root = std::env::var_os("PYENV_ROOT")
        .map(PathBuf::from)
        .or_else(|| home.as_ref().map(|h| h.join(".pyenv")));
    if let Some(root) = pyenv_root {
        out.extend(
            prefixes_in(&root.join("versions"))
                .into_iter()
                .map(|p| super::platform::python_in(&p)),
        );
    }
    let mut conda_roots: Vec<PathBuf> = Vec::new();
    if let Some(prefix) = std::env::var_os("CONDA_PREFIX") {
        conda_roots.push(PathBuf::from(prefix));
    }
    if let Some(h) = &home {
        for name in [
            "miniconda3",
            "anaconda3",
            "miniforge3",
            "mambaforge",
            ".conda",
        ] {
            conda_roots.push(h.join(name));
        }
    }
    for root in conda_roots {
        let python = super::platform::python_in(&root);
        if is_executable(&python) {
            out.push(python);
        }
        out.extend(
            prefixes_in(&root.join("envs"))
                .into_iter()
                .map(|p| super::platform::python_in(&p)),
        );
    }
    out.retain(|p| is_executable(p));
    out
}

fn python_names() -> Vec<String> {
    if cfg!(windows) {
        return vec!["python.exe".into()];
    }
    let mut names = vec!["python3".to_string(), "python".to_string()];
    names.extend((8..=15).map(|minor| format!("python3.{minor}")));
    names
}

fn prefixes_in(dir: &Path) -> Vec<PathBuf> {
    fs_err::read_dir(dir)
        .map(|rd| {
            rd.filter_map(|e| e.ok())
                .map(|e| e.path())
                .filter(|p| p.is_dir())
                .collect()
        })
        .unwrap_or_default()
}

fn is_venv_bin(dir: &Path) -> bool {
    dir.parent().is_some_and(|p| p.join("pyvenv.cfg").is_file())
}

fn is_executable(path: &Path) -> bool {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        fs_err::metadata(path).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
    }
    #[cfg(not(unix))]
    {
        path.is_file()
    }
}
