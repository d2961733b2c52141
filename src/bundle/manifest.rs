//! `manifest.json`, the first member of every bundle.

use serde::{Deserialize, Serialize};

use super::BundlePlatform;
use crate::runtime::catalog::CatalogEntry;

/// The manifest's member name.
pub const MANIFEST: &str = "manifest.json";
/// The bundle format this build writes; it reads every format up to it (2 added `uv` to
/// [`PlatformContents`]; a format 1 bundle carries no uv).
pub const FORMAT: u32 = 2;
/// `created` is fixed (the zip epoch), never the clock: a bundle's bytes depend only on
/// its inputs. The lock's hash (`lock_sha256`) says what it was made from.
pub const CREATED: &str = "1980-01-01T00:00:00Z";

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    pub format: u32,
    pub created: String,
    /// sha256 of the `beep.lock` text below.
    pub lock_sha256: String,
    pub project: ProjectTexts,
    /// What each platform installs.
    pub platforms: Vec<PlatformContents>,
    /// Every member but the manifest, in the order they are stored.
    pub members: Vec<Member>,
}

/// The project's files, as text.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProjectTexts {
    pub beep_toml: String,
    pub beep_lock: String,
}

/// The runtime archive and wheels of one platform.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PlatformContents {
    pub platform: BundlePlatform,
    /// The catalog entry the archive came from (its sha256 is the catalog's).
    pub runtime: CatalogEntry,
    /// The member holding the runtime archive.
    pub runtime_member: String,
    /// The members holding the wheels installed on this platform.
    pub wheels: Vec<String>,
    /// The member holding the `uv` wheel for this platform (`tools/<file>`): `up --bundle`
    /// provisions uv from it when the machine has none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uv: Option<String>,
}

/// One member: its path in the zip, size and sha256.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Member {
    pub path: String,
    pub size: u64,
    pub sha256: String,
}

impl Manifest {
    pub fn member(&self, path: &str) -> Option<&Member> {
        self.members.iter().find(|m| m.path == path)
    }

    pub fn platform(&self, platform: BundlePlatform) -> Option<&PlatformContents> {
        self.platforms.iter().find(|p| p.platform == platform)
    }
}

/// A member path is plain: `runtimes/<file>`, `tools/<file>` or `wheels/<file>`, no `..`,
/// no absolute path.
pub fn is_safe_member_path(path: &str) -> bool {
    let mut parts = path.split('/');
    let (Some(dir), Some(file), None) = (parts.next(), parts.next(), parts.next()) else {
        return false;
    };
    matches!(dir, "runtimes" | "tools" | "wheels")
        && !file.is_empty()
        && file != "."
        && file != ".."
        && !file.contains(['\\', ':', '\0'])
}

#[cfg(test)]
mod tests {
    use super::is_safe_member_path;

    #[test]
    fn member_paths_stay_in_their_folder() {
        for good in [
            "runtimes/cpython.tar.gz",
            "wheels/a-1.0-py3-none-any.whl",
            "tools/uv.whl",
        ] {
            assert!(is_safe_member_path(good), "{good}");
        }
        for bad in [
            "../evil",
            "wheels/../x",
            "wheels/..",
            "/etc/passwd",
            "wheels/a/b.whl",
            "wheels/",
            "other/x.whl",
            "wheels/c:\\x",
            "wheels/a\\b",
            "manifest.json",
        ] {
            assert!(!is_safe_member_path(bad), "{bad}");
        }
    }
}
