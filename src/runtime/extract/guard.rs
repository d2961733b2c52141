//! The path guard: what an archive entry may name. Absolute paths and `..` are refused,
//! links must stay inside the destination, and nothing is written through a link that
//! leaves it (checked on the resolved parent, and again over the whole tree at the end).

use std::path::{Component, Path, PathBuf};

use super::Error;

pub(super) fn unsafe_entry(raw: &Path, reason: &'static str) -> Error {
    Error::Unsafe {
        entry: raw.display().to_string(),
        reason,
    }
}

/// The entry's path inside the destination, with the top `python/` stripped;
/// `None` for the top directory itself.
pub(super) fn relative_target(raw: &Path) -> Result<Option<PathBuf>, Error> {
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
pub(super) fn check_link(raw: &Path, rel: &Path, link: &Path) -> Result<(), Error> {
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

pub(super) fn canonical_root(dest: &Path) -> Result<PathBuf, Error> {
    fs_err::canonicalize(dest).map_err(|source| Error::Write {
        path: dest.to_path_buf(),
        source,
    })
}

/// Parent directories already created and checked to be inside the destination.
/// Creating a link may change what a path resolves to, so links clear it.
#[derive(Default)]
pub(super) struct Checked(std::collections::HashSet<PathBuf>);

impl Checked {
    pub(super) fn ensure(&mut self, root: &Path, target: &Path) -> Result<(), Error> {
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

    pub(super) fn forget(&mut self) {
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
pub(super) fn verify_links(root: &Path, dest: &Path) -> Result<(), Error> {
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
