//! The views beside `inquiries/` (SEMANTICS.md, "Views"): what they list comes from the
//! listing with no call of its own; a key the listing lacks costs one filtered list call,
//! believed for the negative TTL; impossible keys cost nothing; names are safe and
//! distinct; filters and changes reach every view.

use std::time::Duration;

use personafs_client::ListFilters;
use personafs_client::testing::{Call, InquirySpec, MemoryApi};

use super::{Env, config};
use crate::{Change, Kind, ROOT, ViewSet};

fn inquiry(id: &str, created: &str, reference: Option<&str>, account: Option<&str>) -> InquirySpec {
    let mut spec = InquirySpec::new(id).created_at(created);
    if let Some(r) = reference {
        spec = spec.reference_id(r);
    }
    if let Some(a) = account {
        spec = spec.account_id(a);
    }
    spec
}

/// Two people over three days, one inquiry with neither key, and hostile reference ids.
fn people() -> MemoryApi {
    let mem = MemoryApi::new();
    for spec in [
        inquiry(
            "inq_a1",
            "2026-03-01T09:00:00Z",
            Some("user-1"),
            Some("act_1"),
        ),
        inquiry(
            "inq_a2",
            "2026-03-02T09:00:00Z",
            Some("user-1"),
            Some("act_1"),
        ),
        inquiry(
            "inq_a3",
            "2026-03-02T18:00:00Z",
            Some("user-1"),
            Some("act_1"),
        ),
        inquiry(
            "inq_b1",
            "2026-03-02T12:00:00Z",
            Some("user-2"),
            Some("act_2"),
        ),
        inquiry("inq_c1", "2026-03-03T00:00:00Z", None, None),
        inquiry(
            "inq_h1",
            "2026-02-27T01:00:00Z",
            Some("../../etc/passwd"),
            None,
        ),
        inquiry("inq_h2", "2026-02-27T02:00:00Z", Some("a/b"), None),
        inquiry("inq_h3", "2026-02-27T03:00:00Z", Some("a\nb"), None),
        inquiry("inq_h4", "2026-02-27T04:00:00Z", Some("a_b"), None),
        inquiry(
            "inq_h5",
            "2026-02-27T05:00:00Z",
            Some("50% 🙂"),
            Some("act_../x"),
        ),
    ] {
        mem.add_inquiry(spec);
    }
    mem
}

impl Env {
    /// Look up a path from the root (`by-day/2026/03/02`).
    async fn lookup_root(&self, path: &str) -> crate::FsResult<crate::Attr> {
        let mut parent = ROOT;
        let mut attr = None;
        for name in path.split('/') {
            let a = self.core.lookup(parent, name).await?;
            parent = a.ino;
            attr = Some(a);
        }
        Ok(attr.expect("a non-empty path"))
    }

    /// Names in a directory under the root.
    async fn names_at(&self, path: &str) -> Vec<String> {
        let ino = match path {
            "" => ROOT,
            _ => self.lookup_root(path).await.expect(path).ino,
        };
        self.core
            .readdir(ino)
            .await
            .unwrap_or_else(|e| panic!("readdir {path}: {e}"))
            .into_iter()
            .map(|e| e.name.to_string())
            .collect()
    }

    fn errno_at(&self, r: crate::FsResult<crate::Attr>) -> i32 {
        r.err().map_or(0, |e| crate::errno_of(&e))
    }
}

#[tokio::test]
async fn views_are_listed_from_the_listing_with_no_call_of_their_own() {
    let env = Env::new(people(), config());
    assert_eq!(
        env.names_at("").await,
        ["inquiries", "by-reference-id", "accounts", "by-day"]
    );
    assert_eq!(env.names("").await.len(), 10);
    let listed = env.total_calls();
    assert_eq!(env.calls(Call::List), 1);

    let refs = env.names_at("by-reference-id").await;
    assert_eq!(refs.len(), 7, "{refs:?}");
    assert!(refs.contains(&"user-1".to_string()) && refs.contains(&"a_b".to_string()));
    assert!(
        refs.contains(&"50% 🙂".to_string()),
        "a safe id is its own name"
    );
    let mut sorted = refs.clone();
    sorted.sort();
    assert_eq!(refs, sorted, "keys in a stable (name) order");
    assert_eq!(
        env.names_at("by-reference-id/user-1").await,
        ["inq_a3", "inq_a2", "inq_a1"],
        "newest first"
    );
    assert_eq!(env.names_at("accounts").await, ["act_1", "act_2"]);
    assert_eq!(env.names_at("accounts/act_2").await, ["inq_b1"]);
    assert_eq!(env.names_at("by-day").await, ["2026"]);
    assert_eq!(env.names_at("by-day/2026").await, ["02", "03"]);
    assert_eq!(env.names_at("by-day/2026/03").await, ["01", "02", "03"]);
    assert_eq!(
        env.names_at("by-day/2026/03/02").await,
        ["inq_a3", "inq_b1", "inq_a2"],
        "a day newest first"
    );

    let link = env
        .lookup_root("by-day/2026/03/02/inq_b1")
        .await
        .expect("link");
    assert_eq!(link.kind, Kind::Symlink);
    assert_eq!(
        env.core.readlink(link.ino).unwrap(),
        "../../../../inquiries/inq_b1"
    );
    assert_eq!(link.size, "../../../../inquiries/inq_b1".len() as u64);
    let link = env
        .lookup_root("by-reference-id/user-1/inq_a1")
        .await
        .unwrap();
    assert_eq!(
        env.core.readlink(link.ino).unwrap(),
        "../../inquiries/inq_a1"
    );
    let day = env.lookup_root("by-day/2026/03/02").await.unwrap();
    assert_eq!(day.kind, Kind::Dir);
    assert_eq!(
        env.errno_at(env.lookup_root("by-day/2026/03/02/inq_a1").await),
        libc::ENOENT,
        "an inquiry of another day"
    );
    assert_eq!(
        crate::errno_of(&env.core.readlink(day.ino).unwrap_err()),
        libc::EINVAL
    );
    assert_eq!(env.total_calls(), listed, "no call beyond the listing");
}

