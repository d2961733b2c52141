//! Installing managed runtimes as a transaction: download (verified), unpack into a temp
//! dir inside the runtimes dir, run the new interpreter once, then rename into place.
//!
//! An exclusive lock file per runtime makes concurrent installs safe: the second waits,
//! then finds the runtime installed. A guard removes the temp dir on every failure,
//! including cancellation.

use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use tokio_util::sync::CancellationToken;

use super::catalog::CatalogEntry;
use super::download::{Chunk, Download};
use super::extract::{self, Format};
use super::platform::python_in;
use super::{Error, Runtime, RuntimeKind};
use crate::lock::LockFile;
use crate::{Paths, Progress, Reporter};

/// The metadata file written beside a managed runtime's files.
pub const METADATA: &str = "beep-runtime.json";

/// How an install is run.
#[derive(Clone)]
pub struct InstallOptions {
    /// Cancelling removes the temp dir and keeps the partial download, which the next
    /// install resumes.
    pub cancel: CancellationToken,
    /// How long the download keeps retrying without progress (default 30 s, or
    /// `BEEP_HOST_DOWNLOAD_RETRY_SECS`).
    pub retry_budget: std::time::Duration,
}

impl Default for InstallOptions {
    fn default() -> Self {
        Self {
            cancel: CancellationToken::new(),
            retry_budget: super::download::retry_budget_from_env(),
        }
    }
}

/// What `beep-runtime.json` holds.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RuntimeMetadata {
    pub key: String,
    /// The catalog entry it was installed from (its fields at the top level of the file).
    #[serde(flatten)]
    pub entry: CatalogEntry,
    /// Unix seconds.
    pub installed_at: u64,
}

/// The result of an install.
#[derive(Debug, Clone, Serialize)]
pub struct Installed {
    pub runtime: Runtime,
    /// It was already installed; nothing was downloaded.
    pub already_installed: bool,
}

/// Install one catalog entry (see the module docs).
pub async fn install_entry(
    paths: &Paths,
    entry: &CatalogEntry,
    reporter: &dyn Reporter,
    options: &InstallOptions,
) -> Result<(Runtime, bool), Error> {
    let key = entry.key();
    let root = paths.runtimes();
    let final_dir = root.join(&key);
    if let Some(runtime) = read_managed(&final_dir) {
        return Ok((runtime, true));
    }
    fs_err::create_dir_all(&root).map_err(Error::io(&root))?;
    let lock_path = lock_path(paths, &key);
    let wait = crate::lock::Wait {
        cancel: Some(&options.cancel),
        ..Default::default()
    };
    let lock = match LockFile::acquire(&lock_path, &format!("runtime `{key}`"), wait).await {
        Err(crate::lock::Error::Cancelled { .. }) => return Err(Error::Cancelled),
        lock => lock?,
    };
    if let Some(runtime) = read_managed(&final_dir) {
        return Ok((runtime, true));
    }
    remove_leftovers(&root, &key);

    let file_name = entry.file_name();
    let format = Format::of(&file_name)?;
    let partial = paths.downloads().join(format!("{file_name}.partial"));
    let temp = TempDir::create(&root, &key)?;

    let download = Download {
        url: &entry.url,
        sha256: &entry.sha256,
        partial: &partial,
        reporter,
        cancel: &options.cancel,
        retry_budget: options.retry_budget,
    };
    let started = std::time::Instant::now();
    if let Err(e) = fetch_and_unpack(&download, format, temp.path(), &file_name, reporter).await {
        let e = match e {
            Error::Download(super::download::Error::Cancelled) => Error::Cancelled,
            e => e,
        };
        // Keep a partial download only where a later run can resume it: after a network
        // failure or a cancel (Ctrl+C); a bad archive or hash is removed.
        if !(e.is_resumable() || matches!(e, Error::Cancelled)) {
            let _ = fs_err::remove_file(&partial);
        }
        return Err(e);
    }

    tracing::debug!(elapsed = ?started.elapsed(), "downloaded, verified and unpacked");
    reporter.report(Progress::Finalize);
    let _ = fs_err::remove_file(&partial);
    let python = python_in(temp.path());
    let probe = super::discover::run_probe(&python).map_err(|message| Error::Broken {
        path: python.clone(),
        message,
    })?;
    if probe.version != entry.version {
        return Err(Error::Broken {
            path: python,
            message: format!(
                "it reports Python {} but the catalog says {}",
                probe.version, entry.version
            ),
        });
    }
    let expected_prefix = fs_err::canonicalize(temp.path()).map_err(Error::io(temp.path()))?;
    if fs_err::canonicalize(&probe.prefix).ok().as_ref() != Some(&expected_prefix) {
        return Err(Error::Broken {
            path: python,
            message: format!(
                "it is not relocatable: sys.prefix is `{}`, not `{}`",
                probe.prefix.display(),
                expected_prefix.display()
            ),
        });
    }
    let patched =
        super::sysconfig::patch(temp.path(), &final_dir).map_err(Error::io(temp.path()))?;
    tracing::debug!(?patched, "build-time configuration points at the runtime");
    let metadata = RuntimeMetadata {
        key: key.clone(),
        entry: entry.clone(),
        installed_at: std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0),
    };
    let metadata_path = temp.path().join(METADATA);
    let json = serde_json::to_vec_pretty(&metadata)
        .map_err(|e| Error::io(&metadata_path)(std::io::Error::other(e)))?;
    fs_err::write(&metadata_path, json).map_err(Error::io(&metadata_path))?;
    tracing::debug!(elapsed = ?started.elapsed(), "interpreter ran; moving into place");
    temp.persist(&final_dir)?;
    let _ = fs_err::remove_file(&partial);
    drop(lock);
    let runtime = read_managed(&final_dir).ok_or_else(|| Error::Broken {
        path: final_dir.clone(),
        message: "its metadata could not be read back".into(),
    })?;
    reporter.report(Progress::Done {
        message: format!("Installed {} at {}", runtime.key, runtime.path.display()),
    });
    Ok((runtime, false))
}

