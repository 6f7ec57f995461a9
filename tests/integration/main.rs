//! The integration suite: one binary, one module per area.

mod mounted;
mod support;

mod cli;
mod cli_doctor;
mod cli_install;
mod cli_json;
mod cli_sites;
mod cli_status;

mod client_bounds;
mod client_connect;
mod client_content;
mod client_download;
mod client_hostile;
mod client_listing;
mod client_media;
mod client_odd_servers;
mod client_retry;
mod client_upload;

mod fs_direct;
mod fs_forget;

mod markdown_roundtrip;

mod mount_attributes;
mod mount_budgets;
mod mount_deadlines;
mod mount_faults;
mod mount_fstab;
mod mount_prefetch;
mod mount_scale;
mod mount_system_owners;
mod mount_systemd;
mod mount_tree;
mod mount_walk;

mod mount_bounds;
mod mount_differential;
mod mount_disk_cache;
mod mount_early;
mod mount_integrity;
mod mount_pages;
mod mount_passthrough;
mod mount_write;
mod spool;
