//! Tests of the whole cache through its public API, against a fake server that serves
//! deterministic bytes, counts requests, and can be told to fail or to hold requests.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use futures_util::future::{join_all, BoxFuture};
use futures_util::FutureExt;
use reqwest::Method;
use tokio::sync::watch;

use super::*;
use crate::confluence::{ClientError, RequestLine};

const KIB: u64 = 1024;
const MIB: u64 = 1024 * KIB;

/// Byte `pos` of the fake object with `seed`: differs between neighbouring bytes, blocks and
/// seeds (versions), so a misplaced or stale byte shows.
fn byte_at(seed: u64, pos: u64) -> u8 {
    let x = (pos ^ (seed << 40)).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    (x >> 56) as u8
}

fn expected(seed: u64, offset: u64, end: u64) -> Vec<u8> {
    (offset..end).map(|pos| byte_at(seed, pos)).collect()
}

struct FakeServer {
    size: u64,
    seed: u64,
    calls: AtomicU64,
    bytes: AtomicU64,
    requests: Mutex<Vec<(u64, u64)>>,
    fail: AtomicBool,
    /// `false` holds every request until it turns `true`.
    open: watch::Sender<bool>,
    running: AtomicUsize,
    max_running: AtomicUsize,
}

impl FakeServer {
    fn new(size: u64, seed: u64) -> Arc<FakeServer> {
        Arc::new(FakeServer {
            size,
            seed,
            calls: AtomicU64::new(0),
            bytes: AtomicU64::new(0),
            requests: Mutex::new(Vec::new()),
            fail: AtomicBool::new(false),
            open: watch::channel(true).0,
            running: AtomicUsize::new(0),
            max_running: AtomicUsize::new(0),
        })
    }

    fn calls(&self) -> u64 {
        self.calls.load(Ordering::SeqCst)
    }

    /// Requests whose range held byte `pos`.
    fn requests_covering(&self, pos: u64) -> usize {
        let requests = self.requests.lock().unwrap();
        requests
            .iter()
            .filter(|(offset, len)| (*offset..offset + len).contains(&pos))
            .count()
    }

    fn set_failing(&self, fail: bool) {
        self.fail.store(fail, Ordering::SeqCst);
    }

    fn hold(&self) {
        self.open.send_replace(false);
    }

    fn release(&self) {
        self.open.send_replace(true);
    }
}

struct FakeFetch(Arc<FakeServer>);

impl RangeFetch for FakeFetch {
    fn fetch(&self, offset: u64, len: u64) -> BoxFuture<'static, Result<Bytes, ClientError>> {
        let server = self.0.clone();
        async move {
            server.calls.fetch_add(1, Ordering::SeqCst);
            server.requests.lock().unwrap().push((offset, len));
            let running = server.running.fetch_add(1, Ordering::SeqCst) + 1;
            server.max_running.fetch_max(running, Ordering::SeqCst);
            let mut open = server.open.subscribe();
            let _ = open.wait_for(|open| *open).await;
            server.running.fetch_sub(1, Ordering::SeqCst);
            if server.fail.load(Ordering::SeqCst) {
                return Err(ClientError::Transport {
                    request: RequestLine {
                        method: Method::GET,
                        url: "http://fake/download".into(),
                    },
                    detail: "connection refused".into(),
                    source: None,
                });
            }
            assert!(
                offset + len <= server.size,
                "fetch past EOF: {offset}+{len}"
            );
            server.bytes.fetch_add(len, Ordering::SeqCst);
            Ok(Bytes::from(expected(server.seed, offset, offset + len)))
        }
        .boxed()
    }
}

fn fetcher(server: &Arc<FakeServer>) -> Arc<dyn RangeFetch> {
    Arc::new(FakeFetch(server.clone()))
}

fn key(id: &str, version: u64) -> ObjectKey {
    ObjectKey {
        attachment_id: id.into(),
        version,
    }
}

/// Small blocks keep the tests fast; the ratios are those of the defaults.
fn small_config(disk_dir: Option<&Path>) -> CacheConfig {
    CacheConfig {
        block_size: 1000,
        memory_bytes: 1_000_000,
        disk_dir: disk_dir.map(Path::to_path_buf),
        disk_bytes: 1_000_000,
        max_prefetch_bytes: 8000,
        max_request_bytes: 4000,
        max_parallel_fetches: 2,
        // These tests look at the ramp-up of the window; whole-file starts have their own.
        whole_file_bytes: 0,
    }
}

async fn read_all(file: &CachedFile, chunk: u32) -> Vec<u8> {
    let mut out = Vec::new();
    loop {
        let piece = file.read(out.len() as u64, chunk).await.unwrap();
        if piece.is_empty() {
            return out;
        }
        out.extend_from_slice(&piece);
    }
}

fn block_files(dir: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    for bucket in std::fs::read_dir(dir).unwrap() {
        let bucket = bucket.unwrap().path();
        if bucket.is_dir() {
            for file in std::fs::read_dir(&bucket).unwrap() {
                files.push(file.unwrap().path());
            }
        }
    }
    files
}

