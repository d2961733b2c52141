use tauri::{AppHandle, State};

use beep_host::daemon::DaemonBackends;
use beep_host::runtime::InstallOptions;
use beep_host::runtime::platform::Platform;

use crate::dto::runtimes::{AvailableRuntime, RuntimeRow};
use crate::error::{AppError, AppResult, ErrorCode};
use crate::events::InstallReporter;
use crate::state::AppState;

/// Managed runtimes (newest first), then adopted ones.
#[tauri::command]
#[specta::specta]
pub async fn runtimes_list(state: State<'_, AppState>) -> AppResult<Vec<RuntimeRow>> {
    Ok(state
        .runtimes()?
        .list()?
        .into_iter()
        .map(Into::into)
        .collect())
}

/// The catalog's entries for this platform.
#[tauri::command]
#[specta::specta]
pub async fn runtimes_available(state: State<'_, AppState>) -> AppResult<Vec<AvailableRuntime>> {
    let runtimes = state.runtimes()?;
    let installed = runtimes.list()?;
    let catalog = runtimes.catalog().await?;
    let entries = catalog.for_platform(&Platform::current());
    Ok(entries
        .into_iter()
        .map(|e| AvailableRuntime::new(e, &installed))
        .collect())
}

/// Install a runtime; progress arrives as `InstallProgress` events tagged with `request`.
#[tauri::command]
#[specta::specta]
pub async fn runtime_install(
    app: AppHandle,
    state: State<'_, AppState>,
    request: String,
) -> AppResult<RuntimeRow> {
    let options = InstallOptions::default();
    if state
        .installs()
        .insert(request.clone(), options.cancel.clone())
        .is_some()
    {
        return Err(AppError::new(
            ErrorCode::Busy,
            format!("`{request}` is already being installed"),
        ));
    }
    let reporter = InstallReporter::new(app, request.clone());
    let result = async {
        Ok(state
            .runtimes()?
            .install(&request, &reporter, &options)
            .await?)
    }
    .await;
    state.installs().remove(&request);
    result.map(|installed: beep_host::runtime::install::Installed| installed.runtime.into())
}

/// Cancel an install in flight; it cleans up and fails with `cancelled`.
#[tauri::command]
#[specta::specta]
pub async fn runtime_cancel_install(state: State<'_, AppState>, request: String) -> AppResult<()> {
    let token = state.installs().get(&request).cloned();
    token.map(|t| t.cancel()).ok_or_else(|| {
        AppError::new(
            ErrorCode::NotFound,
            format!("No install of `{request}` is running"),
        )
    })
}

/// Delete a managed runtime; refused while environments are built on it or backends of the
/// daemon run on it.
#[tauri::command]
#[specta::specta]
pub async fn runtime_remove(state: State<'_, AppState>, key: String) -> AppResult<RuntimeRow> {
    let running = DaemonBackends::ask(&state.paths).await?;
    Ok(state
        .environments()?
        .remove_runtime(&key, false, &running)?
        .runtime
        .into())
}

/// Make a runtime the default.
#[tauri::command]
#[specta::specta]
pub async fn runtime_set_default(state: State<'_, AppState>, key: String) -> AppResult<RuntimeRow> {
    Ok(state.runtimes()?.set_default(&key)?.into())
}
