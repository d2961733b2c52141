use tauri::{AppHandle, State};

use beep_host::backend::client::Error as ClientError;
use beep_host::backend::{BackendId, BackendRecord, BackendSpec, Handle, log};
use beep_host::venv::EnvName;

use crate::dto::backends::{
    BackendRow, Connection, ConsoleResult, HandleRow, LogRow, StartBackend,
};
use crate::error::{AppError, AppResult, ErrorCode};
use crate::state::AppState;

fn id(id: &str) -> AppResult<BackendId> {
    BackendId::parse(id).map_err(|m| AppError::new(ErrorCode::Invalid, m))
}

fn invalid(message: String) -> AppError {
    AppError::new(ErrorCode::Invalid, message)
}

/// Every backend: this app's and those other processes started.
#[tauri::command]
#[specta::specta]
pub async fn backends_list(state: State<'_, AppState>) -> AppResult<Vec<BackendRow>> {
    Ok(state
        .supervisor
        .list()
        .into_iter()
        .map(Into::into)
        .collect())
}

/// Start a backend; its log lines then arrive as `BackendLog` events.
#[tauri::command]
#[specta::specta]
pub async fn backend_start(
    app: AppHandle,
    state: State<'_, AppState>,
    request: StartBackend,
) -> AppResult<BackendRow> {
    let spec = BackendSpec::new(
        EnvName::parse(&request.env)?,
        request.transport.parse().map_err(invalid)?,
    )
    .restart(request.restart.parse().map_err(invalid)?);
    let id = state.supervisor.start(spec).await?;
    crate::watch::follow_logs(&app, &state.supervisor, &id);
    Ok(state.supervisor.status(&id)?.into())
}

#[tauri::command]
#[specta::specta]
pub async fn backend_stop(state: State<'_, AppState>, id: String) -> AppResult<()> {
    Ok(state.supervisor.stop(&self::id(&id)?).await?)
}

#[tauri::command]
#[specta::specta]
pub async fn backend_restart(state: State<'_, AppState>, id: String) -> AppResult<()> {
    Ok(state.supervisor.restart(&self::id(&id)?).await?)
}

/// The last lines of a backend's log (then follow `BackendLog` events).
#[tauri::command]
#[specta::specta]
pub async fn backend_log_tail(state: State<'_, AppState>, id: String) -> AppResult<Vec<LogRow>> {
    let id = self::id(&id)?;
    if let Ok((lines, _)) = state.supervisor.follow_logs(&id) {
        return Ok(lines
            .into_iter()
            .map(|l| LogRow {
                stream: format!("{:?}", l.stream).to_lowercase(),
                text: l.text,
            })
            .collect());
    }
    let file = state.supervisor.status(&id)?.log_file;
    let lines = log::read_tail(&file, 500).map_err(|e| {
        AppError::new(
            ErrorCode::Failed,
            format!("Failed to read log `{}`: {e}", file.display()),
        )
    })?;
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
    let status = state.supervisor.status(&self::id(&id)?)?;
    let record = BackendRecord::read(&status.record).map_err(beep_host::backend::Error::from)?;
    Ok(Connection {
        transport: record.transport.as_str().into(),
        address: record.address,
        token: record.token,
    })
}

/// Run statements; a Python exception comes back in the result, not as an error.
#[tauri::command]
#[specta::specta]
pub async fn backend_exec(
    state: State<'_, AppState>,
    id: String,
    code: String,
) -> AppResult<ConsoleResult> {
    let client = state.supervisor.client(&self::id(&id)?).await?;
    console(client.exec(&code, None).await.map(ConsoleResult::exec))
}

/// Evaluate one expression.
#[tauri::command]
#[specta::specta]
pub async fn backend_eval(
    state: State<'_, AppState>,
    id: String,
    expr: String,
) -> AppResult<ConsoleResult> {
    let client = state.supervisor.client(&self::id(&id)?).await?;
    console(client.eval(&expr).await.map(ConsoleResult::value))
}

/// The live handles the backend holds.
#[tauri::command]
#[specta::specta]
pub async fn backend_handles(state: State<'_, AppState>, id: String) -> AppResult<Vec<HandleRow>> {
    let client = state.supervisor.client(&self::id(&id)?).await?;
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
    let client = state.supervisor.client(&self::id(&id)?).await?;
    let handle = Handle {
        id: handle,
        type_name: String::new(),
        repr: String::new(),
    };
    Ok(client.release(&handle).await?)
}

/// Stop the backends this app started and quit (the answer to `CloseRequested`).
#[tauri::command]
#[specta::specta]
pub async fn app_quit(app: AppHandle, state: State<'_, AppState>) -> AppResult<()> {
    state.supervisor.stop_own().await;
    app.exit(0);
    Ok(())
}

fn console(result: Result<ConsoleResult, ClientError>) -> AppResult<ConsoleResult> {
    match result {
        Ok(r) => Ok(r),
        Err(ClientError::Remote(remote)) => Ok(ConsoleResult::error(remote)),
        Err(e) => Err(e.into()),
    }
}