#[tokio::test]
async fn reads_are_byte_exact_at_block_boundaries_and_the_short_last_block() {
    let cache = BlockCache::new(small_config(None)).unwrap();
    let server = FakeServer::new(3500, 7);
    let file = cache.open(key("att1", 1), 3500, fetcher(&server));
    let cases: &[(u64, u32, u64)] = &[
        (0, 1000, 1000),
        (999, 2, 1001),
        (1000, 1000, 2000),
        (1500, 1700, 3200),
        (2999, 600, 3500),
        (3400, 200, 3500),
        (3499, 1, 3500),
        (0, 5000, 3500),
    ];
    for &(offset, len, end) in cases {
        let got = file.read(offset, len).await.unwrap();
        assert_eq!(got, expected(7, offset, end), "read({offset}, {len})");
    }
    assert!(file.read(3500, 10).await.unwrap().is_empty());
    let empty_server = FakeServer::new(0, 7);
    let empty = cache.open(key("att0", 1), 0, fetcher(&empty_server));
    assert!(empty.read(0, 4096).await.unwrap().is_empty());
    assert_eq!(empty_server.calls(), 0);
    assert!(cache.is_cached(&key("att0", 1), 0));
    assert!(file.read(9000, 10).await.unwrap().is_empty());
    assert!(file.read(10, 0).await.unwrap().is_empty());
}

#[tokio::test]
async fn warm_reread_makes_no_requests() {
    let cache = BlockCache::new(small_config(None)).unwrap();
    let server = FakeServer::new(10_500, 1);
    let file = cache.open(key("att1", 1), 10_500, fetcher(&server));
    assert_eq!(read_all(&file, 300).await, expected(1, 0, 10_500));
    cache.settled().await;
    let calls = server.calls();
    assert!(calls > 0);
    assert!(cache.is_cached(&key("att1", 1), 10_500));

    let again = cache.open(key("att1", 1), 10_500, fetcher(&server));
    assert_eq!(read_all(&again, 700).await, expected(1, 0, 10_500));
    assert_eq!(server.calls(), calls);
    // Each block was fetched exactly once.
    assert_eq!(server.bytes.load(Ordering::SeqCst), 10_500);
}

#[tokio::test]
async fn disk_cache_survives_a_new_cache_and_serves_with_the_server_down() {
    let dir = tempfile::tempdir().unwrap();
    let disk = dir.path().join("cache");
    let server = FakeServer::new(7_300, 3);
    {
        let cache = BlockCache::new(small_config(Some(&disk))).unwrap();
        let file = cache.open(key("att9", 2), 7_300, fetcher(&server));
        assert_eq!(read_all(&file, 1000).await, expected(3, 0, 7_300));
        cache.settled().await;
        assert_eq!(cache.stats().disk_bytes, 7_300);
    }
    let calls = server.calls();
    server.set_failing(true);

    let cache = BlockCache::new(small_config(Some(&disk))).unwrap();
    assert!(cache.is_cached(&key("att9", 2), 7_300));
    assert_eq!(cache.stats().disk_blocks, 8);
    let file = cache.open(key("att9", 2), 7_300, fetcher(&server));
    assert_eq!(read_all(&file, 900).await, expected(3, 0, 7_300));
    assert_eq!(server.calls(), calls, "no request for a fully cached file");
    assert_eq!(cache.stats().disk_hits, 8);
    // Another version of the same attachment is not cached, and with the server down it fails.
    let other = cache.open(key("att9", 3), 7_300, fetcher(&server));
    assert!(matches!(other.read(0, 10).await, Err(ReadError::Fetch(_))));
}

#[tokio::test]
async fn failed_fetch_reaches_every_waiter_is_not_cached_and_a_retry_succeeds() {
    let cache = BlockCache::new(small_config(None)).unwrap();
    let server = FakeServer::new(5_000, 4);
    let file = cache.open(key("att1", 1), 5_000, fetcher(&server));
    server.set_failing(true);
    server.hold();
    let reads = join_all((0..4).map(|i| file.read(2000 + i * 10, 10)));
    let release = async {
        tokio::task::yield_now().await;
        server.release();
    };
    let (results, ()) = tokio::join!(reads, release);
    // (Reads this close together count as sequential, so read-ahead may ask for later blocks.)
    assert_eq!(
        server.requests_covering(2000),
        1,
        "the waiters shared one request"
    );
    for result in results {
        match result {
            Err(ReadError::Fetch(error)) => assert!(error.is_retryable()),
            other => panic!("expected a fetch error, got {other:?}"),
        }
    }
    assert!(!cache.is_cached(&key("att1", 1), 5_000));

    server.set_failing(false);
    assert_eq!(file.read(2000, 10).await.unwrap(), expected(4, 2000, 2010));
    assert_eq!(server.requests_covering(2000), 2, "the retry asked again");
}

#[tokio::test]
async fn concurrent_reads_of_one_block_make_one_request() {
    let cache = BlockCache::new(small_config(None)).unwrap();
    let server = FakeServer::new(50_000, 5);
    let files: Vec<CachedFile> = (0..3)
        .map(|_| cache.open(key("att1", 1), 50_000, fetcher(&server)))
        .collect();
    server.hold();
    let reads = join_all((0..12).map(|i| files[i % 3].read(20_000 + (i as u64) * 50, 100)));
    let release = async {
        tokio::task::yield_now().await;
        server.release();
    };
    let (results, ()) = tokio::join!(reads, release);
    for (i, result) in results.into_iter().enumerate() {
        let offset = 20_000 + (i as u64) * 50;
        assert_eq!(result.unwrap(), expected(5, offset, offset + 100));
    }
    // Later reads of a file continue its earlier ones, so read-ahead asks for later blocks too;
    // the block everyone wanted was asked for once.
    assert_eq!(server.requests_covering(20_000), 1);
}

