//! Windows: a file another process holds open cannot be deleted. Deleting an environment
//! first renames it to trash and then removes the tree, so a held file found only while
//! removing would leave the environment half deleted. Before anything is touched, every file
//! is opened once for delete without sharing; one that another process holds is reported
//! (after a short wait, for files a just-stopped backend is still closing).

use std::io;
use std::os::windows::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// `DELETE` access right.
const DELETE: u32 = 0x0001_0000;
/// Open a link itself, never its target.
const FILE_FLAG_OPEN_REPARSE_POINT: u32 = 0x0020_0000;
const ERROR_SHARING_VIOLATION: i32 = 32;
/// How long a held file may take to be let go before the delete is refused.
pub const WAIT: Duration = Duration::from_secs(2);

/// Wait (at most `wait`) until no file under `dir` is held open by another process.
pub fn wait_until_free(dir: &Path, wait: Duration) -> io::Result<()> {
    let began = Instant::now();
    loop {
        let Some(held) = first_held(dir) else {
            return Ok(());
        };
        if began.elapsed() >= wait {
            return Err(io::Error::new(
                io::ErrorKind::ResourceBusy,
                format!(
                    "`{}` is in use by another process; nothing was deleted (end that process, then delete again)",
                    held.display()
                ),
            ));
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// The first file under `dir` that cannot be opened for delete because another process
/// holds it. Links are not followed.
fn first_held(dir: &Path) -> Option<PathBuf> {
    let mut stack = vec![dir.to_path_buf()];
    while let Some(next) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&next) else {
            continue;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            let Ok(kind) = entry.file_type() else {
                continue;
            };
            if kind.is_dir() {
                stack.push(path);
                continue;
            }
            let open = std::fs::OpenOptions::new()
                .access_mode(DELETE)
                .share_mode(0)
                .custom_flags(FILE_FLAG_OPEN_REPARSE_POINT)
                .open(&path);
            if let Err(e) = open
                && e.raw_os_error() == Some(ERROR_SHARING_VIOLATION)
            {
                return Some(path);
            }
        }
    }
    None
}
