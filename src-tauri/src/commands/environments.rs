use tauri::{AppHandle, State};

use beep_host::daemon::DaemonBackends;
use beep_host::venv::{CreateOptions, DeleteOptions, EnvName, PackageRequest};

use crate::dto::environments::{CreateEnv, EnvDetails, EnvRow, EnvSize, PackageRow};
use crate::error::{AppError, AppResult, ErrorCode};
use crate::events::TaskReporter;
use crate::state::AppState;

/// Every environment, with how many backends run in it.
#[tauri::command]
#[specta::specta]
pub async fn envs_list(state: State<'_, AppState>) -> AppResult<Vec<EnvRow>> {
    let envs = state.environments()?.list()?;
    let running = DaemonBackends::ask(&state.paths).await?;
    Ok(envs
        .into_iter()
        .map(|e| {
            // One listing for all rows (not a daemon round trip per environment).
            let n = running.listing().running_in(&e.name).count();
            EnvRow::new(e, n)
        })
        .collect())
}

/// The disk size of every environment: a walk of each tree, so the list comes first and
/// the UI fills the sizes in when they arrive.
#[tauri::command]
#[specta::specta]
pub async fn envs_sizes(state: State<'_, AppState>) -> AppResult<Vec<EnvSize>> {
    let environments = state.environments()?;
    let sizes =
        tauri::async_runtime::spawn_blocking(move || environments.sizes().map_err(AppError::from))
            .await
            .map_err(|e| AppError::new(ErrorCode::Failed, e.to_string()))??;
    Ok(sizes.into_iter().map(Into::into).collect())
}

/// One environment with its packages, size and backends.
#[tauri::command]
#[specta::specta]
pub async fn env_details(state: State<'_, AppState>, name: String) -> AppResult<EnvDetails> {
    Ok(state
        .environments()?
        .status(
            &EnvName::parse(&name)?,
            &DaemonBackends::ask(&state.paths).await?,
        )?
        .into())
}

/// Create an environment; output arrives as `TaskOutput` events tagged with `task`.
#[tauri::command]
#[specta::specta]
pub async fn env_create(
    app: AppHandle,
    state: State<'_, AppState>,
    task: String,
    request: CreateEnv,
) -> AppResult<EnvRow> {
    let options = CreateOptions {
        runtime: request.runtime.filter(|r| !r.is_empty()),
        packages: PackageRequest::new(
            request.packages,
            request.requirements.into_iter().map(Into::into).collect(),
        ),
        ..CreateOptions::default()
    };
    let reporter = TaskReporter { app, task };
    Ok(EnvRow::new(
        state
            .environments()?
            .create(&EnvName::parse(&request.name)?, &options, &reporter)
            .await?,
        0,
    ))
}

/// Delete an environment; `force` stops its backends first.
#[tauri::command]
#[specta::specta]
pub async fn env_delete(
    app: AppHandle,
    state: State<'_, AppState>,
    name: String,
    force: bool,
) -> AppResult<()> {
    let reporter = TaskReporter {
        app,
        task: format!("delete:{name}"),
    };
    Ok(state
        .environments()?
        .delete(
            &EnvName::parse(&name)?,
            DeleteOptions { force },
            &DaemonBackends::ask(&state.paths).await?,
            &reporter,
        )
        .await?)
}

/// Install packages (requirement strings) into an environment.
#[tauri::command]
#[specta::specta]
pub async fn env_install(
    app: AppHandle,
    state: State<'_, AppState>,
    task: String,
    name: String,
    requirements: Vec<String>,
) -> AppResult<()> {
    let reporter = TaskReporter { app, task };
    Ok(state
        .environments()?
        .install(
            &EnvName::parse(&name)?,
            &PackageRequest::new(requirements, Vec::new()),
            &reporter,
        )
        .await?)
}

/// Remove packages from an environment.
#[tauri::command]
#[specta::specta]
pub async fn env_uninstall(
    app: AppHandle,
    state: State<'_, AppState>,
    task: String,
    name: String,
    packages: Vec<String>,
) -> AppResult<()> {
    let reporter = TaskReporter { app, task };
    Ok(state
        .environments()?
        .uninstall(&EnvName::parse(&name)?, &packages, &reporter)
        .await?)
}

/// Create or repair the `admin` environment.
#[tauri::command]
#[specta::specta]
pub async fn env_repair_admin(
    app: AppHandle,
    state: State<'_, AppState>,
    task: String,
) -> AppResult<EnvRow> {
    let reporter = TaskReporter { app, task };
    Ok(EnvRow::new(
        state.environments()?.admin(&reporter).await?.environment,
        0,
    ))
}

/// Why `name` is not a valid environment name (the core's message), or nothing when it is.
#[tauri::command]
#[specta::specta]
pub async fn env_check_name(name: String) -> Option<String> {
    EnvName::parse(&name).err().map(|e| e.to_string())
}

/// The installed packages of an environment that require `dependency` (what removing it may
/// break), from their metadata.
#[tauri::command]
#[specta::specta]
pub async fn env_dependents(
    state: State<'_, AppState>,
    name: String,
    dependency: String,
) -> AppResult<Vec<PackageRow>> {
    let dir = state.environments()?.dir(&EnvName::parse(&name)?);
    let found = beep_host::venv::package::dependents(&dir, &dependency).map_err(|e| {
        AppError::new(
            ErrorCode::Failed,
            format!("Failed to read the packages of `{}`: {e}", dir.display()),
        )
    })?;
    Ok(found.into_iter().map(Into::into).collect())
}
