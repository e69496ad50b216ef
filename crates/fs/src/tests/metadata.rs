//! Inquiry metadata: single-flight retrieves, the negative cache, the metadata TTL and final
//! states, unknown sizes (HEAD), attributes, inode numbers, `inquiry.json`, answers from
//! memory.

use std::time::{Duration, SystemTime};

use personafs_client::testing::{Call, Fault, FileSpec, InquirySpec, MemoryApi};

use super::{Env, SAMPLE_FILES, bytes, config, errno, sample_api, sample_inquiry};
use crate::{INQUIRIES, Kind};

#[tokio::test]
async fn concurrent_lookups_of_one_inquiry_make_one_retrieve() {
    let env = Env::new(sample_api(), config());
    env.api.delay(Call::Retrieve, Duration::from_millis(50));
    let lookups = (0..16).map(|i| {
        let path = match i % 4 {
            0 => "inq_a".to_string(),
            1 => "inq_a/document/doc_1-front-photo.jpg".to_string(),
            2 => "inq_a/selfie/self_1-center-photo.jpg".to_string(),
            _ => "inq_a/inquiry.json".to_string(),
        };
        let env = &env;
        async move { env.lookup(&path).await.map(|a| a.ino) }
    });
    let results = futures::future::join_all(lookups).await;
    assert!(results.iter().all(Result::is_ok));
    assert_eq!(env.calls(Call::Retrieve), 1);
    assert_eq!(env.api.max_in_flight(Call::Retrieve), 1);
}

#[tokio::test]
async fn different_inquiries_are_retrieved_once_each() {
    let env = Env::new(sample_api(), config());
    env.api.delay(Call::Retrieve, Duration::from_millis(30));
    let ids = ["inq_a", "inq_b", "inq_c", "inq_a", "inq_b", "inq_c"];
    let results =
        futures::future::join_all(ids.iter().map(|id| env.core.lookup(INQUIRIES, id))).await;
    assert!(results.iter().all(Result::is_ok));
    assert_eq!(env.calls(Call::Retrieve), 3);
}

#[tokio::test]
async fn a_missing_id_is_asked_once_within_the_negative_ttl_and_again_after() {
    let mut cfg = config();
    cfg.negative_ttl = Duration::from_secs(10);
    let env = Env::new(sample_api(), cfg);
    assert_eq!(errno(env.lookup("inq_late").await), libc::ENOENT);
    assert_eq!(errno(env.lookup("inq_late").await), libc::ENOENT);
    env.mem().add_inquiry(sample_inquiry("inq_late", 5));
    assert_eq!(
        errno(env.lookup("inq_late").await),
        libc::ENOENT,
        "the answer is believed for the negative TTL"
    );
    assert_eq!(env.calls(Call::Retrieve), 1);
    env.clock.advance(Duration::from_secs(11));
    assert_eq!(env.lookup("inq_late").await.unwrap().kind, Kind::Dir);
    assert_eq!(env.calls(Call::Retrieve), 2);
}

#[tokio::test]
async fn a_pending_inquiry_is_retrieved_again_after_the_metadata_ttl_a_final_one_is_not() {
    let mem = MemoryApi::new();
    mem.add_inquiry(sample_inquiry("inq_p", 1).status("pending"));
    mem.add_inquiry(sample_inquiry("inq_f", 2).status("approved"));
    let mut cfg = config();
    cfg.metadata_ttl = Duration::from_secs(60);
    let env = Env::new(mem, cfg);
    for id in ["inq_p", "inq_f"] {
        env.names(&format!("{id}/document")).await;
    }
    assert_eq!(env.calls(Call::Retrieve), 2);
    env.mem().add_file(
        "inq_p",
        "doc_3",
        FileSpec::file("late.pdf", b"%PDF-late".to_vec()),
    );
    env.mem().add_file(
        "inq_f",
        "doc_3",
        FileSpec::file("late.pdf", b"%PDF-late".to_vec()),
    );
    env.clock.advance(Duration::from_secs(61));
    let pending = env.names("inq_p/document").await;
    let approved = env.names("inq_f/document").await;
    assert!(
        pending.contains(&"doc_3-late.pdf".to_string()),
        "{pending:?}"
    );
    assert!(
        !approved.contains(&"doc_3-late.pdf".to_string()),
        "{approved:?}"
    );
    assert_eq!(env.calls(Call::Retrieve), 3, "only the pending one again");
}

