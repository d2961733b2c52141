//! Unpacking runtime archives (`.tar.gz`, `.tar.zst`, `.zip`) safely.
//!
//! The archive's top `python/` directory is stripped. Entries with absolute paths or
//! `..` components are refused, and so are links that point outside the destination;
//! nothing is ever written through a link that leaves it.

use std::io::{BufRead, Read};
use std::path::{Path, PathBuf};

use crate::{Progress, Reporter};

mod guard;
mod gzip;

use guard::{Checked, canonical_root, check_link, relative_target, unsafe_entry, verify_links};
use gzip::GzipBody;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("Unsupported archive `{archive}`: expected .tar.gz, .tgz, .tar.zst or .zip")]
    UnsupportedFormat { archive: String },
    #[error("Refused unsafe archive entry `{entry}`: {reason}")]
    Unsafe { entry: String, reason: &'static str },
    #[error("Failed to read archive `{archive}`")]
    Read {
        archive: String,
        #[source]
        source: std::io::Error,
    },
    #[error("Failed to write `{}`", path.display())]
    Write {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("Failed to read zip archive `{archive}`")]
    Zip {
        archive: String,
        #[source]
        source: zip::result::ZipError,
    },
    #[error("Archive `{archive}` is empty")]
    Empty { archive: String },
}

impl Error {
    /// What kind of failure this is (see [`crate::ErrorCode`]).
    pub fn code(&self) -> crate::ErrorCode {
        use crate::ErrorCode as C;
        match self {
            Self::Write { .. } => C::Internal,
            _ => C::Failed,
        }
    }
}

/// Archive formats a runtime can come in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    TarGz,
    TarZst,
    Zip,
}

impl Format {
    /// The format named by a file name or URL.
    pub fn of(name: &str) -> Result<Self, Error> {
        let lower = name.to_ascii_lowercase();
        if lower.ends_with(".tar.gz") || lower.ends_with(".tgz") {
            Ok(Self::TarGz)
        } else if lower.ends_with(".tar.zst") || lower.ends_with(".tar.zstd") {
            Ok(Self::TarZst)
        } else if lower.ends_with(".zip") {
            Ok(Self::Zip)
        } else {
            Err(Error::UnsupportedFormat {
                archive: name.to_string(),
            })
        }
    }

    /// Whether the format can be unpacked from a stream (while downloading).
    pub fn streams(self) -> bool {
        !matches!(self, Self::Zip)
    }
}

/// Decompressed tar data moves between the two threads of [`unpack_tar`] in blocks this big.
const BLOCK: usize = 1 << 20;

/// Unpack a tar stream (compressed as `format`) into `dest`, which must exist.
///
/// Two threads share the work: one decompresses into blocks, the caller's thread parses
/// the tar stream and writes the files, so decompression overlaps with the file system.
pub fn unpack_tar<R: BufRead + Send>(
    reader: R,
    format: Format,
    dest: &Path,
    name: &str,
    reporter: &dyn Reporter,
) -> Result<u64, Error> {
    let read_err = read_error(name);
    let mut decoder: Box<dyn Read + Send> = match format {
        Format::TarGz => Box::new(GzipBody::new(reader)),
        Format::TarZst => {
            Box::new(zstd::stream::read::Decoder::with_buffer(reader).map_err(read_err)?)
        }
        Format::Zip => {
            return Err(Error::UnsupportedFormat {
                archive: name.to_string(),
            });
        }
    };
    std::thread::scope(|scope| {
        let (full_tx, full_rx) = std::sync::mpsc::sync_channel::<std::io::Result<Vec<u8>>>(4);
        let (empty_tx, empty_rx) = std::sync::mpsc::channel::<Vec<u8>>();
        scope.spawn(move || decompress(&mut decoder, &full_tx, &empty_rx));
        let blocks = BlockReader {
            full: full_rx,
            empty: empty_tx,
            current: Vec::new(),
            pos: 0,
        };
        unpack_entries(blocks, dest, name, reporter)
    })
}

/// Fill blocks from `decoder` and send them until the end, an error, or the receiver leaves.
fn decompress(
    decoder: &mut dyn Read,
    full: &std::sync::mpsc::SyncSender<std::io::Result<Vec<u8>>>,
    empty: &std::sync::mpsc::Receiver<Vec<u8>>,
) {
    loop {
        let mut block = empty.try_recv().unwrap_or_else(|_| vec![0; BLOCK]);
        block.resize(BLOCK, 0);
        let filled = match fill(decoder, &mut block) {
            Ok(filled) => filled,
            Err(e) => {
                let _ = full.send(Err(e));
                return;
            }
        };
        if filled == 0 {
            return;
        }
        block.truncate(filled);
        if full.send(Ok(block)).is_err() {
            return;
        }
    }
}

