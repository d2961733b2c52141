//! Deleting environment directories: rename to a trash name first, then remove.
//!
//! A trash directory (`<envs>/.trash-<name>-<random>`) is invisible to listings, so an
//! interrupted delete never leaves a half environment in `venv list`; leftovers are
//! removed by the next operation that walks the environments directory.
//! Removal never follows a symbolic link: a link inside an environment (or an
//! environment that is itself a link) is unlinked, its target is never touched.

use std::io;
use std::path::{Path, PathBuf};

use super::EnvName;
use crate::lock::LockFile;

/// Names starting with this are trash, never environments.
pub const PREFIX: &str = ".trash-";

/// Move `dir` (an environment directory, or a link) to a trash name in `envs`, then remove it.
pub fn remove(envs: &Path, dir: &Path, name: &EnvName) -> io::Result<()> {
    #[cfg(windows)]
    super::in_use::wait_until_free(dir, super::in_use::WAIT)?;
    let trash = envs.join(format!("{PREFIX}{name}-{}", random_suffix()));
    fs_err::rename(dir, &trash)?;
    remove_tree(&trash)
}

/// Remove a file, a link or a directory tree, without following links.
pub fn remove_tree(path: &Path) -> io::Result<()> {
    let meta = fs_err::symlink_metadata(path)?;
    if meta.is_dir() {
        // `std::fs::remove_dir_all` unlinks symbolic links instead of following them.
        fs_err::remove_dir_all(path)
    } else {
        fs_err::remove_file(path)
    }
}

/// The environment name a trash entry came from (`.trash-<name>-<random>`).
pub fn env_name_of(file_name: &str) -> Option<&str> {
    let rest = file_name.strip_prefix(PREFIX)?;
    let (name, _random) = rest.rsplit_once('-')?;
    Some(name)
}

/// Remove leftover trash entries, skipping those whose environment is locked now
/// (a delete in progress removes its own trash).
pub fn sweep(entries: &[PathBuf], lock_path: impl Fn(&str) -> PathBuf) {
    for path in entries {
        let Some(file_name) = path.file_name().and_then(|n| n.to_str()) else {
            continue;
        };
        let Some(name) = env_name_of(file_name) else {
            continue;
        };
        let Ok(_lock) = LockFile::try_acquire(&lock_path(name), name) else {
            continue;
        };
        match remove_tree(path) {
            Ok(()) => tracing::debug!(path = %path.display(), "removed leftover trash"),
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => tracing::warn!("Failed to remove leftover trash: {e}"),
        }
    }
}

/// Removes a half-created environment unless disarmed (also when its future is dropped).
pub struct RemoveOnDrop {
    envs: PathBuf,
    dir: Option<PathBuf>,
    name: EnvName,
}

impl RemoveOnDrop {
    pub fn new(envs: PathBuf, dir: PathBuf, name: EnvName) -> Self {
        Self {
            envs,
            dir: Some(dir),
            name,
        }
    }

    /// The environment is finished: keep it.
    pub fn disarm(&mut self) {
        self.dir = None;
    }
}

impl Drop for RemoveOnDrop {
    fn drop(&mut self) {
        if let Some(dir) = self.dir.take()
            && fs_err::symlink_metadata(&dir).is_ok()
            && let Err(e) = remove(&self.envs, &dir, &self.name)
        {
            tracing::warn!("Failed to remove half-created environment: {e}");
        }
    }
}

fn random_suffix() -> String {
    let mut bytes = [0u8; 6];
    if getrandom::fill(&mut bytes).is_err() {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or(0);
        bytes[..4].copy_from_slice(&nanos.to_le_bytes());
        bytes[4..].copy_from_slice(&(std::process::id() as u16).to_le_bytes());
    }
    hex::encode(bytes)
}

#[cfg(test)]
mod tests {
    use super::env_name_of;

    #[test]
    fn trash_names() {
        assert_eq!(env_name_of(".trash-my-env-0a1b2c"), Some("my-env"));
        assert_eq!(env_name_of(".trash-a-ff"), Some("a"));
        assert_eq!(env_name_of("a"), None);
        assert_eq!(env_name_of(".trash-"), None);
    }
}
