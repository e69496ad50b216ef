//! `inquiries/`: pages, filters, the metadata TTL, ids that are dropped, and what a listing
//! never does (download).

use std::time::Duration;

use personafs_client::ListFilters;
use personafs_client::testing::{Call, Fault, InquirySpec, MemoryApi};

use super::{Env, config, errno, sample_api};
use crate::INQUIRIES;

fn many(n: usize) -> MemoryApi {
    let mem = MemoryApi::new();
    for i in 0..n {
        mem.add_inquiry(
            InquirySpec::new(&format!("inq_{i:04}")).created_at(&format!(
                "2024-01-01T{:02}:{:02}:00Z",
                i / 60,
                i % 60
            )),
        );
    }
    mem
}

#[tokio::test]
async fn the_listing_pages_by_100_newest_first() {
    let env = Env::new(many(250), config());
    let names = env.names("").await;
    let expected: Vec<String> = (0..250).rev().map(|i| format!("inq_{i:04}")).collect();
    assert_eq!(names, expected);
    assert_eq!(env.calls(Call::List), 3, "250 inquiries are 3 pages of 100");
    assert_eq!(env.calls(Call::Retrieve), 0, "a listing retrieves nothing");
}

#[tokio::test]
async fn the_listing_is_kept_for_the_metadata_ttl() {
    let mut cfg = config();
    cfg.metadata_ttl = Duration::from_secs(60);
    let env = Env::new(many(3), cfg);
    assert_eq!(env.names("").await.len(), 3);
    env.mem()
        .add_inquiry(InquirySpec::new("inq_new").created_at("2025-01-01T00:00:00Z"));
    assert_eq!(
        env.names("").await.len(),
        3,
        "within the TTL: the cached listing"
    );
    assert_eq!(env.calls(Call::List), 1);
    env.clock.advance(Duration::from_secs(61));
    let names = env.names("").await;
    assert_eq!(names.first().map(String::as_str), Some("inq_new"));
    assert_eq!(names.len(), 4);
    assert_eq!(env.calls(Call::List), 2);
}

#[tokio::test]
async fn filters_select_the_listing() {
    let mem = MemoryApi::new();
    let rows = [
        ("inq_1", "approved", "2024-01-01T00:00:00Z", "ref-a"),
        ("inq_2", "declined", "2024-02-01T00:00:00Z", "ref-a"),
        ("inq_3", "approved", "2024-03-01T00:00:00Z", "ref-b"),
        ("inq_4", "approved", "2024-04-01T00:00:00Z", "ref-a"),
        ("inq_5", "pending", "2024-05-01T00:00:00Z", "ref-a"),
    ];
    for (id, status, created, reference) in rows {
        mem.add_inquiry(
            InquirySpec::new(id)
                .status(status)
                .created_at(created)
                .reference_id(reference),
        );
    }
    let mut cfg = config();
    cfg.filters = ListFilters {
        status: vec!["approved".into(), "pending".into()],
        reference_id: Some("ref-a".into()),
        created_before: Some("2024-04-15T00:00:00Z".into()),
        ..Default::default()
    };
    let env = Env::new(mem, cfg);
    assert_eq!(env.names("").await, ["inq_4", "inq_1"]);
}

#[tokio::test]
async fn listed_ids_are_deduplicated_and_non_inquiry_ids_dropped() {
    let mem = many(3);
    mem.add_listing_only("inq_0001", "2023-06-01T00:00:00Z"); // a second row for one id
    mem.add_listing_only("acc_foreign", "2023-06-02T00:00:00Z");
    mem.add_listing_only("inq_bad.id", "2023-06-03T00:00:00Z");
    mem.add_listing_only("inq_../x", "2023-06-04T00:00:00Z");
    let env = Env::new(mem, config());
    assert_eq!(env.names("").await, ["inq_0002", "inq_0001", "inq_0000"]);
}

