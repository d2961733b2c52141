//! `bundle`: gather the runtime archive and the locked wheels of each platform (hashes
//! checked as they are fetched) and write them with the manifest into one zip.

use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use tokio_util::sync::CancellationToken;

use super::manifest::{self, Manifest, Member, PlatformContents, ProjectTexts};
use super::project::{Lock, PinnedRuntime, ProjectFiles};
use super::{BundlePlatform, Error};
use crate::runtime::catalog::{Catalog, CatalogEntry};
use crate::runtime::download::{self, Download};
use crate::{Paths, Progress, Reporter};

/// What to bundle.
#[derive(Debug, Clone)]
pub struct BundleOptions {
    /// The project folder (with `beep.toml` and `beep.lock`).
    pub dir: PathBuf,
    /// The zip to write (replaced when it exists).
    pub output: PathBuf,
    /// The platforms to carry; empty is this platform.
    pub platforms: Vec<BundlePlatform>,
}

/// The bundle written.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Written {
    pub path: PathBuf,
    pub size: u64,
    pub manifest: Manifest,
}

/// The wheel a package installs on one platform.
struct ChosenWheel {
    file_name: String,
    url: String,
    sha256: String,
}

/// One file to store: its member path and where its verified bytes are.
struct Source {
    member: String,
    file: PathBuf,
    sha256: String,
}

/// Write the bundle (see the module docs).
pub async fn bundle(
    paths: &Paths,
    catalog: &Catalog,
    options: &BundleOptions,
    reporter: &dyn Reporter,
) -> Result<Written, Error> {
    let files = ProjectFiles::read(&options.dir)?;
    let lock_path = files.lock_path();
    // The project module's own validation (unknown keys, bad values, with file:line).
    crate::project::Manifest::parse(
        &options.dir,
        &options.dir.join(crate::project::MANIFEST_FILE),
        &files.toml,
    )
    .map_err(|source| Error::Manifest {
        dir: options.dir.clone(),
        source,
    })?;
    let lock = Lock::parse(&lock_path, &files.lock)?;
    let locked = lock.runtime(&lock_path)?;
    let mut platforms = options.platforms.clone();
    if platforms.is_empty() {
        platforms.push(
            BundlePlatform::current().ok_or_else(|| Error::UnknownPlatform {
                given: crate::runtime::platform::Platform::current().tag(),
            })?,
        );
    }
    platforms.sort();
    platforms.dedup();

    // Choose everything before fetching anything: a missing wheel fails at once.
    let python = major_minor(&locked.version);
    let mut chosen: Vec<(BundlePlatform, Vec<ChosenWheel>)> = Vec::new();
    for &platform in &platforms {
        chosen.push((
            platform,
            choose_wheels(&lock, &options.dir, platform, python, &locked.version)?,
        ));
    }
    let mut runtimes = Vec::new();
    for &platform in &platforms {
        runtimes.push(runtime_entry(catalog, &locked, platform)?);
    }
    // uv for each platform, so that `up --bundle` needs none on the target.
    let index = super::uv::index_url();
    let mut uvs = Vec::new();
    for &platform in &platforms {
        reporter.report(Progress::Resolve {
            what: format!("uv for {platform}"),
        });
        uvs.push(super::uv::find(&index, platform, python).await?);
    }

    let staging = tempfile::Builder::new()
        .prefix("beep-bundle-")
        .tempdir()
        .map_err(Error::write(std::env::temp_dir()))?;
    let cancel = CancellationToken::new();
    let mut sources: BTreeMap<String, Source> = BTreeMap::new();
    let mut contents = Vec::new();
    for (((platform, wheels), entry), uv) in chosen.into_iter().zip(runtimes).zip(uvs) {
        let uv_member = format!("tools/{}", uv.file_name);
        if !sources.contains_key(&uv_member) {
            let file = staging.path().join(&uv.file_name);
            let partial = staging.path().join(format!("{}.partial", uv.file_name));
            fetch(&uv.url, &uv.sha256, &partial, reporter, &cancel).await?;
            fs_err::rename(&partial, &file).map_err(Error::write(&file))?;
            sources.insert(
                uv_member.clone(),
                Source {
                    member: uv_member.clone(),
                    file,
                    sha256: uv.sha256,
                },
            );
        }
        let file_name = entry.file_name();
        let member = format!("runtimes/{file_name}");
        if !sources.contains_key(&member) {
            let file = fetch_runtime(paths, &entry, reporter, &cancel).await?;
            sources.insert(
                member.clone(),
                Source {
                    member: member.clone(),
                    file,
                    sha256: entry.sha256.clone(),
                },
            );
        }
        let mut wheel_members = Vec::new();
        for ChosenWheel {
            file_name,
            url,
            sha256,
        } in wheels
        {
            let member = format!("wheels/{file_name}");
            if !sources.contains_key(&member) {
                reporter.report(Progress::Resolve {
                    what: file_name.clone(),
                });
                let file = staging.path().join(&file_name);
                let partial = staging.path().join(format!("{file_name}.partial"));
                fetch(&url, &sha256, &partial, reporter, &cancel).await?;
                fs_err::rename(&partial, &file).map_err(Error::write(&file))?;
                sources.insert(
                    member.clone(),
                    Source {
                        member: member.clone(),
                        file,
                        sha256,
                    },
                );
            }
            wheel_members.push(member);
        }
        wheel_members.sort();
        contents.push(PlatformContents {
            platform,
            runtime: entry,
            runtime_member: member,
            wheels: wheel_members,
            uv: Some(uv_member),
        });
    }

    // Runtimes first, then tools and wheels; each group by name.
    let mut ordered: Vec<Source> = sources.into_values().collect();
    ordered.sort_by(|a, b| {
        (!a.member.starts_with("runtimes/"), &a.member)
            .cmp(&(!b.member.starts_with("runtimes/"), &b.member))
    });
    let mut members = Vec::new();
    for source in &ordered {
        let size = fs_err::metadata(&source.file)
            .map_err(Error::read(&source.file))?
            .len();
        members.push(Member {
            path: source.member.clone(),
            size,
            sha256: source.sha256.clone(),
        });
    }
    let manifest = Manifest {
        format: manifest::FORMAT,
        created: manifest::CREATED.to_string(),
        lock_sha256: hex::encode(Sha256::digest(files.lock.as_bytes())),
        project: ProjectTexts {
            beep_toml: files.toml.clone(),
            beep_lock: files.lock.clone(),
        },
        platforms: contents,
        members,
    };
    reporter.report(Progress::Finalize);
    let output = options.output.clone();
    let manifest_for_zip = manifest.clone();
    let size = tokio::task::spawn_blocking(move || write_zip(&output, &manifest_for_zip, &ordered))
        .await
        .map_err(|e| Error::write(&options.output)(std::io::Error::other(e)))??;
    drop(staging);
    reporter.report(Progress::Done {
        message: format!("Wrote {}", options.output.display()),
    });
    Ok(Written {
        path: options.output.clone(),
        size,
        manifest,
    })
}

