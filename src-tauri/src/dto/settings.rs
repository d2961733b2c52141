use serde::{Deserialize, Serialize};

use beep_host::check::{Check, Status};

/// The settings file and where things live.
#[derive(Debug, Clone, Serialize, Deserialize, specta::Type)]
pub struct Settings {
    pub data_dir: String,
    pub config_file: String,
    /// As saved in the file (the environment may override it: see `overridden`).
    pub catalog: Option<String>,
    pub mirror: Option<String>,
    /// `auto`, `uv` or `pip`.
    pub installer: String,
    /// Environment variables that win over the file right now.
    pub overridden: Vec<String>,
    /// The values in force from those variables (shown read-only, with why).
    pub in_force: Vec<InForce>,
}

/// A setting whose value comes from an environment variable, not the file.
#[derive(Debug, Clone, Serialize, Deserialize, specta::Type)]
pub struct InForce {
    /// `catalog`, `mirror` or `installer`.
    pub setting: String,
    pub variable: String,
    pub value: String,
}

/// What the Settings page saves.
#[derive(Debug, Clone, Serialize, Deserialize, specta::Type)]
pub struct SettingsUpdate {
    pub catalog: Option<String>,
    pub mirror: Option<String>,
    pub installer: String,
}

/// The host API served by the app (the same service as `beep-host serve`).
#[derive(Debug, Clone, Serialize, Deserialize, specta::Type)]
pub struct HostApi {
    pub running: bool,
    /// `127.0.0.1:PORT` when served.
    pub http: Option<String>,
    pub grpc: Option<String>,
    /// `<state>/host.json`: addresses and the token (mode 0600).
    pub record: Option<String>,
    /// The token other programs send (`Authorization: Bearer …`), from that record.
    pub token: Option<String>,
}

/// One line of the configuration check.
#[derive(Debug, Clone, Serialize, Deserialize, specta::Type)]
pub struct CheckRow {
    pub name: String,
    /// `ok`, `warn` or `fail`.
    pub status: String,
    pub message: String,
}

impl From<Check> for CheckRow {
    fn from(c: Check) -> Self {
        Self {
            name: c.name,
            status: match c.status {
                Status::Ok => "ok",
                Status::Warn => "warn",
                Status::Fail => "fail",
            }
            .to_string(),
            message: c.message,
        }
    }
}
