//! Redaction and files that leave: a redacted inquiry's cached files are deleted and its
//! tree is empty; an open handle whose file is gone, or changed size, gets ESTALE.

use std::time::Duration;

use personafs_client::testing::{Call, Fault, MemoryApi};

use super::{Env, SAMPLE_FILES, config, errno, sample_inquiry, sample_size, wait_for};

/// A pending inquiry (retrieved again after the metadata TTL) and a final one.
fn api() -> MemoryApi {
    let mem = MemoryApi::new();
    mem.add_inquiry(sample_inquiry("inq_p", 1).status("pending"));
    mem.add_inquiry(sample_inquiry("inq_k", 2).status("approved"));
    mem
}

const FRONT: &str = "inq_p/document/doc_1-front-photo.jpg";

#[tokio::test]
async fn a_redacted_inquirys_cached_files_are_deleted_and_its_tree_is_empty() {
    let mut cfg = config();
    cfg.metadata_ttl = Duration::from_secs(60);
    let env = Env::new(api(), cfg);
    for id in ["inq_p", "inq_k"] {
        for (section, name, _) in SAMPLE_FILES {
            env.read_all(&format!("{id}/{section}/{name}"))
                .await
                .unwrap();
        }
    }
    wait_for("8 entries", || env.cache.stats().entries == 8).await;
    assert!(env.mem().redact("inq_p"));
    env.clock.advance(Duration::from_secs(61));
    assert!(env.names("inq_p/document").await.is_empty());
    assert!(env.names("inq_p/selfie").await.is_empty());
    for (_, name, object) in SAMPLE_FILES {
        let key = env.key("inq_p", object, name, sample_size(name));
        assert!(!env.cache.contains(&key), "inq_p/{name} is still cached");
    }
    assert_eq!(
        env.cache.stats().entries,
        4,
        "the other inquiry's files stay"
    );
    let json = String::from_utf8(env.read_all("inq_p/inquiry.json").await.unwrap()).unwrap();
    assert!(json.contains("redacted-at"));
}

#[tokio::test]
async fn a_file_gone_mid_download_gives_estale_and_the_listing_updates() {
    let env = Env::new(api(), config());
    let expected = env.bytes("inq_p", "doc_1-front-photo.jpg");
    let ino = env.ino(FRONT).await;
    // The body stops at 100 000 bytes with a refused URL; the re-retrieve that follows
    // is slow, and the inquiry is redacted meanwhile.
    env.api.cut_downloads(1, 100_000, Fault::Expired);
    env.api
        .delay_next(Call::Retrieve, 1, Duration::from_millis(200));
    let opened = env.core.open(ino).await.unwrap();
    let head = env.core.read(opened.fh, 0, 65_536).await.unwrap();
    assert!(
        head[..] == expected[..65_536],
        "bytes before the cut are served"
    );
    assert!(env.mem().redact("inq_p"));
    assert_eq!(
        errno(env.core.read(opened.fh, 100_000, 4096).await),
        libc::ESTALE
    );
    env.core.release(opened.fh);
    assert!(env.names("inq_p/document").await.is_empty());
    assert_eq!(env.calls(Call::Retrieve), 2);
}

#[tokio::test]
async fn a_removed_file_gives_estale_to_its_open_handle() {
    let env = Env::new(api(), config());
    let path = "inq_k/document/doc_2-statement.pdf";
    let ino = env.ino(path).await;
    env.api.cut_downloads(1, 10_000, Fault::Expired);
    assert!(env.mem().remove_file("inq_k", "doc_2", "statement.pdf"));
    let opened = env.core.open(ino).await.unwrap();
    assert_eq!(errno(env.read_fh(opened.fh).await), libc::ESTALE);
    env.core.release(opened.fh);
    assert_eq!(
        errno(env.lookup(path).await),
        libc::ENOENT,
        "and it is gone"
    );
}

#[tokio::test]
async fn a_file_that_changed_size_gives_estale_to_its_open_handle() {
    let env = Env::new(api(), config());
    let ino = env.ino(FRONT).await;
    env.api.cut_downloads(1, 10_000, Fault::Expired);
    assert!(
        env.mem()
            .change_file("inq_p", "doc_1", "front-photo", vec![5u8; 1234])
    );
    let opened = env.core.open(ino).await.unwrap();
    assert_eq!(errno(env.read_fh(opened.fh).await), libc::ESTALE);
    env.core.release(opened.fh);
}

#[tokio::test]
async fn a_file_gone_from_the_files_host_gives_estale() {
    // No cut: the old URL itself answers 404 once the file is removed.
    let env = Env::new(api(), config());
    let ino = env.ino(FRONT).await;
    assert!(env.mem().remove_file("inq_p", "doc_1", "front-photo"));
    let opened = env.core.open(ino).await.unwrap();
    assert_eq!(errno(env.read_fh(opened.fh).await), libc::ESTALE);
    env.core.release(opened.fh);
    assert_eq!(
        env.calls(Call::Retrieve),
        2,
        "one retrieve to learn it is gone"
    );
}
