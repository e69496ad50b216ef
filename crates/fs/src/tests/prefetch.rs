//! Read-ahead: what it fetches (siblings, the next inquiries), its budgets (downloads at
//! once, unread bytes, file size), and the race it had with the user's own reads.

use std::collections::BTreeMap;
use std::time::Duration;

use personafs_client::testing::{Call, FileSpec, InquirySpec, MemoryApi};

use super::{
    Env, SAMPLE_FILES, config, downloads_started, limits, sample_api, sample_inquiry, settle,
    wait_for,
};
use crate::{CoreConfig, PrefetchConfig};

fn with_prefetch(inquiries_ahead: usize, max_downloads: usize, max_unread: u64) -> CoreConfig {
    CoreConfig {
        prefetch: PrefetchConfig {
            enabled: true,
            inquiries_ahead,
            max_downloads,
            max_unread_bytes: max_unread,
        },
        ..config()
    }
}

/// Wait for at least `n` calls of a kind, then until the API is quiet (so that any call
/// beyond `n` is seen too).
async fn calls_reach(env: &Env, call: Call, n: u64) {
    wait_for(&format!("{n} {call:?} calls"), || env.calls(call) >= n).await;
    settle(env).await;
}

/// Downloads from the first byte per file (`<object-id>/<slot>`; for tests of one inquiry).
fn downloads_per_file(env: &Env) -> BTreeMap<String, usize> {
    let mut out = BTreeMap::new();
    for f in env.mem().fetches() {
        if f.call == Call::Download && f.start == 0 {
            *out.entry(f.file).or_default() += 1;
        }
    }
    out
}

#[tokio::test]
async fn opening_a_file_downloads_its_siblings_and_the_next_inquiries_files() {
    let env = Env::new(sample_api(), with_prefetch(1, 8, 256 << 20));
    env.names("").await; // the listing gives the order: inq_a, inq_b, inq_c
    env.read_all("inq_a/document/doc_1-front-photo.jpg")
        .await
        .unwrap();
    calls_reach(&env, Call::Download, 8).await;
    wait_for("8 entries", || env.cache.stats().entries >= 8).await;
    assert_eq!(
        env.calls(Call::Download),
        8,
        "inq_a's 4 files and inq_b's 4"
    );
    for id in ["inq_a", "inq_b"] {
        for (_, name, object) in SAMPLE_FILES {
            let size = env.bytes(id, name).len() as u64;
            assert!(
                env.cache.contains(&env.key(id, object, name, size)),
                "{id}/{name}"
            );
        }
    }
    assert_eq!(env.cache.stats().entries, 8, "nothing of inq_c");
    // What was read ahead is served from the cache.
    for id in ["inq_a", "inq_b"] {
        for (section, name, _) in SAMPLE_FILES {
            let got = env
                .read_all(&format!("{id}/{section}/{name}"))
                .await
                .unwrap();
            assert!(got == env.bytes(id, name));
        }
    }
    calls_reach(&env, Call::Download, 12).await;
    wait_for("12 entries", || env.cache.stats().entries >= 12).await;
    // Opening inq_b's files read ahead inq_c's: every file once, none twice.
    assert_eq!(env.calls(Call::Download), 12, "a file was downloaded twice");
    assert_eq!(env.cache.stats().entries, 12);
    assert_eq!(downloads_started(&env.core), 12);
}

#[tokio::test]
async fn read_ahead_stays_within_its_unread_byte_budget() {
    // Name order of the sample: back (90 000), front (the user's), statement (40 000),
    // center (60 000). A budget of 150 000 takes back and statement, not center.
    let env = Env::new(sample_api(), with_prefetch(2, 8, 150_000));
    env.names("").await;
    let user = "inq_a/document/doc_1-front-photo.jpg";
    env.read_all(user).await.unwrap();
    calls_reach(&env, Call::Download, 3).await;
    let fetched: u64 = env
        .mem()
        .fetches()
        .iter()
        .map(|f| match f.file.as_str() {
            "doc_1/back-photo" => 90_000,
            "doc_1/front-photo" => 150_000,
            "doc_2/statement.pdf" => 40_000,
            _ => 60_000,
        })
        .sum();
    assert_eq!(env.calls(Call::Download), 3);
    assert!(fetched - 150_000 <= 150_000, "{fetched} bytes");
    // Opening a read-ahead file frees its share of the budget: the next open reads on.
    env.read_all("inq_a/document/doc_1-back-photo.jpg")
        .await
        .unwrap();
    wait_for("the budget was freed", || env.calls(Call::Download) > 3).await;
}

