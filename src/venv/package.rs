//! Installed packages, read from `*.dist-info` directories without starting Python,
//! and the simple requirements (`name` or `name>=version`) the admin environment checks.

use serde::{Deserialize, Serialize};
use std::io;
use std::path::{Path, PathBuf};

/// An installed distribution.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Package {
    /// The name as its METADATA spells it.
    pub name: String,
    pub version: String,
}

/// What to install: requirement strings and requirements files.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PackageRequest {
    /// PEP 508 requirements, e.g. `six`, `idna>=3`.
    pub requirements: Vec<String>,
    /// Requirements files (`-r`).
    pub files: Vec<PathBuf>,
}

impl PackageRequest {
    pub fn new(requirements: Vec<String>, files: Vec<PathBuf>) -> Self {
        Self {
            requirements,
            files,
        }
    }

    pub fn is_empty(&self) -> bool {
        self.requirements.is_empty() && self.files.is_empty()
    }

    /// A short description for messages: the requirements, then the files.
    pub fn describe(&self) -> String {
        let mut parts: Vec<String> = self.requirements.clone();
        parts.extend(self.files.iter().map(|f| format!("-r {}", f.display())));
        parts.join(" ")
    }
}

/// The `site-packages` directories of an environment (normally one).
pub fn site_packages(env: &Path) -> Vec<PathBuf> {
    if cfg!(windows) {
        return vec![env.join("Lib").join("site-packages")];
    }
    let Ok(entries) = fs_err::read_dir(env.join("lib")) else {
        return Vec::new();
    };
    let mut dirs: Vec<PathBuf> = entries
        .filter_map(Result::ok)
        .filter(|e| {
            let name = e.file_name();
            let name = name.to_string_lossy();
            name.starts_with("python") || name.starts_with("pypy")
        })
        .map(|e| e.path().join("site-packages"))
        .filter(|p| p.is_dir())
        .collect();
    dirs.sort();
    dirs
}

/// How many `*.dist-info` directories the environment has (one read of each directory).
pub fn count(env: &Path) -> usize {
    site_packages(env)
        .iter()
        .filter_map(|dir| fs_err::read_dir(dir).ok())
        .flat_map(|entries| entries.filter_map(Result::ok))
        .filter(|e| is_dist_info(&e.file_name().to_string_lossy()))
        .count()
}

/// Every installed package with its version, sorted by name.
pub fn list(env: &Path) -> io::Result<Vec<Package>> {
    let mut packages = Vec::new();
    for dir in site_packages(env) {
        for entry in fs_err::read_dir(&dir)? {
            let entry = entry?;
            let file_name = entry.file_name().to_string_lossy().into_owned();
            if !is_dist_info(&file_name) {
                continue;
            }
            let from_dir = name_version_from_dir(&file_name);
            let metadata = fs_err::read_to_string(entry.path().join("METADATA")).ok();
            let from_metadata = metadata.as_deref().and_then(name_version_from_metadata);
            if let Some((name, version)) = from_metadata.or(from_dir) {
                packages.push(Package { name, version });
            }
        }
    }
    packages.sort_by(|a, b| {
        normalize(&a.name)
            .cmp(&normalize(&b.name))
            .then(a.version.cmp(&b.version))
    });
    Ok(packages)
}

/// The installed packages that require `name` (from each `Requires-Dist:` of their
/// METADATA that is not only for an extra), sorted by name: what removing it may break.
pub fn dependents(env: &Path, name: &str) -> io::Result<Vec<Package>> {
    let wanted = normalize(name);
    let mut found = Vec::new();
    for dir in site_packages(env) {
        for entry in fs_err::read_dir(&dir)? {
            let entry = entry?;
            if !is_dist_info(&entry.file_name().to_string_lossy()) {
                continue;
            }
            let Ok(text) = std::fs::read_to_string(entry.path().join("METADATA")) else {
                continue;
            };
            let Some((pkg, version)) = name_version_from_metadata(&text) else {
                continue;
            };
            if normalize(&pkg) != wanted && requires(&text).any(|r| normalize(r) == wanted) {
                found.push(Package { name: pkg, version });
            }
        }
    }
    found.sort_by_key(|p| normalize(&p.name));
    found.dedup_by(|a, b| normalize(&a.name) == normalize(&b.name));
    Ok(found)
}

