//! `beep.toml`: what a project declares (runtime, requirements, backends), read with the
//! spans of every key so that an unknown key or a bad value is reported with its line.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Serialize;
use toml::de::{DeTable, DeValue};

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

struct Context<'a> {
    path: &'a Path,
    text: &'a str,
}

impl Context<'_> {
    fn error_at(&self, offset: usize, message: String) -> Error {
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

    fn known_keys(
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

    fn table<'t, 'i>(
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

    fn string(
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

    fn backend(&self, table: &DeTable<'_>, at: usize) -> Result<BackendDecl, Error> {
        let (name, name_at) = self
            .string(table, "name", "[[backend]]")?
            .ok_or_else(|| self.error_at(at, "missing key `name` in [[backend]]".into()))?;
        if name.is_empty()
            || !name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
        {
            return Err(self.error_at(
                name_at,
                format!("bad value `{name}` for `name` in [[backend]]: use letters, digits, `-`, `_` and `.`"),
            ));
        }
        let place = format!("[[backend]] \"{name}\"");
        self.known_keys(
            table,
            &[
                "name",
                "transport",
                "preload",
                "restart",
                "health",
                "limits",
                "env",
            ],
            &place,
            at,
        )?;
        let transport = match self.string(table, "transport", &place)? {
            None => Transport::Http,
            Some((value, at)) => match value.as_str() {
                "http" => Transport::Http,
                "pipe" => Transport::Pipe,
                "rpc" => Transport::Rpc,
                _ => {
                    return Err(self.error_at(
                        at,
                        format!("bad value `{value}` for `transport` in {place}: expected `http`, `pipe` or `rpc`"),
                    ));
                }
            },
        };
        let restart = match self.string(table, "restart", &place)? {
            None => RestartPolicy::Never,
            Some((value, at)) => value.parse().map_err(|_| {
                self.error_at(
                    at,
                    format!("bad value `{value}` for `restart` in {place}: expected `never` or `on-failure`"),
                )
            })?,
        };
        let preload = match self.string(table, "preload", &place)? {
            None => None,
            Some((value, at)) => {
                let ok = value.split_once(':').is_some_and(|(module, function)| {
                    !module.is_empty()
                        && module.split('.').all(is_identifier)
                        && is_identifier(function)
                });
                if !ok {
                    return Err(self.error_at(
                        at,
                        format!("bad value `{value}` for `preload` in {place}: expected `module:function`, e.g. `app.model:load`"),
                    ));
                }
                Some(value)
            }
        };
        let health = match self.table(table, "health", &place, at)? {
            (None, _) => None,
            (Some(h), h_at) => {
                let hplace = format!("`health` of {place}");
                self.known_keys(h, &["every", "timeout", "failures"], &hplace, h_at)?;
                let every = self
                    .duration(h, "every", &hplace)?
                    .unwrap_or(Duration::from_secs(5));
                let timeout = self
                    .duration(h, "timeout", &hplace)?
                    .unwrap_or(Duration::from_secs(2));
                let failures = match h.get("failures") {
                    None => 3,
                    Some(v) => match v
                        .get_ref()
                        .as_integer()
                        .and_then(|i| i.as_str().parse::<u32>().ok())
                    {
                        Some(n)
                            if n > 0
                                && v.get_ref().as_integer().is_some_and(|i| i.radix() == 10) =>
                        {
                            n
                        }
                        _ => {
                            return Err(self.error_at(
                                v.span().start,
                                format!("bad value for `failures` in {hplace}: expected a whole number of at least 1"),
                            ));
                        }
                    },
                };
                Some(HealthCheck {
                    every_ms: every.as_millis() as u64,
                    timeout_ms: timeout.as_millis() as u64,
                    failures,
                })
            }
        };
        let memory_limit = match self.table(table, "limits", &place, at)? {
            (None, _) => None,
            (Some(l), l_at) => {
                let lplace = format!("`limits` of {place}");
                self.known_keys(l, &["memory"], &lplace, l_at)?;
                match self.string(l, "memory", &lplace)? {
                    None => None,
                    Some((value, at)) => Some(parse_size(&value).ok_or_else(|| {
                        self.error_at(
                            at,
                            format!("bad value `{value}` for `memory` in {lplace}: expected a size such as `512 MiB` or `2 GiB`"),
                        )
                    })?),
                }
            }
        };
        let env = match self.table(table, "env", &place, at)? {
            (None, _) => BTreeMap::new(),
            (Some(e), _) => {
                let mut vars = BTreeMap::new();
                for (key, value) in e.iter() {
                    let key_text = key.get_ref().to_string();
                    if key_text.is_empty() || key_text.contains('=') || key_text.contains('\0') {
                        return Err(self.error_at(
                            key.span().start,
                            format!(
                                "bad environment variable name `{key_text}` in `env` of {place}"
                            ),
                        ));
                    }
                    let Some(text) = value.get_ref().as_str() else {
                        return Err(self.error_at(
                            value.span().start,
                            format!(
                                "bad value for `{key_text}` in `env` of {place}: expected a string, found {}",
                                value.get_ref().type_str()
                            ),
                        ));
                    };
                    vars.insert(key_text, text.to_string());
                }
                vars
            }
        };
        Ok(BackendDecl {
            name,
            transport,
            restart,
            preload,
            health,
            memory_limit,
            env,
        })
    }

    fn duration(
        &self,
        table: &DeTable<'_>,
        key: &str,
        place: &str,
    ) -> Result<Option<Duration>, Error> {
        match self.string(table, key, place)? {
            None => Ok(None),
            Some((value, at)) => parse_duration(&value).map(Some).ok_or_else(|| {
                self.error_at(
                    at,
                    format!("bad value `{value}` for `{key}` in {place}: expected a duration such as `500ms`, `5s` or `2m`"),
                )
            }),
        }
    }
}

fn is_identifier(s: &str) -> bool {
    let mut chars = s.chars();
    chars.next().is_some_and(|c| c == '_' || c.is_alphabetic())
        && chars.all(|c| c == '_' || c.is_alphanumeric())
}

fn parse_python(dir: &Path, value: &str) -> Option<PythonRequest> {
    let value = value.trim();
    if value.contains('/') || value.contains('\\') {
        return Some(PythonRequest::Path(dir.join(value)));
    }
    if value.starts_with("cpython-") && value.len() > "cpython-".len() {
        return Some(PythonRequest::Key(value.to_string()));
    }
    let parts: Vec<&str> = value.split('.').collect();
    let ok = (1..=3).contains(&parts.len())
        && parts
            .iter()
            .all(|p| !p.is_empty() && p.len() <= 4 && p.bytes().all(|b| b.is_ascii_digit()))
        && parts[0] == "3";
    ok.then(|| PythonRequest::Version(value.to_string()))
}

/// `500ms`, `5s`, `2m`, `1h` (a positive whole number and a unit).
pub fn parse_duration(text: &str) -> Option<Duration> {
    let text = text.trim();
    let split = text.find(|c: char| !c.is_ascii_digit())?;
    let (number, unit) = text.split_at(split);
    let n: u64 = number.parse().ok().filter(|&n| n > 0)?;
    let millis = match unit.trim() {
        "ms" => n,
        "s" => n.checked_mul(1000)?,
        "m" => n.checked_mul(60_000)?,
        "h" => n.checked_mul(3_600_000)?,
        _ => return None,
    };
    Some(Duration::from_millis(millis))
}

/// `512 MiB`, `2 GiB`, `100MB`, `4096 B`.
pub fn parse_size(text: &str) -> Option<u64> {
    let text = text.trim();
    let split = text
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let n: f64 = number.parse().ok().filter(|n: &f64| *n > 0.0)?;
    let factor: u64 = match unit.trim() {
        "" | "B" => 1,
        "KB" | "kB" => 1000,
        "MB" => 1000_u64.pow(2),
        "GB" => 1000_u64.pow(3),
        "TB" => 1000_u64.pow(4),
        "KiB" => 1 << 10,
        "MiB" => 1 << 20,
        "GiB" => 1 << 30,
        "TiB" => 1 << 40,
        _ => return None,
    };
    let bytes = n * factor as f64;
    (bytes >= 1.0 && bytes < u64::MAX as f64).then_some(bytes as u64)
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

    #[test]
    fn durations_and_sizes() {
        assert_eq!(parse_duration("500ms"), Some(Duration::from_millis(500)));
        assert_eq!(parse_duration("2m"), Some(Duration::from_secs(120)));
        for bad in ["", "5", "0s", "s", "5 parsecs", "-1s"] {
            assert_eq!(parse_duration(bad), None, "{bad}");
        }
        assert_eq!(parse_size("512 MiB"), Some(512 << 20));
        assert_eq!(parse_size("1.5GiB"), Some(3 << 29));
        for bad in ["", "lots", "0 GiB", "2 GiBs"] {
            assert_eq!(parse_size(bad), None, "{bad}");
        }
    }
}
