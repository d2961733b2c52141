use tauri::State;

use beep_host::Config;
use beep_host::config::{CATALOG_ENV, INSTALLER_ENV, MIRROR_ENV};

use crate::dto::settings::{CheckRow, HostApi, InForce, Settings, SettingsUpdate};
use crate::error::{AppError, AppResult, ErrorCode};
use crate::state::AppState;

/// The settings file and where things live.
#[tauri::command]
#[specta::specta]
pub async fn settings_get(state: State<'_, AppState>) -> AppResult<Settings> {
    let file = Config::load_file(&state.paths)?;
    let in_force: Vec<InForce> = [
        ("catalog", CATALOG_ENV),
        ("mirror", MIRROR_ENV),
        ("installer", INSTALLER_ENV),
    ]
    .into_iter()
    .filter_map(|(setting, variable)| {
        let value = std::env::var(variable).ok().filter(|x| !x.is_empty())?;
        Some(InForce {
            setting: setting.into(),
            variable: variable.into(),
            value,
        })
    })
    .collect();
    let overridden = in_force.iter().map(|f| f.variable.clone()).collect();
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
        in_force,
    })
}

/// Why `value` cannot be a catalog (an http(s) URL or an existing JSON file), if it cannot.
fn catalog_problem(value: &str) -> Option<String> {
    if let Some(rest) = value
        .strip_prefix("https://")
        .or_else(|| value.strip_prefix("http://"))
    {
        let host = rest.split(['/', '?', '#']).next().unwrap_or_default();
        return (host.is_empty() || value.contains(char::is_whitespace))
            .then(|| format!("Invalid catalog URL `{value}`: it needs a host, and no spaces"));
    }
    let path = value.strip_prefix("file://").unwrap_or(value);
    (!std::path::Path::new(path).is_file()).then(|| {
        format!("Invalid catalog `{value}`: it is neither an http(s) URL nor an existing file")
    })
}

/// Why `value` cannot be a mirror prefix (an http(s) URL), if it cannot.
fn mirror_problem(value: &str) -> Option<String> {
    let rest = value
        .strip_prefix("https://")
        .or_else(|| value.strip_prefix("http://"));
    match rest {
        Some(r) if !r.is_empty() && !value.contains(char::is_whitespace) => None,
        _ => Some(format!(
            "Invalid mirror `{value}`: it must be an http(s) URL such as https://example.org/pbs"
        )),
    }
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
    let problem = file
        .catalog
        .as_deref()
        .and_then(catalog_problem)
        .or_else(|| file.mirror.as_deref().and_then(mirror_problem));
    if let Some(message) = problem {
        return Err(AppError::new(ErrorCode::Invalid, message));
    }
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
    let host_record = state.paths.state.join(beep_host::host::RECORD_FILE);
    let token = std::fs::read_to_string(&host_record)
        .ok()
        .and_then(|text| serde_json::from_str::<serde_json::Value>(&text).ok())
        .and_then(|v| v.get("token").and_then(|t| t.as_str()).map(str::to_string));
    Ok(HostApi {
        running: record
            .as_ref()
            .is_some_and(|r| r.http.is_some() || r.grpc.is_some()),
        http: record
            .as_ref()
            .and_then(|r| r.http.as_deref())
            .map(|a| a.trim_start_matches("http://").to_string()),
        grpc: record.as_ref().and_then(|r| r.grpc.clone()),
        record: Some(host_record.display().to_string()),
        token,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn catalog_and_mirror_are_checked() {
        assert!(catalog_problem("https://example.org/catalog.json").is_none());
        assert!(catalog_problem("not a url").is_some());
        assert!(catalog_problem("https:///x").is_some());
        assert!(catalog_problem("/no/such/catalog.json").is_some());
        let file = tempfile::NamedTempFile::new().unwrap();
        assert!(catalog_problem(&file.path().display().to_string()).is_none());
        assert!(mirror_problem("http://127.0.0.1:8080").is_none());
        assert!(mirror_problem("ftp://x").is_some());
    }
}