/// The names of the `Requires-Dist:` headers that apply without an extra.
fn requires(metadata: &str) -> impl Iterator<Item = &str> {
    metadata
        .lines()
        .take_while(|l| !l.is_empty())
        .filter_map(|l| l.strip_prefix("Requires-Dist:"))
        .filter(|r| {
            r.split_once(';')
                .is_none_or(|(_, marker)| !marker.contains("extra"))
        })
        .map(|r| {
            let r = r.trim();
            let end = r
                .find(|c: char| !(c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.')))
                .unwrap_or(r.len());
            &r[..end]
        })
        .filter(|n| !n.is_empty())
}

fn is_dist_info(file_name: &str) -> bool {
    file_name.ends_with(".dist-info")
}

/// `Name:` and `Version:` from the METADATA headers (they end at the first blank line).
fn name_version_from_metadata(text: &str) -> Option<(String, String)> {
    let mut name = None;
    let mut version = None;
    for line in text.lines() {
        if line.is_empty() {
            break;
        }
        if let Some(v) = line.strip_prefix("Name:") {
            name = Some(v.trim().to_string());
        } else if let Some(v) = line.strip_prefix("Version:") {
            version = Some(v.trim().to_string());
        }
    }
    Some((name?, version?))
}

/// `six-1.16.0.dist-info` → (`six`, `1.16.0`).
fn name_version_from_dir(file_name: &str) -> Option<(String, String)> {
    let stem = file_name.strip_suffix(".dist-info")?;
    let (name, version) = stem.rsplit_once('-')?;
    Some((name.to_string(), version.to_string()))
}

/// PEP 503 normalized name: lowercase, runs of `-_.` become `-`.
pub fn normalize(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    let mut separator = false;
    for c in name.chars() {
        if matches!(c, '-' | '_' | '.') {
            separator = true;
        } else {
            if separator && !out.is_empty() {
                out.push('-');
            }
            separator = false;
            out.push(c.to_ascii_lowercase());
        }
    }
    out
}

/// A requirement the host checks itself: `name` or `name>=version`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MinimumRequirement {
    pub name: String,
    pub minimum: Option<String>,
}

impl MinimumRequirement {
    pub fn parse(text: &str) -> Self {
        match text.split_once(">=") {
            Some((name, minimum)) => Self {
                name: name.trim().to_string(),
                minimum: Some(minimum.trim().to_string()),
            },
            None => Self {
                name: text.trim().to_string(),
                minimum: None,
            },
        }
    }

    /// Whether one of `installed` satisfies this requirement.
    pub fn is_met_by(&self, installed: &[Package]) -> bool {
        let wanted = normalize(&self.name);
        installed.iter().any(|p| {
            normalize(&p.name) == wanted
                && self.minimum.as_deref().is_none_or(|min| {
                    crate::runtime::version_tuple(&p.version) >= crate::runtime::version_tuple(min)
                })
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_normalize() {
        assert_eq!(normalize("Foo__Bar.baz"), "foo-bar-baz");
        assert_eq!(normalize("grpcio"), "grpcio");
    }

    #[test]
    fn metadata_headers() {
        let text = "Metadata-Version: 2.1\nName: six\nVersion: 1.16.0\n\nVersion: 9\n";
        assert_eq!(
            name_version_from_metadata(text),
            Some(("six".into(), "1.16.0".into()))
        );
        assert_eq!(
            name_version_from_dir("typing_extensions-4.12.2.dist-info"),
            Some(("typing_extensions".into(), "4.12.2".into()))
        );
    }

    #[test]
    fn dependents_from_metadata() {
        let env = tempfile::tempdir().unwrap();
        let site = env.path().join("lib/python3.12/site-packages");
        let dist = |name: &str, meta: &str| {
            let dir = site.join(format!("{name}.dist-info"));
            std::fs::create_dir_all(&dir).unwrap();
            std::fs::write(dir.join("METADATA"), meta).unwrap();
        };
        dist("six-1.16.0", "Name: six\nVersion: 1.16.0\n");
        dist(
            "python_dateutil-2.9.0",
            "Name: python-dateutil\nVersion: 2.9.0\nRequires-Dist: six (>=1.5)\n\nRequires-Dist: nope\n",
        );
        dist(
            "extra_user-1.0",
            "Name: extra-user\nVersion: 1.0\nRequires-Dist: six ; extra == \"compat\"\n",
        );
        dist(
            "marker_user-2.0",
            "Name: Marker_User\nVersion: 2.0\nRequires-Dist: Six>=1; python_version >= \"3\"\n",
        );
        let names = |name| -> Vec<String> {
            dependents(env.path(), name)
                .unwrap()
                .into_iter()
                .map(|p| format!("{} {}", p.name, p.version))
                .collect()
        };
        assert_eq!(names("six"), ["Marker_User 2.0", "python-dateutil 2.9.0"]);
        assert!(names("python_dateutil").is_empty());
        assert!(names("nope").is_empty());
    }

    #[test]
    fn minimum_requirements() {
        let installed = vec![Package {
            name: "grpcio".into(),
            version: "1.66.2".into(),
        }];
        assert!(MinimumRequirement::parse("grpcio>=1.60").is_met_by(&installed));
        assert!(MinimumRequirement::parse("GRPCIO").is_met_by(&installed));
        assert!(!MinimumRequirement::parse("grpcio>=1.70").is_met_by(&installed));
        assert!(!MinimumRequirement::parse("protobuf").is_met_by(&installed));
    }
}
