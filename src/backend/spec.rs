//! What to start: where it runs (an environment or a runtime), the transport, the restart
//! policy.

use std::collections::BTreeMap;
use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::venv::EnvName;

/// How other programs talk to a backend.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Transport {
    /// `POST /v1/<op>` on 127.0.0.1.
    Http,
    /// A Unix domain socket with length-prefixed JSON frames.
    Pipe,
    /// gRPC (`beep.backend.v1.Backend`); needs grpcio in the environment.
    Rpc,
}

impl Transport {
    /// The name the Python side uses on its command line.
    pub fn python_name(self) -> &'static str {
        match self {
            Self::Http => "http",
            Self::Pipe => "pipe",
            Self::Rpc => "grpc",
        }
    }

    /// The name users type (`beep-host start rpc`).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Http => "http",
            Self::Pipe => "pipe",
            Self::Rpc => "rpc",
        }
    }

    pub const ALL: [Transport; 3] = [Self::Http, Self::Pipe, Self::Rpc];
}

impl fmt::Display for Transport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Transport {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "http" => Ok(Self::Http),
            "pipe" => Ok(Self::Pipe),
            "rpc" | "grpc" => Ok(Self::Rpc),
            other => Err(format!(
                "unknown transport `{other}` (expected http, pipe or rpc)"
            )),
        }
    }
}

/// Whether a backend that exits on its own is started again.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum RestartPolicy {
    #[default]
    Never,
    /// Restart after a crash (non-zero exit or a signal) with exponential backoff.
    OnFailure,
}

impl FromStr for RestartPolicy {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "never" => Ok(Self::Never),
            "on-failure" => Ok(Self::OnFailure),
            other => Err(format!(
                "unknown restart policy `{other}` (expected never or on-failure)"
            )),
        }
    }
}

/// Limits of the restart policy (jupyter_client's restarter, in short).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RestartLimits {
    /// Restarts allowed before the backend stays crashed.
    pub max_restarts: u32,
    /// First delay; doubled after every restart.
    pub backoff: Duration,
    /// Longest delay.
    pub max_backoff: Duration,
    /// A run this long resets the restart counter.
    pub stable_after: Duration,
}

impl Default for RestartLimits {
    fn default() -> Self {
        Self {
            max_restarts: 5,
            backoff: Duration::from_millis(500),
            max_backoff: Duration::from_secs(8),
            stable_after: Duration::from_secs(10),
        }
    }
}

impl RestartLimits {
    /// The delay before restart number `attempt` (0-based).
    pub fn delay(&self, attempt: u32) -> Duration {
        let factor = 1u32.checked_shl(attempt.min(16)).unwrap_or(u32::MAX);
        self.backoff.saturating_mul(factor).min(self.max_backoff)
    }
}

/// A runtime a backend runs on directly (`beep-host start --runtime`): its key, and the
/// interpreter resolved when it was first started (so an adopted runtime that discovery
/// no longer finds still restarts).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RuntimeRef {
    pub key: String,
    pub python: PathBuf,
}

/// Where a backend runs: in an environment (`<env>/bin/python`), or on a runtime's own
/// interpreter.
///
/// Records, statuses and the daemon's `start` carry it as two fields, `env` (the
/// environment's name; empty on a runtime, which older readers still parse) and `runtime`
/// (absent in an environment): see [`Place::from_fields`] and [`Place::env_field`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Place {
    Environment(EnvName),
    Runtime(RuntimeRef),
}

impl Place {
    /// The place the `env` and `runtime` fields of a record or status name.
    pub fn from_fields(env: &str, runtime: Option<&RuntimeRef>) -> Result<Self, String> {
        match runtime {
            Some(runtime) => Ok(Self::Runtime(runtime.clone())),
            None => EnvName::parse(env)
                .map(Self::Environment)
                .map_err(|e| e.to_string()),
        }
    }

    /// The `env` field: the environment's name, empty on a runtime.
    pub fn env_field(&self) -> String {
        match self {
            Self::Environment(env) => env.to_string(),
            Self::Runtime(_) => String::new(),
        }
    }

    /// The `runtime` field: the runtime, absent in an environment.
    pub fn runtime_field(&self) -> Option<RuntimeRef> {
        match self {
            Self::Environment(_) => None,
            Self::Runtime(runtime) => Some(runtime.clone()),
        }
    }

    pub fn env(&self) -> Option<&EnvName> {
        match self {
            Self::Environment(env) => Some(env),
            Self::Runtime(_) => None,
        }
    }
}

impl fmt::Display for Place {
    /// `environment `admin``, `runtime `cpython-3.12.7-linux-x86_64-gnu``.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Environment(env) => write!(f, "environment `{env}`"),
            Self::Runtime(runtime) => write!(f, "runtime `{}`", runtime.key),
        }
    }
}

