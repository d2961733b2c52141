//! The `[[backend]]` tables of `beep.toml` and the values they hold (durations, sizes).

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use toml::de::DeTable;

use super::manifest::{BackendDecl, Context, Error, PythonRequest};
use crate::backend::spec::{parse_bytes, parse_duration};
use crate::backend::{HealthCheck, RestartPolicy, Transport};

impl Context<'_> {
    pub(super) fn backend(&self, table: &DeTable<'_>, at: usize) -> Result<BackendDecl, Error> {
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
                    Some((value, at)) => Some(parse_bytes(&value).map_err(|_| {
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
            Some((value, at)) => parse_duration(&value).map(Some).map_err(|_| {
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

pub(super) fn parse_python(dir: &Path, value: &str) -> Option<PythonRequest> {
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
