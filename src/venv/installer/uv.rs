//! uv as the installer: found (`BEEP_HOST_UV`, the data dir, PATH), provisioned into the
//! data dir with the default runtime's pip, or unpacked from a wheel (an offline bundle's).

use std::path::{Path, PathBuf};

use super::{Error, UV_ENV, command, run};
use crate::lock::LockFile;
use crate::{Paths, Progress, Reporter};

/// The uv binary provisioned into the data dir.
pub fn provisioned_uv(paths: &Paths) -> PathBuf {
    let exe = if cfg!(windows) { "uv.exe" } else { "uv" };
    paths.tools().join("uv").join("bin").join(exe)
}

/// uv from `BEEP_HOST_UV`, the data dir or PATH, without provisioning.
pub fn find_uv(paths: &Paths) -> Result<Option<PathBuf>, Error> {
    if let Some(path) = std::env::var_os(UV_ENV).filter(|v| !v.is_empty()) {
        let path = PathBuf::from(path);
        return if crate::venv::environment::is_executable(&path) {
            Ok(Some(path))
        } else {
            Err(Error::UvEnv { path })
        };
    }
    let provisioned = provisioned_uv(paths);
    if crate::venv::environment::is_executable(&provisioned) {
        return Ok(Some(provisioned));
    }
    let exe = if cfg!(windows) { "uv.exe" } else { "uv" };
    let on_path = std::env::var_os("PATH").and_then(|path| {
        std::env::split_paths(&path)
            // pyenv shims only work where their version is selected.
            .filter(|dir| !dir.ends_with("shims"))
            .map(|dir| dir.join(exe))
            .find(|p| crate::venv::environment::is_executable(p))
    });
    Ok(on_path)
}

/// `pip install --target <tools>/.uv-<random> uv`, check the binary, rename into place.
pub(super) async fn provision_uv(
    paths: &Paths,
    provision_python: impl FnOnce() -> Result<PathBuf, crate::runtime::Error>,
    reporter: &dyn Reporter,
) -> Result<PathBuf, Error> {
    let tools = paths.tools();
    let target = tools.join("uv");
    let wrap = |source: Error| Error::Provision {
        path: target.clone(),
        source: Box::new(source),
    };
    let _lock = lock_provisioning(paths).await?;
    let uv = provisioned_uv(paths);
    if crate::venv::environment::is_executable(&uv) {
        return Ok(uv); // another process provisioned it while we waited
    }
    let python = provision_python().map_err(|source| Error::ProvisionRuntime {
        source: Box::new(source),
    })?;
    reporter.report(Progress::Output {
        line: format!("Provisioning uv into {}", target.display()),
    });
    fs_err::create_dir_all(&tools).map_err(|source| Error::Io {
        path: tools.clone(),
        source,
    })?;
    let staging = tempfile::Builder::new()
        .prefix(".uv-")
        .tempdir_in(&tools)
        .map_err(|source| Error::Io {
            path: tools.clone(),
            source,
        })?;
    let mut cmd = command(&python);
    cmd.args([
        "-m",
        "pip",
        "install",
        "--disable-pip-version-check",
        "--no-input",
        "--quiet",
        "--target",
    ])
    .arg(staging.path())
    .arg("uv");
    run(&mut cmd, reporter).await.map_err(wrap)?;
    let staged_uv = staging
        .path()
        .join("bin")
        .join(uv.file_name().unwrap_or_default());
    if !crate::venv::environment::is_executable(&staged_uv) {
        return Err(wrap(Error::ProvisionedMissing { path: staged_uv }));
    }
    put_in_place(staging, &target)?;
    Ok(uv)
}

