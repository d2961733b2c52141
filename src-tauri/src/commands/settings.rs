use tauri::State;
use tokio_util::sync::CancellationToken;

use beep_host::Config;
use beep_host::config::{CATALOG_ENV, INSTALLER_ENV, MIRROR_ENV};

use crate::dto::settings::{CheckRow, HostApi, Settings, SettingsUpdate};
use crate::error::AppResult;
use crate::state::{AppState, HostApiRunning};

/// The settings file and where things live.
#[tauri::command]
#[specta::specta]
pub async fn settings_get(state: State<'_, AppState>) -> AppResult<Settings> {
    let file = Config::load_file(&state.paths)?;
    let overridden = [CATALOG_ENV, MIRROR_ENV, INSTALLER_ENV]
        .into_iter()
        .filter(|v| std::env::var_os(v).is_some_and(|x| !x.is_empty()))
        .map(str::to_string)
        .collect();
    Ok(Settings {
        data_dir: state.paths.data.display().to_string(),
        config_file: state.paths.config_file().display().to_string(),
        catalog: file.catalog,
        mirror: file.mirror,
        installer: serde_json::to_value(file.installer)
            .ok()
            .and_then(|v| v.as_str().map(str::to_string))
            .unwrap_or_default(),
        overridden,
    })
}

/// Save catalog, mirror and installer to the settings file.
#[tauri::command]
#[specta::specta]
pub async fn settings_save(
    state: State<'_, AppState>,
    update: SettingsUpdate,
) -> AppResult<Settings> {
    let mut file = Config::load_file(&state.paths)?;
    let blank = |v: Option<String>| v.map(|s| s.trim().to_string()).filter(|s| !s.is_empty());
    file.catalog = blank(update.catalog);
    file.mirror = blank(update.mirror);
    file.installer = update.installer.parse()?;
    file.save(&state.paths)?;
    settings_get(state).await
}

/// The configuration check: ok / warn / fail with reasons.
#[tauri::command]
#[specta::specta]
pub async fn config_check(state: State<'_, AppState>) -> AppResult<Vec<CheckRow>> {
    Ok(beep_host::check::run(&state.paths)
        .await
        .into_iter()
        .map(Into::into)
        .collect())
}

fn host_api_view(running: Option<&HostApiRunning>) -> HostApi {
    HostApi {
        running: running.is_some(),
        http: running.and_then(|r| r.served.http.map(|a| a.to_string())),
        grpc: running.and_then(|r| r.served.grpc.map(|a| a.to_string())),
        record: running.map(|r| r.served.record.display().to_string()),
    }
}

/// Whether the app serves the host API, and where.
#[tauri::command]
#[specta::specta]
pub async fn host_api_status(state: State<'_, AppState>) -> AppResult<HostApi> {
    let running = state.host_api.lock().unwrap_or_else(|e| e.into_inner());
    Ok(host_api_view(running.as_ref()))
}

/// Serve the host API on loopback (ports chosen by the system), or stop serving it.
#[tauri::command]
#[specta::specta]
pub async fn host_api_set(state: State<'_, AppState>, on: bool) -> AppResult<HostApi> {
    let current = state
        .host_api
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .take();
    if let Some(running) = current {
        if on {
            let view = host_api_view(Some(&running));
            *state.host_api.lock().unwrap_or_else(|e| e.into_inner()) = Some(running);
            return Ok(view);
        }
        running.stop.cancel();
        let _ = running.task.await;
        state.supervisor.set_host_api(None, None);
        return Ok(host_api_view(None));
    }
    if !on {
        return Ok(host_api_view(None));
    }
    let host = beep_host::host::Host::new(
        state.paths.clone(),
        state.config()?,
        state.supervisor.clone(),
    )?;
    let loopback = std::net::SocketAddr::from(([127, 0, 0, 1], 0));
    let stop = CancellationToken::new();
    let (served, task) = beep_host::host::serve(
        std::sync::Arc::new(host),
        Some(loopback),
        Some(loopback),
        stop.clone(),
    )
    .await?;
    let running = HostApiRunning { served, stop, task };
    let view = host_api_view(Some(&running));
    *state.host_api.lock().unwrap_or_else(|e| e.into_inner()) = Some(running);
    Ok(view)
}
