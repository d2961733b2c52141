//! The `embedded` runtime kind: python.org's Windows embeddable package (a zip with
//! python.exe, `pythonXY.zip` for the standard library and `pythonXY._pth`), installed from
//! a local zip. It has no `venv` module and no pip, so environments cannot be made from it;
//! it runs code (and backends) itself.
//!
//! Its `pythonXY._pth` fixes `sys.path` and ignores `PYTHONPATH`; the install edits it so
//! that `import site` runs and `Lib\site-packages` is on the path, and puts a
//! `beep-host.pth` there naming the shipped `beep_backend` package (when one is found).

use std::path::{Path, PathBuf};

use super::install::{METADATA, RuntimeMetadata, TempDir, read_managed};
use super::platform::python_in;
use super::{CatalogEntry, Error, Runtime};
use crate::{Paths, Progress, Reporter};

/// The `build` of an embedded runtime's metadata entry (it comes from no catalog).
pub const BUILD: &str = "embedded";

/// Is `request` a path to an embeddable zip (`python-3.13.2-embed-amd64.zip`)?
pub fn is_zip_request(request: &str) -> bool {
    super::looks_like_path(request) && request.to_ascii_lowercase().ends_with(".zip")
}

/// Install the embeddable package `zip` as runtime `embedded-<version>-<platform>`.
pub async fn install_zip(
    paths: &Paths,
    zip: &Path,
    reporter: &dyn Reporter,
) -> Result<(Runtime, bool), Error> {
    let root = paths.runtimes();
    fs_err::create_dir_all(&root).map_err(Error::io(&root))?;
    let temp = TempDir::create(&root, "embedded")?;
    let dest = temp.path().to_path_buf();
    let source = zip.to_path_buf();
    reporter.report(Progress::Finalize);
    let sha256 = tokio::task::spawn_blocking(move || unpack(&source, &dest))
        .await
        .map_err(Error::task)??;
    let pth = edit_pth(temp.path())?;
    let python = python_in(temp.path());
    let probe = super::discover::run_probe(&python).map_err(|message| Error::Broken {
        path: python.clone(),
        message,
    })?;
    let platform = super::platform::Platform::current();
    let key = format!("embedded-{}-{}", probe.version, platform.tag());
    let final_dir = root.join(&key);
    if let Some(runtime) = read_managed(&final_dir) {
        return Ok((runtime, true));
    }
    let metadata = RuntimeMetadata {
        key: key.clone(),
        entry: CatalogEntry {
            version: probe.version.clone(),
            os: platform.os.to_string(),
            arch: platform.arch.to_string(),
            libc: platform.libc.to_string(),
            build: BUILD.to_string(),
            url: format!("file://{}", zip.display()),
            sha256,
        },
        installed_at: std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0),
    };
    let metadata_path = temp.path().join(METADATA);
    let json = serde_json::to_vec_pretty(&metadata)
        .map_err(|e| Error::io(&metadata_path)(std::io::Error::other(e)))?;
    fs_err::write(&metadata_path, json).map_err(Error::io(&metadata_path))?;
    tracing::debug!(pth = %pth.display(), "embedded runtime checked; moving into place");
    temp.persist(&final_dir)?;
    let runtime = read_managed(&final_dir).ok_or_else(|| Error::Broken {
        path: final_dir.clone(),
        message: "its metadata could not be read back".into(),
    })?;
    reporter.report(Progress::Done {
        message: format!("Installed {} at {}", runtime.key, runtime.path.display()),
    });
    Ok((runtime, false))
}

/// Unpack `zip` into `dest`; its sha256.
fn unpack(zip: &Path, dest: &Path) -> Result<String, Error> {
    use sha2::Digest;
    let bytes = fs_err::read(zip).map_err(Error::io(zip))?;
    let sha256 = hex::encode(sha2::Sha256::digest(&bytes));
    let mut archive = zip::ZipArchive::new(std::io::Cursor::new(bytes))
        .map_err(|e| Error::io(zip)(std::io::Error::other(e)))?;
    // `extract` refuses entries that would land outside `dest`.
    archive
        .extract(dest)
        .map_err(|e| Error::io(zip)(std::io::Error::other(e)))?;
    Ok(sha256)
}

/// Turn on `import site` and add `Lib\site-packages` in the `pythonXY._pth` under `dir`;
/// name the shipped `beep_backend` in `Lib\site-packages\beep-host.pth`. The `._pth` path.
fn edit_pth(dir: &Path) -> Result<PathBuf, Error> {
    fs_err::read_dir(dir).map_err(Error::io(dir))?;
    let pth = find_pth(dir).ok_or_else(|| Error::Broken {
        path: dir.to_path_buf(),
        message: "no `pythonXY._pth`: not python.org's embeddable package".into(),
    })?;
    let text = fs_err::read_to_string(&pth).map_err(Error::io(&pth))?;
    let mut lines: Vec<String> = text
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| match l.trim() {
            "#import site" | "# import site" | "import site" => String::new(),
            other => other.to_string(),
        })
        .filter(|l| !l.is_empty())
        .collect();
    if !lines
        .iter()
        .any(|l| l.eq_ignore_ascii_case(r"Lib\site-packages"))
    {
        lines.push(r"Lib\site-packages".to_string());
    }
    lines.push("import site".to_string());
    fs_err::write(&pth, lines.join("\r\n") + "\r\n").map_err(Error::io(&pth))?;
    let site_packages = dir.join("Lib").join("site-packages");
    fs_err::create_dir_all(&site_packages).map_err(Error::io(&site_packages))?;
    if let Some(package) = std::env::current_exe()
        .ok()
        .and_then(|exe| crate::paths::python_package_dir(&exe.canonicalize().unwrap_or(exe)))
    {
        let file = backend_pth(dir);
        fs_err::write(&file, format!("{}\r\n", package.display())).map_err(Error::io(&file))?;
    }
    Ok(pth)
}