#[tokio::test]
async fn read_ahead_skips_files_over_32_mib() {
    let mem = MemoryApi::new();
    mem.add_inquiry(InquirySpec::new("inq_v").document(
        "doc_1",
        [
            FileSpec::photo("front-photo", "f.jpg", vec![1u8; 10_000]),
            FileSpec::photo("video", "v.mp4", vec![2u8; (32 << 20) + 1]),
            FileSpec::photo("back-photo", "b.jpg", vec![3u8; 20_000]),
        ],
    ));
    let env = Env::new(mem, with_prefetch(0, 8, 1 << 30));
    env.read_all("inq_v/document/doc_1-front-photo.jpg")
        .await
        .unwrap();
    calls_reach(&env, Call::Download, 2).await;
    let files: Vec<_> = downloads_per_file(&env).into_keys().collect();
    assert_eq!(files, ["doc_1/back-photo", "doc_1/front-photo"]);
}

#[tokio::test]
async fn read_ahead_skips_files_over_a_quarter_of_the_cache() {
    let mem = MemoryApi::new();
    mem.add_inquiry(sample_inquiry("inq_q", 3));
    // A cache of 400 000 bytes: nothing over 100 000 is read ahead (back: 90 000 is).
    let env = Env::with_limits(mem, with_prefetch(0, 8, 1 << 30), limits(400_000));
    env.read_all("inq_q/document/doc_2-statement.pdf")
        .await
        .unwrap();
    calls_reach(&env, Call::Download, 3).await;
    let files: Vec<_> = downloads_per_file(&env).into_keys().collect();
    assert_eq!(
        files,
        [
            "doc_1/back-photo",
            "doc_2/statement.pdf",
            "self_1/center-photo"
        ],
        "the 150 000-byte front photo is left for when it is read"
    );
}

#[tokio::test]
async fn read_ahead_runs_at_most_max_downloads_at_once() {
    let env = Env::new(sample_api(), with_prefetch(2, 2, 256 << 20));
    env.names("").await;
    env.api.delay(Call::Download, Duration::from_millis(40));
    let user = "inq_a/selfie/self_1-center-photo.jpg";
    env.read_all(user).await.unwrap();
    calls_reach(&env, Call::Download, 12).await;
    assert_eq!(
        env.calls(Call::Download),
        12,
        "every file of the window once"
    );
    assert!(
        env.api.max_in_flight(Call::Download) <= 3,
        "2 read-ahead downloads + the user's, got {}",
        env.api.max_in_flight(Call::Download)
    );
}

/// Read-ahead that waits for a download slot while the user reads the same file must not
/// fetch it again once it is in the cache.
#[tokio::test]
async fn read_ahead_does_not_download_again_a_file_read_while_it_waited() {
    let env = Env::new(sample_api(), with_prefetch(0, 1, 256 << 20));
    // The user's file (back, first in name order) and read-ahead's first (front) are slow:
    // read-ahead holds its one slot while it waits to start on the statement.
    env.api
        .delay_next(Call::Download, 2, Duration::from_millis(300));
    let ino = env.ino("inq_a/document/doc_1-back-photo.jpg").await;
    let first = env.core.open(ino).await.unwrap();
    wait_for("read-ahead started on the front", || {
        env.api.in_flight(Call::Download) == 2
    })
    .await;
    // The user reads the statement whole, before read-ahead gets its slot.
    let statement = env.read_all("inq_a/document/doc_2-statement.pdf").await;
    assert!(statement.unwrap() == env.bytes("inq_a", "doc_2-statement.pdf"));
    assert!(env.read_fh(first.fh).await.unwrap() == env.bytes("inq_a", "doc_1-back-photo.jpg"));
    env.core.release(first.fh);
    calls_reach(&env, Call::Download, 4).await;
    let per_file = downloads_per_file(&env);
    assert_eq!(per_file.len(), 4, "{per_file:?}");
    assert!(
        per_file.values().all(|&n| n == 1),
        "a file was downloaded twice: {per_file:?}"
    );
    assert_eq!(downloads_started(&env.core), 4);
}

