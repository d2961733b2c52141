//! What the commands share: the paths, the supervisor, the installs in flight.

use std::collections::HashMap;
use std::sync::Mutex;

use beep_host::backend::Supervisor;
use beep_host::runtime::Runtimes;
use beep_host::venv::Environments;
use beep_host::{Config, Paths};
use tokio_util::sync::CancellationToken;

use crate::error::AppResult;

pub struct AppState {
    pub paths: Paths,
    pub supervisor: Supervisor,
    /// Cancel tokens of the runtime installs in flight, by request.
    pub installs: Mutex<HashMap<String, CancellationToken>>,
    /// The host API while the app serves it.
    pub host_api: Mutex<Option<HostApiRunning>>,
}

/// A running host API: where it is, how to stop it, and its server task.
pub struct HostApiRunning {
    pub served: beep_host::host::Served,
    pub stop: CancellationToken,
    pub task: tokio::task::JoinHandle<()>,
}

impl AppState {
    pub fn new(paths: Paths) -> Self {
        Self {
            supervisor: Supervisor::new(paths.clone()),
            paths,
            installs: Mutex::new(HashMap::new()),
            host_api: Mutex::new(None),
        }
    }

    /// The configuration now (the file may have changed since the last command).
    pub fn config(&self) -> AppResult<Config> {
        Ok(Config::load(&self.paths)?)
    }

    pub fn runtimes(&self) -> AppResult<Runtimes> {
        Ok(Runtimes::new(self.paths.clone(), self.config()?))
    }

    pub fn environments(&self) -> AppResult<Environments> {
        Ok(Environments::new(self.paths.clone(), self.config()?))
    }

    pub fn installs(&self) -> std::sync::MutexGuard<'_, HashMap<String, CancellationToken>> {
        self.installs.lock().unwrap_or_else(|e| e.into_inner())
    }
}
