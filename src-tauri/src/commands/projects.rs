//! Project folders (`beep.toml`): open and remember one, its declaration beside its live
//! state, `up` and `down` through the core's `Projects`.

use std::path::{Path, PathBuf};

use tauri::{AppHandle, State};

use beep_host::project::{MANIFEST_FILE, Manifest, Projects};

use crate::dto::projects::{BackendChange, ProjectView, UpSummary};
use crate::error::{AppError, AppResult, ErrorCode};
use crate::events::TaskReporter;
use crate::prefs;
use crate::state::AppState;

/// The project folders opened before, the latest first.
#[tauri::command]
#[specta::specta]
pub async fn projects_list(state: State<'_, AppState>) -> AppResult<Vec<String>> {
    Ok(remembered(&state.paths))
}

/// Check that `dir` is a project folder (absolute, holding a `beep.toml`) and remember it;
/// its canonical path. The file is read by `project_view`, so a bad one is remembered too
/// and shows its error there.
#[tauri::command]
#[specta::specta]
pub async fn project_open(state: State<'_, AppState>, dir: String) -> AppResult<String> {
    open(&state.paths, &dir)
}

/// Forget a remembered project folder (its files and backends are left alone).
#[tauri::command]
#[specta::specta]
pub async fn project_forget(state: State<'_, AppState>, dir: String) -> AppResult<()> {
    prefs::forget_project(&state.paths, Path::new(&dir))
}

/// What `beep.toml` declares beside what is installed and running (starts nothing).
#[tauri::command]
#[specta::specta]
pub async fn project_view(state: State<'_, AppState>, dir: String) -> AppResult<ProjectView> {
    view(&state, Path::new(&dir)).await
}

/// `up`: runtime, lock, environment, backends; output as `TaskOutput` tagged with `task`.
#[tauri::command]
#[specta::specta]
pub async fn project_up(
    app: AppHandle,
    state: State<'_, AppState>,
    task: String,
    dir: String,
) -> AppResult<UpSummary> {
    let reporter = TaskReporter { app, task };
    let report = projects(&state)?
        .up(Path::new(&dir), &reporter)
        .await
        .map_err(beep_host::Error::from)?;
    Ok(report.into())
}

/// `down`: stop the project's backends.
#[tauri::command]
#[specta::specta]
pub async fn project_down(
    app: AppHandle,
    state: State<'_, AppState>,
    task: String,
    dir: String,
) -> AppResult<Vec<BackendChange>> {
    let reporter = TaskReporter { app, task };
    let changes = projects(&state)?
        .down(Path::new(&dir), &reporter)
        .await
        .map_err(beep_host::Error::from)?;
    Ok(changes.into_iter().map(Into::into).collect())
}

fn projects(state: &AppState) -> AppResult<Projects> {
    Ok(Projects::new(state.paths.clone(), state.config()?))
}

fn remembered(paths: &beep_host::Paths) -> Vec<String> {
    prefs::projects(paths)
        .into_iter()
        .map(|p| p.display().to_string())
        .collect()
}

fn open(paths: &beep_host::Paths, dir: &str) -> AppResult<String> {
    let given = PathBuf::from(dir.trim());
    let invalid = |message: String| AppError::new(ErrorCode::Invalid, message);
    if given.as_os_str().is_empty() {
        return Err(invalid("Give the path of a project folder".into()));
    }
    if !given.is_absolute() {
        return Err(invalid(format!(
            "The project folder must be an absolute path, not `{}`",
            given.display()
        )));
    }
    if !given.is_dir() {
        return Err(AppError::new(
            ErrorCode::NotFound,
            format!("Folder `{}` does not exist", given.display()),
        ));
    }
    if !given.join(MANIFEST_FILE).is_file() {
        return Err(AppError::new(
            ErrorCode::NotFound,
            format!(
                "Folder `{}` holds no `{MANIFEST_FILE}`: it is not a project",
                given.display()
            ),
        ));
    }
    let dir = fs_canonical(&given)?;
    prefs::remember_project(paths, &dir)?;
    Ok(dir.display().to_string())
}

fn fs_canonical(dir: &Path) -> AppResult<PathBuf> {
    std::fs::canonicalize(dir).map_err(|e| {
        AppError::new(
            ErrorCode::Failed,
            format!("Failed to resolve `{}`: {e}", dir.display()),
        )
    })
}