/// The `pythonXY._pth` in `dir`, if `dir` holds python.org's embeddable package.
fn find_pth(dir: &Path) -> Option<PathBuf> {
    fs_err::read_dir(dir)
        .ok()?
        .flatten()
        .map(|e| e.path())
        .find(|p| p.extension().is_some_and(|e| e == "_pth"))
}

/// `Lib\site-packages\beep-host.pth` of the embedded runtime in `dir`: the line that puts
/// the shipped `beep_backend` on `sys.path` (PYTHONPATH is ignored there).
pub fn backend_pth(dir: &Path) -> PathBuf {
    dir.join("Lib").join("site-packages").join("beep-host.pth")
}

/// Before a backend starts on the interpreter `python`: when it is an embedded runtime's,
/// make sure its `beep-host.pth` names `package` (the shipped `beep_backend`'s folder,
/// which moves when beep-host is upgraded or moved) and that its `._pth` reads it.
/// Nothing to do for any other interpreter. The error says what is missing.
pub fn prepare_backend(python: &Path, package: &Path) -> Result<(), String> {
    let Some(dir) = python.parent() else {
        return Ok(());
    };
    let Some(pth) = find_pth(dir) else {
        return Ok(());
    };
    let text = fs_err::read_to_string(&pth).map_err(|e| e.to_string())?;
    let lines: Vec<&str> = text.lines().map(str::trim).collect();
    let missing = [
        ("import site", "import site"),
        (r"Lib\site-packages", r"Lib\site-packages"),
    ]
    .into_iter()
    .find(|(line, _)| !lines.iter().any(|l| l.eq_ignore_ascii_case(line)));
    if let Some((_, what)) = missing {
        return Err(format!(
            "`{}` lacks the line `{what}` (was it installed with `beep-host runtime install <zip>`?)",
            pth.display()
        ));
    }
    let file = backend_pth(dir);
    let wanted = package.display().to_string();
    let current = fs_err::read_to_string(&file).unwrap_or_default();
    if current.lines().next().map(str::trim) == Some(wanted.as_str()) {
        return Ok(());
    }
    let written = file
        .parent()
        .map_or(Ok(()), fs_err::create_dir_all)
        .and_then(|()| fs_err::write(&file, format!("{wanted}\r\n")));
    written.map_err(|e| format!("it could not be written ({e})"))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The `._pth` python.org ships: the stdlib zip, the folder, `import site` commented out.
    const SHIPPED: &str = "python313.zip\r\n.\r\n\r\n# Uncomment to run site.main() automatically\r\n#import site\r\n";

    #[test]
    fn pth_gets_site_and_site_packages_once() {
        let dir = tempfile::tempdir().unwrap();
        let pth = dir.path().join("python313._pth");
        std::fs::write(&pth, SHIPPED).unwrap();
        assert_eq!(edit_pth(dir.path()).unwrap(), pth);
        let edited = std::fs::read_to_string(&pth).unwrap();
        let lines: Vec<&str> = edited.lines().collect();
        assert_eq!(
            lines,
            [
                "python313.zip",
                ".",
                "# Uncomment to run site.main() automatically",
                r"Lib\site-packages",
                "import site"
            ]
        );
        assert!(dir.path().join("Lib").join("site-packages").is_dir());
        // Editing again changes nothing.
        edit_pth(dir.path()).unwrap();
        assert_eq!(std::fs::read_to_string(&pth).unwrap(), edited);
    }

    #[test]
    fn backends_find_the_package_through_the_pth() {
        let dir = tempfile::tempdir().unwrap();
        let python = dir.path().join("python.exe");
        let package = dir.path().join("shipped");
        // Not the embeddable package: nothing to do, nothing written.
        prepare_backend(&python, &package).unwrap();
        assert!(!backend_pth(dir.path()).exists());
        std::fs::write(dir.path().join("python313._pth"), SHIPPED).unwrap();
        let err = prepare_backend(&python, &package).unwrap_err();
        assert!(err.contains("import site"), "{err}");
        edit_pth(dir.path()).unwrap();
        // Missing or naming another folder (beep-host moved): written again.
        let _ = std::fs::remove_file(backend_pth(dir.path()));
        prepare_backend(&python, &package).unwrap();
        let named = std::fs::read_to_string(backend_pth(dir.path())).unwrap();
        assert_eq!(named.trim(), package.display().to_string());
        std::fs::write(backend_pth(dir.path()), "/old/place\r\n").unwrap();
        prepare_backend(&python, &package).unwrap();
        let named = std::fs::read_to_string(backend_pth(dir.path())).unwrap();
        assert_eq!(named.trim(), package.display().to_string());
    }

    #[test]
    fn a_folder_without_pth_is_not_the_embeddable_package() {
        let dir = tempfile::tempdir().unwrap();
        let err = edit_pth(dir.path()).unwrap_err().to_string();
        assert!(err.contains("not python.org's embeddable package"), "{err}");
    }

    #[test]
    fn only_zip_paths_are_embedded_requests() {
        assert!(is_zip_request(r"C:\dl\python-3.13.2-embed-amd64.zip"));
        assert!(is_zip_request("/tmp/python-3.13.2-embed-amd64.ZIP"));
        assert!(!is_zip_request("3.13"));
        assert!(!is_zip_request("python.zip"));
        assert!(!is_zip_request(r"C:\Python313\python.exe"));
    }
}
