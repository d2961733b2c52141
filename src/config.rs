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

impl Error {
    /// What kind of failure this is (see [`crate::ErrorCode`]).
    pub fn code(&self) -> crate::ErrorCode {
        use crate::ErrorCode as C;
        match self {
            Self::Installer(_) | Self::Parse { .. } => C::Invalid,
            Self::Read { .. } | Self::Write { .. } => C::Internal,
        }
    }
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
        match fs_err::read_to_string(&path) {
            Ok(text) => toml::from_str(&text).map_err(|source| Error::Parse { path, source }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Self::default()),
            Err(source) => Err(Error::Read { path, source }),
        }
    }

    /// Write the file atomically (temp file, then rename).
    pub fn save(&self, paths: &Paths) -> Result<(), Error> {
        let path = paths.config_file();
        let write = || -> std::io::Result<()> {
            fs_err::create_dir_all(&paths.config)?;
            let text = toml::to_string_pretty(self).map_err(std::io::Error::other)?;
            let tmp = path.with_extension("toml.tmp");
            fs_err::write(&tmp, text)?;
            fs_err::rename(&tmp, &path)
        };
        write().map_err(|source| Error::Write {
            path: path.clone(),
            source,
        })
    }
}

/// One thing wrong with the settings, as [`Config::inspect`] reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// The setting (`installer`), the variable (`BEEP_HOST_INSTALLER`) or the file.
    pub setting: String,
    pub message: String,
}

/// The settings as far as they can be read: what the configuration check shows.
#[derive(Debug, Clone, PartialEq)]
pub struct Inspection {
    /// The settings in force: every valid one from the file, then the environment.
    pub config: Config,
    /// Whether the file exists (without one, the defaults are in force).
    pub file_exists: bool,
    /// Each setting that could not be used, and why.
    pub problems: Vec<Problem>,
}

impl Config {
    /// Read the file setting by setting, never stopping at the first bad one: an
    /// unparseable file leaves the defaults in force, a bad setting leaves its default.
    pub fn inspect(paths: &Paths) -> Inspection {
        let path = paths.config_file();
        let mut problems = Vec::new();
        let mut problem = |setting: &str, message: String| {
            problems.push(Problem {
                setting: setting.to_string(),
                message,
            })
        };
        let mut config = Self::default();
        let mut file_exists = true;
        match fs_err::read_to_string(&path) {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => file_exists = false,
            Err(e) => problem(
                "config file",
                format!("Failed to read config `{}`: {e}", path.display()),
            ),
            Ok(text) => match toml::from_str::<toml::Table>(&text) {
                Err(e) => problem(
                    "config file",
                    format!(
                        "Failed to parse config `{}` (its settings are ignored): {}",
                        path.display(),
                        e.message()
                    ),
                ),
                Ok(table) => {
                    for (key, value) in table {
                        let mut one = toml::Table::new();
                        one.insert(key.clone(), value);
                        match toml::Value::Table(one).try_into::<Config>() {
                            Ok(parsed) => config.take_set(&key, parsed),
                            Err(e) => problem(
                                &key,
                                format!(
                                    "`{key}` in `{}` is ignored: {}",
                                    path.display(),
                                    e.message()
                                ),
                            ),
                        }
                    }
                }
            },
        }
        if let Some(v) = env_nonempty(CATALOG_ENV) {
            config.catalog = Some(v);
        }
        if let Some(v) = env_nonempty(MIRROR_ENV) {
            config.mirror = Some(v);
        }
        if let Some(v) = env_nonempty(INSTALLER_ENV) {
            match v.parse() {
                Ok(installer) => config.installer = installer,
                Err(e) => problem(INSTALLER_ENV, format!("`{INSTALLER_ENV}` is ignored: {e}")),
            }
        }
        Inspection {
            config,
            file_exists,
            problems,
        }
    }

    /// Copy setting `key` from `parsed` (a config holding that one setting).
    fn take_set(&mut self, key: &str, parsed: Config) {
        match key {
            "default_runtime" => self.default_runtime = parsed.default_runtime,
            "default_version" => self.default_version = parsed.default_version,
            "catalog" => self.catalog = parsed.catalog,
            "mirror" => self.mirror = parsed.mirror,
            "installer" => self.installer = parsed.installer,
            _ => {}
        }
    }
}

/// The variables that override settings of the file, in the order settings are listed.
pub const OVERRIDE_ENVS: [&str; 3] = [CATALOG_ENV, MIRROR_ENV, INSTALLER_ENV];

impl Config {
    /// The variables of [`OVERRIDE_ENVS`] set (non-empty) in this process: the settings
    /// that editing the file does not change.
    pub fn overridden() -> Vec<String> {
        overridden_by(|name| std::env::var_os(name))
    }
}

/// [`Config::overridden`], reading variables through `get`.
fn overridden_by(get: impl Fn(&str) -> Option<std::ffi::OsString>) -> Vec<String> {
    OVERRIDE_ENVS
        .into_iter()
        .filter(|name| get(name).is_some_and(|v| !v.is_empty()))
        .map(str::to_string)
        .collect()
}

fn env_nonempty(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn overrides_are_the_variables_set_and_not_empty() {
        let env = |set: &'static [(&'static str, &'static str)]| {
            move |name: &str| {
                set.iter()
                    .find(|(k, _)| *k == name)
                    .map(|(_, v)| std::ffi::OsString::from(v))
            }
        };
        assert!(overridden_by(env(&[])).is_empty());
        assert_eq!(
            overridden_by(env(&[
                (INSTALLER_ENV, "uv"),
                (CATALOG_ENV, "file:///c.json"),
                (MIRROR_ENV, ""),
                ("BEEP_HOST_UV", "/bin/uv"),
            ])),
            [CATALOG_ENV, INSTALLER_ENV]
        );
        // This process: the same answer as reading the variables one by one.
        let expected: Vec<String> = OVERRIDE_ENVS
            .iter()
            .filter(|name| std::env::var_os(name).is_some_and(|v| !v.is_empty()))
            .map(|name| name.to_string())
            .collect();
        assert_eq!(Config::overridden(), expected);
    }
}
