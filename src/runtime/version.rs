//! Python versions and the requests that name them, parsed once.
//!
//! A version request is a prefix of `X.Y.Z` (`3`, `3.12`, `3.12.7`); an install request
//! is a version request or a catalog key (`cpython-3.12.7-linux-x86_64-gnu`).

use std::fmt;

use super::Error;

/// A version prefix: `3`, `3.12` or `3.12.7` (one to three groups of digits).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VersionRequest(String);

impl VersionRequest {
    /// `None` unless `text` is one to three dot-separated groups of digits.
    pub fn parse(text: &str) -> Option<Self> {
        is_version_request(text).then(|| Self(text.to_string()))
    }

    /// Whether `version` (`3.12.7`) starts with this prefix, group by group.
    pub fn matches(&self, version: &str) -> bool {
        version_matches(version, &self.0)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// What `runtime install` accepts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum InstallRequest {
    /// The newest catalog entry of this version.
    Version(VersionRequest),
    /// One catalog entry by key (`cpython-...`).
    Key(String),
}

impl InstallRequest {
    /// A version request or a `cpython-` key; anything else is
    /// [`Error::InvalidRequest`].
    pub fn parse(request: &str) -> Result<Self, Error> {
        if let Some(version) = VersionRequest::parse(request) {
            Ok(Self::Version(version))
        } else if request.starts_with("cpython-") {
            Ok(Self::Key(request.to_string()))
        } else {
            Err(Error::InvalidRequest {
                request: request.to_string(),
            })
        }
    }

    pub fn as_str(&self) -> &str {
        match self {
            Self::Version(v) => v.as_str(),
            Self::Key(key) => key,
        }
    }
}

impl fmt::Display for InstallRequest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// `3`, `3.12`, `3.12.7`.
pub fn is_version_request(request: &str) -> bool {
    let parts: Vec<&str> = request.split('.').collect();
    !parts.is_empty()
        && parts.len() <= 3
        && parts
            .iter()
            .all(|p| !p.is_empty() && p.chars().all(|c| c.is_ascii_digit()))
}

/// Whether `version` (`3.12.7`) is matched by the request prefix (`3.12`).
pub fn version_matches(version: &str, request: &str) -> bool {
    let v: Vec<&str> = version.split('.').collect();
    let r: Vec<&str> = request.split('.').collect();
    r.len() <= v.len() && r.iter().zip(&v).all(|(a, b)| a == b)
}

/// Numeric parts of a version for ordering; non-numeric tails count as 0.
pub fn version_tuple(version: &str) -> Vec<u64> {
    version
        .split('.')
        .map(|p| {
            p.chars()
                .take_while(char::is_ascii_digit)
                .collect::<String>()
                .parse()
                .unwrap_or(0)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn install_requests_are_versions_or_keys() {
        for version in ["3", "3.12", "3.12.7"] {
            let parsed = InstallRequest::parse(version).unwrap();
            assert!(matches!(parsed, InstallRequest::Version(_)), "{version}");
            assert_eq!(parsed.to_string(), version);
        }
        let key = "cpython-3.12.7-linux-x86_64-gnu";
        assert_eq!(
            InstallRequest::parse(key).unwrap(),
            InstallRequest::Key(key.into())
        );
        for bad in ["", "3.", "3.12.7.1", "python3", "latest", "3.x"] {
            assert!(
                matches!(
                    InstallRequest::parse(bad),
                    Err(Error::InvalidRequest { .. })
                ),
                "{bad}"
            );
        }
    }

    #[test]
    fn a_prefix_matches_whole_groups_only() {
        let request = VersionRequest::parse("3.1").unwrap();
        assert!(request.matches("3.1.4"));
        assert!(!request.matches("3.12.7"));
        assert!(!VersionRequest::parse("3.12.7").unwrap().matches("3.12"));
        assert_eq!(version_tuple("3.13.0rc1"), vec![3, 13, 0]);
    }
}
