use tauri::State;

use beep_host::Config;

use crate::dto::settings::{CheckRow, HostApi, Settings, SettingsUpdate};
use crate::error::AppResult;
use crate::state::AppState;

/// The settings file and where things live.
#[tauri::command]
#[specta::specta]
pub async fn settings_get(state: State<'_, AppState>) -> AppResult<Settings> {
    let file = Config::load_file(&state.paths)?;
    let overridden = Config::overridden();
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

/// Where the daemon serves the host API (it always does while it runs).
#[tauri::command]
#[specta::specta]
pub async fn host_api_status(state: State<'_, AppState>) -> AppResult<HostApi> {
    state.daemon().await?;
    let record = beep_host::daemon::DaemonRecord::read(&state.paths).filter(|r| r.alive());
    Ok(HostApi {
        running: record
            .as_ref()
            .is_some_and(|r| r.http.is_some() || r.grpc.is_some()),
        http: record
            .as_ref()
            .and_then(|r| r.http.as_deref())
            .map(|a| a.trim_start_matches("http://").to_string()),
        grpc: record.as_ref().and_then(|r| r.grpc.clone()),
        record: Some(
            state
                .paths
                .state
                .join(beep_host::host::RECORD_FILE)
                .display()
                .to_string(),
        ),
    })
}
