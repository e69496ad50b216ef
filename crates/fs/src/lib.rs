//! personafs-fs: the filesystem. Components with one owner each, composed by the `FsCore`
//! façade (plain data, testable without FUSE or HTTP); the disk cache of file contents; and
//! the thin FUSE adapter that only translates requests and replies.
//!
//! - `metadata/`: inode table (lookup counts, `forget`), listing, inquiry views, negative cache
//! - `downloads/`: downloads in progress, URL refresh, far-read blocks
//! - `readahead`: read-ahead state and budgets
//! - `handles`: open files; `dirs`: open directories; `passthrough`: kernel backing decision
//! - `kernel_cache`: what the kernel keeps (names, attributes, directory entries) and when
//!   it must let go, and the TTLs it is given
//! - `answer`: how a request is answered from memory or finished on the runtime
//! - `core`: the façade; `fuse`: the adapter; `cache/`: the disk cache
//! - `mount`: a mount put together (core, adapter, session), for the binary and the tests

pub mod answer;
pub mod audit;
mod breaker;
pub mod cache;
mod changes;
mod config;
mod core;
mod counters;
mod dirs;
mod downloads;
mod error;
pub mod fuse;
mod handles;
mod interrupts;
mod kernel_cache;
mod metadata;
pub mod mount;
mod passthrough;
mod readahead;
pub mod store;
#[cfg(test)]
mod testing;
#[cfg(test)]
mod tests;

pub use self::changes::feed::Polled;
pub use self::changes::{Change, change_of};
pub use self::config::{CoreConfig, PrefetchConfig, ViewSet};
pub use self::core::{DirSlot, FsCore, FsStats};
pub use self::kernel_cache::KernelCaches;
pub use counters::Counters;
pub use error::{FsError, FsResult};
pub use fuse::{FuseOptions, PersonaFs, errno_name, errno_of};
pub use handles::{CacheBacking, FileRange, Opened, ReadData};
pub use metadata::delta::{DeltaConfig, FullReason};
pub use metadata::inode::{INQUIRIES, ROOT};
pub use metadata::listing::DeltaStats;
pub use metadata::{Attr, DirEntry, Kind};
pub use personafs_client::clock::Clock;
