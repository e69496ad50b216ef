//! The errno table: what each failure of Persona, and each wrong request, becomes.

use std::time::Duration;

use personafs_client::testing::{Call, Fault};

use super::{Env, config, errno, sample_api};
use crate::{INQUIRIES, ROOT};

#[tokio::test]
async fn an_unknown_inquiry_is_enoent() {
    let env = Env::new(sample_api(), config());
    assert_eq!(errno(env.lookup("inq_nope").await), libc::ENOENT);
    env.api.fail_next(Call::Retrieve, 1, Fault::Status(404));
    assert_eq!(errno(env.lookup("inq_a").await), libc::ENOENT, "an API 404");
}

#[tokio::test]
async fn a_refused_key_is_eacces() {
    let env = Env::new(sample_api(), config());
    env.api.fail_next(Call::Retrieve, 1, Fault::Status(401));
    assert_eq!(errno(env.lookup("inq_a").await), libc::EACCES);
    env.api.fail_next(Call::Retrieve, 1, Fault::Status(403));
    assert_eq!(errno(env.lookup("inq_b").await), libc::EACCES);
    assert!(
        env.lookup("inq_a").await.is_ok(),
        "not remembered as missing"
    );
}

#[tokio::test]
async fn network_and_server_failures_are_eio() {
    let env = Env::new(sample_api(), config());
    env.api.fail_next(Call::Retrieve, 1, Fault::Network);
    assert_eq!(errno(env.lookup("inq_a").await), libc::EIO);
    env.api.fail_next(Call::Retrieve, 1, Fault::Status(503));
    assert_eq!(errno(env.lookup("inq_a").await), libc::EIO);
    assert!(env.lookup("inq_a").await.is_ok());
    assert_eq!(env.calls(Call::Retrieve), 3);
}

#[tokio::test]
async fn a_rate_limited_api_is_eio_until_its_reset() {
    let env = Env::new(sample_api(), config());
    env.api.rate_limit(Call::Retrieve, Duration::from_secs(60));
    assert_eq!(errno(env.lookup("inq_a").await), libc::EIO);
    env.clock.advance(Duration::from_secs(61));
    assert!(env.lookup("inq_a").await.is_ok());
    assert_eq!(env.api.injected(Call::Retrieve), 1);
}

#[tokio::test]
async fn a_failed_download_reaches_the_reader_as_eio() {
    let env = Env::new(sample_api(), config());
    env.api.fail_next(Call::Download, 1, Fault::Status(500));
    let path = "inq_a/document/doc_1-front-photo.jpg";
    assert_eq!(errno(env.read_all(path).await), libc::EIO);
    env.api.fail_next(Call::Download, 1, Fault::Network);
    assert_eq!(errno(env.read_all(path).await), libc::EIO);
    assert_eq!(
        env.read_all(path).await.unwrap(),
        env.bytes("inq_a", "doc_1-front-photo.jpg"),
        "the next open downloads again"
    );
}

#[tokio::test]
async fn wrong_requests_get_their_errno() {
    let env = Env::new(sample_api(), config());
    let file = env.ino("inq_a/document/doc_2-statement.pdf").await;
    let dir = env.ino("inq_a/document").await;
    assert_eq!(
        errno(env.core.lookup(file, "x").await),
        libc::ENOTDIR,
        "lookup under a file"
    );
    assert_eq!(errno(env.core.readdir(file).await), libc::ENOTDIR);
    assert_eq!(errno(env.core.open(dir).await), libc::EISDIR);
    assert_eq!(errno(env.core.open(ROOT).await), libc::EISDIR);
    assert_eq!(errno(env.core.read(9_999, 0, 10).await), libc::EBADF);
    assert_eq!(errno(env.core.getattr(9_999).await), libc::ENOENT);
    assert_eq!(
        errno(env.core.lookup(dir, "doc_9-front-photo.jpg").await),
        libc::ENOENT
    );
    let inquiry = env.ino("inq_a").await;
    assert_eq!(errno(env.core.lookup(inquiry, "extra").await), libc::ENOENT);
    assert_eq!(errno(env.core.lookup(ROOT, "other").await), libc::ENOENT);
    assert!(env.core.lookup(ROOT, "inquiries").await.unwrap().ino == INQUIRIES);
}

#[tokio::test]
async fn a_released_handle_is_ebadf() {
    let env = Env::new(sample_api(), config());
    let ino = env.ino("inq_b/inquiry.json").await;
    let opened = env.core.open(ino).await.unwrap();
    assert_eq!(env.core.open_handles(), 1);
    assert!(!env.core.read(opened.fh, 0, 10).await.unwrap().is_empty());
    env.core.release(opened.fh);
    assert_eq!(env.core.open_handles(), 0);
    assert_eq!(errno(env.core.read(opened.fh, 0, 10).await), libc::EBADF);
}
