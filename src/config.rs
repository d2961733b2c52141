//! The user's settings, a TOML file at `<config>/config.toml`; environment variables win.

use serde::{Deserialize, Serialize};
use std::path::PathBuf;

use crate::Paths;

/// Replaces the built-in runtime catalog (a path or a URL).
pub const CATALOG_ENV: &str = "BEEP_PYTHON_CATALOG";
/// Replaces the python-build-standalone download prefix.
pub const MIRROR_ENV: &str = "BEEP_PYTHON_MIRROR";
/// Forces the package installer: `uv` or `pip`.
pub const INSTALLER_ENV: &str = "BEEP_HOST_INSTALLER";

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("Failed to read config `{}`", path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("Failed to parse config `{}`", path.display())]
    Parse {
        path: PathBuf,
        #[source]
        source: toml::de::Error,
    },
    #[error("Failed to write config `{}`", path.display())]
    Write {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("Invalid installer `{0}`: expected `uv` or `pip`")]
    Installer(String),
}

/// Which tool installs packages and creates environments.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Installer {
    /// uv when it can be found or provisioned, pip otherwise.
    #[default]
    Auto,
    Uv,
    Pip,
}

impl std::str::FromStr for Installer {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self, Error> {
        match s {
            "auto" | "" => Ok(Self::Auto),
            "uv" => Ok(Self::Uv),
            "pip" => Ok(Self::Pip),
            other => Err(Error::Installer(other.to_string())),
        }
    }
}

/// The settings file. Every field is optional; the environment overrides it.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// Key of the default runtime (managed or adopted).
    pub default_runtime: Option<String>,
    /// The version `init` installs when none is given (e.g. `3.12`).
    pub default_version: Option<String>,
    /// Replaces the built-in catalog: a path, `file://` or `http(s)://` URL.
    pub catalog: Option<String>,
    /// Replaces `https://github.com/astral-sh/python-build-standalone/releases/download`.
    pub mirror: Option<String>,
    pub installer: Installer,
}

impl Config {
    /// Read the file (missing is empty), then apply environment overrides.
    pub fn load(paths: &Paths) -> Result<Self, Error> {
        let mut config = Self::load_file(paths)?;
        if let Some(v) = env_nonempty(CATALOG_ENV) {
            config.catalog = Some(v);
        }
        if let Some(v) = env_nonempty(MIRROR_ENV) {
            config.mirror = Some(v);
        }
        if let Some(v) = env_nonempty(INSTALLER_ENV) {
            config.installer = v.parse()?;
        }
        Ok(config)
    }

    /// Read only the file, without environment overrides (for editing and saving).
    pub fn load_file(paths: &Paths) -> Result<Self, Error> {
        let path = paths.config_file();
        match std::fs::read_to_string(&path) {
            Ok(text) => toml::from_str(&text).map_err(|source| Error::Parse { path, source }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Self::default()),
            Err(source) => Err(Error::Read { path, source }),
        }
    }

    /// Write the file atomically (temp file, then rename).
    pub fn save(&self, paths: &Paths) -> Result<(), Error> {
        let path = paths.config_file();
        let write = || -> std::io::Result<()> {
            std::fs::create_dir_all(&paths.config)?;
            let text = toml::to_string_pretty(self).map_err(std::io::Error::other)?;
            let tmp = path.with_extension("toml.tmp");
            std::fs::write(&tmp, text)?;
            std::fs::rename(&tmp, &path)
        };
        write().map_err(|source| Error::Write {
            path: path.clone(),
            source,
        })
    }
}

fn env_nonempty(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.is_empty())
}