#[tokio::test]
async fn hostile_reference_ids_get_safe_distinct_names_that_lead_to_their_inquiries() {
    let env = Env::new(people(), config());
    let refs = env.names_at("by-reference-id").await;
    for name in &refs {
        assert!(!name.contains('/') && !name.chars().any(char::is_control));
        assert!(name != "." && name != ".." && name.len() <= 255);
    }
    let changed: Vec<&String> = refs.iter().filter(|n| n.contains('~')).collect();
    assert_eq!(changed.len(), 3, "{refs:?}");
    for name in changed {
        let inquiries = env.names_at(&format!("by-reference-id/{name}")).await;
        assert_eq!(inquiries.len(), 1, "{name}: one inquiry each");
        let want = match &name[..4] {
            ".._." => "inq_h1",
            _ if inquiries[0] == "inq_h2" || inquiries[0] == "inq_h3" => &*inquiries[0],
            other => panic!("unexpected name {other}"),
        };
        assert_eq!(inquiries[0], want);
    }
    assert_eq!(
        env.names_at("by-reference-id/a_b").await,
        ["inq_h4"],
        "the id that is already safe keeps its name and its own inquiry"
    );
    assert_eq!(
        env.names_at("accounts").await,
        ["act_1", "act_2"],
        "a malformed account id is in no directory"
    );
}

#[tokio::test]
async fn an_unknown_key_costs_one_call_then_none_within_the_negative_ttl() {
    let mut cfg = config();
    cfg.negative_ttl = Duration::from_secs(10);
    let env = Env::new(people(), cfg);
    env.names("").await;
    // Appears after the listing: only asking Persona finds it.
    env.mem().add_inquiry(inquiry(
        "inq_new",
        "2026-03-04T08:00:00Z",
        Some("user-9"),
        Some("act_9"),
    ));
    let before = env.calls(Call::List);
    assert!(env.lookup_root("by-reference-id/user-9").await.is_ok());
    assert_eq!(env.calls(Call::List), before + 1, "one filtered list call");
    assert_eq!(env.names_at("by-reference-id/user-9").await, ["inq_new"]);
    assert!(
        env.lookup_root("by-reference-id/user-9/inq_new")
            .await
            .is_ok()
    );
    assert_eq!(env.calls(Call::List), before + 1, "answered from memory");

    assert_eq!(
        env.errno_at(env.lookup_root("by-reference-id/nobody").await),
        libc::ENOENT
    );
    assert_eq!(env.calls(Call::List), before + 2);
    assert_eq!(
        env.errno_at(env.lookup_root("by-reference-id/nobody").await),
        libc::ENOENT
    );
    assert_eq!(
        env.calls(Call::List),
        before + 2,
        "within the negative TTL: no call"
    );

    assert!(env.lookup_root("accounts/act_9").await.is_ok());
    assert!(env.lookup_root("by-day/2026/03/04/inq_new").await.is_ok());
    assert_eq!(env.calls(Call::List), before + 4, "one call per key");

    env.clock.advance(Duration::from_secs(11));
    assert_eq!(
        env.errno_at(env.lookup_root("by-reference-id/nobody").await),
        libc::ENOENT
    );
    assert_eq!(
        env.calls(Call::List),
        before + 5,
        "asked again after the TTL"
    );
}

#[tokio::test]
async fn keys_that_cannot_exist_are_enoent_without_a_request() {
    let mut cfg = config();
    cfg.filters = ListFilters {
        created_after: Some("2026-01-01".into()),
        ..ListFilters::default()
    };
    let env = Env::new(people(), cfg);
    // Listed first, so the parents (`by-day/2026/02`) are known.
    env.names("").await;
    let listed = env.total_calls();
    for path in [
        "accounts/acc_1",
        "accounts/act_../x",
        "accounts/act_",
        "by-day/26",
        "by-day/2025",
        "by-day/9999",
        "by-day/2026/13",
        "by-day/2026/1",
        "by-day/2026/02/30",
        "by-day/2026/03/00",
        "by-reference-id/a_b~0123456789ab",
        "by-reference-id/tab\there",
        "views",
    ] {
        let r = env.lookup_root(path).await;
        assert_eq!(env.errno_at(r), libc::ENOENT, "{path}");
    }
    assert_eq!(env.total_calls(), listed, "not one request");
}

