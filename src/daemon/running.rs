//! Environments ask the daemon what runs in them (`venv delete`, `venv status`,
//! `runtime remove`).

use crate::backend::BackendStatus;
use crate::venv::{EnvBackend, EnvName, RunningBackends, StopError};

use super::{DaemonClient, Listing};

/// The daemon's answer for environments; with no daemon running, nothing runs.
#[derive(Debug)]
pub struct DaemonBackends {
    client: Option<DaemonClient>,
    listing: Listing,
}

impl DaemonBackends {
    /// Ask the home's daemon, if one runs (none is started for this).
    pub async fn ask(paths: &crate::Paths) -> Result<Self, super::Error> {
        let client = DaemonClient::connect_existing(paths).await?;
        let listing = match &client {
            Some(client) => client.list().await?,
            None => Listing {
                backends: Vec::new(),
                unreadable: Vec::new(),
            },
        };
        Ok(Self { client, listing })
    }

    /// The listing `ask` got (for callers that hold no environment lock, such as a list).
    pub fn listing(&self) -> &Listing {
        &self.listing
    }

    /// The listing now: asked again when the runtime allows a blocking wait (the answer
    /// must not predate the environment lock the caller holds), else the one from `ask`.
    fn fresh(&self) -> Listing {
        if let Some(client) = &self.client
            && let Ok(handle) = tokio::runtime::Handle::try_current()
            && handle.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread
            && let Ok(listing) = tokio::task::block_in_place(|| handle.block_on(client.list()))
        {
            return listing;
        }
        self.listing.clone()
    }
}

fn env_backend(status: &BackendStatus) -> EnvBackend {
    EnvBackend {
        id: status.id.to_string(),
        pid: status.pid,
        transport: Some(status.transport.to_string()),
        state: status.state.to_string(),
    }
}

#[async_trait::async_trait]
impl RunningBackends for DaemonBackends {
    fn running_in(&self, env: &EnvName) -> Vec<EnvBackend> {
        self.fresh()
            .running_in(env.as_str())
            .map(env_backend)
            .collect()
    }

    fn running_on_runtime(&self, key: &str) -> Vec<EnvBackend> {
        self.fresh()
            .running_on_runtime(key)
            .map(env_backend)
            .collect()
    }

    async fn stop_in(&self, env: &EnvName) -> Result<(), StopError> {
        let Some(client) = &self.client else {
            return Ok(());
        };
        let listing = client.list().await?;
        for status in listing.running_in(env.as_str()) {
            client.stop(&status.id).await?;
        }
        Ok(())
    }
}

/// The daemon's own supervisor answers for environments directly (the host API).
#[async_trait::async_trait]
impl RunningBackends for crate::backend::Supervisor {
    fn running_in(&self, env: &EnvName) -> Vec<EnvBackend> {
        self.backends_in_env(env).iter().map(env_backend).collect()
    }

    fn running_on_runtime(&self, key: &str) -> Vec<EnvBackend> {
        self.backends_on_runtime(key)
            .iter()
            .map(env_backend)
            .collect()
    }

    async fn stop_in(&self, env: &EnvName) -> Result<(), StopError> {
        for status in self.backends_in_env(env) {
            self.stop(&status.id).await?;
        }
        Ok(())
    }
}
