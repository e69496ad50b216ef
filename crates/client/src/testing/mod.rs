//! Test doubles for `PersonaApi`, for component tests without HTTP (cargo feature `testing`):
//! - `MemoryApi`: Persona and its files host in memory, answering with the same JSON shapes
//!   (parsed by the crate's own parser) and refusing expired signed URLs like the files host;
//! - `FaultyApi`: a wrapper around any `PersonaApi` that injects failures, delays, refused
//!   URLs, cut bodies and rate limiting.

mod faulty;
mod memory;
pub mod redis_server;

pub use faulty::{Fault, FaultyApi, SearchGarble};
pub use memory::{FetchRecord, FileSpec, InquirySpec, MemoryApi};

use std::sync::atomic::{AtomicU64, Ordering};

/// The kinds of calls of `PersonaApi`, for counters and fault plans.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Call {
    List,
    Retrieve,
    Head,
    Download,
    DownloadRange,
    Events,
    Search,
}

impl Call {
    pub const ALL: [Call; 7] = [
        Call::List,
        Call::Retrieve,
        Call::Head,
        Call::Download,
        Call::DownloadRange,
        Call::Events,
        Call::Search,
    ];

    fn index(self) -> usize {
        self as usize
    }

    /// Whether the call goes to the files host (signed URLs) rather than the API host.
    pub fn is_files_host(self) -> bool {
        matches!(self, Call::Head | Call::Download | Call::DownloadRange)
    }
}

/// One counter per call kind.
#[derive(Debug, Default)]
pub struct CallCounts([AtomicU64; 7]);

impl CallCounts {
    pub fn get(&self, call: Call) -> u64 {
        self.0[call.index()].load(Ordering::SeqCst)
    }

    pub(crate) fn bump(&self, call: Call) {
        self.0[call.index()].fetch_add(1, Ordering::SeqCst);
    }

    /// Every kind's count, in `Call::ALL` order (for messages).
    pub fn snapshot(&self) -> [(Call, u64); 7] {
        Call::ALL.map(|c| (c, self.get(c)))
    }
}