/// uv from a verified `uv` wheel (an offline bundle carries one) when none is found:
/// its `uv-*.data/scripts/uv` is unpacked into `<data>/tools/uv/bin` (no network, no
/// Python). Returns the uv in force either way.
pub async fn ensure_uv_from_wheel(
    paths: &Paths,
    wheel: &Path,
    reporter: &dyn Reporter,
) -> Result<PathBuf, Error> {
    if let Some(uv) = find_uv(paths)? {
        return Ok(uv);
    }
    let tools = paths.tools();
    let target = tools.join("uv");
    let _lock = lock_provisioning(paths).await?;
    let uv = provisioned_uv(paths);
    if crate::venv::environment::is_executable(&uv) {
        return Ok(uv); // another process provisioned it while we waited
    }
    reporter.report(Progress::Output {
        line: format!(
            "Provisioning uv into {} from {}",
            target.display(),
            wheel.display()
        ),
    });
    let io = |path: &Path| {
        let path = path.to_path_buf();
        move |source| Error::Io { path, source }
    };
    fs_err::create_dir_all(&tools).map_err(io(&tools))?;
    let staging = tempfile::Builder::new()
        .prefix(".uv-")
        .tempdir_in(&tools)
        .map_err(io(&tools))?;
    let exe = uv.file_name().unwrap_or_default().to_os_string();
    let bin = staging.path().join("bin");
    fs_err::create_dir_all(&bin).map_err(io(&bin))?;
    let staged_uv = bin.join(&exe);
    let (wheel_path, out) = (wheel.to_path_buf(), staged_uv.clone());
    tokio::task::spawn_blocking(move || unpack_uv(&wheel_path, &exe, &out))
        .await
        .map_err(|e| Error::Io {
            path: wheel.to_path_buf(),
            source: std::io::Error::other(e),
        })??;
    put_in_place(staging, &target)?;
    Ok(uv)
}

/// The lock every uv provisioning holds (one at a time per data dir).
async fn lock_provisioning(paths: &Paths) -> Result<LockFile, Error> {
    let lock_path = paths.locks().join("tools-uv.lock");
    LockFile::acquire(&lock_path, "uv provisioning", Default::default())
        .await
        .map_err(|source| Error::Lock {
            path: lock_path.clone(),
            source: Box::new(source),
        })
}

/// Rename the staged provision to `target`, replacing a broken earlier one.
fn put_in_place(staging: tempfile::TempDir, target: &Path) -> Result<(), Error> {
    let io = |source| Error::Io {
        path: target.to_path_buf(),
        source,
    };
    if target.exists() {
        crate::venv::trash::remove_tree(target).map_err(io)?;
    }
    let staged = staging.keep();
    fs_err::rename(&staged, target).map_err(io)
}

/// Copy the wheel's `*.data/scripts/<exe>` to `out`, executable.
fn unpack_uv(wheel: &Path, exe: &std::ffi::OsStr, out: &Path) -> Result<(), Error> {
    let problem = |problem: String| Error::UvWheel {
        wheel: wheel.to_path_buf(),
        problem,
    };
    let file = fs_err::File::open(wheel).map_err(|source| Error::Io {
        path: wheel.to_path_buf(),
        source,
    })?;
    let mut archive = zip::ZipArchive::new(std::io::BufReader::new(file))
        .map_err(|e| problem(format!("not a readable zip: {e}")))?;
    let exe = exe.to_string_lossy();
    let name = archive
        .file_names()
        .find(|n| {
            let mut parts = n.split('/');
            matches!(
                (parts.next(), parts.next(), parts.next(), parts.next()),
                (Some(data), Some("scripts"), Some(file), None)
                    if data.ends_with(".data") && file == exe
            )
        })
        .map(str::to_string)
        .ok_or_else(|| problem(format!("it has no `*.data/scripts/{exe}`")))?;
    let mut entry = archive
        .by_name(&name)
        .map_err(|e| problem(format!("`{name}` cannot be read: {e}")))?;
    let io = |source| Error::Io {
        path: out.to_path_buf(),
        source,
    };
    let mut file = fs_err::File::create(out).map_err(io)?;
    std::io::copy(&mut entry, &mut file).map_err(io)?;
    drop(file);
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        fs_err::set_permissions(out, std::fs::Permissions::from_mode(0o755)).map_err(io)?;
    }
    Ok(())
}
