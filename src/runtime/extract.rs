//! Unpacking runtime archives (`.tar.gz`, `.tar.zst`, `.zip`) safely.
//!
//! The archive's top `python/` directory is stripped. Entries with absolute paths or
//! `..` components are refused, and so are links that point outside the destination;
//! nothing is ever written through a link that leaves it.

use std::io::{BufRead, Read};
use std::path::{Component, Path, PathBuf};

use crate::{Progress, Reporter};

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("Unsupported archive `{0}`: expected .tar.gz, .tgz, .tar.zst or .zip")]
    UnsupportedFormat(String),
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
    #[error("Archive `{0}` is empty")]
    Empty(String),
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
            Err(Error::UnsupportedFormat(name.to_string()))
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
        Format::Zip => return Err(Error::UnsupportedFormat(name.to_string())),
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

/// The data of a gzip stream, checked against its length but not its CRC-32: the archive's
/// sha256 is verified before anything unpacked from it is used, so the CRC would be
/// redundant work (about a tenth of the decompression time).
struct GzipBody<R: BufRead> {
    inflate: flate2::bufread::DeflateDecoder<R>,
    state: GzipState,
    length: u32,
}

#[derive(PartialEq)]
enum GzipState {
    Header,
    Body,
    Done,
}

impl<R: BufRead> GzipBody<R> {
    fn new(reader: R) -> Self {
        Self {
            inflate: flate2::bufread::DeflateDecoder::new(reader),
            state: GzipState::Header,
            length: 0,
        }
    }
}

fn invalid(message: &'static str) -> std::io::Error {
    std::io::Error::new(std::io::ErrorKind::InvalidData, message)
}

/// Skip a gzip member header (RFC 1952 section 2.3).
fn skip_gzip_header(reader: &mut impl BufRead) -> std::io::Result<()> {
    let mut fixed = [0u8; 10];
    reader.read_exact(&mut fixed)?;
    if fixed[..3] != [0x1f, 0x8b, 8] {
        return Err(invalid("not a gzip (deflate) stream"));
    }
    let flags = fixed[3];
    if flags & 0xe0 != 0 {
        return Err(invalid("gzip header with reserved flags set"));
    }
    if flags & 0x04 != 0 {
        let mut len = [0u8; 2];
        reader.read_exact(&mut len)?;
        let mut extra = vec![0u8; u16::from_le_bytes(len).into()];
        reader.read_exact(&mut extra)?;
    }
    for zero_terminated in [0x08, 0x10] {
        if flags & zero_terminated != 0 {
            let mut text = Vec::new();
            if reader.read_until(0, &mut text)? == 0 || text.last() != Some(&0) {
                return Err(invalid("truncated gzip header"));
            }
        }
    }
    if flags & 0x02 != 0 {
        reader.read_exact(&mut [0u8; 2])?;
    }
    Ok(())
}

