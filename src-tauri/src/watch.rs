//! Background forwarding from the daemon: state changes, the table every second, and log
//! lines, as events.

use std::collections::HashSet;
use std::io::{Read, Seek, SeekFrom};
use std::path::PathBuf;
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

use beep_host::backend::{BackendEvent, BackendId};
use beep_host::daemon::DaemonClient;
use futures_util::StreamExt;
use tauri::{AppHandle, Manager};
use tauri_specta::Event;

use crate::events::{BackendChanged, BackendLog, BackendsTick};
use crate::state::AppState;

/// Forward state changes as `BackendChanged` (reconnecting when the daemon restarts), and
/// every second the table as `BackendsTick` (only while there is something to show).
pub fn start(app: &AppHandle) {
    let handle = app.clone();
    tauri::async_runtime::spawn(async move {
        loop {
            let paths = handle.state::<AppState>().paths.clone();
            if let Ok(client) = DaemonClient::connect(&paths).await
                && let Ok(mut events) = client.watch().await
            {
                while let Some(event) = events.next().await {
                    if let Some(changed) = changed(event) {
                        let _ = changed.emit(&handle);
                    }
                }
            }
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
    });
    let handle = app.clone();
    tauri::async_runtime::spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_secs(1));
        let mut shown = false;
        loop {
            tick.tick().await;
            let state = handle.state::<AppState>();
            let Ok(backends) = crate::commands::backends::rows(&state).await else {
                continue;
            };
            if backends.is_empty() && !shown {
                continue;
            }
            shown = !backends.is_empty();
            let _ = BackendsTick { backends }.emit(&handle);
        }
    });
}

fn changed(event: BackendEvent) -> Option<BackendChanged> {
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
        BackendEvent::Removed { .. } => return None,
    };
    Some(BackendChanged {
        id: id.as_str().to_string(),
        state: state.into(),
        pid,
        last_exit: last_exit.map(|e| crate::dto::backends::LastExit::new(&e, state)),
    })
}

/// Forward the lines appended to a backend's log file as `BackendLog`, until the backend
/// has ended or is gone (one follower per backend).
pub fn follow_logs(app: &AppHandle, id: BackendId, file: PathBuf) {
    static FOLLOWED: OnceLock<Mutex<HashSet<BackendId>>> = OnceLock::new();
    let followed = FOLLOWED.get_or_init(Default::default);
    if !followed
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .insert(id.clone())
    {
        return;
    }
    let app = app.clone();
    tauri::async_runtime::spawn(async move {
        let mut offset = std::fs::metadata(&file).map(|m| m.len()).unwrap_or(0);
        let mut last_check = Instant::now();
        let mut pending = String::new();
        loop {
            tokio::time::sleep(Duration::from_millis(250)).await;
            let len = std::fs::metadata(&file).map(|m| m.len()).unwrap_or(0);
            if len < offset {
                offset = 0; // rotated
            }
            if len > offset
                && let Ok(mut f) = std::fs::File::open(&file)
                && f.seek(SeekFrom::Start(offset)).is_ok()
            {
                let mut buf = Vec::new();
                if f.read_to_end(&mut buf).is_ok() {
                    offset += buf.len() as u64;
                    pending.push_str(&String::from_utf8_lossy(&buf));
                    while let Some(end) = pending.find('\n') {
                        let line: String = pending.drain(..=end).collect();
                        let _ = BackendLog {
                            id: id.as_str().to_string(),
                            stream: "stdout".into(),
                            text: line.trim_end_matches(['\n', '\r']).to_string(),
                        }
                        .emit(&app);
                    }
                }
            }
            if last_check.elapsed() >= Duration::from_secs(2) {
                last_check = Instant::now();
                let state = app.state::<AppState>();
                let alive = match state.daemon().await {
                    Ok(d) => d.status(&id).await.is_ok_and(|s| !s.state.is_final()),
                    Err(_) => false,
                };
                if !alive {
                    break;
                }
            }
        }
        followed
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&id);
    });
}