#[tokio::test]
async fn a_failed_refresh_serves_the_last_view() {
    let mem = MemoryApi::new();
    mem.add_inquiry(sample_inquiry("inq_p", 1).status("pending"));
    let mut cfg = config();
    cfg.metadata_ttl = Duration::from_secs(60);
    let env = Env::new(mem, cfg);
    let before = env.names("inq_p/document").await;
    env.api.fail_next(Call::Retrieve, 1, Fault::Status(502));
    env.clock.advance(Duration::from_secs(61));
    assert_eq!(env.names("inq_p/document").await, before);
    let attr = env
        .lookup("inq_p/document/doc_2-statement.pdf")
        .await
        .unwrap();
    assert_eq!(attr.size, 40_000);
    assert_eq!(env.api.injected(Call::Retrieve), 1);
}

fn unsized_api() -> MemoryApi {
    let mem = MemoryApi::new();
    mem.add_inquiry(InquirySpec::new("inq_u").document(
        "doc_1",
        [
            FileSpec::photo("front-photo", "front.jpg", bytes(1, 70_000)).without_size(),
            FileSpec::photo("back-photo", "back.jpg", bytes(2, 50_000)),
        ],
    ));
    mem
}

#[tokio::test]
async fn a_file_without_byte_size_is_sized_by_one_head() {
    let env = Env::new(unsized_api(), config());
    let attr = env
        .lookup("inq_u/document/doc_1-front-photo.jpg")
        .await
        .unwrap();
    assert_eq!(attr.size, 70_000);
    assert_eq!(
        env.calls(Call::Head),
        1,
        "one HEAD, for the file without byte-size"
    );
    assert_eq!(
        env.read_all("inq_u/document/doc_1-front-photo.jpg")
            .await
            .unwrap(),
        bytes(1, 70_000)
    );
    assert_eq!(env.calls(Call::Head), 1);
}

#[tokio::test]
async fn a_failed_head_leaves_the_file_out_never_empty_and_it_is_tried_again() {
    let mut cfg = config();
    cfg.negative_ttl = Duration::from_secs(10);
    let env = Env::new(unsized_api(), cfg);
    env.api.fail_next(Call::Head, 1, Fault::Status(500));
    let entries = env
        .core
        .readdir(env.ino("inq_u/document").await)
        .await
        .unwrap();
    let names: Vec<_> = entries.iter().map(|e| e.name.to_string()).collect();
    assert_eq!(names, ["doc_1-back-photo.jpg"], "left out, not shown empty");
    assert!(entries.iter().all(|e| e.attr.size > 0));
    assert_eq!(
        errno(env.lookup("inq_u/document/doc_1-front-photo.jpg").await),
        libc::ENOENT
    );
    env.clock.advance(Duration::from_secs(11));
    let attr = env
        .lookup("inq_u/document/doc_1-front-photo.jpg")
        .await
        .unwrap();
    assert_eq!(attr.size, 70_000, "shown once its size is known");
    assert_eq!(env.calls(Call::Retrieve), 2);
    assert_eq!(env.calls(Call::Head), 2);
}

#[tokio::test]
async fn a_size_learned_by_head_is_kept_when_urls_are_refreshed() {
    let mut cfg = config();
    cfg.file_url_lifetime = Duration::from_secs(20);
    cfg.url_refresh_margin = 0.0;
    let env = Env::new(unsized_api(), cfg);
    env.names("inq_u/document").await;
    assert_eq!(env.calls(Call::Head), 1);
    env.clock.advance(Duration::from_secs(30));
    let got = env
        .read_all("inq_u/document/doc_1-front-photo.jpg")
        .await
        .unwrap();
    assert_eq!(got, bytes(1, 70_000));
    assert_eq!(env.calls(Call::Retrieve), 2, "stale URLs: retrieved again");
    assert_eq!(
        env.calls(Call::Head),
        1,
        "the size came from the previous view"
    );
}

