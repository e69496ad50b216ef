//! The filesystem: the async core (plain data, testable without FUSE) and its FUSE adapter.

mod core;
mod far_read;
pub mod fuse;
mod inode;
mod prefetch;
mod reader;
mod view;

pub use self::core::{Attr, CoreConfig, CoreCounters, DirEntry, FsCore, Kind};
pub use fuse::{FuseOptions, PersonaFs, mount};
pub use inode::{INQUIRIES, ROOT};
pub use prefetch::PrefetchConfig;
pub use reader::Opened;