#[tokio::test]
async fn entering_an_inquiry_retrieves_the_next_ones_but_downloads_nothing() {
    let env = Env::new(sample_api(), with_prefetch(1, 8, 256 << 20));
    env.names("").await;
    env.names("inq_a").await;
    calls_reach(&env, Call::Retrieve, 2).await;
    assert_eq!(
        env.calls(Call::Retrieve),
        2,
        "inq_a and the next one, inq_b"
    );
    for id in ["inq_a", "inq_b", "inq_c"] {
        env.names(&format!("{id}/document")).await;
        env.names(&format!("{id}/selfie")).await;
    }
    calls_reach(&env, Call::Retrieve, 3).await;
    assert_eq!(env.calls(Call::Retrieve), 3, "nobody retrieved twice");
    assert_eq!(
        env.calls(Call::Download) + env.calls(Call::DownloadRange),
        0
    );
}

#[tokio::test]
async fn without_read_ahead_only_what_is_read_is_downloaded() {
    let env = Env::new(sample_api(), config());
    env.names("").await;
    env.names("inq_a").await;
    env.read_all("inq_a/document/doc_1-front-photo.jpg")
        .await
        .unwrap();
    settle(&env).await;
    assert_eq!(env.calls(Call::Download), 1);
    assert_eq!(env.calls(Call::Retrieve), 1);
}

/// Listed newest first as c, a, e, b, d: name order and listing order differ.
fn shuffled_api() -> MemoryApi {
    let mem = MemoryApi::new();
    for (i, id) in ["inq_d", "inq_b", "inq_e", "inq_a", "inq_c"]
        .iter()
        .enumerate()
    {
        mem.add_inquiry(
            sample_inquiry(id, 10 * i as u64).created_at(&format!("2024-05-0{}T00:00:00Z", i + 1)),
        );
    }
    mem
}

#[tokio::test]
async fn read_ahead_follows_a_walk_by_name_and_one_in_listing_order() {
    let env = Env::new(shuffled_api(), with_prefetch(2, 8, 256 << 20));
    assert_eq!(
        env.names("").await,
        ["inq_c", "inq_a", "inq_e", "inq_b", "inq_d"]
    );
    // A first step: the next two in the listing (find, cp -r), inq_e and inq_b.
    env.names("inq_a").await;
    calls_reach(&env, Call::Retrieve, 3).await;
    settle(&env).await;
    assert_eq!(env.calls(Call::Retrieve), 3);
    // inq_b right after inq_a by name: the walk goes by name (ls -lR, rsync), so inq_c and
    // inq_d come next (by the listing, only inq_d would).
    env.names("inq_b").await;
    calls_reach(&env, Call::Retrieve, 5).await;
    settle(&env).await;
    assert_eq!(env.calls(Call::Retrieve), 5);
    // They were read ahead: walking on by name costs nothing more.
    env.names("inq_c").await;
    env.names("inq_d").await;
    settle(&env).await;
    assert_eq!(env.calls(Call::Retrieve), 5);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 1)]
async fn read_ahead_follows_the_walk_whatever_order_its_tasks_run_in() {
    let env = Env::new(shuffled_api(), with_prefetch(2, 8, 256 << 20));
    env.names("").await;
    // A walk by name enters inq_a, then inq_b, before the runtime runs what the first step
    // spawned (here on the runtime's one worker, which runs the last task spawned first).
    let core = env.core.clone();
    tokio::spawn(async move {
        for id in ["inq_a", "inq_b"] {
            assert!(core.at_once(core.lookup(crate::INQUIRIES, id)).is_some());
        }
    })
    .await
    .unwrap();
    // inq_a read ahead inq_e and inq_b (the listing's next two: a first step), inq_b by name
    // inq_c and inq_d. Taken in the order the tasks ran, inq_b's step would have looked
    // like a first step (listing order: inq_d only) and inq_a's like a jump (inq_e, inq_b).
    calls_reach(&env, Call::Retrieve, 4).await;
    settle(&env).await;
    assert_eq!(env.calls(Call::Retrieve), 4);
    // So the walk by name goes on without a retrieve of its own.
    for id in ["inq_c", "inq_d", "inq_e"] {
        env.names(id).await;
    }
    settle(&env).await;
    assert_eq!(env.calls(Call::Retrieve), 4, "c, d and e were read ahead");
}
