//! personafs-fs: the filesystem. The async core (plain data, testable without FUSE), the disk
//! cache of file contents, and the thin FUSE adapter.

pub mod cache;
mod core;
mod far_read;
pub mod fuse;
mod inode;
mod prefetch;
mod reader;
pub mod store;
mod view;

pub use self::core::{Attr, CoreConfig, CoreCounters, DirEntry, FsCore, Kind};
pub use fuse::{FuseOptions, PersonaFs, mount};
pub use inode::{INQUIRIES, ROOT};
pub use prefetch::PrefetchConfig;
pub use reader::Opened;
