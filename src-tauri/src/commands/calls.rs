//! Live calls from the console: run code as a named call whose output reaches the UI as
//! `CallOutput` events while it runs and whose end is a `CallEnded` event; follow a call
//! again after the window was closed (`backend_attach` from the last seq shown); list a
//! backend's recent calls; interrupt one.

use futures_util::StreamExt;
use serde::{Deserialize, Serialize};
use tauri::{AppHandle, State};
use tauri_specta::Event;

use beep_host::backend::client::{CallEvent, CallStream, OutputStream, new_call_id, valid_call_id};
use beep_host::backend::{BackendClient, BackendId, PyValue};

use crate::dto::backends::ConsoleResult;
use crate::error::{AppError, AppResult, ErrorCode};
use crate::state::AppState;

/// A chunk of a call's output.
#[derive(Debug, Clone, Serialize, Deserialize, specta::Type, tauri_specta::Event)]
pub struct CallOutput {
    /// The backend id.
    pub backend: String,
    pub call: String,
    /// `stdout` or `stderr`.
    pub stream: String,
    /// From 1 per call, increasing by 1; give the last one shown to `backend_attach`.
    pub seq: u64,
    /// The first seq this event stands for: `seq`, or the first of the events the journal
    /// dropped (their notice carries `seq` = the last dropped). A `first` past the last seq
    /// shown + 1 means events were missed: follow the call again from there.
    pub first: u64,
    pub data: String,
}

/// A call ended (or could no longer be followed: `lost` says why).
#[derive(Debug, Clone, Serialize, Deserialize, specta::Type, tauri_specta::Event)]
pub struct CallEnded {
    pub backend: String,
    pub call: String,
    /// Its value or Python exception (empty stdout/stderr: the output came as events).
    pub result: Option<ConsoleResult>,
    /// Set when the connection was lost before the end (the call may still run).
    pub lost: Option<String>,
    /// The seq after the call's last output event: a window that showed less missed some.
    pub seq: Option<u64>,
}

/// One of a backend's recent calls.
#[derive(Debug, Clone, Serialize, Deserialize, specta::Type)]
pub struct CallRow {
    pub call: String,
    pub op: String,
    pub session: String,
    /// running, done, failed, interrupted, timed_out.
    pub state: String,
    /// Unix seconds.
    pub started: f64,
    /// Seconds; null while running.
    pub duration: Option<f64>,
    pub output_bytes: f64,
}

fn id(id: &str) -> AppResult<BackendId> {
    BackendId::parse(id).map_err(|m| AppError::new(ErrorCode::Invalid, m))
}

async fn client(state: &AppState, backend: &BackendId) -> AppResult<Box<dyn BackendClient>> {
    let daemon = state.daemon().await?;
    Ok(daemon.backend_client(backend).await?)
}

/// Emit the stream's events until its end.
fn forward(app: AppHandle, backend: String, call: String, mut stream: CallStream) {
    let call_id = call.clone();
    tauri::async_runtime::spawn(async move {
        let ended = loop {
            match stream.next().await {
                Some(Ok(CallEvent::Output {
                    call,
                    stream,
                    seq,
                    data,
                })) => {
                    let stream = match stream {
                        OutputStream::Stdout => "stdout",
                        OutputStream::Stderr => "stderr",
                    };
                    let sent = CallOutput {
                        backend: backend.clone(),
                        call,
                        stream: stream.into(),
                        seq,
                        first: seq,
                        data,
                    }
                    .emit(&app);
                    warn_unsent(sent, &call_id);
                }
                Some(Ok(CallEvent::Dropped {
                    call,
                    seq_from,
                    seq_to,
                    bytes,
                })) => {
                    let sent = CallOutput {
                        backend: backend.clone(),
                        call,
                        stream: "stderr".into(),
                        seq: seq_to,
                        first: seq_from,
                        data: format!("[{bytes} bytes of output were dropped from the journal]\n"),
                    }
                    .emit(&app);
                    warn_unsent(sent, &call_id);
                }
                Some(Ok(CallEvent::End(end))) => {
                    let result = match end.result {
                        Ok(reply) => ConsoleResult {
                            stdout: reply.stdout.unwrap_or_default(),
                            stderr: reply.stderr.unwrap_or_default(),
                            ..ConsoleResult::value(PyValue::from_json(reply.value))
                        },
                        Err(remote) => ConsoleResult::error(remote),
                    };
                    break CallEnded {
                        backend: backend.clone(),
                        call: call.clone(),
                        result: Some(result),
                        lost: None,
                        seq: end.seq,
                    };
                }
                Some(Err(err)) => {
                    break CallEnded {
                        backend: backend.clone(),
                        call: call.clone(),
                        result: None,
                        lost: Some(err.to_string()),
                        seq: None,
                    };
                }
                None => {
                    break CallEnded {
                        backend: backend.clone(),
                        call: call.clone(),
                        result: None,
                        lost: Some("the stream ended before the call".into()),
                        seq: None,
                    };
                }
            }
        };
        warn_unsent(ended.emit(&app), &call_id);
    });
}

