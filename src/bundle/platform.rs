//! The platforms a bundle can carry, and which wheels install on each.

use serde::{Deserialize, Serialize};

use super::Error;
use crate::runtime::catalog::CatalogEntry;

/// A target platform, as `--platform` names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum BundlePlatform {
    #[serde(rename = "linux-x86_64-gnu")]
    LinuxX86_64Gnu,
    #[serde(rename = "windows-x86_64")]
    WindowsX86_64,
    #[serde(rename = "macos-aarch64")]
    MacosAarch64,
}

impl BundlePlatform {
    pub const ALL: [Self; 3] = [
        Self::LinuxX86_64Gnu,
        Self::WindowsX86_64,
        Self::MacosAarch64,
    ];

    pub fn parse(given: &str) -> Result<Self, Error> {
        Self::ALL
            .into_iter()
            .find(|p| p.tag() == given)
            .ok_or_else(|| Error::UnknownPlatform {
                given: given.to_string(),
            })
    }

    /// The platform this binary runs on, if a bundle can carry it.
    pub fn current() -> Option<Self> {
        let here = crate::runtime::platform::Platform::current();
        Self::ALL.into_iter().find(|p| {
            let (os, arch, libc) = p.catalog();
            here.os == os && here.arch == arch && here.libc == libc
        })
    }

    pub fn tag(self) -> &'static str {
        match self {
            Self::LinuxX86_64Gnu => "linux-x86_64-gnu",
            Self::WindowsX86_64 => "windows-x86_64",
            Self::MacosAarch64 => "macos-aarch64",
        }
    }

    /// `os`, `arch`, `libc` as catalog entries name them.
    pub fn catalog(self) -> (&'static str, &'static str, &'static str) {
        match self {
            Self::LinuxX86_64Gnu => ("linux", "x86_64", "gnu"),
            Self::WindowsX86_64 => ("windows", "x86_64", "none"),
            Self::MacosAarch64 => ("darwin", "aarch64", "none"),
        }
    }

    pub fn matches_entry(self, entry: &CatalogEntry) -> bool {
        let (os, arch, libc) = self.catalog();
        entry.os == os && entry.arch == arch && entry.libc == libc
    }

    /// Whether a wheel platform tag (`any`, `manylinux_2_17_x86_64`, ...) installs here.
    fn accepts_platform_tag(self, tag: &str) -> bool {
        if tag == "any" {
            return true;
        }
        match self {
            Self::LinuxX86_64Gnu => {
                tag == "linux_x86_64" || (tag.starts_with("manylinux") && tag.ends_with("_x86_64"))
            }
            Self::WindowsX86_64 => tag == "win_amd64",
            Self::MacosAarch64 => {
                tag.starts_with("macosx_")
                    && (tag.ends_with("_arm64") || tag.ends_with("_universal2"))
            }
        }
    }

    /// How well a wheel file name fits this platform and Python `major.minor`: `None`
    /// when it does not install, else a rank (lower is more specific: a native wheel
    /// is chosen over a pure one).
    pub fn wheel_rank(self, file_name: &str, python: (u64, u64)) -> Option<u8> {
        let stem = file_name.strip_suffix(".whl")?;
        let parts: Vec<&str> = stem.split('-').collect();
        if parts.len() < 5 {
            return None;
        }
        let n = parts.len();
        let (pythons, abis, platforms) = (parts[n - 3], parts[n - 2], parts[n - 1]);
        let platform_ok = platforms.split('.').any(|t| self.accepts_platform_tag(t));
        if !platform_ok {
            return None;
        }
        let (major, minor) = python;
        let cp_here = format!("cp{major}{minor}");
        let mut best: Option<u8> = None;
        for py in pythons.split('.') {
            for abi in abis.split('.') {
                let rank = if py == cp_here && (abi == cp_here || abi.starts_with(&cp_here)) {
                    Some(0)
                } else if abi == "abi3"
                    && py
                        .strip_prefix(&format!("cp{major}"))
                        .and_then(|m| m.parse::<u64>().ok())
                        .is_some_and(|m| m <= minor)
                {
                    Some(1)
                } else if abi == "none" {
                    interpreter_generic(py, major, minor).then_some(2)
                } else {
                    None
                };
                best = match (best, rank) {
                    (Some(b), Some(r)) => Some(b.min(r)),
                    (b, r) => b.or(r),
                };
            }
        }
        let pure = platforms.split('.').all(|t| t == "any");
        best.map(|r| r + if pure { 3 } else { 0 })
    }
}

/// `py3`, `py312`, `cp312` (with abi `none`), `py2.py3`'s `py3`.
fn interpreter_generic(tag: &str, major: u64, minor: u64) -> bool {
    let version = tag
        .strip_prefix("py")
        .or_else(|| tag.strip_prefix("cp"))
        .unwrap_or("");
    if version == major.to_string() {
        return true;
    }
    version
        .strip_prefix(&major.to_string())
        .and_then(|m| m.parse::<u64>().ok())
        .is_some_and(|m| m <= minor)
}

impl std::fmt::Display for BundlePlatform {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.tag())
    }
}

impl std::str::FromStr for BundlePlatform {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self, Error> {
        Self::parse(s)
    }
}

#[cfg(test)]
mod tests {
    use super::BundlePlatform as P;

    #[test]
    fn wheels_match_their_platform_and_python() {
        let py = (3, 12);
        assert_eq!(
            P::LinuxX86_64Gnu.wheel_rank("a-1.0-py3-none-any.whl", py),
            Some(5)
        );
        assert_eq!(
            P::WindowsX86_64.wheel_rank("a-1.0-py2.py3-none-any.whl", py),
            Some(5)
        );
        let native = "numpy-2.1.0-cp312-cp312-manylinux_2_17_x86_64.manylinux2014_x86_64.whl";
        assert_eq!(P::LinuxX86_64Gnu.wheel_rank(native, py), Some(0));
        assert_eq!(P::LinuxX86_64Gnu.wheel_rank(native, (3, 11)), None);
        assert_eq!(P::WindowsX86_64.wheel_rank(native, py), None);
        assert_eq!(
            P::WindowsX86_64.wheel_rank("numpy-2.1.0-cp312-cp312-win_amd64.whl", py),
            Some(0)
        );
        assert_eq!(
            P::MacosAarch64.wheel_rank("x-1-cp39-abi3-macosx_11_0_arm64.whl", py),
            Some(1)
        );
        assert_eq!(
            P::MacosAarch64.wheel_rank("x-1-cp313-abi3-macosx_11_0_arm64.whl", py),
            None
        );
        assert_eq!(P::LinuxX86_64Gnu.wheel_rank("x-1.tar.gz", py), None);
        assert_eq!(P::parse("macos-aarch64").unwrap(), P::MacosAarch64);
        assert!(P::parse("linux").is_err());
    }
}
