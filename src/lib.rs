//! personafs, the binary's library: command line, configuration, mounting, unmounting,
//! running in the background and logging. The filesystem itself is `personafs-fs`, the
//! Persona client `personafs-client`, the mock server `personafs-mock`.

pub mod audit;
pub mod cli;
pub mod config;
pub mod daemon;
pub mod fstab;
pub mod heap;
pub mod logging;
pub mod metrics;
pub mod mount;
pub mod mountinfo;
pub mod notify;
pub mod shared_state;
pub mod status;
pub mod unmount;
pub mod webhook;