async fn view(state: &AppState, dir: &Path) -> AppResult<ProjectView> {
    let manifest = Manifest::load(dir)
        .map_err(|e| beep_host::Error::from(beep_host::project::Error::from(e)))?;
    let status = projects(state)?
        .status(dir)
        .await
        .map_err(beep_host::Error::from)?;
    Ok(ProjectView {
        dir: manifest.dir.display().to_string(),
        declaration: (&manifest).into(),
        status: status.into(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn project(text: &str) -> tempfile::TempDir {
        // The folder's name is the environment's: one that is a valid name.
        let dir = tempfile::Builder::new().prefix("proj-").tempdir().unwrap();
        std::fs::write(dir.path().join(MANIFEST_FILE), text).unwrap();
        dir
    }

    #[test]
    fn open_checks_the_folder_and_remembers_it() {
        let home = tempfile::tempdir().unwrap();
        let paths = beep_host::Paths::under(home.path().to_path_buf());
        let e = open(&paths, "relative/dir").unwrap_err();
        assert_eq!(e.code, ErrorCode::Invalid, "{}", e.message);
        let empty = tempfile::tempdir().unwrap();
        let e = open(&paths, empty.path().to_str().unwrap()).unwrap_err();
        assert_eq!(e.code, ErrorCode::NotFound);
        assert!(e.message.contains("holds no `beep.toml`"), "{}", e.message);
        let e = open(&paths, "/nonexistent/beep-project").unwrap_err();
        assert_eq!(e.code, ErrorCode::NotFound);
        assert!(
            remembered(&paths).is_empty(),
            "no failed open is remembered"
        );

        let a = project("[python]\nversion = \"3.12\"\n");
        let b = project("[python]\nversion = \"3.12\"\n");
        let canonical = |d: &tempfile::TempDir| {
            std::fs::canonicalize(d.path())
                .unwrap()
                .display()
                .to_string()
        };
        // Spaces around a pasted path are not part of it.
        let opened = open(&paths, &format!(" {} ", a.path().display())).unwrap();
        assert_eq!(opened, canonical(&a));
        open(&paths, b.path().to_str().unwrap()).unwrap();
        assert_eq!(remembered(&paths), [canonical(&b), canonical(&a)]);
        prefs::forget_project(&paths, Path::new(&canonical(&b))).unwrap();
        assert_eq!(remembered(&paths), [canonical(&a)]);
        // The files are the app's: `<config>/app.json`.
        let json = std::fs::read_to_string(paths.config.join("app.json")).unwrap();
        assert!(json.contains(&canonical(&a)), "{json}");
    }

    #[tokio::test]
    async fn a_bad_manifest_is_an_invalid_error_with_its_line() {
        let home = tempfile::tempdir().unwrap();
        let state = AppState::new(beep_host::Paths::under(home.path().to_path_buf()));
        let dir = project(
            "[python]\nversion = \"3.12\"\n\n[[backend]]\nname = \"model\"\nhelth = { every = \"5s\" }\n",
        );
        // Opening only checks the folder: a bad file is remembered, to be fixed.
        open(&state.paths, dir.path().to_str().unwrap()).unwrap();
        let e = view(&state, dir.path()).await.unwrap_err();
        assert_eq!(e.code, ErrorCode::Invalid);
        assert!(
            e.message.starts_with("beep.toml:6: unknown key `helth`"),
            "{}",
            e.message
        );
        let json = serde_json::to_value(&e).unwrap();
        assert_eq!(json["code"], "invalid");
    }

    #[tokio::test]
    async fn the_view_sets_the_declaration_beside_the_state() {
        let home = tempfile::tempdir().unwrap();
        let state = AppState::new(beep_host::Paths::under(home.path().to_path_buf()));
        let dir = project(
            r#"[python]
version = "3.12"

[environment]
name = "vision"
requirements = ["numpy>=2"]

[[backend]]
name = "model"
transport = "pipe"
restart = "on-failure"
health = { every = "5s", timeout = "2s", failures = 3 }
limits = { memory = "2 GiB" }
env = { MODEL_DIR = "./models" }
"#,
        );
        let v = view(&state, dir.path()).await.unwrap();
        let d = &v.declaration;
        assert_eq!(
            (d.python.as_str(), d.environment.as_str()),
            ("3.12", "vision")
        );
        assert_eq!(d.requirements, ["numpy>=2"]);
        let b = &d.backends[0];
        assert_eq!(b.name, "model");
        assert_eq!(
            serde_json::to_value(b.transport).unwrap(),
            serde_json::json!("pipe")
        );
        assert_eq!(b.restart, "on-failure");
        let h = b.health.unwrap();
        assert_eq!((h.every_ms, h.timeout_ms, h.failures), (5000, 2000, 3));
        assert_eq!(b.memory_limit, Some(2 << 30));
        assert_eq!(b.env["MODEL_DIR"], "./models");
        // Nothing is locked, installed or running in a fresh home.
        let s = &v.status;
        assert!(!s.lock_present && !s.environment_present && !s.up_to_date);
        assert_eq!(s.backends.len(), 1);
        assert!(s.backends[0].state.is_none() && !s.backends[0].current);
    }
}
