//! Virtual environments and their packages (issue #4).

pub mod name;

pub use name::EnvName;