#[tokio::test]
async fn versions_never_mix() {
    let dir = tempfile::tempdir().unwrap();
    let cache = BlockCache::new(small_config(Some(dir.path()))).unwrap();
    let v1 = FakeServer::new(4_000, 100);
    let v2 = FakeServer::new(4_000, 200);
    let one = cache.open(key("att5", 1), 4_000, fetcher(&v1));
    assert_eq!(read_all(&one, 1000).await, expected(100, 0, 4_000));
    cache.settled().await;

    let two = cache.open(key("att5", 2), 4_000, fetcher(&v2));
    let bytes = read_all(&two, 1000).await;
    assert_eq!(bytes, expected(200, 0, 4_000));
    assert_ne!(bytes, expected(100, 0, 4_000));
    assert!(
        v2.calls() > 0,
        "version 2 came from the server, not from version 1's blocks"
    );
    cache.settled().await;

    // Both versions are cached side by side, and each still reads as itself.
    assert_eq!(cache.stats().disk_bytes, 8_000);
    let one_again = cache.open(key("att5", 1), 4_000, fetcher(&v1));
    assert_eq!(read_all(&one_again, 1000).await, expected(100, 0, 4_000));
}

#[tokio::test]
async fn disk_directory_is_private_and_version_files_are_0600() {
    let dir = tempfile::tempdir().unwrap();
    let disk = dir.path().join("cache");
    std::fs::create_dir(&disk).unwrap();
    std::fs::set_permissions(&disk, std::fs::Permissions::from_mode(0o755)).unwrap();
    let cache = BlockCache::new(small_config(Some(&disk))).unwrap();
    let mode = |path: &Path| std::fs::metadata(path).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&disk), 0o700, "an existing directory is made private");

    let server = FakeServer::new(3_000, 1);
    let file = cache.open(key("../../etc/passwd", 1), 3_000, fetcher(&server));
    read_all(&file, 1000).await;
    cache.settled().await;
    let files = block_files(&disk);
    assert_eq!(files.len(), 2, "one data file and its record: {files:?}");
    for file in &files {
        assert_eq!(mode(file), 0o600, "{}", file.display());
        assert_eq!(mode(file.parent().unwrap()), 0o700);
        // The odd id stayed inside the cache directory, escaped.
        assert_eq!(file.parent().unwrap().parent().unwrap(), disk);
        let name = file.file_name().unwrap().to_string_lossy().into_owned();
        assert!(!name.trim_end_matches(".present").contains('.'), "{name}");
    }

    let fresh = dir.path().join("a/b/new");
    BlockCache::new(small_config(Some(&fresh))).unwrap();
    assert_eq!(mode(&fresh), 0o700);
}

#[tokio::test]
async fn disk_lru_eviction_keeps_the_disk_under_its_bound() {
    let dir = tempfile::tempdir().unwrap();
    // No read-ahead, and each block settled before the next: the order of use is the order
    // of the reads, which the assertions below rely on.
    let config = CacheConfig {
        disk_bytes: 5_000,
        max_prefetch_bytes: 0,
        ..small_config(Some(dir.path()))
    };
    let cache = BlockCache::new(config.clone()).unwrap();
    let server = FakeServer::new(20_000, 8);
    let file = cache.open(key("att1", 1), 20_000, fetcher(&server));
    for offset in (0..20_000).step_by(1000) {
        let got = file.read(offset, 1000).await.unwrap();
        assert_eq!(got, expected(8, offset, offset + 1000));
        cache.settled().await;
        assert!(cache.stats().disk_bytes <= 5_000);
    }
    assert_eq!(
        cache.stats().disk_bytes,
        5_000,
        "the bound is used, not emptied"
    );
    drop(file);

    // Another version evicts the first one whole (the unit of eviction is the version).
    let other = FakeServer::new(3_000, 18);
    let file = cache.open(key("att2", 1), 3_000, fetcher(&other));
    assert_eq!(read_all(&file, 1000).await, expected(18, 0, 3_000));
    cache.settled().await;
    assert_eq!(cache.stats().disk_bytes, 3_000);
    assert!(cache.has_complete_version(&key("att2", 1), 3_000));
    drop(file);
    drop(cache);

    // A version larger than the bound keeps its head: a new cache with no memory reads the
    // head from disk and has to fetch the tail.
    let cache = BlockCache::new(CacheConfig {
        memory_bytes: 0,
        ..config.clone()
    })
    .unwrap();
    let file = cache.open(key("att1", 1), 20_000, fetcher(&server));
    let calls = server.calls();
    assert_eq!(file.read(0, 1000).await.unwrap(), expected(8, 0, 1000));
    assert_eq!(server.calls(), calls + 1, "evicted by the other version");
    cache.settled().await;
    let calls = server.calls();
    assert_eq!(file.read(0, 1000).await.unwrap(), expected(8, 0, 1000));
    assert_eq!(server.calls(), calls, "from disk now");
    assert_eq!(
        file.read(19_000, 1000).await.unwrap(),
        expected(8, 19_000, 20_000)
    );
    cache.settled().await;
    drop(file);
    drop(cache);

    // A smaller bound at start evicts down to it.
    let smaller = BlockCache::new(CacheConfig {
        disk_bytes: 2_000,
        ..config
    })
    .unwrap();
    assert!(smaller.stats().disk_bytes <= 2_000);
    let allocated: u64 = block_files(dir.path())
        .iter()
        .filter(|f| !f.to_string_lossy().ends_with(".present"))
        .map(|f| {
            use std::os::unix::fs::MetadataExt;
            std::fs::metadata(f).unwrap().blocks() * 512
        })
        .sum();
    assert!(allocated <= 2 * 4096, "{allocated} bytes allocated");
}

