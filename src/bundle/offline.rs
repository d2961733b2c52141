//! The install half of `up --bundle`: from a verified, staged bundle, put the project's
//! `beep.toml` and `beep.lock` in its folder and run the project's `up` with an offline
//! source: the runtime from the bundle's archive (through the runtime installer's
//! verified path, a `file://` URL with the catalog's hash) and the packages from the
//! bundle's wheels only (`--no-index --find-links`). Nothing here uses the network.

use std::path::Path;

use super::project::{LOCK_FILE, Lock, PROJECT_FILE};
use super::read::Staged;
use super::{BundlePlatform, Error};
use crate::project::{OfflineSource, Projects, UpReport};
use crate::runtime::catalog::CatalogEntry;
use crate::{Config, Paths, Reporter};

/// The offline source a staged bundle offers (its requirements file is written into the
/// staging dir: every locked package pinned, with its marker).
pub fn source(staged: &Staged) -> Result<OfflineSource, Error> {
    let contents = staged.contents();
    let archive = staged.runtime_archive();
    let runtime = CatalogEntry {
        url: format!("file://{}", archive.display()).replace('+', "%2B"),
        ..contents.runtime.clone()
    };
    let lock = Lock::parse(Path::new(LOCK_FILE), &staged.manifest.project.beep_lock)?;
    let mut text = String::new();
    for package in &lock.packages {
        text.push_str(&format!("{}=={}", package.name, package.version));
        if let Some(marker) = &package.marker {
            text.push_str(&format!(" ; {marker}"));
        }
        text.push('\n');
    }
    let requirements = staged.dir.path().join("requirements.txt");
    fs_err::write(&requirements, text).map_err(Error::write(&requirements))?;
    let wheels = staged.wheels_dir();
    fs_err::create_dir_all(&wheels).map_err(Error::write(&wheels))?;
    Ok(OfflineSource {
        runtime,
        wheels,
        requirements,
        uv_wheel: staged.uv_wheel(),
    })
}

/// `up --bundle`: verify and stage the bundle at `bundle` for this platform before the
/// home is looked at (a bad bundle writes nothing there), then [`up`] from it.
pub async fn up_from_file(
    paths: &Paths,
    config: &Config,
    bundle: &Path,
    dir: &Path,
    reporter: &dyn Reporter,
) -> Result<UpReport, Error> {
    let platform = BundlePlatform::current().ok_or_else(|| Error::UnknownPlatform {
        given: crate::runtime::platform::Platform::current().tag(),
    })?;
    let file = bundle.to_path_buf();
    let staged = tokio::task::spawn_blocking(move || super::read::unpack(&file, platform))
        .await
        .map_err(|e| Error::read(bundle)(std::io::Error::other(e)))??;
    up(paths, config, &staged, dir, reporter).await
}

/// Bring the project in `dir` up from a staged bundle. `dir` gets the bundle's
/// `beep.toml` and `beep.lock` when it has none; files that differ from the bundle's are
/// refused (the bundle installs what it carries, nothing else).
pub async fn up(
    paths: &Paths,
    config: &Config,
    staged: &Staged,
    dir: &Path,
    reporter: &dyn Reporter,
) -> Result<UpReport, Error> {
    let project = &staged.manifest.project;
    let files = [
        (PROJECT_FILE, &project.beep_toml),
        (LOCK_FILE, &project.beep_lock),
    ];
    for (name, text) in files {
        let path = dir.join(name);
        match fs_err::read_to_string(&path) {
            Ok(existing) if existing == *text => {}
            Ok(_) => return Err(Error::ProjectDiffers { path }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(source) => return Err(Error::Read { path, source }),
        }
    }
    fs_err::create_dir_all(dir).map_err(Error::write(dir))?;
    for (name, text) in files {
        let path = dir.join(name);
        if !path.exists() {
            fs_err::write(&path, text).map_err(Error::write(&path))?;
        }
    }
    let source = source(staged)?;
    Projects::new(paths.clone(), config.clone())
        .up_from(dir, Some(&source), reporter)
        .await
        .map_err(|source| Error::Project {
            dir: dir.to_path_buf(),
            source: Box::new(source),
        })
}
