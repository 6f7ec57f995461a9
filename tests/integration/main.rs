//! The integration suite: one binary, one module per area.

mod support;

mod cli;

mod client_connect;
mod client_content;
mod client_download;
mod client_listing;
mod client_range_ignored;
mod client_retry;
mod client_upload;
