//! Point a runtime's build-time configuration at the runtime itself.
//!
//! python-build-standalone builds record where they were built: `prefix` is `/install`,
//! the archiver is `/tools/.../llvm-ar` and the compiler `clang`. Whatever builds a C
//! extension against the runtime (pip, `python3-config`, pkg-config) reads those values,
//! so after unpacking they are rewritten: the build prefix becomes the runtime's final
//! directory, a build-machine `ar` becomes `ar`, `clang`/`clang++` become `cc`/`c++`.
//! Files patched: `lib/python3.*/_sysconfigdata_*.py` (its stale bytecode is removed),
//! `lib/pkgconfig/*.pc` and `lib/python3.*/config-*/Makefile` (their `prefix=` line).

use std::path::{Path, PathBuf};

/// The compiler and linker variables whose leading `clang` is replaced.
const COMPILER_VARS: &[&str] = &[
    "CC",
    "CXX",
    "LDSHARED",
    "LDCXXSHARED",
    "BLDSHARED",
    "LINKCC",
    "CPP",
];

/// Rewrite the build-time configuration under `dir` for a runtime that will live at
/// `final_dir`. Returns the files changed.
pub fn patch(dir: &Path, final_dir: &Path) -> std::io::Result<Vec<PathBuf>> {
    let Some(new_prefix) = final_dir.to_str() else {
        return Ok(Vec::new()); // not representable in the text files; leave them
    };
    if new_prefix.contains(['\'', '\\', '\n']) {
        return Ok(Vec::new()); // it would need quoting in the Python literal; leave them
    }
    let mut changed = Vec::new();
    let mut old_prefix = None;
    for stdlib in dirs_starting(&dir.join("lib"), "python3")? {
        for data in files_starting(&stdlib, "_sysconfigdata_")? {
            if data.extension().is_none_or(|e| e != "py") {
                continue;
            }
            let text = fs_err::read_to_string(&data)?;
            let Some(old) = quoted_value(&text, "prefix") else {
                continue;
            };
            let mut patched = replace_path(&text, &old, new_prefix);
            patched = patch_tools(&patched);
            if patched != text {
                fs_err::write(&data, patched)?;
                remove_bytecode(&stdlib.join("__pycache__"), &data);
                changed.push(data);
            }
            old_prefix.get_or_insert(old);
        }
        if let Some(old) = &old_prefix {
            for config in dirs_starting(&stdlib, "config-")? {
                let makefile = config.join("Makefile");
                if patch_prefix_line(&makefile, old, new_prefix)? {
                    changed.push(makefile);
                }
            }
        }
    }
    if let Some(old) = &old_prefix {
        for pc in files_starting(&dir.join("lib/pkgconfig"), "")? {
            if pc.extension().is_some_and(|e| e == "pc") && patch_prefix_line(&pc, old, new_prefix)?
            {
                changed.push(pc);
            }
        }
    }
    Ok(changed)
}

/// The value of `'key': '<value>'` in a sysconfigdata file.
fn quoted_value(text: &str, key: &str) -> Option<String> {
    let start = text.find(&format!("'{key}': '"))? + key.len() + 5;
    let end = text[start..].find('\'')?;
    Some(text[start..start + end].to_string())
}

/// Replace `old` where it is a whole path or a path's leading part: followed by `/`, a
/// quote, a space, `:` or the end, and preceded by neither a path character nor a letter
/// (except the `-I`/`-L` of compiler flags).
fn replace_path(text: &str, old: &str, new: &str) -> String {
    if old.is_empty() || old == "/" || old == new {
        return text.to_string();
    }
    let bytes = text.as_bytes();
    let mut out = String::with_capacity(text.len());
    let mut last = 0;
    for (at, _) in text.match_indices(old) {
        let end = at + old.len();
        let after_ok = bytes
            .get(end)
            .is_none_or(|b| matches!(b, b'/' | b'\'' | b'"' | b' ' | b':'));
        let before_ok = match at {
            0 => true,
            _ => {
                let b = bytes[at - 1];
                let flag = at >= 2 && matches!(&bytes[at - 2..at], b"-I" | b"-L");
                flag || !(b.is_ascii_alphanumeric() || matches!(b, b'/' | b'.' | b'_' | b'-'))
            }
        };
        if after_ok && before_ok && at >= last {
            out.push_str(&text[last..at]);
            out.push_str(new);
            last = end;
        }
    }
    out.push_str(&text[last..]);
    out
}

/// A build machine's `ar` becomes `ar`; a leading `clang`/`clang++` becomes `cc`/`c++`.
fn patch_tools(text: &str) -> String {
    let mut out = text.to_string();
    if let Some(ar) = quoted_value(&out, "AR")
        && ar.starts_with('/')
        && ar.ends_with("ar")
    {
        out = out.replace(&format!("'AR': '{ar}'"), "'AR': 'ar'");
    }
    for var in COMPILER_VARS {
        for (from, to) in [("clang++", "c++"), ("clang", "cc")] {
            for end in [" ", "'"] {
                out = out.replace(
                    &format!("'{var}': '{from}{end}"),
                    &format!("'{var}': '{to}{end}"),
                );
            }
        }
    }
    out
}

