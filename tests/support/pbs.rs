//! The test runtime: a python-build-standalone-shaped archive built from this machine's
//! CPython (once per test run, cached under the target dir), a catalog that names it,
//! and a home directory pointed at a local mirror.

#![allow(dead_code)]

use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;

pub const BUILD: &str = "20990101";
pub const GITHUB_PREFIX: &str =
    "https://github.com/astral-sh/python-build-standalone/releases/download";

/// One built archive.
#[derive(Debug, Clone)]
pub struct Archive {
    pub name: String,
    pub path: PathBuf,
    pub sha256: String,
}

#[derive(Debug, Clone)]
pub struct Fixture {
    pub version: String,
    pub targz: Archive,
    pub zip: Archive,
}

/// Build (or reuse) the archives. Serialized across test processes by a lock file.
pub fn fixture() -> &'static Fixture {
    static FIXTURE: OnceLock<Fixture> = OnceLock::new();
    FIXTURE.get_or_init(|| {
        let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("pbs-fixture");
        std::fs::create_dir_all(&dir).unwrap();
        let lock = std::fs::File::create(dir.join(".lock")).unwrap();
        lock.lock().unwrap();
        let manifest = dir.join("fixture.json");
        let script =
            Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/support/make_pbs_archive.py");
        let fresh = std::fs::metadata(&manifest)
            .and_then(|m| m.modified())
            .ok()
            .zip(std::fs::metadata(&script).and_then(|m| m.modified()).ok())
            .is_some_and(|(built, changed)| built > changed)
            // (and it names archives that are there: a copied target dir names another's)
            && std::fs::read(&manifest)
                .ok()
                .and_then(|b| serde_json::from_slice::<Value>(&b).ok())
                .is_some_and(|v| {
                    ["tar.gz", "zip"].iter().all(|k| {
                        v["archives"][k]["path"]
                            .as_str()
                            .is_some_and(|p| Path::new(p).starts_with(&dir) && Path::new(p).is_file())
                    })
                });
        if !fresh {
            let out = Command::new("python3")
                .arg(&script)
                .arg("--out")
                .arg(&dir)
                .arg("--build")
                .arg(BUILD)
                .output()
                .expect("python3 runs");
            assert!(
                out.status.success(),
                "fixture build failed: {}",
                String::from_utf8_lossy(&out.stderr)
            );
            std::fs::write(&manifest, &out.stdout).unwrap();
        }
        let v: Value = serde_json::from_slice(&std::fs::read(&manifest).unwrap()).unwrap();
        let archive = |kind: &str| Archive {
            name: v["archives"][kind]["name"].as_str().unwrap().to_string(),
            path: PathBuf::from(v["archives"][kind]["path"].as_str().unwrap()),
            sha256: v["archives"][kind]["sha256"].as_str().unwrap().to_string(),
        };
        Fixture {
            version: v["version"].as_str().unwrap().to_string(),
            targz: archive("tar.gz"),
            zip: archive("zip"),
        }
    })
}

/// A mirror directory laid out like the release downloads: `<build>/<file>`.
pub fn mirror_with(dir: &Path, archives: &[(&str, &Path)]) {
    let sub = dir.join(BUILD);
    std::fs::create_dir_all(&sub).unwrap();
    for (name, path) in archives {
        std::fs::copy(path, sub.join(name)).unwrap();
    }
}

/// A catalog file with one entry per `(version, file name, sha256)`.
pub fn catalog(path: &Path, entries: &[(&str, &str, &str)]) {
    let (os, arch) = (std::env::consts::OS, std::env::consts::ARCH);
    let entries: Vec<Value> = entries
        .iter()
        .map(|(version, name, sha)| {
            serde_json::json!({
                "version": version, "os": if os == "macos" { "darwin" } else { os }, "arch": arch,
                "libc": "gnu", "build": BUILD,
                "url": format!("{GITHUB_PREFIX}/{BUILD}/{}", name.replace('+', "%2B")),
                "sha256": sha,
            })
        })
        .collect();
    std::fs::write(
        path,
        serde_json::to_vec_pretty(&serde_json::json!({ "entries": entries })).unwrap(),
    )
    .unwrap();
}

/// A temp home with a catalog and mirror setting for `beep-host`.
pub struct Home {
    pub dir: tempfile::TempDir,
    pub catalog: PathBuf,
    pub mirror: String,
}

impl Home {
    pub fn new(catalog: PathBuf, mirror: String) -> Self {
        Self {
            dir: tempfile::tempdir().unwrap(),
            catalog,
            mirror,
        }
    }

    /// A home inside `outer`, so a test can watch everything next to it.
    pub fn new_in(outer: &Path, catalog: PathBuf, mirror: String) -> Self {
        Self {
            dir: tempfile::tempdir_in(outer).unwrap(),
            catalog,
            mirror,
        }
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    pub fn command(&self) -> Command {
        let mut c = Command::new(env!("CARGO_BIN_EXE_beep-host"));
        c.env("BEEP_HOST_HOME", self.dir.path())
            .env("BEEP_PYTHON_CATALOG", &self.catalog)
            .env("BEEP_PYTHON_MIRROR", &self.mirror)
            .env_remove("RUST_LOG");
        c
    }

    pub fn run(&self, args: &[&str]) -> Output {
        self.command().args(args).output().unwrap()
    }

    pub fn runtimes_dir(&self) -> PathBuf {
        self.dir.path().join("data/runtimes")
    }

    /// Names in the runtimes dir, hidden temp/trash dirs included.
    pub fn runtime_dir_names(&self) -> Vec<String> {
        match std::fs::read_dir(self.runtimes_dir()) {
            Ok(rd) => {
                let mut v: Vec<String> = rd
                    .flatten()
                    .map(|e| e.file_name().to_string_lossy().into_owned())
                    .collect();
                v.sort();
                v
            }
            Err(_) => Vec::new(),
        }
    }

    /// Managed runtimes per `runtime list --json`.
    pub fn managed(&self) -> Vec<Value> {
        let out = self.run(&["runtime", "list", "--json"]);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let list: Vec<Value> = serde_json::from_slice(&out.stdout).unwrap();
        list.into_iter()
            .filter(|r| r["kind"] == "managed")
            .collect()
    }

    /// Files left in the downloads cache.
    pub fn downloads(&self) -> Vec<String> {
        std::fs::read_dir(self.dir.path().join("cache/downloads"))
            .map(|rd| {
                rd.flatten()
                    .map(|e| e.file_name().to_string_lossy().into_owned())
                    .collect()
            })
            .unwrap_or_default()
    }
}

pub fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}