async fn fetch_and_unpack(
    download: &Download<'_>,
    format: Format,
    dest: &Path,
    name: &str,
    reporter: &dyn Reporter,
) -> Result<(), Error> {
    if !format.streams() {
        download.run(None).await?;
        let (archive, dest) = (download.partial.to_path_buf(), dest.to_path_buf());
        let progress = Forward::new();
        let sender = progress.sender.clone();
        let unpack =
            tokio::task::spawn_blocking(move || extract::unpack_zip(&archive, &dest, &sender));
        progress
            .relay(reporter, unpack)
            .await
            .map_err(Error::task)??;
        return Ok(());
    }
    // Unpack while downloading: the extractor thread reads what the download streams.
    let (tx, rx) = tokio::sync::mpsc::channel::<Chunk>(64);
    let progress = Forward::new();
    let sender = progress.sender.clone();
    let (dest_owned, name_owned) = (dest.to_path_buf(), name.to_string());
    let extractor = tokio::task::spawn_blocking(move || {
        let mut reader = ChannelReader::new(rx);
        let result = extract::unpack_tar(&mut reader, format, &dest_owned, &name_owned, &sender);
        // Read to the end so the download never sees a closed channel after success.
        let _ = std::io::copy(&mut reader, &mut std::io::sink());
        result
    });
    let downloaded = download.run(Some(tx)).await;
    let extracted = progress
        .relay(reporter, extractor)
        .await
        .map_err(Error::task)?;
    let outcome = downloaded?;
    match extracted {
        Ok(_) if outcome.streamed => Ok(()),
        // A safety refusal is final; any other failure may come from a restarted stream.
        Err(e @ extract::Error::Unsafe { .. }) => Err(e.into()),
        _ => {
            tracing::debug!("stream was not clean; unpacking from the downloaded file");
            fs_err::remove_dir_all(dest).map_err(Error::io(dest))?;
            fs_err::create_dir_all(dest).map_err(Error::io(dest))?;
            let (archive, dest, name) = (
                download.partial.to_path_buf(),
                dest.to_path_buf(),
                name.to_string(),
            );
            let progress = Forward::new();
            let sender = progress.sender.clone();
            let unpack = tokio::task::spawn_blocking(move || {
                let file = std::io::BufReader::with_capacity(
                    1 << 18,
                    fs_err::File::open(&archive).map_err(|source| extract::Error::Read {
                        archive: name.clone(),
                        source,
                    })?,
                );
                extract::unpack_tar(file, format, &dest, &name, &sender)
            });
            progress
                .relay(reporter, unpack)
                .await
                .map_err(Error::task)??;
            Ok(())
        }
    }
}

/// Forwards progress from a blocking thread to the caller's (non-'static) reporter.
struct Forward {
    sender: ProgressSender,
    receiver: tokio::sync::mpsc::UnboundedReceiver<Progress>,
}

#[derive(Clone)]
struct ProgressSender(tokio::sync::mpsc::UnboundedSender<Progress>);

impl Reporter for ProgressSender {
    fn report(&self, progress: Progress) {
        let _ = self.0.send(progress);
    }
}

impl Forward {
    fn new() -> Self {
        let (tx, receiver) = tokio::sync::mpsc::unbounded_channel();
        Self {
            sender: ProgressSender(tx),
            receiver,
        }
    }