/// Rewrite a `prefix=<old>` line (pkg-config, Makefile); false when there is none.
fn patch_prefix_line(path: &Path, old: &str, new: &str) -> std::io::Result<bool> {
    if old == new {
        return Ok(false);
    }
    let Ok(text) = fs_err::read_to_string(path) else {
        return Ok(false);
    };
    let mut changed = false;
    let lines: Vec<String> = text
        .split_inclusive('\n')
        .map(|line| {
            let Some(value) = line.strip_prefix("prefix=") else {
                return line.to_string();
            };
            let trimmed = value.trim();
            if trimmed == old {
                changed = true;
                line.replacen(old, new, 1)
            } else {
                line.to_string()
            }
        })
        .collect();
    if changed {
        fs_err::write(path, lines.concat())?;
    }
    Ok(changed)
}

/// Remove the cached bytecode of `source` (it no longer matches the source).
fn remove_bytecode(cache: &Path, source: &Path) {
    let Some(stem) = source.file_stem().and_then(|s| s.to_str()) else {
        return;
    };
    for pyc in files_starting(cache, &format!("{stem}.")).unwrap_or_default() {
        let _ = fs_err::remove_file(pyc);
    }
}

fn entries_starting(dir: &Path, prefix: &str, want_dir: bool) -> std::io::Result<Vec<PathBuf>> {
    let entries = match fs_err::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(e),
    };
    let mut out: Vec<PathBuf> = entries
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().starts_with(prefix))
        .filter(|e| {
            e.file_type()
                .is_ok_and(|t| t.is_dir() == want_dir && !t.is_symlink())
        })
        .map(|e| e.path())
        .collect();
    out.sort();
    Ok(out)
}

fn dirs_starting(dir: &Path, prefix: &str) -> std::io::Result<Vec<PathBuf>> {
    entries_starting(dir, prefix, true)
}

fn files_starting(dir: &Path, prefix: &str) -> std::io::Result<Vec<PathBuf>> {
    entries_starting(dir, prefix, false)
}

#[cfg(test)]
mod tests {
    use super::*;

    const DATA: &str = "# system configuration generated and used by the sysconfig module
build_time_vars = {'AR': '/tools/llvm/bin/llvm-ar',
 'BINDIR': '/install/bin',
 'CC': 'clang -pthread',
 'CFLAGS': '-O3 -I/install/include -fPIC',
 'CXX': 'clang++ -pthread',
 'LDSHARED': 'clang -pthread -shared -L/install/lib '
             '-L/tools/deps/lib',
 'MACHDEP': 'linux',
 'OTHER': '/installer/x /opt/install/y',
 'prefix': '/install'}
";

    #[test]
    fn rewrites_prefix_tools_and_compilers_and_leaves_lookalikes() {
        let dir = tempfile::tempdir().unwrap();
        let stdlib = dir.path().join("lib/python3.12");
        let cache = stdlib.join("__pycache__");
        fs_err::create_dir_all(&cache).unwrap();
        let data = stdlib.join("_sysconfigdata__linux_x86_64-linux-gnu.py");
        fs_err::write(&data, DATA).unwrap();
        let pyc = cache.join("_sysconfigdata__linux_x86_64-linux-gnu.cpython-312.pyc");
        fs_err::write(&pyc, b"stale").unwrap();
        let keep = cache.join("os.cpython-312.pyc");
        fs_err::write(&keep, b"other").unwrap();
        fs_err::create_dir_all(dir.path().join("lib/pkgconfig")).unwrap();
        let pc = dir.path().join("lib/pkgconfig/python-3.12.pc");
        fs_err::write(&pc, "prefix=/install\nlibdir=${prefix}/lib\n").unwrap();
        let config = stdlib.join("config-3.12-x86_64-linux-gnu");
        fs_err::create_dir_all(&config).unwrap();
        fs_err::write(
            config.join("Makefile"),
            "VERSION=3.12\nprefix=\t\t/install\n",
        )
        .unwrap();

        let changed = patch(dir.path(), Path::new("/home/u/rt")).unwrap();
        assert_eq!(changed.len(), 3, "{changed:?}");
        let text = fs_err::read_to_string(&data).unwrap();
        assert!(text.contains("'prefix': '/home/u/rt'"), "{text}");
        assert!(text.contains("'BINDIR': '/home/u/rt/bin'"), "{text}");
        assert!(text.contains("-I/home/u/rt/include"), "{text}");
        assert!(text.contains("-L/home/u/rt/lib"), "{text}");
        assert!(text.contains("'AR': 'ar'"), "{text}");
        assert!(text.contains("'CC': 'cc -pthread'"), "{text}");
        assert!(text.contains("'CXX': 'c++ -pthread'"), "{text}");
        assert!(text.contains("'LDSHARED': 'cc -pthread -shared"), "{text}");
        // Not the build prefix: a longer name, or inside another path.
        assert!(
            text.contains("'OTHER': '/installer/x /opt/install/y'"),
            "{text}"
        );
        assert!(!pyc.exists());
        assert!(keep.exists());
        assert_eq!(
            fs_err::read_to_string(&pc).unwrap(),
            "prefix=/home/u/rt\nlibdir=${prefix}/lib\n"
        );
        let makefile = fs_err::read_to_string(config.join("Makefile")).unwrap();
        assert!(makefile.ends_with("prefix=\t\t/home/u/rt\n"), "{makefile}");

        // Patching again changes nothing.
        assert!(
            patch(dir.path(), Path::new("/home/u/rt"))
                .unwrap()
                .is_empty()
        );
    }

    #[test]
    fn a_runtime_without_sysconfigdata_is_left_alone() {
        let dir = tempfile::tempdir().unwrap();
        fs_err::create_dir_all(dir.path().join("lib/python3.12")).unwrap();
        assert!(patch(dir.path(), Path::new("/x")).unwrap().is_empty());
        assert!(patch(dir.path(), Path::new("/it's")).unwrap().is_empty());
    }
}
