//! confluencefs: Confluence (Cloud and Data Center) as a Linux filesystem.
//!
//! The crate is built in layers, and imports only point down (docs/DESIGN.md, Layers):
//!
//! | layer | module | what it knows |
//! |---|---|---|
//! | command line | [`cli`] | flags, the environment, a validated configuration; runs a command |
//! | mounting | [`mount`] | wiring one mount together: client, cache, spool, filesystem, FUSE session, signals |
//! | FUSE adapter | [`fuse`] | fuser's callbacks in, `fs` calls out, errno back; bounded operations |
//! | filesystem | [`fs`] | inodes, listings, names, handles, per-file write state; no FUSE in sight |
//! | uploads, bytes | [`spool`], [`cache`] | durable uploads delivered exactly once; blocks in memory and on disk |
//! | errno table | [`errno`] | what a failed request means to a program |
//! | REST client | [`confluence`] | HTTP and Confluence; never inodes or errnos |
//!
//! [`allocator`] is a process setting the mount makes at start. The binary in `main.rs` only
//! calls `cli::main`.

pub mod allocator;
pub mod cache;
pub mod cli;
pub mod confluence;
pub mod errno;
pub mod fs;
pub mod fuse;
pub mod markdown;
pub mod mount;
pub mod spool;
