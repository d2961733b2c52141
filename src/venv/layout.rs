//! A virtual environment written in-process, laid out as the `venv` module lays it out:
//! `pyvenv.cfg`, the interpreter links (copies on Windows), `site-packages` and the
//! activation scripts (the runtime's own `venv` templates, filled in).
//!
//! No process is started: this is what makes creating an environment cheaper than
//! running `uv venv`.

use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("Failed to write `{}`", path.display())]
    Write {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("Failed to read the base interpreter `{}`", path.display())]
    Interpreter {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// The base interpreter a venv is made from.
#[derive(Debug, Clone)]
pub struct BaseInterpreter<'a> {
    /// Its executable.
    pub python: &'a Path,
    /// Its installation prefix (where `lib/pythonX.Y/venv/scripts` lives).
    pub prefix: &'a Path,
    /// `3.12.7`.
    pub version: &'a str,
}

/// Write a virtual environment at `dir` (which must not exist or be empty).
pub fn create(base: &BaseInterpreter<'_>, dir: &Path) -> Result<(), Error> {
    let write = |path: &Path| {
        let path = path.to_path_buf();
        move |source| Error::Write { path, source }
    };
    let python = fs_err::canonicalize(base.python).map_err(|source| Error::Interpreter {
        path: base.python.to_path_buf(),
        source,
    })?;
    let home = python.parent().unwrap_or(Path::new("/")).to_path_buf();
    let mut parts = base.version.split('.');
    let major_minor = format!(
        "{}.{}",
        parts.next().unwrap_or("3"),
        parts.next().unwrap_or("0")
    );
    let prompt = dir
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();

    let (bin_name, site) = if cfg!(windows) {
        ("Scripts", dir.join("Lib").join("site-packages"))
    } else {
        (
            "bin",
            dir.join("lib")
                .join(format!("python{major_minor}"))
                .join("site-packages"),
        )
    };
    let bin = dir.join(bin_name);
    fs_err::create_dir_all(&site).map_err(write(&site))?;
    fs_err::create_dir_all(&bin).map_err(write(&bin))?;
    let include = dir.join(if cfg!(windows) { "Include" } else { "include" });
    fs_err::create_dir_all(&include).map_err(write(&include))?;
    #[cfg(all(unix, target_pointer_width = "64", not(target_os = "macos")))]
    {
        let lib64 = dir.join("lib64");
        std::os::unix::fs::symlink("lib", &lib64).map_err(|source| Error::Write {
            path: lib64,
            source,
        })?;
    }

    link_interpreters(&python, &bin, &major_minor)?;

    let cfg = dir.join(super::environment::PYVENV_CFG);
    let text = format!(
        "home = {}\nimplementation = CPython\nversion_info = {}\ninclude-system-site-packages = false\nprompt = {prompt}\n",
        home.display(),
        base.version,
    );
    fs_err::write(&cfg, text).map_err(write(&cfg))?;
    let ignore = dir.join(".gitignore");
    fs_err::write(&ignore, "# Created by beep-host automatically.\n*\n").map_err(write(&ignore))?;

    write_activation_scripts(base, dir, &bin, bin_name, &major_minor, &prompt)
}

#[cfg(unix)]
fn link_interpreters(python: &Path, bin: &Path, major_minor: &str) -> Result<(), Error> {
    let link = |target: &Path, name: &str| {
        let path = bin.join(name);
        std::os::unix::fs::symlink(target, &path).map_err(|source| Error::Write { path, source })
    };
    link(python, "python")?;
    link(Path::new("python"), "python3")?;
    link(Path::new("python"), &format!("python{major_minor}"))
}

/// Windows has no links to count on: the interpreter, its windowed twin and the DLLs
/// beside them are copied, as `venv --copies` does.
#[cfg(not(unix))]
fn link_interpreters(python: &Path, bin: &Path, _major_minor: &str) -> Result<(), Error> {
    let base_dir = python.parent().unwrap_or(Path::new("."));
    let copy = |from: &Path, name: &std::ffi::OsStr| {
        let to = bin.join(name);
        fs_err::copy(from, &to)
            .map(|_| ())
            .map_err(|source| Error::Write { path: to, source })
    };
    copy(python, std::ffi::OsStr::new("python.exe"))?;
    let windowed = base_dir.join("pythonw.exe");
    if windowed.is_file() {
        copy(&windowed, std::ffi::OsStr::new("pythonw.exe"))?;
    }
    if let Ok(entries) = fs_err::read_dir(base_dir) {
        for entry in entries.flatten() {
            let path = entry.path();
            if path
                .extension()
                .is_some_and(|e| e.eq_ignore_ascii_case("dll"))
            {
                copy(&path, &entry.file_name())?;
            }
        }
    }
    Ok(())
}

