//! The catalog of downloadable runtimes: python-build-standalone archives with their sha256.
//!
//! A catalog ships inside the binary; a path or URL (`file://`, `http(s)://`) can replace it,
//! and a mirror can replace the GitHub download prefix of every entry.

use serde::{Deserialize, Serialize};
use std::path::PathBuf;

use super::platform::Platform;
use super::version::{InstallRequest, is_version_request, version_tuple};

/// The prefix a mirror replaces, as uv's `UV_PYTHON_INSTALL_MIRROR` does.
pub const GITHUB_PREFIX: &str =
    "https://github.com/astral-sh/python-build-standalone/releases/download";

const BUILTIN: &str = include_str!("catalog.json");

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("Failed to read catalog `{}`", path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("Failed to fetch catalog `{url}`")]
    Fetch {
        url: String,
        #[source]
        source: reqwest::Error,
    },
    #[error("Failed to parse catalog `{source_name}`")]
    Parse {
        source_name: String,
        #[source]
        source: serde_json::Error,
    },
    #[error("Catalog `{source_name}` has an invalid entry {index}: {reason}")]
    Invalid {
        source_name: String,
        index: usize,
        reason: String,
    },
}

impl Error {
    /// What kind of failure this is (see [`crate::ErrorCode`]).
    pub fn code(&self) -> crate::ErrorCode {
        use crate::ErrorCode as C;
        C::Failed
    }
}

/// One downloadable archive.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CatalogEntry {
    pub version: String,
    pub os: String,
    pub arch: String,
    pub libc: String,
    pub build: String,
    pub url: String,
    pub sha256: String,
}

impl CatalogEntry {
    /// The key the runtime is installed under: `cpython-3.12.7-linux-x86_64-gnu`.
    pub fn key(&self) -> String {
        if self.libc == "none" {
            format!("cpython-{}-{}-{}", self.version, self.os, self.arch)
        } else {
            format!(
                "cpython-{}-{}-{}-{}",
                self.version, self.os, self.arch, self.libc
            )
        }
    }

    /// The archive's file name, decoded (`cpython-3.12.7+20241016-...tar.gz`).
    pub fn file_name(&self) -> String {
        let last = self.url.rsplit('/').next().unwrap_or(&self.url);
        last.replace("%2B", "+").replace("%2b", "+")
    }

    fn matches(&self, platform: &Platform) -> bool {
        self.os == platform.os && self.arch == platform.arch && self.libc == platform.libc
    }
}

#[derive(Debug, Deserialize)]
struct CatalogFile {
    entries: Vec<CatalogEntry>,
}

/// The entries in force, with the mirror already applied to their URLs.
#[derive(Debug, Clone)]
pub struct Catalog {
    /// Where the catalog came from: `built-in`, a path or a URL.
    pub source: String,
    pub entries: Vec<CatalogEntry>,
}

impl Catalog {
    /// The built-in catalog, or `location` (a path or URL), with `mirror` applied.
    pub async fn load(location: Option<&str>, mirror: Option<&str>) -> Result<Self, Error> {
        let (source_name, text) = match location {
            None => ("built-in".to_string(), BUILTIN.to_string()),
            Some(loc) => (loc.to_string(), read_location(loc).await?),
        };
        Self::parse(&source_name, &text, mirror)
    }

    /// Parse catalog JSON and apply the mirror.
    pub fn parse(source_name: &str, text: &str, mirror: Option<&str>) -> Result<Self, Error> {
        let file: CatalogFile = serde_json::from_str(text).map_err(|source| Error::Parse {
            source_name: source_name.to_string(),
            source,
        })?;
        let mut entries = file.entries;
        for (index, entry) in entries.iter_mut().enumerate() {
            let invalid = |reason: String| Error::Invalid {
                source_name: source_name.to_string(),
                index,
                reason,
            };
            if !is_version_request(&entry.version) || entry.version.split('.').count() != 3 {
                return Err(invalid(format!("version `{}` is not X.Y.Z", entry.version)));
            }
            if entry.sha256.len() != 64 || !entry.sha256.chars().all(|c| c.is_ascii_hexdigit()) {
                return Err(invalid(format!(
                    "sha256 `{}` is not 64 hex digits",
                    entry.sha256
                )));
            }
            entry.sha256 = entry.sha256.to_ascii_lowercase();
            if let Some(mirror) = mirror
                && let Some(rest) = entry.url.strip_prefix(GITHUB_PREFIX)
            {
                entry.url = format!("{}{}", mirror.trim_end_matches('/'), rest);
            }
        }
        Ok(Self {
            source: source_name.to_string(),
            entries,
        })
    }

