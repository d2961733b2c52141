//! Environment names: checked before any file is touched.

use std::fmt;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    #[error("Invalid environment name `{name}`: {reason}")]
    Invalid { name: String, reason: &'static str },
}

impl Error {
    /// What kind of failure this is (see [`crate::ErrorCode`]).
    pub fn code(&self) -> crate::ErrorCode {
        use crate::ErrorCode as C;
        C::Invalid
    }
}

/// A valid environment name: `^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$`, not ending in `.`, not a
/// Windows device name. Names that differ only in case are one name on case-insensitive
/// file systems; `Environments::create` refuses the second.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct EnvName(String);

const DEVICE_NAMES: &[&str] = &[
    "con", "prn", "aux", "nul", "com1", "com2", "com3", "com4", "com5", "com6", "com7", "com8",
    "com9", "lpt1", "lpt2", "lpt3", "lpt4", "lpt5", "lpt6", "lpt7", "lpt8", "lpt9",
];

impl EnvName {
    pub fn parse(name: &str) -> Result<Self, Error> {
        let invalid = |reason| Error::Invalid {
            name: name.to_string(),
            reason,
        };
        let mut chars = name.chars();
        let Some(first) = chars.next() else {
            return Err(invalid("it is empty"));
        };
        if name.len() > 64 {
            return Err(invalid("it is longer than 64 characters"));
        }
        if !first.is_ascii_alphanumeric() {
            return Err(invalid(
                "it must start with an ASCII letter (a-z, A-Z) or digit",
            ));
        }
        if !chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-')) {
            return Err(invalid(
                "only ASCII letters, digits, `.`, `_` and `-` are allowed",
            ));
        }
        if name.ends_with('.') {
            return Err(invalid(
                "it must not end with `.` (Windows drops a trailing dot)",
            ));
        }
        let stem = name.split('.').next().unwrap_or(name).to_ascii_lowercase();
        if DEVICE_NAMES.contains(&stem.as_str()) {
            return Err(invalid("it is a reserved device name on Windows"));
        }
        Ok(Self(name.to_string()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for EnvName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::str::FromStr for EnvName {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self, Error> {
        Self::parse(s)
    }
}

#[cfg(test)]
mod tests {
    use super::EnvName;

    #[test]
    fn accepts_good_names() {
        for ok in ["a", "admin", "My.env_2-x", "0", &"a".repeat(64)] {
            assert!(EnvName::parse(ok).is_ok(), "{ok}");
        }
    }

    #[test]
    fn refuses_bad_names() {
        for bad in [
            "",
            "..",
            ".hidden",
            "a/b",
            "/abs",
            "a b",
            "con",
            "NUL",
            "com1",
            "lpt9.txt",
            "-x",
            "_x",
            "a\\b",
            "é",
            "a.",
            "a..",
            "a ",
            "a\u{e9}",
            &"a".repeat(65),
        ] {
            let err = EnvName::parse(bad).unwrap_err().to_string();
            assert!(err.contains("Invalid environment name"), "{bad}: {err}");
        }
    }

    #[test]
    fn reasons_name_ascii_and_the_trailing_dot() {
        let err = EnvName::parse("é").unwrap_err().to_string();
        assert!(err.contains("ASCII letter"), "{err}");
        let err = EnvName::parse("a\u{e9}").unwrap_err().to_string();
        assert!(err.contains("ASCII letters"), "{err}");
        let err = EnvName::parse("a.").unwrap_err().to_string();
        assert!(err.contains("must not end with `.`"), "{err}");
        assert!(EnvName::parse("a.b").is_ok());
    }
}
