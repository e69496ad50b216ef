//! Reads far (8 MiB+) past the download front fetch their own 1 MiB-aligned blocks with
//! ranged requests; when that fails, they wait for the download.

use std::time::Duration;

use personafs_client::testing::{Call, Fault, FileSpec, InquirySpec, MemoryApi};

use super::{Env, bytes, config, far_reads};

const MIB: u64 = 1 << 20;
const BIG: &str = "inq_big/document/doc_1-video.mp4";
const SIZE: usize = 10 << 20;

fn big_api() -> MemoryApi {
    let mem = MemoryApi::new();
    mem.add_inquiry(InquirySpec::new("inq_big").document(
        "doc_1",
        [FileSpec::photo("video", "clip.mp4", bytes(77, SIZE))],
    ));
    mem
}

/// The big file opened while its download waits `delay` to start (its front stays at 0).
/// Tests that never need the download let it wait longer than they run.
async fn opened_with_slow_download(env: &Env, delay: Duration) -> u64 {
    env.api.delay(Call::Download, delay);
    let ino = env.ino(BIG).await;
    env.core.open(ino).await.unwrap().fh
}

fn ranges(env: &Env) -> Vec<(u64, Option<u64>)> {
    env.mem()
        .fetches()
        .into_iter()
        .filter(|f| f.call == Call::DownloadRange)
        .map(|f| (f.start, f.end))
        .collect()
}

#[tokio::test]
async fn a_far_read_fetches_its_block_with_a_ranged_request() {
    let env = Env::new(big_api(), config());
    let expected = env.bytes("inq_big", "doc_1-video.mp4");
    let fh = opened_with_slow_download(&env, Duration::from_millis(300)).await;
    let at = 9 * MIB + 5;
    let got = env.core.read(fh, at, 65_536).await.unwrap();
    assert!(got[..] == expected[at as usize..at as usize + 65_536]);
    assert_eq!(ranges(&env), [(9 * MIB, Some(10 * MIB))]);
    // A neighbour in the same block is served from memory.
    let near = 9 * MIB + 300_000;
    let got = env.core.read(fh, near, 4096).await.unwrap();
    assert!(got[..] == expected[near as usize..near as usize + 4096]);
    assert_eq!(env.calls(Call::DownloadRange), 1);
    assert_eq!(far_reads(&env.core), 2);
    // The download goes on from the start and is what serves the rest.
    assert!(env.read_fh(fh).await.unwrap() == expected);
    assert_eq!(env.calls(Call::Download), 1);
    env.core.release(fh);
}

#[tokio::test]
async fn a_far_read_across_a_block_boundary_fetches_both_blocks() {
    let env = Env::new(big_api(), config());
    let expected = env.bytes("inq_big", "doc_1-video.mp4");
    let fh = opened_with_slow_download(&env, Duration::from_secs(5)).await;
    let at = 9 * MIB - 1000;
    let got = env.core.read(fh, at, 4000).await.unwrap();
    assert!(got[..] == expected[at as usize..at as usize + 4000]);
    assert_eq!(
        ranges(&env),
        [(8 * MIB, Some(9 * MIB)), (9 * MIB, Some(10 * MIB))]
    );
    env.core.release(fh);
}

#[tokio::test]
async fn a_near_read_waits_for_the_download() {
    let env = Env::new(big_api(), config());
    let expected = env.bytes("inq_big", "doc_1-video.mp4");
    let fh = opened_with_slow_download(&env, Duration::from_millis(50)).await;
    let at = 4 * MIB;
    let got = env.core.read(fh, at, 65_536).await.unwrap();
    assert!(got[..] == expected[at as usize..at as usize + 65_536]);
    assert_eq!(env.calls(Call::DownloadRange), 0);
    assert_eq!(far_reads(&env.core), 0);
    env.core.release(fh);
}

#[tokio::test]
async fn a_refused_range_falls_back_to_the_download() {
    let env = Env::new(big_api(), config());
    let expected = env.bytes("inq_big", "doc_1-video.mp4");
    env.api
        .fail_next(Call::DownloadRange, 1, Fault::Status(500));
    let fh = opened_with_slow_download(&env, Duration::from_millis(100)).await;
    let at = 9 * MIB;
    let got = env.core.read(fh, at, 65_536).await.unwrap();
    assert!(got[..] == expected[at as usize..at as usize + 65_536]);
    assert_eq!(env.calls(Call::DownloadRange), 1, "tried once");
    assert_eq!(env.mem().calls(Call::DownloadRange), 0);
    assert_eq!(far_reads(&env.core), 0, "served by the download");
    env.core.release(fh);
}

#[tokio::test]
async fn a_far_read_with_a_refused_url_retrieves_once_and_retries() {
    let env = Env::new(big_api(), config());
    let expected = env.bytes("inq_big", "doc_1-video.mp4");
    env.api.fail_next(Call::DownloadRange, 1, Fault::Expired);
    let fh = opened_with_slow_download(&env, Duration::from_secs(5)).await;
    let at = 9 * MIB + 1;
    let got = env.core.read(fh, at, 1000).await.unwrap();
    assert!(got[..] == expected[at as usize..at as usize + 1000]);
    assert_eq!(env.calls(Call::Retrieve), 2);
    assert_eq!(env.calls(Call::DownloadRange), 2);
    assert_eq!(far_reads(&env.core), 1);
    env.core.release(fh);
}
