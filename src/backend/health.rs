//! Keeping backends within bounds: the health probe over a backend's own transport, and
//! the stats sampling that stops a backend whose process tree is over its memory limit.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use super::client;
use super::instance::{BackendInstance, Control};
use super::spec::HealthCheck;
use super::status::{BackendState, ProcessStats};
use super::supervisor::Supervisor;

/// How often the stats of the process trees are refreshed.
const STATS_EVERY: Duration = Duration::from_secs(1);

impl Supervisor {
    pub(super) fn sample(&self) {
        let pids: Vec<u32> = self
            .lock()
            .values()
            .filter_map(|b| {
                let snap = b.snapshot();
                snap.pid.filter(|_| !snap.state.is_final())
            })
            .collect();
        let fresh = self
            .inner
            .sampler
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .sample(&pids);
        self.enforce_memory_limits(&fresh);
        *self.inner.stats.lock().unwrap_or_else(|e| e.into_inner()) = fresh;
    }

    /// Ask the task of every backend whose tree uses more than its memory limit to stop
    /// it (the task restarts it by policy).
    fn enforce_memory_limits(&self, stats: &HashMap<u32, ProcessStats>) {
        for backend in self.lock().values() {
            let Some(limit) = backend.spec.options.memory_limit else {
                continue;
            };
            let snap = backend.snapshot();
            if !matches!(snap.state, BackendState::Ready | BackendState::Unhealthy) {
                continue;
            }
            let Some(pid) = snap.pid else { continue };
            let Some(rss) = stats.get(&pid).map(|s| s.rss_bytes) else {
                continue;
            };
            if rss > limit {
                let _ = backend.control.send(Control::OverMemory { pid, rss });
            }
        }
    }

    /// Refresh stats about once a second while this supervisor lives.
    pub(super) fn ensure_sampling(&self) {
        let mut sampling = self
            .inner
            .sampling
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        // A new backend has figures from its first listing on.
        self.sample();
        if sampling.is_some() {
            return;
        }
        let weak = Arc::downgrade(&self.inner);
        *sampling = Some(tokio::spawn(async move {
            let mut tick = tokio::time::interval(STATS_EVERY);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tick.tick().await;
                let Some(inner) = weak.upgrade() else { break };
                Supervisor { inner }.sample();
            }
        }));
    }
}

/// Probe a running process with `info` over its own transport every `every`; return when
/// `failures` probes in a row got no answer within `timeout`. Never returns without a
/// health check.
pub(super) async fn watch_health(
    backend: &BackendInstance,
    health: Option<HealthCheck>,
    address: &str,
) -> u32 {
    let Some(health) = health else {
        return std::future::pending().await;
    };
    let every = health.every();
    let failures = health.failures.max(1);
    let mut tick = tokio::time::interval_at(tokio::time::Instant::now() + every, every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut missed = 0u32;
    loop {
        tick.tick().await;
        let probe = async {
            let client =
                client::connect(backend.spec.transport, address, &backend.plan.token).await?;
            client.info().await
        };
        match tokio::time::timeout(health.timeout(), probe).await {
            Ok(Ok(_)) => {
                if missed > 0 {
                    backend.log.note(&format!(
                        "health probe answered again after {missed} missed"
                    ));
                }
                missed = 0;
                continue;
            }
            Ok(Err(err)) => {
                missed += 1;
                tracing::debug!(id = %backend.id, %err, missed, "health probe failed");
                backend
                    .log
                    .note(&format!("health probe {missed}/{failures} failed: {err}"));
            }
            Err(_) => {
                missed += 1;
                tracing::debug!(id = %backend.id, missed, "health probe timed out");
                backend.log.note(&format!(
                    "health probe {missed}/{failures}: no answer within {:?}",
                    health.timeout()
                ));
            }
        }
        if missed >= failures {
            return missed;
        }
    }
}