    /// Entries for one platform, newest version first (ties: newest build first).
    pub fn for_platform(&self, platform: &Platform) -> Vec<&CatalogEntry> {
        let mut out: Vec<&CatalogEntry> = self
            .entries
            .iter()
            .filter(|e| e.matches(platform))
            .collect();
        out.sort_by(|a, b| {
            version_tuple(&b.version)
                .cmp(&version_tuple(&a.version))
                .then_with(|| b.build.cmp(&a.build))
        });
        out
    }

    /// The newest entry for `request`: `3`, `3.12`, `3.12.7`, or a key `cpython-3.12.7-linux-x86_64-gnu`.
    pub fn resolve(&self, request: &InstallRequest, platform: &Platform) -> Option<&CatalogEntry> {
        let candidates = self.for_platform(platform);
        match request {
            InstallRequest::Version(version) => {
                candidates.into_iter().find(|e| version.matches(&e.version))
            }
            InstallRequest::Key(key) => candidates.into_iter().find(|e| e.key() == *key),
        }
    }
}

async fn read_location(location: &str) -> Result<String, Error> {
    if location.starts_with("http://") || location.starts_with("https://") {
        let fetch = |source| Error::Fetch {
            url: location.to_string(),
            source,
        };
        let response = reqwest::get(location).await.map_err(fetch)?;
        let response = response.error_for_status().map_err(fetch)?;
        return response.text().await.map_err(fetch);
    }
    let path = super::download::file_url_path(location).unwrap_or_else(|| PathBuf::from(location));
    tokio::fs::read_to_string(&path)
        .await
        .map_err(|source| Error::Read { path, source })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn builtin_catalog_parses_and_resolves_newest_patch() {
        let catalog = Catalog::load(None, None).await.unwrap();
        assert!(catalog.entries.len() >= 100);
        let platform = Platform {
            os: "linux",
            arch: "x86_64",
            libc: "gnu",
        };
        let entry = catalog
            .resolve(&InstallRequest::parse("3.12").unwrap(), &platform)
            .unwrap();
        let newest = catalog
            .for_platform(&platform)
            .into_iter()
            .filter(|e| e.version.starts_with("3.12."))
            .map(|e| version_tuple(&e.version))
            .max()
            .unwrap();
        assert_eq!(version_tuple(&entry.version), newest);
        assert!(entry.key().starts_with("cpython-3.12."));
        assert_eq!(
            catalog.resolve(&InstallRequest::parse(&entry.key()).unwrap(), &platform),
            Some(entry)
        );
        assert!(
            catalog
                .resolve(&InstallRequest::parse("2.7").unwrap(), &platform)
                .is_none()
        );
    }

    #[test]
    fn mirror_replaces_the_github_prefix() {
        let text = format!(
            r#"{{"entries":[{{"version":"3.11.7","os":"linux","arch":"x86_64","libc":"gnu","build":"1",
            "url":"{GITHUB_PREFIX}/1/cpython-3.11.7%2B1-x.tar.gz","sha256":"{}"}}]}}"#,
            "a".repeat(64)
        );
        let catalog = Catalog::parse("t", &text, Some("http://127.0.0.1:9/m/")).unwrap();
        assert_eq!(
            catalog.entries[0].url,
            "http://127.0.0.1:9/m/1/cpython-3.11.7%2B1-x.tar.gz"
        );
        assert_eq!(catalog.entries[0].file_name(), "cpython-3.11.7+1-x.tar.gz");
    }

    #[test]
    fn bad_entries_are_refused_with_their_index() {
        let text = r#"{"entries":[{"version":"3.11","os":"linux","arch":"x86_64","libc":"gnu","build":"1","url":"u","sha256":"x"}]}"#;
        let err = Catalog::parse("t", text, None).unwrap_err().to_string();
        assert!(err.contains("invalid entry 0"), "{err}");
    }
}
