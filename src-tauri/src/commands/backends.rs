use std::time::Duration;

use tauri::{AppHandle, State};

use beep_host::backend::{BackendClient, BackendId, Handle, log};
use beep_host::daemon::StartSpec;

use crate::dto::backends::{BackendRow, Connection, HandleRow, LogRow, StartBackend, Transport};
use crate::error::{AppError, AppResult, ErrorCode};
use crate::state::AppState;

fn id(id: &str) -> AppResult<BackendId> {
    BackendId::parse(id).map_err(|m| AppError::new(ErrorCode::Invalid, m))
}

fn invalid(message: String) -> AppError {
    AppError::new(ErrorCode::Invalid, message)
}

/// Every backend of the home (the daemon owns them all), each marked when this window
/// started it.
pub async fn rows(state: &AppState) -> AppResult<Vec<BackendRow>> {
    let listing = state.ask(|d| async move { d.list().await }).await?;
    let started = state.started().clone();
    Ok(listing
        .backends
        .into_iter()
        .map(|s| {
            let own = started.contains(&s.id);
            BackendRow::new(s, own)
        })
        .collect())
}

/// Every backend: those this window started and those any other program did.
#[tauri::command]
#[specta::specta]
pub async fn backends_list(state: State<'_, AppState>) -> AppResult<Vec<BackendRow>> {
    rows(&state).await
}

/// Start a backend; its log lines then arrive as `BackendLog` events.
#[tauri::command]
#[specta::specta]
pub async fn backend_start(
    app: AppHandle,
    state: State<'_, AppState>,
    request: StartBackend,
) -> AppResult<BackendRow> {
    let runtime = request.runtime.filter(|key| !key.is_empty());
    let env = match &runtime {
        Some(_) => String::new(),
        None => {
            let name = beep_host::venv::EnvName::parse(&request.env)?;
            // The daemon refuses this too, but its answer is text: checked here, the core's
            // error keeps its hint (repair the admin environment) for the UI's button.
            let env_dir = beep_host::venv::env_dir(&state.paths, &name);
            if matches!(request.transport, Transport::Rpc)
                && beep_host::venv::has_grpc(&env_dir) == Some(false)
            {
                return Err(beep_host::backend::Error::GrpcMissing {
                    env: name.to_string(),
                    path: env_dir,
                }
                .into());
            }
            name.to_string()
        }
    };
    let spec = StartSpec {
        env,
        runtime,
        transport: request.transport.into(),
        restart: request.restart.parse().map_err(invalid)?,
        ready_timeout_ms: 30_000,
        options: Default::default(),
    };
    let status = state
        .ask(|d| {
            let spec = spec.clone();
            async move { d.start(spec).await }
        })
        .await?;
    state.started().insert(status.id.clone());
    crate::watch::follow_logs(&app, status.id.clone(), status.log_file.clone());
    Ok(BackendRow::new(status, true))
}

#[tauri::command]
#[specta::specta]
pub async fn backend_stop(state: State<'_, AppState>, id: String) -> AppResult<()> {
    let id = self::id(&id)?;
    state
        .ask(|d| {
            let id = id.clone();
            async move { d.stop(&id).await }
        })
        .await
}

/// Restart a running backend, or start an ended one again (same environment, transport
/// and policy).
#[tauri::command]
#[specta::specta]
pub async fn backend_restart(state: State<'_, AppState>, id: String) -> AppResult<()> {
    let id = self::id(&id)?;
    state
        .ask(|d| {
            let id = id.clone();
            async move { d.restart(&id).await }
        })
        .await?;
    Ok(())
}

/// The last lines of a backend's log (then follow `BackendLog` events).
#[tauri::command]
#[specta::specta]
pub async fn backend_log_tail(
    app: AppHandle,
    state: State<'_, AppState>,
    id: String,
) -> AppResult<Vec<LogRow>> {
    let id = self::id(&id)?;
    let file = state
        .ask(|d| {
            let id = id.clone();
            async move { d.status(&id).await }
        })
        .await?
        .log_file;
    let lines = log::read_tail(&file, 500).map_err(|e| {
        AppError::new(
            ErrorCode::Failed,
            format!("Failed to read log `{}`: {e}", file.display()),
        )
    })?;
    crate::watch::follow_logs(&app, id, file);
    Ok(lines
        .into_iter()
        .map(|text| LogRow {
            stream: "stdout".into(),
            text,
        })
        .collect())
}

/// Address and token, for another program to connect.
#[tauri::command]
#[specta::specta]
pub async fn backend_connection(state: State<'_, AppState>, id: String) -> AppResult<Connection> {
    let id = self::id(&id)?;
    let c = state
        .ask(|d| {
            let id = id.clone();
            async move { d.connection(&id).await }
        })
        .await?;
    Ok(Connection {
        transport: c.transport.into(),
        address: c.address,
        token: c.token,
    })
}

/// A client of a backend, over its transport.
async fn client(state: &AppState, id: &str) -> AppResult<Box<dyn BackendClient>> {
    let id = self::id(id)?;
    let daemon = state.daemon().await?;
    Ok(daemon.backend_client(&id).await?)
}

/// Interrupt the call running in a backend (its `interrupt` op, over a connection of its
/// own, answered at once): the call ends with `KeyboardInterrupt`. True when one was running.
#[tauri::command]
#[specta::specta]
pub async fn backend_interrupt(state: State<'_, AppState>, id: String) -> AppResult<bool> {
    let client = client(&state, &id).await?;
    let reply = client
        .request(beep_host::backend::client::Op::Interrupt, None)
        .await?;
    Ok(reply.value.as_bool().unwrap_or(false))
}

/// The live handles the backend holds.
#[tauri::command]
#[specta::specta]
pub async fn backend_handles(state: State<'_, AppState>, id: String) -> AppResult<Vec<HandleRow>> {
    let client = client(&state, &id).await?;
    Ok(HandleRow::list(client.handles().await?))
}

/// Release one handle.
#[tauri::command]
#[specta::specta]
pub async fn backend_release(
    state: State<'_, AppState>,
    id: String,
    handle: String,
) -> AppResult<()> {
    let client = client(&state, &id).await?;
    let handle = Handle {
        id: handle,
        type_name: String::new(),
        repr: String::new(),
    };
    Ok(client.release(&handle).await?)
}

/// Quit (the answer to `CloseRequested`): stop the backends this window started, or keep
/// them running under the daemon; `remember` makes the choice the answer from now on.
#[tauri::command]
#[specta::specta]
pub async fn app_quit(
    app: AppHandle,
    state: State<'_, AppState>,
    stop: bool,
    remember: bool,
) -> AppResult<()> {
    if remember {
        crate::prefs::save_on_close(&state.paths, stop)?;
    }
    if stop {
        stop_started(&state).await;
    }
    app.exit(0);
    Ok(())
}

/// Stop the backends this window started (at most 10 s).
pub async fn stop_started(state: &AppState) {
    let ids: Vec<BackendId> = state.started().drain().collect();
    let Ok(daemon) = state.daemon().await else {
        return;
    };
    let stops = ids.iter().map(|id| daemon.stop(id));
    let _ = tokio::time::timeout(
        Duration::from_secs(10),
        futures_util::future::join_all(stops),
    )
    .await;
}