#[tokio::test]
async fn a_version_file_cut_short_is_dropped_and_fetched_again() {
    let dir = tempfile::tempdir().unwrap();
    let server = FakeServer::new(6_000, 9);
    {
        let cache = BlockCache::new(small_config(Some(dir.path()))).unwrap();
        let file = cache.open(key("att1", 1), 6_000, fetcher(&server));
        read_all(&file, 1000).await;
        cache.settled().await;
    }
    let files = block_files(dir.path());
    assert_eq!(files.len(), 2, "one data file and its record: {files:?}");
    let victim = files
        .iter()
        .find(|f| !f.to_string_lossy().ends_with(".present"))
        .unwrap()
        .clone();
    // A crash while a file was created leaves one of these; it must not count.
    std::fs::write(victim.parent().unwrap().join(".tmpleftover"), b"x").unwrap();

    let calls = server.calls();
    let cache = BlockCache::new(CacheConfig {
        memory_bytes: 0,
        ..small_config(Some(dir.path()))
    })
    .unwrap();
    assert!(!victim.parent().unwrap().join(".tmpleftover").exists());
    assert!(cache.has_complete_version(&key("att1", 1), 6_000));
    // Cut short behind the cache's back, after it was indexed: the first read that meets the
    // short file drops the version, and what it held is fetched again.
    std::fs::OpenOptions::new()
        .write(true)
        .open(&victim)
        .unwrap()
        .set_len(2_500)
        .unwrap();
    let file = cache.open(key("att1", 1), 6_000, fetcher(&server));
    assert_eq!(read_all(&file, 1000).await, expected(9, 0, 6_000));
    assert!(server.calls() > calls, "the torn blocks were fetched again");
    assert!(
        server.bytes.load(Ordering::SeqCst) <= 6_000 + 4_000,
        "blocks 0 and 1 were still read from disk"
    );
    cache.settled().await;
    // A new file for the version, holding what was fetched again (blocks 2 to 5).
    assert_eq!(std::fs::metadata(&victim).unwrap().len(), 6_000);
    assert_eq!(cache.stats().disk_blocks, 4);
    assert!(!cache.has_complete_version(&key("att1", 1), 6_000));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sequential_read_uses_few_large_requests() {
    let config = CacheConfig {
        memory_bytes: 64 * MIB,
        ..CacheConfig::default()
    };
    let size = 64 * MIB;
    let cache = BlockCache::new(config.clone()).unwrap();
    let server = FakeServer::new(size, 11);
    let file = cache.open(key("att1", 1), size, fetcher(&server));
    let window_blocks = (config.max_prefetch_bytes + config.max_request_bytes) / config.block_size;
    let mut most_held = 0;
    let mut offset = 0;
    while offset < size {
        let piece = file.read(offset, 128 * KIB as u32).await.unwrap();
        most_held = most_held.max(file.held_ahead());
        assert_eq!(piece.len() as u64, 128 * KIB);
        // Spot checks keep a debug build fast: the first and last byte of every read.
        assert_eq!(piece[0], byte_at(11, offset));
        assert_eq!(piece[piece.len() - 1], byte_at(11, offset + 128 * KIB - 1));
        offset += 128 * KIB;
    }
    assert!(file.read(size, 4096).await.unwrap().is_empty());
    cache.settled().await;

    let requests = server.requests.lock().unwrap().clone();
    // Full-size requests, plus the ramp-up of the window (it doubles from 2 blocks to 64).
    let ramp_up = (config.max_prefetch_bytes / config.block_size).ilog2() as u64;
    let bound = size / config.max_request_bytes + ramp_up + 2;
    assert!(
        requests.len() as u64 <= bound,
        "{} requests > {bound}: {requests:?}",
        requests.len()
    );
    let full = requests
        .iter()
        .filter(|(_, len)| *len == config.max_request_bytes)
        .count();
    assert!(
        full >= 4,
        "most bytes come in full-size requests: {requests:?}"
    );
    assert_eq!(server.bytes.load(Ordering::SeqCst), size, "no block twice");
    assert!(most_held > 8, "read-ahead was held: {most_held}");
    assert!(
        most_held as u64 <= window_blocks + 1,
        "held read-ahead {most_held} blocks, window is {window_blocks}"
    );
    assert!(
        server.max_running.load(Ordering::SeqCst) <= config.max_parallel_fetches + 1,
        "read-ahead in flight is bounded per file"
    );
}

#[tokio::test]
async fn random_reads_fetch_only_the_blocks_they_touch() {
    let config = CacheConfig {
        memory_bytes: 64 * MIB,
        ..CacheConfig::default()
    };
    let size = 64 * MIB;
    let cache = BlockCache::new(config).unwrap();
    let server = FakeServer::new(size, 12);
    let file = cache.open(key("att1", 1), size, fetcher(&server));
    // Far apart, so none of them continues another; the last one spans two blocks.
    let reads = [
        (10 * MIB + 5, 4096),
        (40 * MIB + 7, 4096),
        (3 * MIB + 100, 4096),
        (50 * MIB, 128 * 1024),
        (20 * MIB - 10, 20),
    ];
    for (offset, len) in reads {
        let got = file.read(offset, len).await.unwrap();
        assert_eq!(got, expected(12, offset, offset + u64::from(len)));
    }
    cache.settled().await;
    let requests = server.requests.lock().unwrap().clone();
    assert_eq!(requests.len(), 5, "one request per read: {requests:?}");
    // Six blocks touched, the two of the last read in one request.
    assert_eq!(server.bytes.load(Ordering::SeqCst), 6 * MIB);
    assert!(requests.contains(&(19 * MIB, 2 * MIB)));
}

#[tokio::test]
async fn memory_stays_within_its_bound() {
    let config = CacheConfig {
        block_size: 64 * KIB,
        memory_bytes: 512 * KIB,
        max_prefetch_bytes: 256 * KIB,
        max_request_bytes: 128 * KIB,
        ..CacheConfig::default()
    };
    let size = 100 * 64 * KIB + 123;
    let cache = BlockCache::new(config).unwrap();
    let server = FakeServer::new(size, 13);
    let file = cache.open(key("att1", 1), size, fetcher(&server));
    assert_eq!(read_all(&file, 32 * 1024).await, expected(13, 0, size));
    cache.settled().await;
    let stats = cache.stats();
    assert!(stats.memory_bytes <= 512 * KIB, "{stats:?}");
    assert!(stats.memory_bytes > 0);
    assert!(
        stats.misses >= 101,
        "read much more than the bound: {stats:?}"
    );
    assert_eq!(server.bytes.load(Ordering::SeqCst), size, "no block twice");
}

#[tokio::test]
async fn dropping_a_file_cancels_its_read_ahead() {
    let cache = BlockCache::new(small_config(None)).unwrap();
    let server = FakeServer::new(100_000, 14);
    let file = cache.open(key("att1", 1), 100_000, fetcher(&server));
    file.read(0, 1000).await.unwrap();
    file.read(1000, 1000).await.unwrap();
    server.hold();
    // Sequential: this read's block was read ahead already, and it starts more read-ahead,
    // which the held server never answers.
    file.read(2000, 1000).await.unwrap();
    tokio::task::yield_now().await;
    assert!(
        server.running.load(Ordering::SeqCst) >= 1,
        "a read-ahead request is being held"
    );
    drop(file);
    // Would wait forever if the held read-ahead were still running.
    tokio::time::timeout(std::time::Duration::from_secs(60), cache.settled())
        .await
        .expect("read-ahead was not cancelled");
    assert!(cache.tiers.lock_in_flight().is_empty());

    // The cancelled blocks are not lost: a new reader fetches them.
    server.release();
    let again = cache.open(key("att1", 1), 100_000, fetcher(&server));
    assert_eq!(
        again.read(4000, 2000).await.unwrap(),
        expected(14, 4000, 6000)
    );
}

#[tokio::test]
async fn a_wrong_length_answer_is_an_error_and_not_cached() {
    let cache = BlockCache::new(small_config(None)).unwrap();
    // The fake object is shorter than the size the file is opened with.
    let server = FakeServer::new(2_500, 15);
    let file = cache.open(key("att1", 1), 3_000, fetcher(&server));
    let short = Arc::new(ShortFetch(server.clone()));
    let short_file = cache.open(key("att2", 1), 3_000, short);
    match short_file.read(2_000, 1000).await {
        Err(ReadError::WrongLength { expected, got, .. }) => {
            assert_eq!((expected, got), (1000, 500))
        }
        other => panic!("expected WrongLength, got {other:?}"),
    }
    assert!(!cache.is_cached(&key("att2", 1), 3_000));
    assert_eq!(file.read(0, 100).await.unwrap(), expected(15, 0, 100));
}

/// Answers with the bytes up to the fake's own end, however many were asked for.
struct ShortFetch(Arc<FakeServer>);

impl RangeFetch for ShortFetch {
    fn fetch(&self, offset: u64, len: u64) -> BoxFuture<'static, Result<Bytes, ClientError>> {
        let server = self.0.clone();
        async move {
            let end = (offset + len).min(server.size);
            Ok(Bytes::from(expected(server.seed, offset, end)))
        }
        .boxed()
    }
}

