//! The app's remembered choices, in `<config>/app.json`.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use beep_host::Paths;

use crate::error::{AppError, AppResult, ErrorCode};

#[derive(Debug, Default, Clone, Serialize, Deserialize)]
struct Prefs {
    /// What closing the window does with the backends it started: stop them (`true`) or
    /// keep them running (`false`); unset: ask.
    #[serde(default)]
    stop_on_close: Option<bool>,
    /// The project folders opened before, the latest first.
    #[serde(default)]
    projects: Vec<PathBuf>,
}

fn file(paths: &Paths) -> PathBuf {
    paths.config.join("app.json")
}

fn load(paths: &Paths) -> Prefs {
    std::fs::read(file(paths))
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
        .unwrap_or_default()
}

/// The remembered answer to "stop the backends this window started?", if any.
pub fn on_close(paths: &Paths) -> Option<bool> {
    load(paths).stop_on_close
}

/// Remember the answer.
pub fn save_on_close(paths: &Paths, stop: bool) -> AppResult<()> {
    let mut prefs = load(paths);
    prefs.stop_on_close = Some(stop);
    save(paths, &prefs)
}

/// The project folders opened before, the latest first.
pub fn projects(paths: &Paths) -> Vec<PathBuf> {
    load(paths).projects
}

/// Remember a project folder (first in the list; once).
pub fn remember_project(paths: &Paths, dir: &Path) -> AppResult<()> {
    let mut prefs = load(paths);
    prefs.projects.retain(|p| p != dir);
    prefs.projects.insert(0, dir.to_path_buf());
    save(paths, &prefs)
}

/// Forget a project folder (its files are left alone).
pub fn forget_project(paths: &Paths, dir: &Path) -> AppResult<()> {
    let mut prefs = load(paths);
    prefs.projects.retain(|p| p != dir);
    save(paths, &prefs)
}

fn save(paths: &Paths, prefs: &Prefs) -> AppResult<()> {
    let path = file(paths);
    let write = || -> std::io::Result<()> {
        std::fs::create_dir_all(&paths.config)?;
        std::fs::write(&path, serde_json::to_vec_pretty(prefs)?)
    };
    write().map_err(|e| {
        AppError::new(
            ErrorCode::Failed,
            format!("Failed to write `{}`: {e}", path.display()),
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_close_answer_is_remembered_per_home() {
        let home = std::env::temp_dir().join(format!("beep-prefs-{}", std::process::id()));
        let paths = Paths::under(home.clone());
        assert_eq!(on_close(&paths), None, "a new home asks");
        save_on_close(&paths, false).unwrap();
        assert_eq!(on_close(&paths), Some(false));
        save_on_close(&paths, true).unwrap();
        assert_eq!(on_close(&paths), Some(true));
        // A damaged file asks again instead of failing.
        std::fs::write(paths.config.join("app.json"), b"{not json").unwrap();
        assert_eq!(on_close(&paths), None);
        std::fs::remove_dir_all(&home).unwrap();
    }

    #[test]
    fn projects_are_remembered_latest_first_beside_the_close_answer() {
        let home = tempfile::tempdir().unwrap();
        let paths = Paths::under(home.path().to_path_buf());
        assert!(projects(&paths).is_empty());
        save_on_close(&paths, true).unwrap();
        remember_project(&paths, Path::new("/p/a")).unwrap();
        remember_project(&paths, Path::new("/p/b")).unwrap();
        remember_project(&paths, Path::new("/p/a")).unwrap();
        assert_eq!(
            projects(&paths),
            [PathBuf::from("/p/a"), PathBuf::from("/p/b")]
        );
        forget_project(&paths, Path::new("/p/a")).unwrap();
        assert_eq!(projects(&paths), [PathBuf::from("/p/b")]);
        // One file for both: neither change loses the other.
        assert_eq!(on_close(&paths), Some(true));
        save_on_close(&paths, false).unwrap();
        assert_eq!(projects(&paths), [PathBuf::from("/p/b")]);
        // A file written before projects were remembered still reads.
        std::fs::write(paths.config.join("app.json"), br#"{"stop_on_close": true}"#).unwrap();
        assert!(projects(&paths).is_empty());
        assert_eq!(on_close(&paths), Some(true));
    }
}
