//! What a bundle needs from a project: `beep.lock` (PEP 751 `pylock.toml` with a
//! `[tool.beep.runtime]` table). `beep.toml` is validated by the project module
//! ([`crate::project::Manifest`]) and carried as it is.

use serde::Deserialize;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use super::Error;

pub const PROJECT_FILE: &str = "beep.toml";
pub const LOCK_FILE: &str = "beep.lock";

/// `beep.lock`, as far as a bundle reads it.
#[derive(Debug, Clone, Deserialize)]
pub struct Lock {
    #[serde(default)]
    pub packages: Vec<LockedPackage>,
    #[serde(default)]
    pub tool: LockTool,
}

#[derive(Debug, Clone, Default, Deserialize)]
pub struct LockTool {
    #[serde(default)]
    pub beep: Option<LockBeep>,
}

#[derive(Debug, Clone, Default, Deserialize)]
pub struct LockBeep {
    pub runtime: Option<LockedRuntime>,
}

/// `[tool.beep.runtime]`: the catalog entry the lock was made for (a lock made with an
/// interpreter of the machine has `path` instead, which a bundle cannot carry).
#[derive(Debug, Clone, Deserialize)]
pub struct LockedRuntime {
    #[serde(default)]
    pub key: Option<String>,
    pub version: String,
    #[serde(default)]
    pub url: Option<String>,
    #[serde(default)]
    pub sha256: Option<String>,
    #[serde(default)]
    pub path: Option<String>,
}

/// A locked catalog runtime.
#[derive(Debug, Clone)]
pub struct PinnedRuntime {
    pub key: String,
    pub version: String,
    pub sha256: String,
}

/// One `[[packages]]` entry.
#[derive(Debug, Clone, Deserialize)]
pub struct LockedPackage {
    pub name: String,
    pub version: String,
    /// An environment marker: the package is installed only where it holds.
    #[serde(default)]
    pub marker: Option<String>,
    #[serde(default)]
    pub wheels: Vec<LockedWheel>,
}

/// One wheel of a package: PEP 751 gives `url` or `path`, `name` is optional.
#[derive(Debug, Clone, Deserialize)]
pub struct LockedWheel {
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub url: Option<String>,
    #[serde(default)]
    pub path: Option<String>,
    #[serde(default)]
    pub hashes: BTreeMap<String, String>,
}

impl LockedWheel {
    /// The wheel's file name: `name`, else the last segment of its url or path.
    pub fn file_name(&self) -> Option<String> {
        if let Some(name) = &self.name {
            return Some(name.clone());
        }
        let from = self.url.as_deref().or(self.path.as_deref())?;
        let last = from.rsplit(['/', '\\']).next()?;
        let last = last.split(['?', '#']).next().unwrap_or(last);
        Some(last.replace("%2B", "+").replace("%2b", "+"))
    }

    pub fn sha256(&self) -> Option<&str> {
        self.hashes.get("sha256").map(String::as_str)
    }
}

impl Lock {
    pub fn parse(path: &Path, text: &str) -> Result<Self, Error> {
        toml::from_str(text).map_err(|e| Error::Parse {
            path: path.to_path_buf(),
            message: e.to_string(),
        })
    }

    pub fn runtime(&self, path: &Path) -> Result<PinnedRuntime, Error> {
        let runtime = self
            .tool
            .beep
            .as_ref()
            .and_then(|b| b.runtime.as_ref())
            .ok_or_else(|| Error::NoRuntime {
                path: path.to_path_buf(),
            })?;
        match (&runtime.key, &runtime.sha256) {
            (Some(key), Some(sha256)) => Ok(PinnedRuntime {
                key: key.clone(),
                version: runtime.version.clone(),
                sha256: sha256.clone(),
            }),
            _ => Err(Error::AdoptedRuntime {
                path: path.to_path_buf(),
                python: runtime.path.clone().unwrap_or_default(),
            }),
        }
    }

    /// The locked runtime's key and sha256, when it is a catalog runtime.
    pub fn pinned(&self) -> Option<PinnedRuntime> {
        self.runtime(Path::new(LOCK_FILE)).ok()
    }

    /// `true` when `sha256` is the lock's hash of the wheel named `file_name`.
    pub fn has_wheel(&self, file_name: &str, sha256: &str) -> bool {
        self.packages.iter().flat_map(|p| &p.wheels).any(|w| {
            w.file_name().as_deref() == Some(file_name)
                && w.sha256().is_some_and(|h| h.eq_ignore_ascii_case(sha256))
        })
    }
}

/// The project's two files, read from `dir`.
#[derive(Debug, Clone)]
pub struct ProjectFiles {
    pub dir: PathBuf,
    pub toml: String,
    pub lock: String,
}

impl ProjectFiles {
    pub fn read(dir: &Path) -> Result<Self, Error> {
        let read = |name: &str| {
            let path = dir.join(name);
            fs_err::read_to_string(&path).map_err(Error::read(path))
        };
        Ok(Self {
            dir: dir.to_path_buf(),
            toml: read(PROJECT_FILE)?,
            lock: read(LOCK_FILE)?,
        })
    }

    pub fn lock_path(&self) -> PathBuf {
        self.dir.join(LOCK_FILE)
    }
}