/// Reads a 7,500-byte file of `server` whole through `cache`; the cache's figures once settled.
async fn read_whole(cache: &Arc<BlockCache>, name: &str, server: &Arc<FakeServer>) -> CacheStats {
    let file = cache.open(key(name, 1), 7_500, fetcher(server));
    assert_eq!(read_all(&file, 1000).await, expected(21, 0, 7_500));
    cache.settled().await;
    cache.stats()
}

#[tokio::test]
async fn blocks_the_disk_keeps_are_not_kept_in_memory_too() {
    let dir = tempfile::tempdir().unwrap();
    let cache = BlockCache::new(small_config(Some(dir.path()))).unwrap();
    let server = FakeServer::new(7_500, 21);
    let stats = read_whole(&cache, "att1", &server).await;
    assert_eq!(
        (stats.disk_bytes, stats.memory_bytes),
        (7_500, 0),
        "{stats:?}"
    );
    // Read again through another handle: from disk, with no request.
    let calls = server.calls();
    assert_eq!(read_whole(&cache, "att1", &server).await.disk_hits, 8);
    assert_eq!(server.calls(), calls);

    // A version larger than the disk's bound is kept in memory: the disk keeps its first
    // blocks only, and the rest would otherwise be in neither tier.
    let config = CacheConfig {
        disk_bytes: 3_000,
        ..small_config(Some(&dir.path().join("small")))
    };
    let cache = BlockCache::new(config).unwrap();
    let stats = read_whole(&cache, "att2", &server).await;
    assert_eq!(
        (stats.disk_bytes, stats.memory_bytes),
        (3_000, 7_500),
        "{stats:?}"
    );
}

#[tokio::test]
async fn a_failing_disk_is_not_an_error_for_the_reader() {
    let dir = tempfile::tempdir().unwrap();
    // Every bucket name taken by a plain file: each block write fails (ENOTDIR, standing in
    // for ENOSPC, which a test cannot provoke without mounting a small filesystem).
    for bucket in 0..=255u8 {
        std::fs::write(dir.path().join(format!("{bucket:02x}")), b"").unwrap();
    }
    let cache = BlockCache::new(small_config(Some(dir.path()))).unwrap();
    let server = FakeServer::new(5_000, 16);
    let file = cache.open(key("att1", 1), 5_000, fetcher(&server));
    assert_eq!(read_all(&file, 1000).await, expected(16, 0, 5_000));
    cache.settled().await;
    assert_eq!(cache.stats().disk_bytes, 0);
    let calls = server.calls();
    assert_eq!(read_all(&file, 1000).await, expected(16, 0, 5_000));
    assert_eq!(server.calls(), calls, "served from memory");
}

