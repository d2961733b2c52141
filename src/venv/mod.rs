//! Virtual environments and their packages (issue #4).
