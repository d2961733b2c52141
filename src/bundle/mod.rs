//! Offline bundles: one zip that carries a project's `beep.toml`, `beep.lock`, the runtime
//! archive and every locked wheel for each platform asked, with a manifest of hashes.
//!
//! Writing is reproducible (fixed member order, timestamps and permissions; no clock in
//! the manifest). Reading verifies the manifest and every member while unpacking into a
//! temp staging dir outside the home, so a bundle that does not verify writes nothing
//! there; [`offline`] then installs from the staging dir without the network.

pub mod manifest;
pub mod offline;
pub mod platform;
pub mod project;
pub mod read;
pub mod uv;
pub mod write;

use std::path::PathBuf;

pub use manifest::{MANIFEST, Manifest, Member};
pub use platform::BundlePlatform;
pub use read::{Inspection, MemberCheck, Staged};
pub use write::{BundleOptions, Written};

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("Failed to read `{}`", path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("Failed to write `{}`", path.display())]
    Write {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("Failed to parse `{}`: {message}", path.display())]
    Parse { path: PathBuf, message: String },
    /// A `beep.toml` the project module refuses (its error names the file and line).
    #[error("Failed to bundle project `{}`", dir.display())]
    Manifest {
        dir: PathBuf,
        #[source]
        source: crate::project::manifest::Error,
    },
    #[error(
        "Unknown platform `{given}`: expected linux-x86_64-gnu, windows-x86_64 or macos-aarch64"
    )]
    UnknownPlatform { given: String },
    #[error("`{}` has no `[tool.beep.runtime]` table; run `beep-host lock` first", path.display())]
    NoRuntime { path: PathBuf },
    #[error("No catalog entry for Python {version} on {platform}")]
    NoCatalogEntry { version: String, platform: String },
    #[error("Runtime `{key}` in the lock has sha256 {locked}, but the catalog says {catalog}")]
    RuntimeHash {
        key: String,
        locked: String,
        catalog: String,
    },
    #[error(
        "Package `{package}` {version} has no wheel for {platform} (Python {python}); sdists are not built on the target"
    )]
    NoWheel {
        package: String,
        version: String,
        platform: String,
        python: String,
    },
    #[error("Failed to read the `uv` page of the index `{url}`: {problem}")]
    UvIndex { url: String, problem: String },
    #[error("The index `{index}` has no released `uv` wheel (with a sha256) for {platform}")]
    NoUvWheel { index: String, platform: String },
    #[error("Wheel `{wheel}` of `{package}` has neither `url` nor `path`")]
    WheelSource { package: String, wheel: String },
    #[error("Wheel `{wheel}` of `{package}` has no sha256 in the lock")]
    WheelHash { package: String, wheel: String },
    #[error("Failed to download `{what}`")]
    Download {
        what: String,
        #[source]
        source: crate::runtime::download::Error,
    },
    #[error("Failed to write bundle `{}`", path.display())]
    Zip {
        path: PathBuf,
        #[source]
        source: zip::result::ZipError,
    },
    #[error("Failed to open bundle `{}`: it is not a readable zip", path.display())]
    NotAZip {
        path: PathBuf,
        #[source]
        source: zip::result::ZipError,
    },
    #[error("Refused bundle `{}`: {problem}", path.display())]
    Refused { path: PathBuf, problem: String },
    #[error("Failed to bring project `{}` up from the bundle", dir.display())]
    Project {
        dir: PathBuf,
        #[source]
        source: Box<crate::project::Error>,
    },
    #[error(
        "Failed to bring the project up from the bundle: `{}` differs from the bundle's; move it away or use another folder", path.display()
    )]
    ProjectDiffers { path: PathBuf },
    #[error("`{}` pins an interpreter of this machine (`{python}`), which a bundle cannot carry; pin a catalog runtime (a version) and lock again", path.display())]
    AdoptedRuntime { path: PathBuf, python: String },
}

impl Error {
    /// What kind of failure this is (see [`crate::ErrorCode`]).
    pub fn code(&self) -> crate::ErrorCode {
        use crate::ErrorCode as C;
        match self {
            Self::UnknownPlatform { .. } | Self::Parse { .. } => C::Invalid,
            Self::Manifest { source, .. } => source.code(),
            Self::NoRuntime { .. }
            | Self::NoCatalogEntry { .. }
            | Self::NoWheel { .. }
            | Self::NoUvWheel { .. } => C::NotFound,
            Self::UvIndex { .. } => C::Failed,
            Self::Refused { .. } | Self::NotAZip { .. } => C::Invalid,
            Self::Project { source, .. } => source.code(),
            Self::ProjectDiffers { .. } => C::Conflict,
            Self::AdoptedRuntime { .. } => C::Invalid,
            Self::Download { source, .. } => source.code(),
            Self::Read { source, .. } if source.kind() == std::io::ErrorKind::NotFound => {
                C::NotFound
            }
            // Paths a caller names (the project, the bundle, the output) that cannot be
            // read or written: the operation failed, not the host.
            Self::Read { .. } | Self::Write { .. } | Self::Zip { .. } => C::Failed,
            Self::RuntimeHash { .. } | Self::WheelSource { .. } | Self::WheelHash { .. } => {
                C::Failed
            }
        }
    }

    pub(crate) fn read(path: impl Into<PathBuf>) -> impl FnOnce(std::io::Error) -> Self {
        let path = path.into();
        move |source| Self::Read { path, source }
    }

    pub(crate) fn write(path: impl Into<PathBuf>) -> impl FnOnce(std::io::Error) -> Self {
        let path = path.into();
        move |source| Self::Write { path, source }
    }
}