impl<R: BufRead> Read for GzipBody<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        if self.state == GzipState::Header {
            skip_gzip_header(self.inflate.get_mut())?;
            self.state = GzipState::Body;
        }
        if self.state == GzipState::Done || buf.is_empty() {
            return Ok(0);
        }
        let n = self.inflate.read(buf)?;
        if n > 0 {
            self.length = self.length.wrapping_add(n as u32);
            return Ok(n);
        }
        // The end of the deflate data: the trailer holds CRC-32 and length (mod 2^32).
        let mut trailer = [0u8; 8];
        self.inflate.get_mut().read_exact(&mut trailer)?;
        if u32::from_le_bytes([trailer[4], trailer[5], trailer[6], trailer[7]]) != self.length {
            return Err(invalid("gzip stream length does not match its trailer"));
        }
        self.state = GzipState::Done;
        Ok(0)
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
    let root = canonical_root(dest)?;
    let mut checked = Checked::default();
    let mut buffer = vec![0; BLOCK];
    let mut count = 0u64;
    for entry in archive.entries().map_err(read_err)? {
        let mut entry = entry.map_err(read_err)?;
        let kind = entry.header().entry_type();
        if matches!(
            kind,
            tar::EntryType::XGlobalHeader | tar::EntryType::XHeader
        ) {
            continue;
        }
        let raw = entry.path().map_err(read_err)?.into_owned();
        let Some(rel) = relative_target(&raw)? else {
            continue;
        };
        let target = dest.join(&rel);
        checked.ensure(&root, &target)?;
        let write_err = |source| Error::Write {
            path: target.clone(),
            source,
        };
        match kind {
            tar::EntryType::Directory => fs_err::create_dir_all(&target).map_err(write_err)?,
            tar::EntryType::Symlink => {
                let link = entry
                    .link_name()
                    .map_err(read_err)?
                    .ok_or_else(|| unsafe_entry(&raw, "a symlink without a target"))?
                    .into_owned();
                check_link(&raw, &rel, &link)?;
                remove_existing(&target);
                make_symlink(&link, &target).map_err(write_err)?;
                checked.forget();
            }
            tar::EntryType::Link => {
                let link = entry
                    .link_name()
                    .map_err(read_err)?
                    .ok_or_else(|| unsafe_entry(&raw, "a hard link without a target"))?
                    .into_owned();
                let Some(link_rel) = relative_target(&link)? else {
                    return Err(unsafe_entry(&raw, "a hard link to the archive root"));
                };
                let source = dest.join(link_rel);
                checked.ensure(&root, &source)?;
                remove_existing(&target);
                fs_err::hard_link(&source, &target).map_err(write_err)?;
            }
            tar::EntryType::Regular | tar::EntryType::Continuous | tar::EntryType::GNUSparse => {
                write_file(&mut entry, &target, &mut buffer).map_err(write_err)?;
            }
            _ => return Err(unsafe_entry(&raw, "a device, fifo or other special file")),
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
        return Err(Error::Empty(name.to_string()));
    }
    verify_links(&root, dest)?;
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
        return Err(Error::Empty(name));
    }
    let root = canonical_root(dest)?;
    let mut checked = Checked::default();
    for i in 0..archive.len() {
        let mut file = archive.by_index(i).map_err(zip_err)?;
        let raw = PathBuf::from(file.name());
        let Some(rel) = relative_target(&raw)? else {
            continue;
        };
        let target = dest.join(&rel);
        checked.ensure(&root, &target)?;
        let write_err = |source| Error::Write {
            path: target.clone(),
            source,
        };
        let mode = file.unix_mode();
        let is_link = mode.is_some_and(|m| m & 0o170000 == 0o120000);
        if file.is_dir() {
            fs_err::create_dir_all(&target).map_err(write_err)?;
        } else if is_link {
            let mut link = String::new();
            file.read_to_string(&mut link).map_err(read_err)?;
            let link = PathBuf::from(link);
            check_link(&raw, &rel, &link)?;
            remove_existing(&target);
            make_symlink(&link, &target).map_err(write_err)?;
            checked.forget();
        } else {
            remove_existing(&target);
            let mut out = fs_err::File::create(&target).map_err(write_err)?;
            std::io::copy(&mut file, &mut out).map_err(write_err)?;
            #[cfg(unix)]
            if let Some(mode) = mode {
                use std::os::unix::fs::PermissionsExt;
                fs_err::set_permissions(&target, std::fs::Permissions::from_mode(mode & 0o7777))
                    .map_err(write_err)?;
            }
        }
        let done = i as u64 + 1;
        if done.is_multiple_of(256) {
            reporter.report(Progress::Extract {
                entries: done,
                total: Some(total),
            });
        }
    }
    verify_links(&root, dest)?;
    reporter.report(Progress::Extract {
        entries: total,
        total: Some(total),
    });
    Ok(total)
}