    /// Pass progress on until `task` ends; return its result.
    async fn relay<T>(
        self,
        reporter: &dyn Reporter,
        task: tokio::task::JoinHandle<T>,
    ) -> Result<T, tokio::task::JoinError> {
        let Self {
            sender,
            mut receiver,
        } = self;
        drop(sender);
        tokio::pin!(task);
        loop {
            tokio::select! {
                Some(p) = receiver.recv() => reporter.report(p),
                result = &mut task => {
                    while let Ok(p) = receiver.try_recv() {
                        reporter.report(p);
                    }
                    return result;
                }
            }
        }
    }
}

/// A blocking `Read` over the chunks a download streams.
struct ChannelReader {
    rx: tokio::sync::mpsc::Receiver<Chunk>,
    current: bytes::Bytes,
}

impl ChannelReader {
    fn new(rx: tokio::sync::mpsc::Receiver<Chunk>) -> Self {
        Self {
            rx,
            current: bytes::Bytes::new(),
        }
    }
}

impl std::io::Read for ChannelReader {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let available = std::io::BufRead::fill_buf(self)?;
        let n = buf.len().min(available.len());
        buf[..n].copy_from_slice(&available[..n]);
        std::io::BufRead::consume(self, n);
        Ok(n)
    }
}

impl std::io::BufRead for ChannelReader {
    fn fill_buf(&mut self) -> std::io::Result<&[u8]> {
        while self.current.is_empty() {
            match self.rx.blocking_recv() {
                Some(Chunk::Data(data)) => self.current = data,
                Some(Chunk::Abort) => {
                    return Err(std::io::Error::other(
                        "the download restarted from the beginning",
                    ));
                }
                None => break,
            }
        }
        Ok(&self.current)
    }

    fn consume(&mut self, amount: usize) {
        let amount = amount.min(self.current.len());
        bytes::Buf::advance(&mut self.current, amount);
    }
}

/// A temp dir inside the runtimes dir, removed on drop unless persisted.
pub(super) struct TempDir {
    path: Option<PathBuf>,
}

impl TempDir {
    pub(super) fn create(root: &Path, key: &str) -> Result<Self, Error> {
        let mut random = [0u8; 6];
        getrandom::fill(&mut random)
            .map_err(|e| Error::io(root)(std::io::Error::other(e.to_string())))?;
        let path = root.join(format!(".tmp-{key}-{}", hex::encode(random)));
        fs_err::create_dir_all(&path).map_err(Error::io(&path))?;
        Ok(Self { path: Some(path) })
    }

    pub(super) fn path(&self) -> &Path {
        self.path.as_deref().unwrap_or(Path::new(""))
    }

    pub(super) fn persist(mut self, to: &Path) -> Result<(), Error> {
        let from = self.path.take().unwrap_or_default();
        if let Err(e) = fs_err::rename(&from, to) {
            self.path = Some(from);
            return Err(Error::io(to)(e));
        }
        Ok(())
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        if let Some(path) = self.path.take() {
            let _ = fs_err::remove_dir_all(path);
        }
    }
}

/// Temp and trash dirs of `key` left by a crash (we hold its lock, so none is live).
fn remove_leftovers(root: &Path, key: &str) {
    let Ok(entries) = fs_err::read_dir(root) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let stale = [".tmp-", ".trash-"].iter().any(|p| {
            name.strip_prefix(p)
                .and_then(|rest| rest.strip_prefix(key))
                .is_some_and(|r| r.starts_with('-'))
        });
        if stale {
            let _ = fs_err::remove_dir_all(entry.path());
        }
    }
}

pub(super) fn read_managed(dir: &Path) -> Option<Runtime> {
    let bytes = fs_err::read(dir.join(METADATA)).ok()?;
    let meta: RuntimeMetadata = serde_json::from_slice(&bytes).ok()?;
    let kind = if meta.entry.build == super::embedded::BUILD {
        RuntimeKind::Embedded
    } else {
        RuntimeKind::Managed
    };
    Some(Runtime {
        key: meta.key,
        version: meta.entry.version,
        path: dir.to_path_buf(),
        python: python_in(dir),
        kind,
        default: false,
        problem: None,
    })
}