/// The wheel each locked package installs on `platform`.
fn choose_wheels(
    lock: &Lock,
    dir: &Path,
    platform: BundlePlatform,
    python: (u64, u64),
    python_version: &str,
) -> Result<Vec<ChosenWheel>, Error> {
    let mut out = Vec::new();
    for package in &lock.packages {
        let best = package
            .wheels
            .iter()
            .filter_map(|w| {
                let name = w.file_name()?;
                platform
                    .wheel_rank(&name, python)
                    .map(|rank| (rank, name, w))
            })
            .min_by(|a, b| (a.0, &a.1).cmp(&(b.0, &b.1)));
        let Some((_, name, wheel)) = best else {
            // A package with a marker may not be wanted on this platform (markers are
            // left to the installer, which skips it where it does not hold).
            if package.marker.is_some() {
                continue;
            }
            return Err(Error::NoWheel {
                package: package.name.clone(),
                version: package.version.clone(),
                platform: platform.to_string(),
                python: python_version.to_string(),
            });
        };
        let sha256 = wheel.sha256().ok_or_else(|| Error::WheelHash {
            package: package.name.clone(),
            wheel: name.clone(),
        })?;
        let url = match (&wheel.url, &wheel.path) {
            (Some(url), _) => url.clone(),
            (None, Some(path)) => file_url(&dir.join(path)),
            (None, None) => {
                return Err(Error::WheelSource {
                    package: package.name.clone(),
                    wheel: name,
                });
            }
        };
        out.push(ChosenWheel {
            file_name: name,
            url,
            sha256: sha256.to_ascii_lowercase(),
        });
    }
    Ok(out)
}

/// A `file://` URL for a wheel's `path` (PEP 751: relative to the lock's folder).
fn file_url(path: &Path) -> String {
    format!("file://{}", path.display()).replace('+', "%2B")
}

/// The catalog entry of the locked runtime's version for `platform`: the locked entry
/// itself on its own platform (its sha256 must agree with the catalog), else the same
/// version from the same build when the catalog has it, else the newest build.
fn runtime_entry(
    catalog: &Catalog,
    locked: &PinnedRuntime,
    platform: BundlePlatform,
) -> Result<CatalogEntry, Error> {
    let locked_build = catalog
        .entries
        .iter()
        .find(|e| e.key() == locked.key)
        .map(|e| e.build.clone());
    let mut candidates: Vec<&CatalogEntry> = catalog
        .entries
        .iter()
        .filter(|e| platform.matches_entry(e) && e.version == locked.version)
        .collect();
    candidates.sort_by(|a, b| {
        (Some(&b.build) == locked_build.as_ref(), &b.build)
            .cmp(&(Some(&a.build) == locked_build.as_ref(), &a.build))
    });
    let entry = candidates
        .first()
        .copied()
        .cloned()
        .ok_or_else(|| Error::NoCatalogEntry {
            version: locked.version.clone(),
            platform: platform.to_string(),
        })?;
    if entry.key() == locked.key && !entry.sha256.eq_ignore_ascii_case(&locked.sha256) {
        return Err(Error::RuntimeHash {
            key: locked.key.clone(),
            locked: locked.sha256.clone(),
            catalog: entry.sha256.clone(),
        });
    }
    Ok(entry)
}