#[tokio::test]
async fn attributes_follow_the_config_and_the_api() {
    let mut cfg = config();
    cfg.uid = 1234;
    cfg.gid = 5678;
    cfg.file_mode = 0o440;
    cfg.dir_mode = 0o550;
    let env = Env::new(sample_api(), cfg);
    // 2024-05-03T00:00:00Z, inq_a's created-at.
    let created = SystemTime::UNIX_EPOCH + Duration::from_secs(1_714_694_400);
    let dir = env.lookup("inq_a").await.unwrap();
    assert_eq!((dir.kind, dir.perm, dir.nlink), (Kind::Dir, 0o550, 4));
    assert_eq!(dir.mtime, created);
    let section = env.lookup("inq_a/selfie").await.unwrap();
    assert_eq!(
        (section.kind, section.perm, section.nlink),
        (Kind::Dir, 0o550, 2)
    );
    for (section, name, _) in SAMPLE_FILES {
        let f = env
            .lookup(&format!("inq_a/{section}/{name}"))
            .await
            .unwrap();
        assert_eq!((f.kind, f.perm, f.nlink), (Kind::File, 0o440, 1), "{name}");
        assert_eq!((f.uid, f.gid), (1234, 5678));
        assert_eq!(f.size, env.bytes("inq_a", name).len() as u64, "{name}");
        assert_eq!(f.mtime, created, "{name}: the object's created-at");
        assert_eq!(env.core.getattr(f.ino).await.unwrap(), f);
    }
}

#[tokio::test]
async fn inode_numbers_are_stable() {
    let mut cfg = config();
    cfg.metadata_ttl = Duration::from_secs(60);
    let mem = MemoryApi::new();
    mem.add_inquiry(sample_inquiry("inq_s", 1).status("pending"));
    let env = Env::new(mem, cfg);
    let path = "inq_s/document/doc_2-statement.pdf";
    let first = env.ino(path).await;
    let listed = env
        .core
        .readdir(env.ino("inq_s/document").await)
        .await
        .unwrap();
    let in_dir = listed
        .iter()
        .find(|e| &*e.name == "doc_2-statement.pdf")
        .unwrap();
    assert_eq!(in_dir.attr.ino, first);
    env.mem().remove_file("inq_s", "doc_2", "statement.pdf");
    env.clock.advance(Duration::from_secs(61));
    assert_eq!(errno(env.lookup(path).await), libc::ENOENT);
    env.mem().add_file(
        "inq_s",
        "doc_2",
        FileSpec::file("statement.pdf", b"back".to_vec()),
    );
    env.clock.advance(Duration::from_secs(61));
    assert_eq!(env.ino(path).await, first, "a path keeps its inode");
    let count = env.core.inode_count();
    env.ino(path).await;
    assert_eq!(env.core.inode_count(), count);
}

#[tokio::test]
async fn inquiry_json_is_the_body_without_any_token() {
    let env = Env::new(sample_api(), config());
    let attr = env.lookup("inq_a/inquiry.json").await.unwrap();
    let json = env.read_all("inq_a/inquiry.json").await.unwrap();
    assert_eq!(attr.size, json.len() as u64);
    let text = String::from_utf8(json.clone()).unwrap();
    assert!(
        !text.contains("access_token=tok"),
        "a token in inquiry.json"
    );
    assert!(text.contains("access_token=REDACTED"));
    let v: serde_json::Value = serde_json::from_slice(&json).unwrap();
    assert_eq!(v["data"]["id"], "inq_a");
    assert_eq!(v["included"].as_array().unwrap().len(), 3);
    assert_eq!(
        env.calls(Call::Download),
        0,
        "inquiry.json needs no download"
    );
}

#[tokio::test]
async fn answers_from_memory_cost_no_request() {
    let env = Env::new(sample_api(), config());
    assert!(
        env.core
            .at_once(env.core.lookup(INQUIRIES, "inq_a"))
            .is_none(),
        "nothing at hand yet: the caller must wait"
    );
    let file = env
        .lookup("inq_a/document/doc_1-front-photo.jpg")
        .await
        .unwrap();
    let section = env.ino("inq_a/document").await;
    let calls = env.calls(Call::Retrieve);
    let now = env
        .core
        .at_once(env.core.lookup(section, "doc_1-front-photo.jpg"));
    assert_eq!(now.unwrap().unwrap(), file);
    assert_eq!(
        env.core
            .at_once(env.core.getattr(file.ino))
            .unwrap()
            .unwrap(),
        file
    );
    let listed = env
        .core
        .at_once(env.core.readdir(section))
        .unwrap()
        .unwrap();
    assert_eq!(listed.len(), 3);
    assert_eq!(env.calls(Call::Retrieve), calls);
}