/// Read until `buf` is full or the reader ends; how much was read.
fn fill(reader: &mut (impl Read + ?Sized), buf: &mut [u8]) -> std::io::Result<usize> {
    let mut filled = 0;
    while filled < buf.len() {
        match reader.read(&mut buf[filled..]) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(filled)
}

/// Reads the blocks [`decompress`] sends, handing each back for reuse once consumed.
struct BlockReader {
    full: std::sync::mpsc::Receiver<std::io::Result<Vec<u8>>>,
    empty: std::sync::mpsc::Sender<Vec<u8>>,
    current: Vec<u8>,
    pos: usize,
}

impl Read for BlockReader {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        if self.pos == self.current.len() {
            match self.full.recv() {
                Ok(block) => {
                    let used = std::mem::replace(&mut self.current, block?);
                    let _ = self.empty.send(used);
                    self.pos = 0;
                }
                Err(_) => return Ok(0),
            }
        }
        let n = buf.len().min(self.current.len() - self.pos);
        buf[..n].copy_from_slice(&self.current[self.pos..self.pos + n]);
        self.pos += n;
        Ok(n)
    }
}

fn read_error(archive: &str) -> impl Fn(std::io::Error) -> Error + Copy + '_ {
    move |source| Error::Read {
        archive: archive.to_string(),
        source,
    }
}

fn unpack_entries(
    blocks: BlockReader,
    dest: &Path,
    name: &str,
    reporter: &dyn Reporter,
) -> Result<u64, Error> {
    let read_err = read_error(name);
    let mut archive = tar::Archive::new(blocks);
    let mut unpacker = Unpacker::new(dest)?;
    let mut count = 0u64;
    for entry in archive.entries().map_err(read_err)? {
        let mut entry = entry.map_err(read_err)?;
        let raw = entry.path().map_err(read_err)?.into_owned();
        let link = |entry: &tar::Entry<'_, BlockReader>, what| {
            Ok::<_, Error>(
                entry
                    .link_name()
                    .map_err(read_err)?
                    .ok_or_else(|| unsafe_entry(&raw, what))?
                    .into_owned(),
            )
        };
        let kind = match entry.header().entry_type() {
            tar::EntryType::XGlobalHeader | tar::EntryType::XHeader => continue,
            tar::EntryType::Directory => EntryKind::Directory,
            tar::EntryType::Symlink => {
                EntryKind::Symlink(link(&entry, "a symlink without a target")?)
            }
            tar::EntryType::Link => {
                EntryKind::HardLink(link(&entry, "a hard link without a target")?)
            }
            tar::EntryType::Regular | tar::EntryType::Continuous | tar::EntryType::GNUSparse => {
                EntryKind::File {
                    mode: entry.header().mode().ok(),
                    mtime: entry.header().mtime().ok(),
                }
            }
            _ => EntryKind::Special,
        };
        if !unpacker.entry(&raw, kind, &mut entry)? {
            continue;
        }
        count += 1;
        if count.is_multiple_of(256) {
            reporter.report(Progress::Extract {
                entries: count,
                total: None,
            });
        }
    }
    if count == 0 {
        return Err(Error::Empty {
            archive: name.to_string(),
        });
    }
    unpacker.finish()?;
    reporter.report(Progress::Extract {
        entries: count,
        total: Some(count),
    });
    Ok(count)
}

/// Unpack a zip archive file into `dest`, which must exist.
pub fn unpack_zip(path: &Path, dest: &Path, reporter: &dyn Reporter) -> Result<u64, Error> {
    let name = path.display().to_string();
    let zip_err = |source| Error::Zip {
        archive: name.clone(),
        source,
    };
    let read_err = |source| Error::Read {
        archive: name.clone(),
        source,
    };
    let file = fs_err::File::open(path).map_err(read_err)?;
    let mut archive = zip::ZipArchive::new(std::io::BufReader::new(file)).map_err(zip_err)?;
    let total = archive.len() as u64;
    if total == 0 {
        return Err(Error::Empty { archive: name });
    }
    let mut unpacker = Unpacker::new(dest)?;
    for i in 0..archive.len() {
        let mut file = archive.by_index(i).map_err(zip_err)?;
        let raw = PathBuf::from(file.name());
        let mode = file.unix_mode();
        let kind = if file.is_dir() {
            EntryKind::Directory
        } else if mode.is_some_and(|m| m & 0o170000 == 0o120000) {
            let mut link = String::new();
            file.read_to_string(&mut link).map_err(read_err)?;
            EntryKind::Symlink(PathBuf::from(link))
        } else {
            EntryKind::File { mode, mtime: None }
        };
        unpacker.entry(&raw, kind, &mut file)?;
        let done = i as u64 + 1;
        if done.is_multiple_of(256) {
            reporter.report(Progress::Extract {
                entries: done,
                total: Some(total),
            });
        }
    }
    unpacker.finish()?;
    reporter.report(Progress::Extract {
        entries: total,
        total: Some(total),
    });
    Ok(total)
}

