//! The hook through which the backend supervisor tells environments what runs in them.
//!
//! Environments do not know about processes. `status` shows, and `delete` refuses on,
//! whatever the caller's [`RunningBackends`] reports; the supervisor implements it.

use serde::{Deserialize, Serialize};

use super::EnvName;

/// The error a [`RunningBackends`] implementation returns when it cannot stop a backend.
pub type StopError = Box<dyn std::error::Error + Send + Sync>;

/// A backend running in an environment, as the supervisor describes it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EnvBackend {
    /// The backend's id (its record name).
    pub id: String,
    pub pid: Option<u32>,
    /// `http`, `pipe` or `grpc`.
    pub transport: Option<String>,
    /// `starting`, `ready`, `stopping`, ...
    pub state: String,
}

/// Which backends run in an environment, and how to stop them (`delete --force`).
#[async_trait::async_trait]
pub trait RunningBackends: Send + Sync {
    /// The backends running in `env` now.
    fn running_in(&self, env: &EnvName) -> Vec<EnvBackend>;
    /// Stop every backend running in `env`; called by a forced delete before it removes files.
    async fn stop_in(&self, env: &EnvName) -> Result<(), StopError>;
    /// The backends running on runtime `key` itself, not in an environment
    /// (`runtime remove` refuses while any runs).
    fn running_on_runtime(&self, _key: &str) -> Vec<EnvBackend> {
        Vec::new()
    }
}

/// No supervisor: nothing ever runs in an environment.
#[derive(Debug, Default, Clone, Copy)]
pub struct NoBackends;

#[async_trait::async_trait]
impl RunningBackends for NoBackends {
    fn running_in(&self, _env: &EnvName) -> Vec<EnvBackend> {
        Vec::new()
    }
    async fn stop_in(&self, _env: &EnvName) -> Result<(), StopError> {
        Ok(())
    }
}
