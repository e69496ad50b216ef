//! What the kernel may keep across opens (SEMANTICS.md): an inquiry's directories are opened
//! with the kernel's directory cache, kept while their entries (names and inode numbers) are
//! what the kernel read last; `inquiry.json`'s pages are kept while its bytes are the same.
//! A change (a new document, a redaction) makes the kernel read again at the next open.

use personafs_client::testing::FileSpec;

use super::{Env, config, sample_api};
use crate::{Change, INQUIRIES};

impl Env {
    /// Open a directory, hand every entry over as readdirplus does, release it; its flags.
    async fn walk_dir(&self, ino: u64) -> (bool, bool) {
        let d = self.core.opendir(ino).await.expect("opendir");
        self.core
            .dir_entries(d.fh, 0, true, |_| false)
            .expect("entries");
        self.core.releasedir(d.fh);
        (d.cache, d.keep_cache)
    }

    /// Open a directory and release it unread; whether the kernel's copy was kept.
    async fn reopen_dir(&self, ino: u64) -> bool {
        let d = self.core.opendir(ino).await.expect("opendir");
        self.core.releasedir(d.fh);
        d.keep_cache
    }
}

#[tokio::test]
async fn directories_keep_the_kernel_copy_until_their_entries_change() {
    let env = Env::new(sample_api(), config());
    let inq = env.ino("inq_a").await;
    let doc = env.ino("inq_a/document").await;
    let before = env.names("inq_a/document").await;

    assert_eq!(
        env.walk_dir(doc).await,
        (true, false),
        "first open: read by the kernel"
    );
    assert!(
        env.reopen_dir(doc).await,
        "same entries: the kernel's copy is kept"
    );
    assert_eq!(env.walk_dir(inq).await, (true, false));
    assert!(env.reopen_dir(inq).await);

    // inquiries/ changes with the listing and may hold a million entries: never cached.
    assert_eq!(env.walk_dir(INQUIRIES).await, (false, false));
    assert_eq!(env.walk_dir(INQUIRIES).await, (false, false));

    // A new document: the next open drops the kernel's copy, the one after keeps the new one.
    assert!(env.mem().add_file(
        "inq_a",
        "doc_2",
        FileSpec::file("addendum.pdf", vec![7; 1000])
    ));
    env.core.apply_change(Change::Changed("inq_a".into())).await;
    assert_eq!(
        env.walk_dir(doc).await,
        (true, false),
        "a new entry: read again"
    );
    let after = env.names("inq_a/document").await;
    assert_eq!(after.len(), before.len() + 1, "{after:?}");
    assert!(env.reopen_dir(doc).await);
}

#[tokio::test]
async fn a_redaction_makes_the_kernel_read_the_directories_again() {
    let env = Env::new(sample_api(), config());
    let doc = env.ino("inq_b/document").await;
    env.walk_dir(doc).await;
    assert!(env.reopen_dir(doc).await);
    env.core
        .apply_change(Change::Redacted("inq_b".into()))
        .await;
    // Refused, or read again: never listed from the kernel's copy.
    match env.core.opendir(doc).await {
        Err(e) => assert_eq!(e.errno(), libc::ENOENT),
        Ok(d) => {
            env.core.releasedir(d.fh);
            assert!(
                !d.keep_cache,
                "the redacted files must not be listed from the kernel's copy"
            );
        }
    }
}

#[tokio::test]
async fn a_forgotten_entry_makes_the_kernel_read_the_directory_again() {
    let env = Env::new(sample_api(), config());
    let doc = env.ino("inq_a/document").await;
    env.walk_dir(doc).await;
    assert!(env.reopen_dir(doc).await);
    // The kernel forgets one file (its readdirplus reference): its number would change.
    let first = env.names("inq_a/document").await.remove(0);
    let front = env.ino(&format!("inq_a/document/{first}")).await;
    env.core.forget(front, 2);
    assert!(
        !env.reopen_dir(doc).await,
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
        .try_open_cached(json, |_| false)
        .expect("a fresh view opens at once");
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