/// What one archive entry is, whatever the archive's format.
enum EntryKind {
    Directory,
    /// A symbolic link to this target (relative to the link's directory).
    Symlink(PathBuf),
    /// A hard link to this other entry of the archive.
    HardLink(PathBuf),
    /// A regular file with its mode and modification time, when the archive has them.
    File {
        mode: Option<u32>,
        mtime: Option<u64>,
    },
    /// A device, fifo or anything else: refused.
    Special,
}

/// Writes entries of any format into the destination, through the path guard.
struct Unpacker<'a> {
    dest: &'a Path,
    root: PathBuf,
    checked: Checked,
    buffer: Vec<u8>,
}

impl<'a> Unpacker<'a> {
    fn new(dest: &'a Path) -> Result<Self, Error> {
        Ok(Self {
            dest,
            root: canonical_root(dest)?,
            checked: Checked::default(),
            buffer: vec![0; BLOCK],
        })
    }

    /// Unpack one entry, named `raw` in the archive, with content `data`. `false` when
    /// it was skipped (the archive's top directory).
    fn entry(&mut self, raw: &Path, kind: EntryKind, data: &mut dyn Read) -> Result<bool, Error> {
        let Some(rel) = relative_target(raw)? else {
            return Ok(false);
        };
        let target = self.dest.join(&rel);
        self.checked.ensure(&self.root, &target)?;
        let write_err = |source| Error::Write {
            path: target.clone(),
            source,
        };
        match kind {
            EntryKind::Directory => fs_err::create_dir_all(&target).map_err(write_err)?,
            EntryKind::Symlink(link) => {
                check_link(raw, &rel, &link)?;
                remove_existing(&target);
                make_symlink(&link, &target).map_err(write_err)?;
                self.checked.forget();
            }
            EntryKind::HardLink(link) => {
                let Some(link_rel) = relative_target(&link)? else {
                    return Err(unsafe_entry(raw, "a hard link to the archive root"));
                };
                let source = self.dest.join(link_rel);
                self.checked.ensure(&self.root, &source)?;
                remove_existing(&target);
                fs_err::hard_link(&source, &target).map_err(write_err)?;
            }
            EntryKind::File { mode, mtime } => {
                write_file(data, &target, mode, mtime, &mut self.buffer).map_err(write_err)?;
            }
            EntryKind::Special => {
                return Err(unsafe_entry(raw, "a device, fifo or other special file"));
            }
        }
        Ok(true)
    }

    /// After the last entry: every link, resolved, stays inside the destination.
    fn finish(self) -> Result<(), Error> {
        verify_links(&self.root, self.dest)
    }
}

/// Write a regular file entry with large writes, its mode (no setuid/setgid; 0o644 when
/// the archive has none) and mtime. It is created anew (`O_EXCL`), so it is never written
/// through a link already there.
fn write_file(
    data: &mut dyn Read,
    target: &Path,
    mode: Option<u32>,
    mtime: Option<u64>,
    buffer: &mut [u8],
) -> std::io::Result<()> {
    #[cfg(unix)]
    let mode = mode.unwrap_or(0o644) & 0o777;
    #[cfg(not(unix))]
    let _ = mode;
    let mut options = fs_err::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    fs_err::os::unix::fs::OpenOptionsExt::mode(&mut options, mode);
    let mut file = match options.open(target) {
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
            remove_existing(target);
            options.open(target)?
        }
        other => other?,
    };
    loop {
        let filled = fill(data, buffer)?;
        if filled == 0 {
            break;
        }
        std::io::Write::write_all(&mut file, &buffer[..filled])?;
    }
    // The umask applied at creation; the archive's mode wins.
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        file.set_permissions(std::fs::Permissions::from_mode(mode))?;
    }
    if let Some(mtime) = mtime {
        let when = std::time::UNIX_EPOCH + std::time::Duration::from_secs(mtime);
        file.set_times(
            std::fs::FileTimes::new()
                .set_accessed(when)
                .set_modified(when),
        )?;
    }
    Ok(())
}

fn remove_existing(target: &Path) {
    if let Ok(meta) = fs_err::symlink_metadata(target) {
        if meta.is_dir() {
            let _ = fs_err::remove_dir_all(target);
        } else {
            let _ = fs_err::remove_file(target);
        }
    }
}

#[cfg(unix)]
fn make_symlink(link: &Path, target: &Path) -> std::io::Result<()> {
    std::os::unix::fs::symlink(link, target)
}

#[cfg(windows)]
fn make_symlink(link: &Path, target: &Path) -> std::io::Result<()> {
    std::os::windows::fs::symlink_file(link, target)
}

#[cfg(test)]
mod tests;
