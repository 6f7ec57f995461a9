//! placeholder
pub mod confluence;