/// Write a regular file entry with large writes, its mode (no setuid/setgid) and mtime.
/// It is created anew (`O_EXCL`), so it is never written through a link already there.
fn write_file<R: Read>(
    entry: &mut tar::Entry<'_, R>,
    target: &Path,
    buffer: &mut [u8],
) -> std::io::Result<()> {
    let header = entry.header();
    #[cfg(unix)]
    let mode = header.mode().unwrap_or(0o644) & 0o777;
    let mtime = header.mtime().ok();
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
        let filled = fill(entry, buffer)?;
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

fn unsafe_entry(raw: &Path, reason: &'static str) -> Error {
    Error::Unsafe {
        entry: raw.display().to_string(),
        reason,
    }
}

/// The entry's path inside the destination, with the top `python/` stripped;
/// `None` for the top directory itself.
fn relative_target(raw: &Path) -> Result<Option<PathBuf>, Error> {
    let mut out = PathBuf::new();
    for component in raw.components() {
        match component {
            Component::Normal(part) => out.push(part),
            Component::CurDir => {}
            Component::ParentDir => return Err(unsafe_entry(raw, "it contains a `..` component")),
            Component::RootDir | Component::Prefix(_) => {
                return Err(unsafe_entry(raw, "it is an absolute path"));
            }
        }
    }
    let stripped = out
        .strip_prefix("python")
        .map(Path::to_path_buf)
        .unwrap_or(out);
    Ok((!stripped.as_os_str().is_empty()).then_some(stripped))
}

/// A link at `rel` (inside the destination) pointing at `link` must stay inside.
fn check_link(raw: &Path, rel: &Path, link: &Path) -> Result<(), Error> {
    if link.is_absolute()
        || link
            .components()
            .any(|c| matches!(c, Component::Prefix(_) | Component::RootDir))
    {
        return Err(unsafe_entry(raw, "it is a link to an absolute path"));
    }
    // Walk from the link's directory; depth below the destination must never go negative.
    let mut depth: i64 = rel
        .parent()
        .map(|p| p.components().count() as i64)
        .unwrap_or(0);
    for component in link.components() {
        match component {
            Component::ParentDir => depth -= 1,
            Component::Normal(_) => depth += 1,
            _ => {}
        }
        if depth < 0 {
            return Err(unsafe_entry(
                raw,
                "it is a link that points outside the destination",
            ));
        }
    }
    Ok(())
}

fn canonical_root(dest: &Path) -> Result<PathBuf, Error> {
    fs_err::canonicalize(dest).map_err(|source| Error::Write {
        path: dest.to_path_buf(),
        source,
    })
}

/// Parent directories already created and checked to be inside the destination.
/// Creating a link may change what a path resolves to, so links clear it.
#[derive(Default)]
struct Checked(std::collections::HashSet<PathBuf>);

impl Checked {
    fn ensure(&mut self, root: &Path, target: &Path) -> Result<(), Error> {
        let Some(parent) = target.parent() else {
            return Ok(());
        };
        if self.0.contains(parent) {
            return Ok(());
        }
        ensure_parent_inside(root, target)?;
        self.0.insert(parent.to_path_buf());
        Ok(())
    }

    fn forget(&mut self) {
        self.0.clear();
    }
}

/// Create the target's parent and make sure, links resolved, it is inside `root`.
fn ensure_parent_inside(root: &Path, target: &Path) -> Result<(), Error> {
    let Some(parent) = target.parent() else {
        return Ok(());
    };
    fs_err::create_dir_all(parent).map_err(|source| Error::Write {
        path: parent.to_path_buf(),
        source,
    })?;
    let real = fs_err::canonicalize(parent).map_err(|source| Error::Write {
        path: parent.to_path_buf(),
        source,
    })?;
    if !real.starts_with(root) {
        return Err(Error::Unsafe {
            entry: target.display().to_string(),
            reason: "it would be written through a link that leaves the destination",
        });
    }
    Ok(())
}

/// After unpacking: every symlink, resolved, stays inside `root` (or dangles inside it).
fn verify_links(root: &Path, dest: &Path) -> Result<(), Error> {
    let mut stack = vec![dest.to_path_buf()];
    while let Some(dir) = stack.pop() {
        let Ok(entries) = fs_err::read_dir(&dir) else {
            continue;
        };
        for entry in entries.flatten() {
            let Ok(kind) = entry.file_type() else {
                continue;
            };
            let path = entry.path();
            if kind.is_dir() {
                stack.push(path);
            } else if kind.is_symlink()
                && let Ok(real) = fs_err::canonicalize(&path)
                && !real.starts_with(root)
            {
                return Err(Error::Unsafe {
                    entry: path.display().to_string(),
                    reason: "it is a link that resolves outside the destination",
                });
            }
        }
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
mod tests {
    use super::*;
    use crate::NoReporter;

    fn tar_with(build: impl FnOnce(&mut tar::Builder<Vec<u8>>)) -> Vec<u8> {
        let mut builder = tar::Builder::new(Vec::new());
        build(&mut builder);
        builder.into_inner().unwrap()
    }

    fn file_header(size: u64) -> tar::Header {
        let mut h = tar::Header::new_gnu();
        h.set_size(size);
        h.set_mode(0o755);
        h.set_entry_type(tar::EntryType::Regular);
        h
    }

    /// Write a raw name into a header, bypassing the tar crate's own path checks.
    fn raw_name(h: &mut tar::Header, name: &str) {
        let gnu = h.as_gnu_mut().unwrap();
        gnu.name[..name.len()].copy_from_slice(name.as_bytes());
        h.set_cksum();
    }

    #[test]
    fn strips_python_and_keeps_modes() {
        let data = tar_with(|b| {
            let mut h = file_header(2);
            b.append_data(&mut h, "python/bin/python3", &b"hi"[..])
                .unwrap();
            let mut l = tar::Header::new_gnu();
            l.set_entry_type(tar::EntryType::Symlink);
            l.set_size(0);
            b.append_link(&mut l, "python/bin/python", "python3")
                .unwrap();
        });
        let dir = tempfile::tempdir().unwrap();
        let zst = zstd::encode_all(&data[..], 3).unwrap();
        let n = unpack_tar(
            &zst[..],
            Format::TarZst,
            dir.path(),
            "t.tar.zst",
            &NoReporter,
        )
        .unwrap();
        assert_eq!(n, 2);
        assert_eq!(fs_err::read(dir.path().join("bin/python")).unwrap(), b"hi");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = fs_err::metadata(dir.path().join("bin/python3"))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o111, 0o111);
        }
    }

    #[test]
    fn files_larger_than_a_block_keep_content_mode_and_mtime() {
        // Pseudo-random bytes, so gzip cannot shrink them to one block of output.
        let big: Vec<u8> = (0..(BLOCK * 2 + 12345) as u64)
            .map(|i| (i.wrapping_mul(2654435761) >> 13) as u8)
            .collect();
        let data = tar_with(|b| {
            let mut h = file_header(big.len() as u64);
            h.set_mode(0o640);
            h.set_mtime(1_000_000_000);
            b.append_data(&mut h, "python/lib/big.bin", &big[..])
                .unwrap();
            let mut small = file_header(3);
            small.set_mtime(1_234_567_890);
            b.append_data(&mut small, "python/lib/small.py", &b"x=1"[..])
                .unwrap();
        });
        let dir = tempfile::tempdir().unwrap();
        let n = unpack_tar(&gz(&data)[..], Format::TarGz, dir.path(), "t", &NoReporter).unwrap();
        assert_eq!(n, 2);
        assert!(fs_err::read(dir.path().join("lib/big.bin")).unwrap() == big);
        let meta = fs_err::metadata(dir.path().join("lib/small.py")).unwrap();
        let mtime = meta
            .modified()
            .unwrap()
            .duration_since(std::time::UNIX_EPOCH);
        assert_eq!(mtime.unwrap().as_secs(), 1_234_567_890);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let big_meta = fs_err::metadata(dir.path().join("lib/big.bin")).unwrap();
            assert_eq!(big_meta.permissions().mode() & 0o7777, 0o640);
        }
    }

    #[test]
    fn a_file_after_a_link_of_the_same_name_replaces_the_link() {
        let outer = tempfile::tempdir().unwrap();
        let dest = outer.path().join("d");
        fs_err::create_dir_all(&dest).unwrap();
        fs_err::write(dest.join("victim"), b"keep").unwrap();
        let data = tar_with(|b| {
            let mut l = tar::Header::new_gnu();
            l.set_entry_type(tar::EntryType::Symlink);
            l.set_size(0);
            b.append_link(&mut l, "python/f", "victim").unwrap();
            let mut h = file_header(3);
            b.append_data(&mut h, "python/f", &b"new"[..]).unwrap();
        });
        unpack_tar(&gz(&data)[..], Format::TarGz, &dest, "t", &NoReporter).unwrap();
        assert_eq!(fs_err::read(dest.join("victim")).unwrap(), b"keep");
        assert_eq!(fs_err::read(dest.join("f")).unwrap(), b"new");
        assert!(
            !fs_err::symlink_metadata(dest.join("f"))
                .unwrap()
                .is_symlink()
        );
    }

    #[test]
    fn a_corrupt_stream_is_an_error_naming_the_archive() {
        let data = tar_with(|b| {
            let mut h = file_header(BLOCK as u64);
            b.append_data(&mut h, "python/x", &vec![7u8; BLOCK][..])
                .unwrap();
        });
        let mut gz = gz(&data);
        let cut = gz.len() / 2;
        gz.truncate(cut);
        let dir = tempfile::tempdir().unwrap();
        let err = unpack_tar(
            &gz[..],
            Format::TarGz,
            dir.path(),
            "cut.tar.gz",
            &NoReporter,
        )
        .unwrap_err();
        assert!(err.to_string().contains("cut.tar.gz"), "{err}");
    }

    #[test]
    fn gzip_headers_with_every_optional_field_and_a_wrong_length_trailer() {
        let data = tar_with(|b| {
            let mut h = file_header(5);
            b.append_data(&mut h, "python/a.txt", &b"hello"[..])
                .unwrap();
        });
        let mut encoder = flate2::GzBuilder::new()
            .filename("x.tar")
            .comment("made by a test")
            .extra(vec![1, 2, 3])
            .write(Vec::new(), flate2::Compression::fast());
        std::io::Write::write_all(&mut encoder, &data).unwrap();
        let gz = encoder.finish().unwrap();
        let dir = tempfile::tempdir().unwrap();
        unpack_tar(&gz[..], Format::TarGz, dir.path(), "t", &NoReporter).unwrap();
        assert_eq!(fs_err::read(dir.path().join("a.txt")).unwrap(), b"hello");

        let mut body = Vec::new();
        GzipBody::new(&gz[..]).read_to_end(&mut body).unwrap();
        assert_eq!(body, data);
        let mut wrong = gz.clone();
        let at = wrong.len() - 4;
        wrong[at] ^= 1;
        let err = GzipBody::new(&wrong[..])
            .read_to_end(&mut Vec::new())
            .unwrap_err();
        assert!(err.to_string().contains("length"), "{err}");
        let err = GzipBody::new(&data[..])
            .read_to_end(&mut Vec::new())
            .unwrap_err();
        assert!(err.to_string().contains("not a gzip"), "{err}");
    }

    #[test]
    fn refuses_parent_dir_entries_and_writes_nothing_outside() {
        let data = tar_with(|b| {
            let mut h = file_header(1);
            raw_name(&mut h, "python/../../evil");
            b.append(&h, &b"x"[..]).unwrap();
        });
        let outer = tempfile::tempdir().unwrap();
        let dest = outer.path().join("a/b");
        fs_err::create_dir_all(&dest).unwrap();
        let gz = gz(&data);
        let err = unpack_tar(&gz[..], Format::TarGz, &dest, "t", &NoReporter).unwrap_err();
        assert!(matches!(err, Error::Unsafe { .. }), "{err}");
        assert!(!outer.path().join("evil").exists());
    }

    #[test]
    fn refuses_absolute_and_escaping_links() {
        for (link, name) in [
            ("/etc/passwd", "python/lib/abs"),
            ("../../../x", "python/lib/rel"),
        ] {
            let data = tar_with(|b| {
                let mut l = tar::Header::new_gnu();
                l.set_entry_type(tar::EntryType::Symlink);
                l.set_size(0);
                b.append_link(&mut l, name, link).unwrap();
            });
            let dir = tempfile::tempdir().unwrap();
            let err = unpack_tar(&gz(&data)[..], Format::TarGz, dir.path(), "t", &NoReporter)
                .unwrap_err();
            assert!(err.to_string().contains("link"), "{err}");
        }
    }

    #[test]
    fn never_writes_through_a_link_that_leaves() {
        // A link that looks inside lexically but resolves outside through another link.
        let outer = tempfile::tempdir().unwrap();
        let dest = outer.path().join("d");
        fs_err::create_dir_all(&dest).unwrap();
        let data = tar_with(|b| {
            let mut l = tar::Header::new_gnu();
            l.set_entry_type(tar::EntryType::Symlink);
            l.set_size(0);
            b.append_link(&mut l, "python/here", ".").unwrap();
            let mut l2 = tar::Header::new_gnu();
            l2.set_entry_type(tar::EntryType::Symlink);
            l2.set_size(0);
            b.append_link(&mut l2, "python/up", "here/..").unwrap();
            let mut h = file_header(1);
            b.append_data(&mut h, "python/up/escaped", &b"x"[..])
                .unwrap();
        });
        let result = unpack_tar(&gz(&data)[..], Format::TarGz, &dest, "t", &NoReporter);
        assert!(result.is_err());
        assert!(!outer.path().join("escaped").exists());
    }

    #[test]
    fn zip_round_trip_and_format_detection() {
        let dir = tempfile::tempdir().unwrap();
        let zpath = dir.path().join("a.zip");
        {
            let mut w = zip::ZipWriter::new(std::fs::File::create(&zpath).unwrap());
            let opts = zip::write::SimpleFileOptions::default().unix_permissions(0o755);
            w.add_directory("python/bin/", opts).unwrap();
            w.start_file("python/bin/python3", opts).unwrap();
            std::io::Write::write_all(&mut w, b"zz").unwrap();
            w.finish().unwrap();
        }
        let dest = dir.path().join("out");
        fs_err::create_dir_all(&dest).unwrap();
        assert_eq!(unpack_zip(&zpath, &dest, &NoReporter).unwrap(), 2);
        assert_eq!(fs_err::read(dest.join("bin/python3")).unwrap(), b"zz");
        assert_eq!(Format::of("x.tar.gz").unwrap(), Format::TarGz);
        assert_eq!(Format::of("x.TAR.ZST").unwrap(), Format::TarZst);
        assert!(Format::of("x.rar").is_err());
    }

    fn gz(data: &[u8]) -> Vec<u8> {
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        std::io::Write::write_all(&mut e, data).unwrap();
        e.finish().unwrap()
    }
}