#[tokio::test]
async fn a_file_read_from_disk_loads_each_block_once_even_without_memory() {
    let dir = tempfile::tempdir().unwrap();
    let server = FakeServer::new(20_000, 17);
    {
        let cache = BlockCache::new(small_config(Some(dir.path()))).unwrap();
        let file = cache.open(key("att1", 1), 20_000, fetcher(&server));
        read_all(&file, 1000).await;
        cache.settled().await;
    }
    let calls = server.calls();
    let cache = BlockCache::new(CacheConfig {
        memory_bytes: 0,
        ..small_config(Some(dir.path()))
    })
    .unwrap();
    let file = cache.open(key("att1", 1), 20_000, fetcher(&server));
    // Four reads per block: without the file holding its blocks, memory (bound 0) would send
    // every one of them back to the disk.
    assert_eq!(read_all(&file, 250).await, expected(17, 0, 20_000));
    cache.settled().await;
    assert_eq!(server.calls(), calls);
    assert_eq!(cache.stats().disk_hits, 20);
}

#[test]
fn reads_can_move_between_threads() {
    fn assert_send<T: Send>(_: &T) {}
    fn check(file: &CachedFile) {
        assert_send(&file.read(0, 1));
    }
    let _ = check;
    fn assert_sync<T: Send + Sync>() {}
    assert_sync::<CachedFile>();
    assert_sync::<BlockCache>();
}

/// A seeded random mix of streaming and jumping readers on one object, all at once: every
/// byte is right, and no block is ever fetched twice while memory has room for all of them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn random_concurrent_readers_get_exact_bytes_and_share_every_block() {
    use rand::{Rng, SeedableRng};

    let size = 299_517;
    let cache = BlockCache::new(small_config(None)).unwrap();
    let server = FakeServer::new(size, 18);
    let readers = (0..4u64).map(|seed| {
        let file = cache.open(key("att1", 1), size, fetcher(&server));
        async move {
            let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
            let mut offset = 0u64;
            for _ in 0..150 {
                if !rng.random_bool(0.6) {
                    offset = rng.random_range(0..size + 100);
                }
                let len: u32 = rng.random_range(1..3000);
                let got = file.read(offset, len).await.unwrap();
                let end = (offset + u64::from(len)).min(size).max(offset);
                assert_eq!(got, expected(18, offset, end), "read({offset}, {len})");
                offset = end;
            }
        }
    });
    join_all(readers).await;
    cache.settled().await;

    let mut fetched = vec![0u32; size.div_ceil(1000) as usize];
    for (offset, len) in server.requests.lock().unwrap().iter() {
        assert_eq!(offset % 1000, 0, "requests start on a block");
        for block in offset / 1000..(offset + len).div_ceil(1000) {
            fetched[block as usize] += 1;
        }
    }
    assert!(
        fetched.iter().all(|&n| n <= 1),
        "a block fetched twice: {fetched:?}"
    );
    assert!(fetched.iter().filter(|&&n| n == 1).count() > 100);
    assert!(cache.tiers.lock_in_flight().is_empty());
}

fn ahead_permits() -> Arc<tokio::sync::Semaphore> {
    Arc::new(tokio::sync::Semaphore::new(2))
}

#[tokio::test]
async fn a_file_fetched_ahead_is_read_without_another_request_even_without_memory() {
    // No memory tier: what the reader gets comes from the fetch ahead it adopted.
    let cache = BlockCache::new(CacheConfig {
        memory_bytes: 0,
        ..small_config(None)
    })
    .unwrap();
    let server = FakeServer::new(5_500, 21);
    server.hold();
    let ahead = cache.fetch_ahead(key("att1", 1), 5_500, fetcher(&server), &ahead_permits());
    assert_eq!(ahead.size(), 5_500);
    tokio::task::yield_now().await;
    // Opened while its requests are on their way: the reader joins them.
    let file = cache.open(key("att1", 1), 5_500, fetcher(&server));
    file.adopt(ahead);
    server.release();
    assert_eq!(read_all(&file, 700).await, expected(21, 0, 5_500));
    assert_eq!(server.calls(), 2, "4 + 2 blocks, each fetched once");
}

#[tokio::test]
async fn a_failed_fetch_ahead_is_no_error_for_the_reader() {
    let cache = BlockCache::new(small_config(None)).unwrap();
    let server = FakeServer::new(3_000, 22);
    server.set_failing(true);
    let ahead = cache.fetch_ahead(key("att1", 1), 3_000, fetcher(&server), &ahead_permits());
    cache.settled().await;
    server.set_failing(false);
    let file = cache.open(key("att1", 1), 3_000, fetcher(&server));
    file.adopt(ahead);
    assert_eq!(read_all(&file, 1000).await, expected(22, 0, 3_000));
}

#[tokio::test]
async fn dropping_a_fetch_ahead_cancels_it() {
    let cache = BlockCache::new(small_config(None)).unwrap();
    let server = FakeServer::new(3_000, 23);
    server.hold();
    let ahead = cache.fetch_ahead(key("att1", 1), 3_000, fetcher(&server), &ahead_permits());
    tokio::task::yield_now().await;
    drop(ahead);
    tokio::time::timeout(std::time::Duration::from_secs(60), cache.settled())
        .await
        .expect("the fetch ahead was not cancelled");
    assert!(cache.tiers.lock_in_flight().is_empty());
    assert!(!cache.is_cached(&key("att1", 1), 3_000));
}