/// An event the webview was not given: the console finds the gap and follows the call
/// again (see `Console.svelte`); the log says it happened.
fn warn_unsent(sent: tauri::Result<()>, call: &str) {
    if let Err(e) = sent {
        tracing::warn!("Failed to send an event of call `{call}` to the window: {e}");
    }
}

/// Run statements as a live call named `call` (or a fresh `app-...` id); returns its id at
/// once. Output comes as `CallOutput` events, the end as `CallEnded`.
#[tauri::command]
#[specta::specta]
pub async fn backend_exec_live(
    app: AppHandle,
    state: State<'_, AppState>,
    id: String,
    code: String,
    call: Option<String>,
) -> AppResult<String> {
    let backend = self::id(&id)?;
    let call = match call {
        Some(call) if valid_call_id(&call) => call,
        Some(call) => {
            return Err(AppError::new(
                ErrorCode::Invalid,
                format!(
                    "`{call}` is not a call id: 1 to 128 characters of A-Z, a-z, 0-9, `.`, `_`, `:`, `-`"
                ),
            ));
        }
        None => new_call_id("app"),
    };
    let client = client(&state, &backend).await?;
    let stream = client.exec_stream(&code, None, None, Some(&call)).await?;
    forward(app, id, call.clone(), stream);
    Ok(call)
}

/// Follow a call again from after `after` (the last seq shown): `CallOutput` events, then
/// `CallEnded`.
#[tauri::command]
#[specta::specta]
pub async fn backend_attach(
    app: AppHandle,
    state: State<'_, AppState>,
    id: String,
    call: String,
    after: f64,
) -> AppResult<()> {
    let backend = self::id(&id)?;
    let client = client(&state, &backend).await?;
    let stream = client.attach(&call, after.max(0.0) as u64).await?;
    forward(app, id, call, stream);
    Ok(())
}

/// The backend's recent calls (every session), oldest first.
#[tauri::command]
#[specta::specta]
pub async fn backend_calls(state: State<'_, AppState>, id: String) -> AppResult<Vec<CallRow>> {
    let backend = self::id(&id)?;
    let calls = client(&state, &backend).await?.calls(None, true).await?;
    Ok(calls
        .into_iter()
        .map(|c| CallRow {
            state: c.state.as_str().into(),
            call: c.call,
            op: c.op,
            session: c.session,
            started: c.started,
            duration: c.duration,
            output_bytes: c.output_bytes as f64,
        })
        .collect())
}

/// Interrupt `call` if it is the one running; true if it was.
#[tauri::command]
#[specta::specta]
pub async fn backend_interrupt_call(
    state: State<'_, AppState>,
    id: String,
    call: String,
) -> AppResult<bool> {
    let backend = self::id(&id)?;
    Ok(client(&state, &backend)
        .await?
        .interrupt_call(&call)
        .await?)
}