/// Everything needed to start one backend.
#[derive(Debug, Clone)]
pub struct BackendSpec {
    /// Where it runs.
    pub place: Place,
    pub transport: Transport,
    pub restart: RestartPolicy,
    pub limits: RestartLimits,
    /// How long to wait for the ready line.
    pub ready_timeout: Duration,
    /// Use this id instead of a fresh one (the detached `beep-host` supervisor gets its id
    /// from the command that started it).
    pub id: Option<BackendId>,
    /// What a project (`beep.toml`) declares beyond the basics.
    pub options: BackendOptions,
}

/// What a backend may declare beyond environment, transport and restart policy (a
/// project's `[[backend]]` table). Carried by the daemon's `start`, kept in the record and
/// shown in the status, so a later `up` can tell whether the declaration changed.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct BackendOptions {
    /// The project and backend name, when started by `beep-host up`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub project: Option<ProjectTag>,
    /// Extra environment variables of the Python process.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub env_vars: BTreeMap<String, String>,
    /// Working directory of the Python process (the project folder).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cwd: Option<PathBuf>,
    /// `module:function`, run once before ready; its value is bound to the function's
    /// name in the default session.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub preload: Option<String>,
    /// The `info` probe; unanswered `failures` times in a row makes the backend unhealthy.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub health: Option<HealthCheck>,
    /// Bytes of resident memory over the whole process tree.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memory_limit: Option<u64>,
}

/// Which project declared a backend.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProjectTag {
    /// The project folder (canonical).
    pub dir: PathBuf,
    /// The backend's `name` in `beep.toml`.
    pub name: String,
    /// A hash of the backend's declaration and the environment's lock: when it changes,
    /// `up` restarts the backend.
    pub fingerprint: String,
}

/// A health probe.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct HealthCheck {
    pub every_ms: u64,
    pub timeout_ms: u64,
    pub failures: u32,
}

impl HealthCheck {
    pub fn every(&self) -> Duration {
        Duration::from_millis(self.every_ms.max(1))
    }

    pub fn timeout(&self) -> Duration {
        Duration::from_millis(self.timeout_ms.max(1))
    }
}

/// `500ms`, `5s`, `2m`, `1h`: a positive whole number and a unit (`beep-host start` flags
/// and `beep.toml` read durations with this).
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let invalid = || format!("invalid duration `{text}` (expected e.g. `500ms`, `5s`, `2m`)");
    let t = text.trim();
    let split = t.find(|c: char| !c.is_ascii_digit()).ok_or_else(invalid)?;
    let (number, unit) = t.split_at(split);
    let n: u64 = number.parse().ok().filter(|&n| n > 0).ok_or_else(invalid)?;
    let millis = match unit.trim() {
        "ms" => Some(n),
        "s" => n.checked_mul(1000),
        "m" => n.checked_mul(60_000),
        "h" => n.checked_mul(3_600_000),
        _ => return Err(format!("invalid duration `{text}` (units: ms, s, m, h)")),
    };
    millis.map(Duration::from_millis).ok_or_else(invalid)
}

/// `2 GiB`, `512MiB`, `1.5GiB`, `500MB`, `4096 B`: a positive number and a unit (binary
/// KiB/MiB/GiB/TiB, decimal KB/MB/GB/TB, or B). `beep-host start --memory-limit` and
/// `beep.toml` read sizes with this.
pub fn parse_bytes(text: &str) -> Result<u64, String> {
    let invalid = || format!("invalid size `{text}` (expected e.g. `512MiB`, `2 GiB`)");
    let t = text.trim();
    let split = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .ok_or_else(invalid)?;
    let (number, unit) = t.split_at(split);
    let number: f64 = number
        .parse()
        .ok()
        .filter(|n: &f64| *n > 0.0)
        .ok_or_else(invalid)?;
    let scale: u64 = match unit.trim() {
        "B" => 1,
        "KiB" => 1 << 10,
        "MiB" => 1 << 20,
        "GiB" => 1 << 30,
        "TiB" => 1 << 40,
        "KB" | "kB" => 1000,
        "MB" => 1000_u64.pow(2),
        "GB" => 1000_u64.pow(3),
        "TB" => 1000_u64.pow(4),
        _ => {
            return Err(format!(
                "invalid size `{text}` (units: B, KiB, MiB, GiB, TiB, KB, MB, GB, TB)"
            ));
        }
    };
    let bytes = number * scale as f64;
    if !bytes.is_finite() || bytes < 1.0 || bytes >= u64::MAX as f64 {
        return Err(format!("invalid size `{text}`: must be at least one byte"));
    }
    Ok(bytes.round() as u64)
}

