//! `beep.lock`: the project's packages resolved by uv in the pylock.toml format (PEP 751,
//! with hashes), plus `[tool.beep]`: a hash of what was resolved (so `up` knows when the
//! lock is stale) and the runtime (`[tool.beep.runtime]`: the catalog entry of a managed
//! runtime, or the path and version of an adopted one).
//!
//! The same input gives the same bytes: uv's header (the command line) is left out and
//! nothing records a time.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::manifest::{Manifest, PythonRequest, Requirements};

/// The lock file in a project folder.
pub const LOCK_FILE: &str = "beep.lock";

/// The runtime a lock was made for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum RuntimePin {
    /// A catalog runtime: installed by `up` when missing.
    Managed {
        key: String,
        version: String,
        url: String,
        sha256: String,
    },
    /// An interpreter found on the machine (or named by path).
    Adopted { path: PathBuf, version: String },
}

impl RuntimePin {
    pub fn version(&self) -> &str {
        match self {
            Self::Managed { version, .. } | Self::Adopted { version, .. } => version,
        }
    }

    /// What `Runtimes::find` understands.
    pub fn request(&self) -> String {
        match self {
            Self::Managed { key, .. } => key.clone(),
            Self::Adopted { path, .. } => path.to_string_lossy().into_owned(),
        }
    }
}

/// The `[tool.beep]` table.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BeepTool {
    /// The hash of the declared Python and requirements this lock resolves.
    pub input: String,
    pub runtime: RuntimePin,
}

/// A read `beep.lock`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProjectLock {
    pub path: PathBuf,
    /// sha256 of the file's bytes.
    pub hash: String,
    pub beep: BeepTool,
    /// `(name, version)` of every locked package.
    pub packages: Vec<(String, String)>,
}

#[derive(Deserialize)]
struct LockShape {
    #[serde(default)]
    packages: Vec<PackageShape>,
    tool: ToolShape,
}

#[derive(Deserialize)]
struct PackageShape {
    name: String,
    #[serde(default)]
    version: Option<String>,
}

#[derive(Deserialize)]
struct ToolShape {
    beep: BeepTool,
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("Failed to read `{}`", path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("Failed to read `{}`: it is not a lock `beep-host lock` wrote ({message}); run `beep-host lock` again", path.display())]
    Parse { path: PathBuf, message: String },
}

impl ProjectLock {
    /// Read `<dir>/beep.lock`; `Ok(None)` when there is none.
    pub fn read(dir: &Path) -> Result<Option<Self>, Error> {
        let path = dir.join(LOCK_FILE);
        let bytes = match fs_err::read(&path) {
            Ok(bytes) => bytes,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(source) => return Err(Error::Read { path, source }),
        };
        Self::parse(path, &bytes).map(Some)
    }

    pub fn parse(path: PathBuf, bytes: &[u8]) -> Result<Self, Error> {
        let text = String::from_utf8_lossy(bytes);
        let shape: LockShape = toml::from_str(&text).map_err(|e| Error::Parse {
            path: path.clone(),
            message: e.message().to_string(),
        })?;
        Ok(Self {
            hash: sha256_hex(bytes),
            beep: shape.tool.beep,
            packages: shape
                .packages
                .into_iter()
                .map(|p| (p.name, p.version.unwrap_or_default()))
                .collect(),
            path,
        })
    }
}

/// The hash of what a lock resolves: the declared Python and the requirements (the
/// text of a requirements file, not its name).
pub fn input_hash(manifest: &Manifest) -> Result<String, Error> {
    let mut hasher = Sha256::new();
    hasher.update(b"beep.lock v1\n");
    let python = match &manifest.python {
        PythonRequest::Version(v) => format!("version {v}"),
        PythonRequest::Key(k) => format!("key {k}"),
        PythonRequest::Path(p) => format!("path {}", p.display()),
    };
    hasher.update(python.as_bytes());
    hasher.update(b"\n");
    match &manifest.requirements {
        Requirements::List(list) => {
            for r in list {
                hasher.update(r.as_bytes());
                hasher.update(b"\n");
            }
        }
        Requirements::File(path) => {
            let text = fs_err::read(path).map_err(|source| Error::Read {
                path: path.clone(),
                source,
            })?;
            hasher.update(b"file\n");
            hasher.update(&text);
        }
    }
    Ok(hex::encode(hasher.finalize()))
}

/// uv's pylock output with `[tool.beep]` appended: the bytes of `beep.lock`.
pub fn compose(pylock: &str, beep: &BeepTool) -> String {
    // uv's header names the command line (temp paths): drop every leading comment.
    let body: Vec<&str> = pylock
        .lines()
        .skip_while(|l| l.starts_with('#') || l.trim().is_empty())
        .collect();
    let mut text = body.join("\n");
    while text.ends_with('\n') {
        text.pop();
    }
    let quote = |s: &str| toml::Value::String(s.to_string()).to_string();
    text.push_str("\n\n[tool.beep]\n");
    text.push_str(&format!(
        "input = {}\n\n[tool.beep.runtime]\n",
        quote(&beep.input)
    ));
    match &beep.runtime {
        RuntimePin::Managed {
            key,
            version,
            url,
            sha256,
        } => {
            text.push_str(&format!(
                "key = {}\nversion = {}\nurl = {}\nsha256 = {}\n",
                quote(key),
                quote(version),
                quote(url),
                quote(sha256)
            ));
        }
        RuntimePin::Adopted { path, version } => {
            text.push_str(&format!(
                "path = {}\nversion = {}\n",
                quote(&path.to_string_lossy()),
                quote(version)
            ));
        }
    }
    text
}

pub fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn composed_lock_reads_back() {
        let pylock = "# This file was autogenerated by uv via the following command:\n#    uv pip compile /tmp/x/req.in\nlock-version = \"1.0\"\ncreated-by = \"uv\"\n\n[[packages]]\nname = \"alpha\"\nversion = \"1.0\"\n";
        let beep = BeepTool {
            input: "abc".into(),
            runtime: RuntimePin::Managed {
                key: "cpython-3.12.7-linux-x86_64-gnu".into(),
                version: "3.12.7".into(),
                url: "https://example.com/x.tar.gz".into(),
                sha256: "00".into(),
            },
        };
        let text = compose(pylock, &beep);
        assert!(text.starts_with("lock-version"), "{text}");
        assert!(!text.contains("/tmp/x"));
        let lock = ProjectLock::parse(PathBuf::from("beep.lock"), text.as_bytes()).unwrap();
        assert_eq!(lock.beep, beep);
        assert_eq!(
            lock.packages,
            vec![("alpha".to_string(), "1.0".to_string())]
        );
    }
}
