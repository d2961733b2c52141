//! This machine's platform in python-build-standalone's terms.

/// `os`, `arch`, `libc` as catalog entries name them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Platform {
    pub os: &'static str,
    pub arch: &'static str,
    pub libc: &'static str,
}

impl Platform {
    /// The platform this binary runs on.
    pub fn current() -> Self {
        let os = match std::env::consts::OS {
            "macos" => "darwin",
            other => other,
        };
        let arch = std::env::consts::ARCH;
        let libc = if os == "linux" {
            if cfg!(target_env = "musl") {
                "musl"
            } else {
                "gnu"
            }
        } else {
            "none"
        };
        Self { os, arch, libc }
    }

    /// `linux-x86_64-gnu`.
    pub fn tag(&self) -> String {
        if self.libc == "none" {
            format!("{}-{}", self.os, self.arch)
        } else {
            format!("{}-{}-{}", self.os, self.arch, self.libc)
        }
    }
}

impl std::fmt::Display for Platform {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.tag())
    }
}

/// The interpreter inside an installation prefix.
pub fn python_in(prefix: &std::path::Path) -> std::path::PathBuf {
    if cfg!(windows) {
        prefix.join("python.exe")
    } else {
        prefix.join("bin").join("python3")
    }
}