/// The runtime archive, verified: from the download cache when it holds the file with
/// the catalog's hash, else downloaded into the cache.
async fn fetch_runtime(
    paths: &Paths,
    entry: &CatalogEntry,
    reporter: &dyn Reporter,
    cancel: &CancellationToken,
) -> Result<PathBuf, Error> {
    reporter.report(Progress::Resolve { what: entry.key() });
    let cached = paths.downloads().join(entry.file_name());
    if cached.is_file() {
        let file = cached.clone();
        let sha = tokio::task::spawn_blocking(move || sha256_of(&file))
            .await
            .map_err(|e| Error::read(&cached)(std::io::Error::other(e)))??;
        if sha.eq_ignore_ascii_case(&entry.sha256) {
            return Ok(cached);
        }
        let _ = fs_err::remove_file(&cached);
    }
    let partial = paths
        .downloads()
        .join(format!("{}.partial", entry.file_name()));
    fetch(&entry.url, &entry.sha256, &partial, reporter, cancel).await?;
    fs_err::rename(&partial, &cached).map_err(Error::write(&cached))?;
    Ok(cached)
}

async fn fetch(
    url: &str,
    sha256: &str,
    partial: &Path,
    reporter: &dyn Reporter,
    cancel: &CancellationToken,
) -> Result<(), Error> {
    Download {
        url,
        sha256,
        partial,
        reporter,
        cancel,
        retry_budget: download::retry_budget_from_env(),
    }
    .run(None)
    .await
    .map_err(|source| Error::Download {
        what: url.to_string(),
        source,
    })?;
    Ok(())
}

pub(crate) fn sha256_of(path: &Path) -> Result<String, Error> {
    let mut file = fs_err::File::open(path).map_err(Error::read(path))?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 1 << 18];
    loop {
        let n = file.read(&mut buf).map_err(Error::read(path))?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
    }
    Ok(hex::encode(hasher.finalize()))
}

/// Write the zip next to `output` and rename it into place. Fixed timestamps (the zip
/// epoch), permissions (0644) and order make the bytes a function of the inputs.
fn write_zip(output: &Path, manifest: &Manifest, sources: &[Source]) -> Result<u64, Error> {
    let zip_err = |source| Error::Zip {
        path: output.to_path_buf(),
        source,
    };
    let partial = output.with_extension("zip.partial");
    let file = fs_err::File::create(&partial).map_err(Error::write(&partial))?;
    let mut zip = zip::ZipWriter::new(std::io::BufWriter::with_capacity(1 << 20, file));
    let base = zip::write::SimpleFileOptions::default()
        .last_modified_time(zip::DateTime::default())
        .unix_permissions(0o644);
    let json = serde_json::to_vec_pretty(manifest)
        .map_err(|e| Error::write(&partial)(std::io::Error::other(e)))?;
    zip.start_file(
        manifest::MANIFEST,
        base.compression_method(zip::CompressionMethod::Deflated),
    )
    .map_err(zip_err)?;
    zip.write_all(&json).map_err(Error::write(&partial))?;
    for source in sources {
        let mut input = fs_err::File::open(&source.file).map_err(Error::read(&source.file))?;
        let size = input.metadata().map_err(Error::read(&source.file))?.len();
        // Wheels and runtime archives are compressed already: store them.
        let options = base
            .compression_method(zip::CompressionMethod::Stored)
            .large_file(size >= u64::from(u32::MAX));
        zip.start_file(source.member.as_str(), options)
            .map_err(zip_err)?;
        std::io::copy(&mut input, &mut zip).map_err(Error::write(&partial))?;
    }
    let mut writer = zip.finish().map_err(zip_err)?;
    writer.flush().map_err(Error::write(&partial))?;
    drop(writer);
    fs_err::rename(&partial, output).map_err(Error::write(output))?;
    Ok(fs_err::metadata(output).map_err(Error::read(output))?.len())
}

fn major_minor(version: &str) -> (u64, u64) {
    let v = crate::runtime::version_tuple(version);
    (
        v.first().copied().unwrap_or(3),
        v.get(1).copied().unwrap_or(0),
    )
}