/// An entry of the runtimes dir that is not a readable runtime, listed with what is wrong
/// so that it can be seen and removed (install and remove use hidden names for their
/// temp dirs, so a visible entry without metadata is not an install in progress).
fn broken_managed(dir: &Path) -> Runtime {
    let key = dir
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let metadata = dir.join(METADATA);
    let problem = match fs_err::symlink_metadata(dir) {
        Ok(meta) if meta.file_type().is_symlink() && fs_err::metadata(dir).is_err() => {
            match fs_err::read_link(dir) {
                Ok(target) => format!(
                    "`{}` is a link to `{}`, which does not exist",
                    dir.display(),
                    target.display()
                ),
                Err(_) => format!("`{}` is a dangling link", dir.display()),
            }
        }
        Ok(meta) if !meta.is_dir() && !meta.file_type().is_symlink() => {
            format!("`{}` is not a directory", dir.display())
        }
        _ => match fs_err::read(&metadata) {
            Err(e) => format!("`{}` cannot be read: {e}", metadata.display()),
            Ok(bytes) => match serde_json::from_slice::<RuntimeMetadata>(&bytes) {
                Err(e) => format!("`{}` is not valid: {e}", metadata.display()),
                Ok(_) => format!("`{}` cannot be read", metadata.display()),
            },
        },
    };
    Runtime {
        key,
        version: String::new(),
        path: dir.to_path_buf(),
        python: python_in(dir),
        kind: RuntimeKind::Managed,
        default: false,
        problem: Some(problem),
    }
}

/// The managed runtime installed under `key`, if any (keys never contain a path separator).
/// The lock of runtime `key`: held by its install, its removal and a backend's start on it.
pub fn lock_path(paths: &Paths, key: &str) -> PathBuf {
    paths.locks().join(format!("runtime-{key}.lock"))
}

pub fn read_managed_key(paths: &Paths, key: &str) -> Option<Runtime> {
    if key.is_empty() || key.starts_with('.') || key.contains(['/', '\\']) || key == ".." {
        return None;
    }
    let dir = paths.runtimes().join(key);
    read_managed(&dir).or_else(|| {
        fs_err::symlink_metadata(&dir)
            .is_ok()
            .then(|| broken_managed(&dir))
    })
}

/// Every managed runtime, newest version first.
pub fn list_managed(paths: &Paths) -> Result<Vec<Runtime>, Error> {
    let root = paths.runtimes();
    let entries = match fs_err::read_dir(&root) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(source) => return Err(Error::Io { path: root, source }),
    };
    let mut out: Vec<Runtime> = entries
        .flatten()
        .filter(|e| !e.file_name().to_string_lossy().starts_with('.'))
        .map(|e| read_managed(&e.path()).unwrap_or_else(|| broken_managed(&e.path())))
        .collect();
    out.sort_by_key(|r| std::cmp::Reverse(super::version_tuple(&r.version)));
    Ok(out)
}

/// Delete a managed runtime: rename to a trash name first, so no half runtime is listed.
pub fn remove_managed(paths: &Paths, runtime: &Runtime) -> Result<(), Error> {
    let root = paths.runtimes();
    if !runtime.path.starts_with(&root) || runtime.kind != RuntimeKind::Managed {
        return Err(Error::RemoveAdopted {
            key: runtime.key.clone(),
        });
    }
    let _lock = LockFile::acquire_blocking(&lock_path(paths, &runtime.key))?;
    let mut random = [0u8; 6];
    getrandom::fill(&mut random)
        .map_err(|e| Error::io(&root)(std::io::Error::other(e.to_string())))?;
    let trash = root.join(format!(".trash-{}-{}", runtime.key, hex::encode(random)));
    // Renaming a link moves the link itself; its target is never touched.
    fs_err::rename(&runtime.path, &trash).map_err(Error::io(&runtime.path))?;
    let is_dir = fs_err::symlink_metadata(&trash).is_ok_and(|m| m.is_dir());
    if is_dir {
        fs_err::remove_dir_all(&trash).map_err(Error::io(&trash))?;
    } else if fs_err::remove_file(&trash).is_err() {
        // A directory link on Windows is removed as a directory (never its target).
        fs_err::remove_dir(&trash).map_err(Error::io(&trash))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `beep-runtime.json` keeps its flat shape: files written before read the same.
    #[test]
    fn runtime_metadata_is_the_catalog_entry_flattened() {
        let written = serde_json::json!({
            "key": "cpython-3.12.7-linux-x86_64-gnu",
            "version": "3.12.7",
            "os": "linux",
            "arch": "x86_64",
            "libc": "gnu",
            "build": "20241016",
            "url": "file:///a.tar.gz",
            "sha256": "0".repeat(64),
            "installed_at": 5,
        });
        let meta: RuntimeMetadata = serde_json::from_value(written.clone()).unwrap();
        assert_eq!(meta.entry.key(), meta.key);
        assert_eq!(meta.entry.version, "3.12.7");
        assert_eq!(serde_json::to_value(&meta).unwrap(), written);
    }
}
