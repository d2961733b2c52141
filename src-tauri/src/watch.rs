//! Background forwarding: supervisor state changes, stats ticks and log lines as events.

use std::time::Duration;

use beep_host::backend::{BackendEvent, BackendId, Supervisor};
use tauri::{AppHandle, Manager};
use tauri_specta::Event;

use crate::events::{BackendChanged, BackendLog, BackendsTick};
use crate::state::AppState;

/// Forward state changes as `BackendChanged`, and every second the table as `BackendsTick`
/// (only while there is something to show, so an idle app stays idle).
pub fn start(app: &AppHandle) {
    let state = app.state::<AppState>();
    let mut changes = state.supervisor.subscribe();
    let handle = app.clone();
    tauri::async_runtime::spawn(async move {
        loop {
            match changes.recv().await {
                Ok(event) => {
                    let _ = changed(event).emit(&handle);
                }
                Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => continue,
                Err(_) => break,
            }
        }
    });
    let handle = app.clone();
    tauri::async_runtime::spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_secs(1));
        let mut shown = false;
        loop {
            tick.tick().await;
            let state = handle.state::<AppState>();
            let backends: Vec<_> = state
                .supervisor
                .list()
                .into_iter()
                .map(Into::into)
                .collect();
            if backends.is_empty() && !shown {
                continue;
            }
            shown = !backends.is_empty();
            let _ = BackendsTick { backends }.emit(&handle);
        }
    });
}

fn changed(event: BackendEvent) -> BackendChanged {
    let (id, state, pid, last_exit) = match event {
        BackendEvent::State {
            id,
            state,
            pid,
            last_exit,
        } => (id, state, pid, last_exit),
        BackendEvent::Ended {
            id,
            state,
            last_exit,
        } => (id, state, None, last_exit),
    };
    BackendChanged {
        id: id.as_str().to_string(),
        state: state.as_str().to_string(),
        pid,
        last_exit: last_exit.map(|e| e.describe()),
    }
}

/// Forward a backend's new log lines as `BackendLog` until it is gone.
pub fn follow_logs(app: &AppHandle, supervisor: &Supervisor, id: &BackendId) {
    let Ok((_, mut lines)) = supervisor.follow_logs(id) else {
        return;
    };
    let app = app.clone();
    let id = id.as_str().to_string();
    tauri::async_runtime::spawn(async move {
        loop {
            match lines.recv().await {
                Ok(line) => {
                    let _ = BackendLog {
                        id: id.clone(),
                        stream: format!("{:?}", line.stream).to_lowercase(),
                        text: line.text,
                    }
                    .emit(&app);
                }
                Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => continue,
                Err(_) => break,
            }
        }
    });
}