#[tokio::test]
async fn a_seeded_first_page_is_not_asked_for_again() {
    let env = Env::new(many(150), config());
    let first = {
        use personafs_client::PersonaApi;
        env.mem()
            .list_page(&ListFilters::default(), None, 100)
            .await
            .unwrap()
    };
    env.core.seed_listing(first);
    assert_eq!(env.names("").await.len(), 150);
    assert_eq!(
        env.calls(Call::List),
        1,
        "only the second page is asked for"
    );
}

#[tokio::test]
async fn a_failed_listing_refresh_serves_the_last_listing() {
    let mut cfg = config();
    cfg.metadata_ttl = Duration::from_secs(60);
    let env = Env::new(many(4), cfg);
    let before = env.names("").await;
    env.api.fail_next(Call::List, 1, Fault::Status(503));
    env.clock.advance(Duration::from_secs(61));
    assert_eq!(env.names("").await, before);
    assert_eq!(env.calls(Call::List), 2);
    assert_eq!(env.api.injected(Call::List), 1);
}

#[tokio::test]
async fn a_first_listing_that_fails_is_an_error_with_its_errno() {
    let env = Env::new(many(2), config());
    env.api.fail_next(Call::List, 1, Fault::Network);
    assert_eq!(errno(env.core.readdir(INQUIRIES).await), libc::EIO);
    env.api.fail_next(Call::List, 1, Fault::Status(401));
    assert_eq!(errno(env.core.readdir(INQUIRIES).await), libc::EACCES);
    assert_eq!(env.names("").await.len(), 2, "and it recovers");
}

#[tokio::test]
async fn walking_the_whole_tree_retrieves_each_inquiry_once_and_downloads_nothing() {
    let env = Env::new(sample_api(), config());
    let ids = env.names("").await;
    assert_eq!(ids, ["inq_a", "inq_b", "inq_c"]);
    for id in &ids {
        assert_eq!(env.names(id).await, ["inquiry.json", "document", "selfie"]);
        assert_eq!(
            env.names(&format!("{id}/document")).await,
            [
                "doc_1-back-photo.jpg",
                "doc_1-front-photo.jpg",
                "doc_2-statement.pdf"
            ]
        );
        assert_eq!(
            env.names(&format!("{id}/selfie")).await,
            ["self_1-center-photo.jpg"]
        );
    }
    assert_eq!(env.calls(Call::List), 1);
    assert_eq!(env.calls(Call::Retrieve), 3);
    assert_eq!(
        env.calls(Call::Download) + env.calls(Call::DownloadRange),
        0
    );
    assert_eq!(env.calls(Call::Head), 0, "every size was in the body");
}

#[tokio::test]
async fn an_unlisted_inquiry_is_found_with_one_retrieve() {
    let mut cfg = config();
    cfg.filters.status = vec!["approved".into()];
    let mem = sample_api(); // all `completed`: the filtered listing is empty
    let env = Env::new(mem, cfg);
    assert!(env.names("").await.is_empty());
    let attr = env.lookup("inq_b").await.unwrap();
    assert_eq!(attr.kind, crate::Kind::Dir);
    assert_eq!(env.calls(Call::Retrieve), 1);
    assert_eq!(env.names("inq_b/selfie").await, ["self_1-center-photo.jpg"]);
    assert_eq!(env.calls(Call::Retrieve), 1, "the view is reused");
}

#[tokio::test]
async fn a_name_that_cannot_be_an_inquiry_id_is_enoent_without_a_request() {
    let env = Env::new(sample_api(), config());
    let long = format!("inq_{}", "x".repeat(70));
    for name in ["foo", "inq_a.jpg", "inq_a b", long.as_str(), ".hidden"] {
        assert_eq!(
            errno(env.core.lookup(INQUIRIES, name).await),
            libc::ENOENT,
            "{name}"
        );
    }
    assert_eq!(env.calls(Call::Retrieve) + env.calls(Call::List), 0);
}
