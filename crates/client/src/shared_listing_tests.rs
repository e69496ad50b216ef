//! `SharedListing` over `FaultyApi<MemoryApi>` and a real `redis-server`.

use super::*;
use crate::InquirySummary;
use crate::redis_link::RedisLink;
use crate::shared_state::{CLAIM_TTL, RedisViews};
use crate::testing::redis_server::RedisServer;
use crate::testing::{Call, FaultyApi, InquirySpec, MemoryApi};

fn pages(redis: &RedisServer) -> Arc<dyn SharedViews> {
    let link = Arc::new(RedisLink::open(&redis.url()).unwrap());
    Arc::new(RedisViews::new(link, "org_L", "env_L", PAGE_KEEP, CLAIM_TTL).unwrap())
}

/// Every page of the listing, as a mount's lister reads them.
async fn list_all(api: &dyn PersonaApi, filters: &ListFilters) -> Vec<InquirySummary> {
    let mut all = Vec::new();
    let mut after = None;
    loop {
        let page = api.list_page(filters, after.as_deref(), 10).await.unwrap();
        all.extend(page.inquiries);
        match page.next_after {
            Some(next) => after = Some(next),
            None => return all,
        }
    }
}

/// Mounts started together list each page after the first once between them (each lists
/// its own first page, where new inquiries appear), and each sees the whole listing; another
/// query (other filters) is not answered with these pages.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn mounts_listing_together_list_each_page_once() {
    let Some(redis) = RedisServer::start() else {
        return;
    };
    let mem = MemoryApi::new();
    for i in 0..45 {
        let status = if i % 3 == 0 { "pending" } else { "approved" };
        mem.add_inquiry(InquirySpec::new(&format!("inq_{i:03}")).status(status));
    }
    let api = Arc::new(FaultyApi::new(mem));
    api.delay(Call::List, Duration::from_millis(50));
    let inner: Arc<dyn PersonaApi> = api.clone();
    let mounts: Vec<SharedListing> = (0..4)
        .map(|_| SharedListing::new(inner.clone(), pages(&redis)))
        .collect();
    let all = ListFilters::default();
    let expected = list_all(inner.as_ref(), &all).await;
    assert_eq!(expected.len(), 45);
    let listed_alone = api.calls(Call::List);
    let seen = futures::future::join_all(mounts.iter().map(|m| list_all(m, &all))).await;
    for listing in &seen {
        assert_eq!(listing, &expected, "a mount's listing differs");
    }
    assert_eq!(
        api.calls(Call::List) - listed_alone,
        listed_alone + 3,
        "four mounts listed more than one mount's pages and three first pages"
    );
    // Other filters are another query.
    let pending = ListFilters {
        status: vec!["pending".into()],
        ..ListFilters::default()
    };
    let before = api.calls(Call::List);
    let got = list_all(&mounts[0], &pending).await;
    assert_eq!(got.len(), 15);
    assert!(api.calls(Call::List) > before);
    // Nothing in Redis names the filters: keys are digests, values ids, statuses and times.
    for (key, value) in redis.contents().await {
        assert!(!key.contains("pending"), "{key}");
        let text = String::from_utf8_lossy(&value).to_ascii_lowercase();
        assert!(!text.contains("http") && !text.contains("token"), "{text}");
    }
}
