//! `beep.toml`: what a project declares (runtime, requirements, backends), read with the
//! spans of every key so that an unknown key or a bad value is reported with its line.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use serde::Serialize;
use toml::de::{DeTable, DeValue};

use super::declaration::parse_python;
use crate::backend::{HealthCheck, RestartPolicy, Transport};
use crate::venv::EnvName;

/// The project file in a project folder.
pub const MANIFEST_FILE: &str = "beep.toml";

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("Failed to read `{}`", path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// A TOML syntax error or a bad key or value, with the line it is on.
    #[error("{file}:{line}: {message}")]
    Invalid {
        path: PathBuf,
        file: String,
        line: usize,
        message: String,
    },
}

impl Error {
    pub fn code(&self) -> crate::ErrorCode {
        match self {
            Self::Read { source, .. } if source.kind() == std::io::ErrorKind::NotFound => {
                crate::ErrorCode::NotFound
            }
            Self::Read { .. } => crate::ErrorCode::Failed,
            Self::Invalid { .. } => crate::ErrorCode::Invalid,
        }
    }
}

/// The Python a project asks for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", content = "value", rename_all = "snake_case")]
pub enum PythonRequest {
    /// `3`, `3.12` or `3.12.7`: the newest catalog runtime that matches.
    Version(String),
    /// A runtime key (`cpython-3.12.7-linux-x86_64-gnu`).
    Key(String),
    /// An interpreter path (relative paths are resolved against the project folder).
    Path(PathBuf),
}

impl PythonRequest {
    /// What `Runtimes::find` understands.
    pub fn as_request(&self) -> String {
        match self {
            Self::Version(v) | Self::Key(v) => v.clone(),
            Self::Path(p) => p.to_string_lossy().into_owned(),
        }
    }
}

/// The packages of the project's environment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Requirements {
    /// `requirements = ["numpy>=2", "pillow"]`
    List(Vec<String>),
    /// `requirements = "requirements.txt"` (resolved against the project folder).
    File(PathBuf),
}

/// One `[[backend]]`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct BackendDecl {
    pub name: String,
    pub transport: Transport,
    pub restart: RestartPolicy,
    pub preload: Option<String>,
    pub health: Option<HealthCheck>,
    /// Bytes.
    pub memory_limit: Option<u64>,
    pub env: BTreeMap<String, String>,
}

/// A parsed `beep.toml`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Manifest {
    /// The project folder (canonical).
    pub dir: PathBuf,
    pub python: PythonRequest,
    #[serde(serialize_with = "env_name_str")]
    pub env_name: EnvName,
    pub requirements: Requirements,
    pub backends: Vec<BackendDecl>,
}

impl Manifest {
    /// Read `<dir>/beep.toml`.
    pub fn load(dir: &Path) -> Result<Self, Error> {
        let path = dir.join(MANIFEST_FILE);
        let text = fs_err::read_to_string(&path).map_err(|source| Error::Read {
            path: path.clone(),
            source,
        })?;
        let dir = fs_err::canonicalize(dir).map_err(|source| Error::Read {
            path: dir.to_path_buf(),
            source,
        })?;
        Self::parse(&dir, &path, &text)
    }