/// `2.0 GiB`, `64.0 MiB`, `512 B`.
pub fn format_bytes(bytes: u64) -> String {
    const UNITS: [&str; 4] = ["KiB", "MiB", "GiB", "TiB"];
    if bytes < 1024 {
        return format!("{bytes} B");
    }
    let mut value = bytes as f64 / 1024.0;
    let mut unit = 0;
    while value >= 1024.0 && unit + 1 < UNITS.len() {
        value /= 1024.0;
        unit += 1;
    }
    format!("{value:.1} {}", UNITS[unit])
}

impl BackendSpec {
    /// A backend in environment `env`.
    pub fn new(env: EnvName, transport: Transport) -> Self {
        Self::on(Place::Environment(env), transport)
    }

    /// A backend at `place` (an environment or a runtime).
    pub fn on(place: Place, transport: Transport) -> Self {
        Self {
            place,
            transport,
            restart: RestartPolicy::Never,
            limits: RestartLimits::default(),
            ready_timeout: Duration::from_secs(30),
            id: None,
            options: BackendOptions::default(),
        }
    }

    pub fn restart(mut self, policy: RestartPolicy) -> Self {
        self.restart = policy;
        self
    }
}

/// A backend's id: 8 lowercase hex digits, unique among the records.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct BackendId(String);

impl BackendId {
    /// A fresh random id.
    pub fn random() -> Self {
        let mut bytes = [0u8; 4];
        getrandom::fill(&mut bytes).expect("the OS random source is available");
        Self(hex::encode(bytes))
    }

    pub fn parse(s: &str) -> Result<Self, String> {
        if (1..=32).contains(&s.len())
            && s.bytes()
                .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase())
        {
            Ok(Self(s.to_string()))
        } else {
            Err(format!(
                "invalid backend id `{s}` (expected lowercase hex digits)"
            ))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for BackendId {
    type Error = String;
    fn try_from(s: String) -> Result<Self, String> {
        Self::parse(&s)
    }
}

impl From<BackendId> for String {
    fn from(id: BackendId) -> String {
        id.0
    }
}

impl FromStr for BackendId {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        Self::parse(s)
    }
}

impl fmt::Display for BackendId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_and_caps() {
        let limits = RestartLimits::default();
        assert_eq!(limits.delay(0), Duration::from_millis(500));
        assert_eq!(limits.delay(1), Duration::from_secs(1));
        assert_eq!(limits.delay(3), Duration::from_secs(4));
        assert_eq!(limits.delay(10), Duration::from_secs(8));
        assert_eq!(limits.delay(100), Duration::from_secs(8));
    }

    #[test]
    fn ids_are_hex() {
        let id = BackendId::random();
        assert_eq!(id.as_str().len(), 8);
        assert!(BackendId::parse(id.as_str()).is_ok());
        for bad in ["", "../x", "ABCD", "g1", &"a".repeat(33)] {
            assert!(BackendId::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn durations_and_sizes_parse() {
        assert_eq!(parse_duration("500ms").unwrap(), Duration::from_millis(500));
        assert_eq!(parse_duration("5s").unwrap(), Duration::from_secs(5));
        assert_eq!(parse_duration("2m").unwrap(), Duration::from_secs(120));
        assert_eq!(parse_duration(" 1h ").unwrap(), Duration::from_secs(3600));
        // A unit is required; whole numbers only.
        for bad in ["", "5", "2", "1.5s", "s", "0s", "5 parsecs", "-1s", "5min"] {
            assert!(parse_duration(bad).is_err(), "{bad}");
        }
        assert_eq!(parse_bytes("2GiB").unwrap(), 2 << 30);
        assert_eq!(parse_bytes("2 GiB").unwrap(), 2 << 30);
        assert_eq!(parse_bytes("512MiB").unwrap(), 512 << 20);
        assert_eq!(parse_bytes("1.5GiB").unwrap(), 3 << 29);
        assert_eq!(parse_bytes("500MB").unwrap(), 500_000_000);
        assert_eq!(parse_bytes("4096 B").unwrap(), 4096);
        for bad in [
            "", "lots", "4096", "0 GiB", "2 GiBs", "1G", "-1MiB", "2 gib",
        ] {
            assert!(parse_bytes(bad).is_err(), "{bad}");
        }
        assert_eq!(format_bytes(2 << 30), "2.0 GiB");
        assert_eq!(format_bytes((21 << 30) / 10), "2.1 GiB");
        assert_eq!(format_bytes(64 << 20), "64.0 MiB");
        assert_eq!(format_bytes(10), "10 B");
    }

    #[test]
    fn transports_parse() {
        assert_eq!("rpc".parse::<Transport>().unwrap(), Transport::Rpc);
        assert_eq!(Transport::Rpc.python_name(), "grpc");
        assert!("tcp".parse::<Transport>().is_err());
    }
}
