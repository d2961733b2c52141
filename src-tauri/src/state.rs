//! What the commands share: the paths, the connection to the daemon (the one owner of
//! every backend), the backends this window started, the installs in flight.

use std::collections::{HashMap, HashSet};
use std::future::Future;
use std::sync::{Arc, Mutex};

use beep_host::backend::BackendId;
use beep_host::daemon::{self, DaemonClient};
use beep_host::runtime::Runtimes;
use beep_host::venv::Environments;
use beep_host::{Config, Paths};
use tokio_util::sync::CancellationToken;

use crate::error::AppResult;

pub struct AppState {
    pub paths: Paths,
    daemon: tokio::sync::Mutex<Option<Arc<DaemonClient>>>,
    /// The backends this window started: closing it asks about them.
    pub started: Mutex<HashSet<BackendId>>,
    /// Cancel tokens of the runtime installs in flight, by request.
    pub installs: Mutex<HashMap<String, CancellationToken>>,
}

impl AppState {
    pub fn new(paths: Paths) -> Self {
        Self {
            paths,
            daemon: tokio::sync::Mutex::new(None),
            started: Mutex::new(HashSet::new()),
            installs: Mutex::new(HashMap::new()),
        }
    }

    /// The connection to the daemon (started when none runs).
    pub async fn daemon(&self) -> AppResult<Arc<DaemonClient>> {
        let mut slot = self.daemon.lock().await;
        if let Some(client) = slot.as_ref() {
            return Ok(client.clone());
        }
        let client = Arc::new(DaemonClient::connect(&self.paths).await?);
        *slot = Some(client.clone());
        Ok(client)
    }

    /// Ask the daemon; when the connection broke (the daemon was restarted), connect again
    /// and ask once more.
    pub async fn ask<T, F, Fut>(&self, f: F) -> AppResult<T>
    where
        F: Fn(Arc<DaemonClient>) -> Fut,
        Fut: Future<Output = Result<T, daemon::Error>>,
    {
        match f(self.daemon().await?).await {
            Err(daemon::Error::Io { .. }) => {
                *self.daemon.lock().await = None;
                Ok(f(self.daemon().await?).await?)
            }
            other => Ok(other?),
        }
    }

    pub fn started(&self) -> std::sync::MutexGuard<'_, HashSet<BackendId>> {
        self.started.lock().unwrap_or_else(|e| e.into_inner())
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