    /// Parse the text of `path`, a file in project folder `dir`.
    pub fn parse(dir: &Path, path: &Path, text: &str) -> Result<Self, Error> {
        let cx = Context { path, text };
        let root = DeTable::parse(text).map_err(|e| {
            let at = e.span().map(|s| s.start).unwrap_or(0);
            cx.error_at(at, e.message().trim().to_string())
        })?;
        let root = root.get_ref();
        cx.known_keys(root, &["python", "environment", "backend"], "the file", 0)?;

        let (python_table, python_at) = cx.table(root, "python", "the file", 0)?;
        let python = match python_table {
            None => return Err(cx.error_at(0, "missing table [python]".into())),
            Some(table) => {
                cx.known_keys(table, &["version"], "[python]", python_at)?;
                let (version, at) = cx.string(table, "version", "[python]")?.ok_or_else(|| {
                    cx.error_at(python_at, "missing key `version` in [python]".into())
                })?;
                parse_python(dir, &version).ok_or_else(|| {
                    cx.error_at(
                        at,
                        format!(
                            "bad value `{version}` for `version` in [python]: expected a version (`3.12`, `3.12.7`), a runtime key (`cpython-3.12.7-linux-x86_64-gnu`) or an interpreter path"
                        ),
                    )
                })?
            }
        };

        let default_name = dir
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let (env_table, env_at) = cx.table(root, "environment", "the file", 0)?;
        let empty = DeTable::default();
        let env_table = env_table.unwrap_or(&empty);
        cx.known_keys(
            env_table,
            &["name", "requirements"],
            "[environment]",
            env_at,
        )?;
        let env_name = match cx.string(env_table, "name", "[environment]")? {
            Some((name, at)) => EnvName::parse(&name).map_err(|e| {
                cx.error_at(at, format!("bad value `{name}` for `name` in [environment]: {e}"))
            })?,
            None => EnvName::parse(&default_name).map_err(|e| {
                cx.error_at(
                    env_at,
                    format!(
                        "the folder's name `{default_name}` is not an environment name ({e}); set `name` in [environment]"
                    ),
                )
            })?,
        };
        let requirements = match env_table.get("requirements") {
            None => Requirements::List(Vec::new()),
            Some(value) => match value.get_ref() {
                DeValue::String(file) => Requirements::File(dir.join(file.as_ref())),
                DeValue::Array(items) => {
                    let mut list = Vec::new();
                    for item in items {
                        let at = item.span().start;
                        match item.get_ref().as_str() {
                            Some(r) if !r.trim().is_empty() && !r.trim().starts_with('-') => {
                                list.push(r.trim().to_string())
                            }
                            _ => {
                                return Err(cx.error_at(
                                    at,
                                    "bad requirement in `requirements` in [environment]: expected a requirement string such as `numpy>=2` (not empty, not an option)".into(),
                                ));
                            }
                        }
                    }
                    Requirements::List(list)
                }
                other => {
                    return Err(cx.error_at(
                        value.span().start,
                        format!(
                            "bad value for `requirements` in [environment]: expected a list of requirements or a file name, found {}",
                            other.type_str()
                        ),
                    ));
                }
            },
        };

        let mut backends: Vec<BackendDecl> = Vec::new();
        if let Some(value) = root.get("backend") {
            let DeValue::Array(items) = value.get_ref() else {
                return Err(cx.error_at(
                    value.span().start,
                    "`backend` must be an array of tables: write [[backend]]".into(),
                ));
            };
            let mut names = BTreeSet::new();
            for item in items {
                let at = item.span().start;
                let DeValue::Table(table) = item.get_ref() else {
                    return Err(cx.error_at(
                        at,
                        "`backend` must be an array of tables: write [[backend]]".into(),
                    ));
                };
                let decl = cx.backend(table, at)?;
                if !names.insert(decl.name.clone()) {
                    let at = table.get("name").map(|v| v.span().start).unwrap_or(at);
                    return Err(cx.error_at(
                        at,
                        format!(
                            "two backends are named `{}`: each [[backend]] needs its own name",
                            decl.name
                        ),
                    ));
                }
                backends.push(decl);
            }
        }

        Ok(Self {
            dir: dir.to_path_buf(),
            python,
            env_name,
            requirements,
            backends,
        })
    }
}

fn env_name_str<S: serde::Serializer>(name: &EnvName, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(name.as_str())
}

pub(super) struct Context<'a> {
    path: &'a Path,
    text: &'a str,
}