/// The runtime's own templates (`<stdlib>/venv/scripts/{common,posix|nt}`), with the
/// venv module's placeholders replaced; a minimal `activate` when there are none.
fn write_activation_scripts(
    base: &BaseInterpreter<'_>,
    dir: &Path,
    bin: &Path,
    bin_name: &str,
    major_minor: &str,
    prompt: &str,
) -> Result<(), Error> {
    let stdlib = if cfg!(windows) {
        base.prefix.join("Lib")
    } else {
        base.prefix.join("lib").join(format!("python{major_minor}"))
    };
    let scripts = stdlib.join("venv").join("scripts");
    let platform = if cfg!(windows) { "nt" } else { "posix" };
    let mut written = false;
    for sub in ["common", platform] {
        let Ok(entries) = fs_err::read_dir(scripts.join(sub)) else {
            continue;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            if !path.is_file() {
                continue;
            }
            let Ok(template) = fs_err::read_to_string(&path) else {
                continue; // binary launchers (nt) are not templates
            };
            let text = fill(&template, dir, bin_name, major_minor, prompt);
            let target = bin.join(entry.file_name());
            fs_err::write(&target, text).map_err(|source| Error::Write {
                path: target.clone(),
                source,
            })?;
            written = true;
        }
    }
    if !written && cfg!(unix) {
        let target = bin.join("activate");
        let text = fill(FALLBACK_ACTIVATE, dir, bin_name, major_minor, prompt);
        fs_err::write(&target, text).map_err(|source| Error::Write {
            path: target.clone(),
            source,
        })?;
    }
    Ok(())
}

/// Replace the venv module's placeholders. Templates that quote `__VENV_DIR__`
/// themselves (3.11 and older) get the raw values and a `(name) ` prompt; newer ones get
/// shell-quoted values and the bare name (they add the parentheses).
fn fill(template: &str, dir: &Path, bin_name: &str, major_minor: &str, prompt: &str) -> String {
    let dir_text = dir.to_string_lossy();
    let pre_quoted = template.contains("\"__VENV_DIR__\"") || template.contains("'__VENV_DIR__'");
    let old_style = pre_quoted && !template.contains("(\"__VENV_PROMPT__\")");
    let quote = |s: &str| {
        if pre_quoted
            || s.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"@%+=:,./-_".contains(&b))
        {
            s.to_string()
        } else {
            format!("'{}'", s.replace('\'', "'\"'\"'"))
        }
    };
    let prompt_value = if old_style {
        format!("({prompt}) ")
    } else {
        prompt.to_string()
    };
    let python_name = if cfg!(windows) {
        "python.exe"
    } else {
        "python"
    };
    template
        .replace("__VENV_DIR__", &quote(&dir_text))
        .replace("__VENV_NAME__", &quote(prompt))
        .replace(
            "__VENV_PROMPT__",
            &if pre_quoted {
                prompt_value
            } else {
                quote(&prompt_value)
            },
        )
        .replace("__VENV_BIN_NAME__", &quote(bin_name))
        .replace("__VENV_PYTHON__", &quote(python_name))
        .replace("__VENV_PYTHON_VERSION__", major_minor)
}

const FALLBACK_ACTIVATE: &str = r#"# Source this file with bash or zsh: `. bin/activate`
deactivate () {
    if [ -n "${_OLD_VIRTUAL_PATH:-}" ]; then PATH="${_OLD_VIRTUAL_PATH}"; export PATH; unset _OLD_VIRTUAL_PATH; fi
    if [ -n "${_OLD_VIRTUAL_PS1:-}" ]; then PS1="${_OLD_VIRTUAL_PS1}"; export PS1; unset _OLD_VIRTUAL_PS1; fi
    unset VIRTUAL_ENV VIRTUAL_ENV_PROMPT
    if [ ! "${1:-}" = "nondestructive" ]; then unset -f deactivate; fi
}
deactivate nondestructive
VIRTUAL_ENV="__VENV_DIR__"
export VIRTUAL_ENV
_OLD_VIRTUAL_PATH="$PATH"
PATH="$VIRTUAL_ENV/__VENV_BIN_NAME__:$PATH"
export PATH
VIRTUAL_ENV_PROMPT="(__VENV_NAME__) "
export VIRTUAL_ENV_PROMPT
_OLD_VIRTUAL_PS1="${PS1:-}"
PS1="${VIRTUAL_ENV_PROMPT}${PS1:-}"
export PS1
hash -r 2> /dev/null
"#;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn templates_old_and_new() {
        let dir = Path::new("/envs/my env");
        // 3.11 and older quote the values themselves and take `(name) ` as the prompt.
        let old = fill(
            "VIRTUAL_ENV=\"__VENV_DIR__\"\nPS1=\"__VENV_PROMPT__${PS1:-}\"\nPATH=\"$VIRTUAL_ENV/__VENV_BIN_NAME__:$PATH\"\n",
            dir,
            "bin",
            "3.11",
            "demo",
        );
        assert_eq!(
            old,
            "VIRTUAL_ENV=\"/envs/my env\"\nPS1=\"(demo) ${PS1:-}\"\nPATH=\"$VIRTUAL_ENV/bin:$PATH\"\n"
        );
        // 3.12 and newer get shell-quoted values and the bare name.
        let new = fill(
            "VIRTUAL_ENV=__VENV_DIR__\nPS1=\"(\"__VENV_PROMPT__\") ${PS1:-}\"\n",
            dir,
            "bin",
            "3.12",
            "demo",
        );
        assert_eq!(
            new,
            "VIRTUAL_ENV='/envs/my env'\nPS1=\"(\"demo\") ${PS1:-}\"\n"
        );
    }
}