#[tokio::test]
async fn a_fetch_ahead_of_another_version_is_not_adopted() {
    let cache = BlockCache::new(small_config(None)).unwrap();
    let old = FakeServer::new(2_000, 24);
    let new = FakeServer::new(2_000, 25);
    let ahead = cache.fetch_ahead(key("att1", 1), 2_000, fetcher(&old), &ahead_permits());
    cache.settled().await;
    let file = cache.open(key("att1", 2), 2_000, fetcher(&new));
    file.adopt(ahead);
    assert_eq!(read_all(&file, 1000).await, expected(25, 0, 2_000));
}

/// A source whose requests never answer; it counts the requests started and dropped.
#[derive(Default)]
struct NeverAnswers {
    started: AtomicUsize,
    dropped: Arc<AtomicUsize>,
}

struct CountsDrop(Arc<AtomicUsize>);

impl Drop for CountsDrop {
    fn drop(&mut self) {
        self.0.fetch_add(1, Ordering::SeqCst);
    }
}

struct NeverFetch(Arc<NeverAnswers>);

impl RangeFetch for NeverFetch {
    fn fetch(&self, _offset: u64, _len: u64) -> BoxFuture<'static, Result<Bytes, ClientError>> {
        self.0.started.fetch_add(1, Ordering::SeqCst);
        let guard = CountsDrop(self.0.dropped.clone());
        async move {
            let _guard = guard;
            futures_util::future::pending::<()>().await;
            unreachable!()
        }
        .boxed()
    }
}

/// Waits up to `limit` for `counter` to reach `want`; returns how long that took.
async fn reaches(counter: &AtomicUsize, want: usize, limit: std::time::Duration) -> bool {
    let deadline = tokio::time::Instant::now() + limit;
    while counter.load(Ordering::SeqCst) < want {
        if tokio::time::Instant::now() >= deadline {
            return false;
        }
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    }
    true
}

#[tokio::test]
async fn a_fetch_nobody_waits_for_is_dropped() {
    let cache = BlockCache::new(small_config(None)).unwrap();
    let source = Arc::new(NeverAnswers::default());
    let second = std::time::Duration::from_secs(1);
    let file = Arc::new(cache.open(key("att1", 1), 10_000, Arc::new(NeverFetch(source.clone()))));
    let other = Arc::new(cache.open(key("att1", 1), 10_000, Arc::new(NeverFetch(source.clone()))));

    // Two readers wait for the same block: one request.
    let first_reader = tokio::spawn({
        let file = file.clone();
        async move { file.read(0, 100).await }
    });
    assert!(reaches(&source.started, 1, second).await);
    let second_reader = tokio::spawn({
        let other = other.clone();
        async move { other.read(0, 100).await }
    });
    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    assert_eq!(
        source.started.load(Ordering::SeqCst),
        1,
        "the readers share a fetch"
    );

    // One reader gone (its process killed, say): the other still waits, the request goes on.
    first_reader.abort();
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    assert_eq!(
        source.dropped.load(Ordering::SeqCst),
        0,
        "dropped while a reader waits"
    );

    // Both gone, with their files still open: nobody wants the block, the request is dropped.
    second_reader.abort();
    assert!(
        reaches(&source.dropped, 1, second).await,
        "a fetch nobody waits for still runs after a second"
    );
    tokio::time::timeout(second, cache.settled())
        .await
        .expect("the job ended");
    assert!(cache.tiers.lock_in_flight().is_empty());
    drop((file, other));
}

#[tokio::test]
async fn an_abandoned_read_ahead_request_is_dropped() {
    let cache = BlockCache::new(small_config(None)).unwrap();
    let source = Arc::new(NeverAnswers::default());
    let second = std::time::Duration::from_secs(1);
    let ahead = cache.fetch_ahead(
        key("att1", 1),
        3_000,
        Arc::new(NeverFetch(source.clone())),
        &ahead_permits(),
    );
    assert!(reaches(&source.started, 1, second).await);
    drop(ahead);
    assert!(reaches(&source.dropped, 1, second).await);
}

