//! Offline bundles of a project (`beep-host bundle` / `up --bundle`) through the core's
//! `bundle` module: export one from a project folder, open one into a folder.

use std::path::{Path, PathBuf};

use tauri::{AppHandle, State};

use beep_host::bundle::{self, BundleOptions, BundlePlatform};

use crate::dto::projects::{BundleWritten, UpSummary};
use crate::error::{AppError, AppResult, ErrorCode};
use crate::events::TaskReporter;
use crate::prefs;
use crate::state::AppState;

/// The platforms a bundle can carry, and this machine's (preselected), as tags.
#[tauri::command]
#[specta::specta]
pub async fn bundle_platforms() -> AppResult<(Vec<String>, Option<String>)> {
    let all = BundlePlatform::ALL
        .iter()
        .map(|p| p.tag().to_string())
        .collect();
    Ok((all, BundlePlatform::current().map(|p| p.tag().to_string())))
}

/// Write the bundle of the project in `dir` to `output` (an absolute `.zip` path whose
/// folder exists) for `platforms` (tags; empty is this platform); progress as `TaskOutput`.
#[tauri::command]
#[specta::specta]
pub async fn project_bundle(
    app: AppHandle,
    state: State<'_, AppState>,
    task: String,
    dir: String,
    output: String,
    platforms: Vec<String>,
) -> AppResult<BundleWritten> {
    let output = zip_path(&output, true)?;
    let platforms = platforms
        .iter()
        .map(|p| BundlePlatform::parse(p))
        .collect::<Result<Vec<_>, _>>()
        .map_err(beep_host::Error::from)?;
    let catalog = state.runtimes()?.catalog().await?;
    let options = BundleOptions {
        dir: PathBuf::from(dir.trim()),
        output,
        platforms,
    };
    let reporter = TaskReporter { app, task };
    let written = bundle::write::bundle(&state.paths, &catalog, &options, &reporter)
        .await
        .map_err(beep_host::Error::from)?;
    Ok(BundleWritten {
        path: written.path.display().to_string(),
        size: written.size,
        platforms: written
            .manifest
            .platforms
            .iter()
            .map(|p| p.platform.tag().to_string())
            .collect(),
    })
}

/// `up --bundle`: verify the bundle at `bundle` (nothing is written for one that does not),
/// bring the project up in `dir` (empty, or holding the bundle's own project) from it
/// only, and remember the folder.
#[tauri::command]
#[specta::specta]
pub async fn bundle_open(
    app: AppHandle,
    state: State<'_, AppState>,
    task: String,
    bundle: String,
    dir: String,
) -> AppResult<UpSummary> {
    let file = zip_path(&bundle, false)?;
    let dir = folder(&dir)?;
    let reporter = TaskReporter { app, task };
    let config = state.config()?;
    let report = bundle::offline::up_from_file(&state.paths, &config, &file, &dir, &reporter)
        .await
        .map_err(beep_host::Error::from)?;
    prefs::remember_project(&state.paths, &report.dir)?;
    Ok(report.into())
}

fn invalid(message: String) -> AppError {
    AppError::new(ErrorCode::Invalid, message)
}

/// An absolute path ending in `.zip`; for an output its folder must exist, for an input
/// the file.
fn zip_path(given: &str, output: bool) -> AppResult<PathBuf> {
    let path = PathBuf::from(given.trim());
    if path.as_os_str().is_empty() {
        return Err(invalid("Give the path of the bundle (a .zip file)".into()));
    }
    if !path.is_absolute() {
        return Err(invalid(format!(
            "The bundle must be an absolute path, not `{}`",
            path.display()
        )));
    }
    let zip = path
        .extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("zip"));
    if !zip {
        return Err(invalid(format!(
            "The bundle `{}` must end in .zip",
            path.display()
        )));
    }
    if output {
        let parent = path.parent().unwrap_or(Path::new("/"));
        if !parent.is_dir() {
            return Err(AppError::new(
                ErrorCode::NotFound,
                format!("Folder `{}` does not exist", parent.display()),
            ));
        }
    } else if !path.is_file() {
        return Err(AppError::new(
            ErrorCode::NotFound,
            format!("Bundle `{}` does not exist", path.display()),
        ));
    }
    Ok(path)
}

/// An absolute folder to open a bundle into: missing (made), empty, or a project.
fn folder(given: &str) -> AppResult<PathBuf> {
    let path = PathBuf::from(given.trim());
    if path.as_os_str().is_empty() {
        return Err(invalid("Give the folder to open the bundle into".into()));
    }
    if !path.is_absolute() {
        return Err(invalid(format!(
            "The project folder must be an absolute path, not `{}`",
            path.display()
        )));
    }
    if path.exists() && !path.is_dir() {
        return Err(invalid(format!("`{}` is not a folder", path.display())));
    }
    Ok(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_are_checked_before_the_core_runs() {
        let dir = tempfile::tempdir().unwrap();
        let at = |name: &str| dir.path().join(name).display().to_string();
        assert_eq!(
            zip_path("b.zip", true).unwrap_err().code,
            ErrorCode::Invalid
        );
        let e = zip_path(&at("b.tar"), true).unwrap_err();
        assert!(e.message.ends_with("must end in .zip"), "{}", e.message);
        let e = zip_path(&at("no/b.zip"), true).unwrap_err();
        assert_eq!(e.code, ErrorCode::NotFound, "{}", e.message);
        assert_eq!(
            zip_path(&at("b.zip"), true).unwrap(),
            dir.path().join("b.zip")
        );
        // An input must exist.
        assert_eq!(
            zip_path(&at("b.zip"), false).unwrap_err().code,
            ErrorCode::NotFound
        );
        std::fs::write(dir.path().join("b.zip"), b"x").unwrap();
        assert!(zip_path(&format!(" {} ", at("b.zip")), false).is_ok());
        assert_eq!(folder("rel").unwrap_err().code, ErrorCode::Invalid);
        assert_eq!(folder(&at("b.zip")).unwrap_err().code, ErrorCode::Invalid);
        assert!(folder(&at("fresh")).is_ok());
    }
}