impl Context<'_> {
    pub(super) fn error_at(&self, offset: usize, message: String) -> Error {
        let offset = offset.min(self.text.len());
        let line = self.text.as_bytes()[..offset]
            .iter()
            .filter(|&&b| b == b'\n')
            .count()
            + 1;
        Error::Invalid {
            path: self.path.to_path_buf(),
            file: self
                .path
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_else(|| MANIFEST_FILE.to_string()),
            line,
            message,
        }
    }

    pub(super) fn known_keys(
        &self,
        table: &DeTable<'_>,
        known: &[&str],
        place: &str,
        _at: usize,
    ) -> Result<(), Error> {
        for (key, _) in table.iter() {
            if !known.contains(&key.get_ref().as_ref()) {
                return Err(self.error_at(
                    key.span().start,
                    format!(
                        "unknown key `{}` in {place} (expected {})",
                        key.get_ref(),
                        known
                            .iter()
                            .map(|k| format!("`{k}`"))
                            .collect::<Vec<_>>()
                            .join(", ")
                    ),
                ));
            }
        }
        Ok(())
    }

    pub(super) fn table<'t, 'i>(
        &self,
        parent: &'t DeTable<'i>,
        key: &str,
        place: &str,
        _at: usize,
    ) -> Result<(Option<&'t DeTable<'i>>, usize), Error> {
        match parent.get(key) {
            None => Ok((None, 0)),
            Some(value) => match value.get_ref() {
                DeValue::Table(t) => Ok((Some(t), value.span().start)),
                other => Err(self.error_at(
                    value.span().start,
                    format!(
                        "bad value for `{key}` in {place}: expected a table, found {}",
                        other.type_str()
                    ),
                )),
            },
        }
    }

    pub(super) fn string(
        &self,
        table: &DeTable<'_>,
        key: &str,
        place: &str,
    ) -> Result<Option<(String, usize)>, Error> {
        match table.get(key) {
            None => Ok(None),
            Some(value) => match value.get_ref() {
                DeValue::String(s) => Ok(Some((s.to_string(), value.span().start))),
                other => Err(self.error_at(
                    value.span().start,
                    format!(
                        "bad value for `{key}` in {place}: expected a string, found {}",
                        other.type_str()
                    ),
                )),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Manifest, Error> {
        Manifest::parse(Path::new("/p/demo"), Path::new("/p/demo/beep.toml"), text)
    }

    fn err(text: &str) -> String {
        parse(text).unwrap_err().to_string()
    }

    const GOOD: &str = r#"[python]
version = "3.12"

[environment]
name = "vision"
requirements = ["numpy>=2", "pillow"]

[[backend]]
name = "model"
transport = "pipe"
preload = "app.model:load"
restart = "on-failure"
health = { every = "5s", timeout = "2s", failures = 3 }
limits = { memory = "2 GiB" }
env = { MODEL_DIR = "./models" }
"#;

    #[test]
    fn the_issue_example_parses() {
        let m = parse(GOOD).unwrap();
        assert_eq!(m.python, PythonRequest::Version("3.12".into()));
        assert_eq!(m.env_name.as_str(), "vision");
        let b = &m.backends[0];
        assert_eq!(b.transport, Transport::Pipe);
        assert_eq!(b.restart, RestartPolicy::OnFailure);
        assert_eq!(b.memory_limit, Some(2 << 30));
        assert_eq!(
            b.health,
            Some(HealthCheck {
                every_ms: 5000,
                timeout_ms: 2000,
                failures: 3
            })
        );
        assert_eq!(b.env["MODEL_DIR"], "./models");
    }

    #[test]
    fn errors_name_the_key_and_the_line() {
        let bad = GOOD.replace("health =", "helth =");
        assert_eq!(
            err(&bad),
            "beep.toml:13: unknown key `helth` in [[backend]] \"model\" (expected `name`, `transport`, `preload`, `restart`, `health`, `limits`, `env`)"
        );
        assert!(
            err(&GOOD.replace("\"3.12\"", "\"banana\""))
                .starts_with("beep.toml:2: bad value `banana` for `version`")
        );
        assert!(
            err(&GOOD.replace("\"5s\"", "\"5 parsecs\""))
                .starts_with("beep.toml:13: bad value `5 parsecs` for `every`")
        );
        assert!(
            err(&GOOD.replace("\"2 GiB\"", "\"lots\""))
                .starts_with("beep.toml:14: bad value `lots` for `memory`")
        );
        assert!(
            err(&GOOD.replace("\"pipe\"", "\"tcp\""))
                .starts_with("beep.toml:10: bad value `tcp` for `transport`")
        );
        assert!(
            err(&GOOD.replace("\"on-failure\"", "\"always\""))
                .starts_with("beep.toml:12: bad value `always` for `restart`")
        );
        let twice = format!("{GOOD}\n[[backend]]\nname = \"model\"\n");
        assert!(
            err(&twice).starts_with("beep.toml:18: two backends are named `model`"),
            "{}",
            err(&twice)
        );
        assert!(err("[python\n").starts_with("beep.toml:1: "));
    }
}
