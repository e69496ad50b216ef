//! What the kernel may keep (SEMANTICS.md): it opens directories itself and keeps what it
//! read of them until personafs tells it to drop it: when their entries (names and inode
//! numbers) change, or are due a refresh, checked when the kernel asks for the directory
//! again; `inquiry.json`'s pages are kept while its bytes are the same.

use std::sync::Arc;
use std::time::Duration;

use personafs_client::testing::{Call, FileSpec};

use super::{Env, config, sample_api};
use crate::{Change, INQUIRIES};

use crate::testing::Told;

impl Told {
    fn take(&self) -> Vec<u64> {
        std::mem::take(&mut *self.0.lock())
    }
}

impl Env {
    fn telling(&self) -> Arc<Told> {
        let told = Arc::new(Told::default());
        self.core.set_kernel_caches(told.clone());
        told
    }

    /// Read a directory in full as the kernel does (readdirplus from offset 0).
    async fn read_dir(&self, ino: u64) -> usize {
        let mut n = 0;
        self.core
            .dir_entries(ino, 0, true, |_| {
                n += 1;
                false
            })
            .await
            .expect("entries");
        n
    }

    /// The kernel asks for a directory again (its attributes), as before reading it.
    async fn ask(&self, ino: u64) {
        self.core.getattr(ino).await.expect("getattr");
    }
}

#[tokio::test]
async fn directories_keep_the_kernel_copy_until_their_entries_change() {
    let env = Env::new(sample_api(), config());
    let told = env.telling();
    let inq = env.ino("inq_a").await;
    let doc = env.ino("inq_a/document").await;
    let before = env.names("inq_a/document").await;

    env.read_dir(doc).await;
    env.ask(doc).await;
    env.read_dir(inq).await;
    env.ask(inq).await;
    env.lookup("inq_a/document").await.unwrap();
    env.read_dir(INQUIRIES).await;
    env.ask(INQUIRIES).await;
    assert_eq!(
        told.take(),
        Vec::<u64>::new(),
        "same entries: the kernel's copies are kept"
    );

    // A new document: the kernel drops its copy of the directory (and of the listing, which
    // the event expired); it reads them again, and keeps the new ones.
    assert!(env.mem().add_file(
        "inq_a",
        "doc_2",
        FileSpec::file("addendum.pdf", vec![7; 1000])
    ));
    env.core.apply_change(Change::Changed("inq_a".into())).await;
    let mut dropped = told.take();
    dropped.sort();
    let mut expected = vec![INQUIRIES, inq, doc];
    expected.sort();
    assert_eq!(dropped, expected, "a change: read again");
    assert_eq!(
        env.read_dir(doc).await,
        2 + before.len() + 1,
        "the new entry"
    );
    env.ask(doc).await;
    assert_eq!(told.take(), Vec::<u64>::new(), "the new copy is kept");
    let after = env.names("inq_a/document").await;
    assert_eq!(after.len(), before.len() + 1, "{after:?}");
}

#[tokio::test]
async fn a_directory_due_a_refresh_is_dropped_when_the_kernel_asks_for_it() {
    let mem = sample_api();
    assert!(mem.set_status("inq_b", "pending"));
    let mut cfg = config();
    cfg.metadata_ttl = Duration::from_secs(60);
    let env = Env::new(mem, cfg);
    let told = env.telling();
    let doc = env.ino("inq_b/document").await;
    env.read_dir(doc).await;
    env.ask(doc).await;
    assert_eq!(told.take(), Vec::<u64>::new(), "fresh: kept");
    env.clock.advance(Duration::from_secs(61));
    let retrieves = env.api.calls(Call::Retrieve);
    env.ask(doc).await;
    assert_eq!(told.take(), vec![doc], "stale: dropped");
    assert_eq!(
        env.api.calls(Call::Retrieve),
        retrieves,
        "dropping costs no request"
    );
    // The kernel's next read refreshes it, as its first did.
    env.read_dir(doc).await;
    assert_eq!(env.api.calls(Call::Retrieve), retrieves + 1);
    env.ask(doc).await;
    assert_eq!(told.take(), Vec::<u64>::new());
}

