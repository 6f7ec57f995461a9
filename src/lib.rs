//! confluencefs: Confluence (Cloud and Data Center) as a Linux filesystem.
//!
//! The crate is layered as docs/DESIGN.md lays it out: `cli` turns the command line into a validated
//! configuration and runs it; `confluence` is the REST client, which knows HTTP and Confluence
//! but never inodes or errnos. The binary in `main.rs` only calls `cli::run`.

pub mod allocator;
pub mod cache;
pub mod cli;
pub mod confluence;
pub mod errno;
pub mod fs;
pub mod fuse;
pub mod mount;
pub mod spool;
