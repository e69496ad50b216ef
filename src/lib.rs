//! personafs: a read-only FUSE filesystem over a Persona organization's verification files.
//!
//! Layers, from the outside in:
//! - `fuse` — a thin `fuser::Filesystem` adapter that hands each request to the async core;
//! - `fs` — the async core: inodes, listings, attributes, open handles (no FUSE types);
//! - `cache` — file contents on disk;
//! - `persona` — the Persona API client (behind the `PersonaApi` trait) and the pure mapping
//!   from a retrieved inquiry to the files the mount shows;
//! - `mock` — a faithful local stand-in for Persona's API and files hosts.

pub mod cache;
pub mod cli;
pub mod config;
pub mod daemon;
pub mod error;
pub mod fs;
pub mod logging;
pub mod mock;
pub mod mount;
pub mod persona;
pub mod redact;
pub mod unmount;

pub use error::{Error, Result};