#[tokio::test]
async fn the_mounts_filters_hold_in_every_view() {
    let mut cfg = config();
    cfg.filters = ListFilters {
        account_id: Some("act_1".into()),
        ..ListFilters::default()
    };
    let env = Env::new(people(), cfg);
    assert_eq!(env.names_at("by-reference-id").await, ["user-1"]);
    assert_eq!(env.names_at("accounts").await, ["act_1"]);
    assert_eq!(
        env.names_at("by-day/2026/03/02").await,
        ["inq_a3", "inq_a2"],
        "inq_b1 is another account's"
    );
    let before = env.total_calls();
    assert_eq!(
        env.errno_at(env.lookup_root("accounts/act_2").await),
        libc::ENOENT,
        "another account than the mount's: nothing to ask"
    );
    assert_eq!(env.total_calls(), before);
    // A reference id the listing lacks is asked with the mount's filter too.
    assert_eq!(
        env.errno_at(env.lookup_root("by-reference-id/user-2").await),
        libc::ENOENT
    );
    assert_eq!(env.total_calls(), before + 1);
}

#[tokio::test]
async fn views_can_be_hidden() {
    let mut cfg = config();
    cfg.views = ViewSet {
        by_day: true,
        ..ViewSet::NONE
    };
    let env = Env::new(people(), cfg);
    assert_eq!(env.names_at("").await, ["inquiries", "by-day"]);
    assert_eq!(
        env.errno_at(env.lookup_root("by-reference-id").await),
        libc::ENOENT
    );
    let mut cfg = config();
    cfg.views = ViewSet::NONE;
    let env = Env::new(people(), cfg);
    assert_eq!(env.names_at("").await, ["inquiries"]);
}

#[tokio::test]
async fn an_inquiry_leaves_every_view_when_it_leaves_inquiries() {
    let env = Env::new(people(), config());
    assert_eq!(env.names_at("accounts/act_2").await, ["inq_b1"]);
    // Asked once and remembered: a change forgets what was asked too.
    assert_eq!(
        env.errno_at(env.lookup_root("by-reference-id/user-7").await),
        libc::ENOENT
    );
    env.mem().remove_inquiry("inq_b1");
    env.mem().add_inquiry(inquiry(
        "inq_d1",
        "2026-03-05T08:00:00Z",
        Some("user-7"),
        None,
    ));
    env.core
        .apply_change(Change::Appeared("inq_d1".into()))
        .await;
    let ids = env.names("").await;
    assert!(!ids.contains(&"inq_b1".to_string()) && ids.contains(&"inq_d1".to_string()));
    assert_eq!(
        env.errno_at(env.lookup_root("accounts/act_2").await),
        libc::ENOENT
    );
    assert_eq!(
        env.names_at("by-day/2026/03/02").await,
        ["inq_a3", "inq_a2"]
    );
    assert!(
        !env.names_at("by-reference-id")
            .await
            .contains(&"user-2".to_string())
    );
    assert_eq!(env.names_at("by-reference-id/user-7").await, ["inq_d1"]);
}

use crate::testing::Told;

#[tokio::test]
async fn the_kernel_keeps_a_view_listing_until_it_changes() {
    let mut cfg = config();
    cfg.metadata_ttl = Duration::from_secs(60);
    let env = Env::new(people(), cfg);
    let told = std::sync::Arc::new(Told::default());
    env.core.set_kernel_caches(told.clone());
    let read_all = |ino: u64| {
        let core = env.core.clone();
        async move {
            core.dir_entries(ino, 0, true, |_| false)
                .await
                .expect("entries")
        }
    };
    let accounts = env.lookup_root("accounts").await.unwrap().ino;
    let act_1 = env.lookup_root("accounts/act_1").await.unwrap().ino;
    let act_2 = env.lookup_root("accounts/act_2").await.unwrap().ino;
    read_all(accounts).await;
    read_all(act_1).await;
    read_all(act_2).await;
    env.core.getattr(act_1).await.unwrap();
    env.core.getattr(accounts).await.unwrap();
    assert!(told.0.lock().is_empty(), "unchanged: the kernel keeps them");

    env.mem().add_inquiry(inquiry(
        "inq_a4",
        "2026-03-06T08:00:00Z",
        Some("user-1"),
        Some("act_1"),
    ));
    env.clock.advance(Duration::from_secs(61));
    env.names("").await; // a new listing
    env.core.getattr(act_1).await.unwrap();
    env.core.getattr(act_2).await.unwrap();
    let dropped = told.0.lock().clone();
    assert!(dropped.contains(&act_1), "its entries changed: {dropped:?}");
    assert!(!dropped.contains(&act_2), "the same entries: kept");
    assert!(dropped.contains(&accounts), "a new listing drops the tops");
    assert_eq!(
        env.names_at("accounts/act_1").await,
        ["inq_a4", "inq_a3", "inq_a2", "inq_a1"]
    );
}