#[tokio::test]
async fn a_redaction_makes_the_kernel_read_the_directories_again() {
    let env = Env::new(sample_api(), config());
    let told = env.telling();
    let doc = env.ino("inq_b/document").await;
    env.read_dir(doc).await;
    env.ask(doc).await;
    assert_eq!(told.take(), Vec::<u64>::new());
    env.core
        .apply_change(Change::Redacted("inq_b".into()))
        .await;
    assert!(
        told.take().contains(&doc),
        "the redacted files must not be listed from the kernel's copy"
    );
    // Refused, or read again empty.
    let mut names = 0;
    match env
        .core
        .dir_entries(doc, 0, false, |_| {
            names += 1;
            false
        })
        .await
    {
        Err(e) => assert_eq!(crate::errno_of(&e), libc::ENOENT),
        Ok(()) => assert_eq!(names, 2, "only . and .."),
    }
}

#[tokio::test]
async fn a_forgotten_entry_makes_the_kernel_read_the_directory_again() {
    let env = Env::new(sample_api(), config());
    let told = env.telling();
    let doc = env.ino("inq_a/document").await;
    env.read_dir(doc).await;
    env.ask(doc).await;
    assert_eq!(told.take(), Vec::<u64>::new());
    // The kernel forgets one file (its readdirplus reference): its number would change.
    let first = env.names("inq_a/document").await.remove(0);
    let front = env.ino(&format!("inq_a/document/{first}")).await;
    env.core.forget(front, 2);
    assert_eq!(
        told.take(),
        vec![doc],
        "an entry without its number: read again"
    );
}

#[tokio::test]
async fn inquiry_json_keeps_its_pages_while_its_bytes_are_the_same() {
    let env = Env::new(sample_api(), config());
    let json = env.ino("inq_a/inquiry.json").await;
    let first = env.core.open(json).await.expect("open");
    env.core.release(first.fh);
    assert!(!first.keep_cache, "first open: the kernel reads it");
    let second = env.core.open(json).await.expect("open");
    env.core.release(second.fh);
    assert!(second.keep_cache, "same bytes: the kernel's pages are kept");
    // Opened from memory at once too, with the same answer.
    let fast = env
        .core
        .at_once(env.core.open_with(json, |_| false))
        .expect("a fresh view opens at once")
        .unwrap();
    env.core.release(fast.fh);
    assert!(fast.keep_cache);

    assert!(env.mem().set_status("inq_a", "declined"));
    env.core.apply_change(Change::Changed("inq_a".into())).await;
    let changed = env.core.open(json).await.expect("open");
    let bytes = env.read_fh(changed.fh).await.expect("read");
    env.core.release(changed.fh);
    assert!(!changed.keep_cache, "new bytes: the kernel drops its pages");
    assert!(String::from_utf8_lossy(&bytes).contains("declined"));
}

#[tokio::test]
async fn names_and_attributes_of_a_final_inquiry_are_settled_a_pending_ones_are_not() {
    let mem = sample_api();
    assert!(mem.set_status("inq_b", "pending"));
    let env = Env::new(mem, config());
    for path in ["inq_a", "inq_a/document", "inq_a/selfie"] {
        assert!(env.lookup(path).await.unwrap().settled, "{path}");
    }
    let file = env.names("inq_a/document").await.remove(0);
    let attr = env.lookup(&format!("inq_a/document/{file}")).await.unwrap();
    assert!(attr.settled);
    assert_eq!(env.core.getattr(attr.ino).await.unwrap(), attr);
    // inquiry.json's bytes change with the inquiry; a pending inquiry may change at all.
    assert!(!env.lookup("inq_a/inquiry.json").await.unwrap().settled);
    for path in ["inq_b", "inq_b/document"] {
        assert!(!env.lookup(path).await.unwrap().settled, "{path}");
    }
    let file = env.names("inq_b/document").await.remove(0);
    assert!(
        !env.lookup(&format!("inq_b/document/{file}"))
            .await
            .unwrap()
            .settled
    );
}