/// Default sizes with room for the tests' files in memory.
fn whole_config() -> CacheConfig {
    CacheConfig {
        memory_bytes: 128 * MIB,
        ..CacheConfig::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_file_read_from_its_start_is_fetched_in_one_request() {
    let config = whole_config();
    let cache = BlockCache::new(config.clone()).unwrap();
    let size = 12 * MIB + 345;
    assert!(size <= config.whole_file_bytes);
    let server = FakeServer::new(size, 31);
    let file = cache.open(key("att1", 1), size, fetcher(&server));
    let mut offset = 0;
    while offset < size {
        let piece = file.read(offset, 128 * KIB as u32).await.unwrap();
        assert_eq!(piece[0], byte_at(31, offset));
        offset += piece.len() as u64;
    }
    cache.settled().await;
    let requests = server.requests.lock().unwrap().clone();
    assert_eq!(requests, vec![(0, size)], "one request for the whole file");

    // Larger than one first range: not fetched whole, the window ramps up as before, in
    // requests of the usual size, each byte once.
    let size = 40 * MIB;
    let server = FakeServer::new(size, 32);
    let file = cache.open(key("att2", 1), size, fetcher(&server));
    file.start_whole();
    assert_eq!(
        read_all(&file, 128 * KIB as u32).await,
        expected(32, 0, size)
    );
    cache.settled().await;
    let requests = server.requests.lock().unwrap().clone();
    assert!(requests[0].1 < config.whole_file_bytes, "{requests:?}");
    assert!(
        requests[1..]
            .iter()
            .all(|(_, len)| *len <= config.max_request_bytes),
        "{requests:?}"
    );
    assert_eq!(server.bytes.load(Ordering::SeqCst), size, "no block twice");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_whole_start_at_open_is_what_the_reads_use() {
    let cache = BlockCache::new(whole_config()).unwrap();
    let size = 5 * MIB + 1;
    let server = FakeServer::new(size, 33);
    let file = cache.open(key("att1", 1), size, fetcher(&server));
    file.start_whole();
    // On its way before any READ.
    assert!(
        reaches_u64(&server.calls, 1).await,
        "nothing fetched at open"
    );
    assert_eq!(
        read_all(&file, 128 * KIB as u32).await,
        expected(33, 0, size)
    );
    cache.settled().await;
    assert_eq!(*server.requests.lock().unwrap(), vec![(0, size)]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn files_opened_and_not_read_hold_at_most_one_window() {
    let config = whole_config();
    let cache = BlockCache::new(config.clone()).unwrap();
    let size = config.whole_file_bytes;
    let room = (config.max_prefetch_bytes / size) as usize;
    let server = FakeServer::new(size, 34);
    let files: Vec<CachedFile> = (0..room + 3)
        .map(|i| {
            let file = cache.open(key(&format!("att{i}"), 1), size, fetcher(&server));
            file.start_whole();
            file
        })
        .collect();
    cache.settled().await;
    assert_eq!(server.calls() as usize, room, "only the budget's worth");
    // A file that is read gives its share back; the next open may start again.
    assert_eq!(files[0].read(0, 4096).await.unwrap(), expected(34, 0, 4096));
    let next = cache.open(key("next", 1), size, fetcher(&server));
    next.start_whole();
    cache.settled().await;
    assert_eq!(server.calls() as usize, room + 1);
    // The files that were not started read as usual.
    let last = files.last().unwrap();
    assert_eq!(
        read_all(last, 128 * KIB as u32).await,
        expected(34, 0, size)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_first_read_elsewhere_cancels_the_start_at_open() {
    let config = whole_config();
    let cache = BlockCache::new(config.clone()).unwrap();
    let size = config.whole_file_bytes;
    let server = FakeServer::new(size, 35);
    let file = cache.open(key("att1", 1), size, fetcher(&server));
    server.hold();
    file.start_whole();
    assert!(reaches_u64(&server.calls, 1).await);
    // A reader that starts at the end (a zip's directory): the first range is let go.
    server.release();
    let tail = file.read(size - 4096, 4096).await.unwrap();
    assert_eq!(tail, expected(35, size - 4096, size));
    let at_end = server.requests_covering(size - 1);
    assert_eq!(at_end, 1, "the read's own block only");
    assert!(file.held_ahead() <= 1, "{} blocks held", file.held_ahead());
}

/// `head`, `file`, a thumbnailer: a large file's first bytes cost a few blocks, not the first
/// 16 MiB, and arrive without waiting for them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_head_of_a_large_file_costs_a_few_blocks() {
    let config = whole_config();
    let cache = BlockCache::new(config.clone()).unwrap();
    let size = 4 * config.whole_file_bytes;
    let server = FakeServer::new(size, 36);
    let file = cache.open(key("att1", 1), size, fetcher(&server));
    file.start_whole();
    let head = file.read(0, 4096).await.unwrap();
    assert_eq!(head, expected(36, 0, 4096));
    drop(file);
    cache.settled().await;
    let fetched = server.bytes.load(Ordering::SeqCst);
    assert!(
        fetched <= 4 * config.block_size,
        "{fetched} bytes fetched for a 4 KiB head"
    );
}

async fn reaches_u64(counter: &AtomicU64, want: u64) -> bool {
    for _ in 0..2000 {
        if counter.load(Ordering::SeqCst) >= want {
            return true;
        }
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    }
    false
}

/// A fake that streams: it hands over the first block of a multi-block range, then holds the
/// rest until released.
struct StreamingFetch {
    server: Arc<FakeServer>,
    rest: Arc<tokio::sync::Notify>,
}

impl RangeFetch for StreamingFetch {
    fn fetch(&self, offset: u64, len: u64) -> BoxFuture<'static, Result<Bytes, ClientError>> {
        FakeFetch(self.server.clone()).fetch(offset, len)
    }

    fn fetch_cut(
        &self,
        offset: u64,
        lens: Vec<u64>,
        mut arrived: BlockArrived,
    ) -> BoxFuture<'static, Result<Vec<Bytes>, ClientError>> {
        let server = self.server.clone();
        let rest = self.rest.clone();
        async move {
            server.calls.fetch_add(1, Ordering::SeqCst);
            let mut blocks = Vec::new();
            let mut at = offset;
            for (index, len) in lens.iter().enumerate() {
                if index == 1 {
                    rest.notified().await;
                }
                let block = Bytes::from(expected(server.seed, at, at + len));
                arrived(index, &block);
                blocks.push(block);
                at += len;
            }
            Ok(blocks)
        }
        .boxed()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_first_block_of_a_range_is_read_before_the_range_ends() {
    let cache = BlockCache::new(whole_config()).unwrap();
    let size = 12 * MIB;
    let server = FakeServer::new(size, 41);
    let rest = Arc::new(tokio::sync::Notify::new());
    let fetch = Arc::new(StreamingFetch {
        server: server.clone(),
        rest: rest.clone(),
    });
    let file = cache.open(key("att1", 1), size, fetch);
    file.start_whole();
    // The whole file is one request; its first block is read while the rest is held.
    let first = tokio::time::timeout(
        std::time::Duration::from_secs(10),
        file.read(0, 128 * KIB as u32),
    )
    .await
    .expect("the first block waited for the whole range")
    .unwrap();
    assert_eq!(&first[..], &expected(41, 0, 128 * KIB)[..]);
    rest.notify_one();
    assert_eq!(read_all(&file, MIB as u32).await, expected(41, 0, size));
    assert_eq!(server.calls(), 1, "one request for the whole file");
}
