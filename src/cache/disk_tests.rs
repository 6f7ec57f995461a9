//! Tests of the disk tier on its own: names, the record, the bound, and files handed out for
//! passthrough.

use std::io::Read as _;

use super::*;

const BS: u64 = 1000;

fn key(id: &str, version: u64) -> ObjectKey {
    ObjectKey {
        attachment_id: id.into(),
        version,
    }
}

/// `size` bytes of a version, distinct per `seed`.
fn content(seed: u8, size: u64) -> Vec<u8> {
    (0..size)
        .map(|i| (i as u8).wrapping_mul(31) ^ seed ^ (i >> 8) as u8)
        .collect()
}

/// Writes blocks `range` of `data` (a version of `data.len()` bytes).
fn write_blocks(disk: &DiskCache, key: &ObjectKey, data: &[u8], range: std::ops::Range<u64>) {
    let size = data.len() as u64;
    let geometry = disk.geometry(size);
    let blocks: Vec<Bytes> = range
        .clone()
        .map(|i| {
            let start = geometry.block_start(i) as usize;
            Bytes::copy_from_slice(&data[start..start + geometry.block_len(i) as usize])
        })
        .collect();
    disk.write_run(key, size, range.start, &blocks);
}

fn files_in(root: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    for bucket in fs::read_dir(root).unwrap() {
        let bucket = bucket.unwrap().path();
        if bucket.is_dir() {
            for file in fs::read_dir(&bucket).unwrap() {
                files.push(file.unwrap().path());
            }
        }
    }
    files.sort();
    files
}

fn read_whole(file: &File) -> Vec<u8> {
    let mut out = Vec::new();
    let mut file = file.try_clone().unwrap();
    file.read_to_end(&mut out).unwrap();
    out
}

#[test]
fn names_round_trip_through_the_parser() {
    let name = file_name(&key("att123", 3), 1_048_576).unwrap();
    assert_eq!(name, "617474313233_3_1048576");
    assert_eq!(
        parse_name(&name),
        Some((b"att123".to_vec(), vec![3, 1_048_576]))
    );
    assert_eq!(
        parse_name("617474313233_3_1048576_0"),
        Some((b"att123".to_vec(), vec![3, 1_048_576, 0]))
    );
    assert_eq!(parse_name("6174743_3_1"), None);
    assert_eq!(parse_name("ATT_3_1"), None);
    assert_eq!(parse_name(".tmpabc"), None);
    assert_eq!(parse_name("61_x_1"), None);
    assert!(file_name(&key("", 1), 1).is_none());
    assert!(file_name(&key(&"x".repeat(97), 1), 1).is_none());
    // FNV-1a of "a" is 0xaf63dc4c8601ec8c: files already on disk were placed by this value,
    // so it must never change.
    assert_eq!(bucket("a"), "8c");
}

#[test]
fn a_full_disk_is_recognised_when_wrapped() {
    let enospc = || io::Error::from_raw_os_error(libc::ENOSPC);
    assert!(no_space(&enospc()));
    #[derive(Debug)]
    struct WithPath(io::Error);
    impl std::fmt::Display for WithPath {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            write!(f, "{} at /some/path", self.0)
        }
    }
    impl std::error::Error for WithPath {
        fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
            Some(&self.0)
        }
    }
    let wrapped = io::Error::other(WithPath(enospc()));
    assert_eq!(wrapped.raw_os_error(), None);
    assert!(no_space(&wrapped));
    assert!(no_space(&io::Error::other(enospc())));
    let other = io::Error::other(WithPath(io::Error::from_raw_os_error(libc::EACCES)));
    assert!(!no_space(&other));
}

#[test]
fn the_cache_leaves_the_reserve_free() {
    let dir = tempfile::tempdir().unwrap();
    let (free, total) = free_space(dir.path()).unwrap();
    assert!(free > 0 && total >= free);
    // A capacity far beyond the disk: free space is the bound, less the reserve.
    let disk = DiskCache::open(dir.path(), 4096, u64::MAX).unwrap();
    let limit = disk.limit(&mut disk.lock());
    let reserve = (total / 4).min(RESERVE_MAX);
    assert!(
        limit <= free.saturating_sub(reserve) + (1 << 20),
        "{limit} of {free} free"
    );
    // A small capacity is the bound when there is room.
    let small = DiskCache::open(dir.path(), 4096, 10_000).unwrap();
    assert_eq!(small.limit(&mut small.lock()), 10_000.min(limit));
}

#[test]
fn one_sparse_file_per_version_and_a_record_beside_it() {
    let dir = tempfile::tempdir().unwrap();
    let disk = DiskCache::open(dir.path(), BS, 1_000_000).unwrap();
    let data = content(1, 5_500);
    let k = key("att1", 2);
    write_blocks(&disk, &k, &data, 0..2);
    write_blocks(&disk, &k, &data, 4..6);
    let files = files_in(dir.path());
    assert_eq!(files.len(), 2, "{files:?}");
    let data_file = files
        .iter()
        .find(|f| !f.to_string_lossy().ends_with(RECORD_SUFFIX));
    let data_file = data_file.unwrap();
    assert_eq!(fs::metadata(data_file).unwrap().len(), 5_500);
    for file in &files {
        let mode = fs::metadata(file).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600, "{}", file.display());
    }
    for (index, present) in [
        (0, true),
        (1, true),
        (2, false),
        (3, false),
        (4, true),
        (5, true),
    ] {
        let block = BlockKey {
            object: Arc::new(k.clone()),
            index,
        };
        assert_eq!(disk.contains(&block), present, "block {index}");
        let len = disk.geometry(5_500).block_len(index);
        let got = disk.read(&block, len);
        let start = (index * BS) as usize;
        if present {
            assert_eq!(got.unwrap(), &data[start..start + len as usize]);
        } else {
            assert!(got.is_none());
        }
    }
    assert_eq!(disk.usage(), (3_500, 4));

    // A new index finds the same blocks.
    drop(disk);
    let again = DiskCache::open(dir.path(), BS, 1_000_000).unwrap();
    assert_eq!(again.usage(), (3_500, 4));
    assert!(!again.is_complete(&k, 5_500));
}

#[test]
fn a_counted_block_that_is_a_hole_is_forgotten_at_start() {
    let dir = tempfile::tempdir().unwrap();
    let disk = DiskCache::open(dir.path(), 4096, 1_000_000).unwrap();
    let data = content(2, 4 * 4096);
    let k = key("att2", 1);
    write_blocks(&disk, &k, &data, 0..4);
    assert!(disk.is_complete(&k, 4 * 4096));
    drop(disk);
    // What a power loss can leave: the record reached the disk, block 2's bytes did not.
    let data_file = files_in(dir.path())
        .into_iter()
        .find(|f| !f.to_string_lossy().ends_with(RECORD_SUFFIX))
        .unwrap();
    let file = OpenOptions::new().write(true).open(&data_file).unwrap();
    // SAFETY: fallocate on an open descriptor reads no memory of ours.
    let punched = unsafe {
        libc::fallocate(
            file.as_raw_fd(),
            libc::FALLOC_FL_PUNCH_HOLE | libc::FALLOC_FL_KEEP_SIZE,
            2 * 4096,
            4096,
        )
    };
    if punched != 0 {
        eprintln!("this filesystem cannot punch holes; skipping");
        return;
    }
    let disk = DiskCache::open(dir.path(), 4096, 1_000_000).unwrap();
    assert_eq!(disk.usage(), (3 * 4096, 3));
    let hole = BlockKey {
        object: Arc::new(k.clone()),
        index: 2,
    };
    assert!(!disk.contains(&hole));
    assert!(!disk.is_complete(&k, 4 * 4096));

    // A record that does not match its data file (cut short) drops the version.
    drop(disk);
    file.set_len(100).unwrap();
    let disk = DiskCache::open(dir.path(), 4096, 1_000_000).unwrap();
    assert_eq!(disk.usage(), (0, 0));
    assert!(files_in(dir.path()).is_empty());
}

#[test]
fn files_of_the_previous_layout_and_leftovers_are_deleted_at_start() {
    let dir = tempfile::tempdir().unwrap();
    let old = "617474313233_3_1000_0";
    let old_dir = dir.path().join(bucket(old));
    fs::create_dir(&old_dir).unwrap();
    fs::write(old_dir.join(old), vec![1; 1000]).unwrap();
    fs::write(old_dir.join(".tmpleftover"), b"x").unwrap();
    let lone_record = format!("617474313233_4_1000{RECORD_SUFFIX}");
    let lone_dir = dir.path().join(bucket("617474313233_4_1000"));
    fs::create_dir_all(&lone_dir).unwrap();
    fs::write(lone_dir.join(&lone_record), RECORD_MAGIC).unwrap();
    let disk = DiskCache::open(dir.path(), BS, 1_000_000).unwrap();
    assert_eq!(disk.usage(), (0, 0));
    assert!(
        files_in(dir.path()).is_empty(),
        "{:?}",
        files_in(dir.path())
    );
}

#[test]
fn eviction_takes_whole_versions_least_recently_used_first() {
    let dir = tempfile::tempdir().unwrap();
    let disk = DiskCache::open(dir.path(), BS, 6_000).unwrap();
    let (a, b, c) = (key("a", 1), key("b", 1), key("c", 1));
    let data = content(3, 3_000);
    write_blocks(&disk, &a, &data, 0..3);
    write_blocks(&disk, &b, &data, 0..3);
    assert_eq!(disk.usage(), (6_000, 6));
    // A use of `a` makes `b` the oldest.
    let first = BlockKey {
        object: Arc::new(a.clone()),
        index: 0,
    };
    assert!(disk.read(&first, 1000).is_some());
    write_blocks(&disk, &c, &data, 0..1);
    assert!(disk.is_complete(&a, 3_000));
    assert!(!disk.contains(&BlockKey {
        object: Arc::new(b.clone()),
        index: 0
    }));
    assert_eq!(disk.usage(), (4_000, 4));
    assert_eq!(files_in(dir.path()).len(), 4);

    // A version larger than the bound keeps its first blocks.
    let big = key("big", 1);
    let big_data = content(4, 10_000);
    write_blocks(&disk, &big, &big_data, 0..10);
    assert!(disk.usage().0 <= 6_000);
    let head = BlockKey {
        object: Arc::new(big.clone()),
        index: 0,
    };
    assert_eq!(disk.read(&head, 1000).unwrap(), &big_data[..1000]);
    assert!(!disk.contains(&BlockKey {
        object: Arc::new(big.clone()),
        index: 9
    }));
}

#[test]
fn a_complete_version_is_one_read_only_file_of_its_exact_bytes() {
    let dir = tempfile::tempdir().unwrap();
    let disk = Arc::new(DiskCache::open(dir.path(), BS, 1_000_000).unwrap());
    let k = key("att7", 4);
    let data = content(5, 3_300);
    write_blocks(&disk, &k, &data, 0..3);
    assert!(!disk.is_complete(&k, 3_300), "one block missing");
    assert!(disk.complete(&k, 3_300).is_none());
    write_blocks(&disk, &k, &data, 3..4);
    assert!(disk.is_complete(&k, 3_300));
    // Another size for the same version is not this file.
    assert!(disk.complete(&k, 3_301).is_none());
    assert!(disk.complete(&key("att7", 5), 3_300).is_none());

    let file = disk.complete(&k, 3_300).unwrap();
    assert_eq!(read_whole(file.file()), data);
    // Read-only: the kernel must never write through it.
    let mut writable = file.file().try_clone().unwrap();
    assert!(std::io::Write::write_all(&mut writable, b"x").is_err());
    assert_eq!(file.file().metadata().unwrap().len(), 3_300);
}

#[test]
fn a_complete_version_stays_whole_and_counted_when_evicted_while_held() {
    let dir = tempfile::tempdir().unwrap();
    let disk = Arc::new(DiskCache::open(dir.path(), BS, 5_000).unwrap());
    let k = key("held", 1);
    let data = content(6, 3_000);
    write_blocks(&disk, &k, &data, 0..3);
    let held = disk.complete(&k, 3_000).unwrap();

    // Another version needs the room: `held` is evicted (unlinked) ...
    let other = key("other", 1);
    let other_data = content(7, 4_000);
    write_blocks(&disk, &other, &other_data, 0..4);
    assert!(!disk.is_complete(&k, 3_000));
    assert!(disk.complete(&k, 3_000).is_none());
    // ... but its bytes still count, so the newcomer got only what is left of the bound.
    let (bytes, _) = disk.usage();
    assert!(bytes <= 5_000, "{bytes}");
    assert!(!disk.is_complete(&other, 4_000));
    // The file handed out still reads whole.
    assert_eq!(read_whole(held.file()), data);

    // Let go: its bytes are no longer counted, and there is room again.
    drop(held);
    assert_eq!(
        disk.usage().0,
        2_000,
        "only the newcomer's first two blocks"
    );
    write_blocks(&disk, &other, &other_data, 2..4);
    assert!(disk.is_complete(&other, 4_000));
    assert_eq!(disk.usage(), (4_000, 4));
}

#[test]
fn a_complete_version_is_found_again_after_a_rebuild() {
    let dir = tempfile::tempdir().unwrap();
    let k = key("att8", 9);
    let data = content(8, 2_500);
    {
        let disk = DiskCache::open(dir.path(), BS, 1_000_000).unwrap();
        write_blocks(&disk, &k, &data, 0..3);
    }
    let disk = Arc::new(DiskCache::open(dir.path(), BS, 1_000_000).unwrap());
    assert!(disk.is_complete(&k, 2_500));
    let file = disk.complete(&k, 2_500).unwrap();
    assert_eq!(read_whole(file.file()), data);
    // Another block size cannot use these files: they are dropped.
    drop(file);
    drop(disk);
    let other = DiskCache::open(dir.path(), 500, 1_000_000).unwrap();
    assert!(!other.is_complete(&k, 2_500));
    assert!(files_in(dir.path()).is_empty());
}

#[test]
fn an_adopted_version_keeps_its_bytes_under_the_new_name_and_leaves_the_cache() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("blocks");
    let disk = Arc::new(DiskCache::open(&root, BS, 1_000_000).unwrap());
    let k = key("att8", 2);
    let data = content(6, 2_500);
    write_blocks(&disk, &k, &data, 0..3);
    let held = disk.complete(&k, 2_500).unwrap();
    // A reader that opened the cache's file before the adoption (its open file is cached).
    assert_eq!(
        disk.read(
            &BlockKey {
                object: Arc::new(k.clone()),
                index: 1
            },
            BS
        )
        .unwrap(),
        &data[1000..2000]
    );

    let staged = dir.path().join("staged");
    held.adopt(&staged).unwrap();
    assert_eq!(fs::read(&staged).unwrap(), data);
    // The same inode as the file the kernel may be reading.
    use std::os::unix::fs::MetadataExt;
    assert_eq!(
        fs::metadata(&staged).unwrap().ino(),
        held.file().metadata().unwrap().ino()
    );
    assert!(!disk.is_complete(&k, 2_500));
    assert!(disk.complete(&k, 2_500).is_none());
    assert_eq!(disk.usage().0, 0, "its bytes are no longer the cache's");
    assert!(files_in(&root).is_empty(), "{:?}", files_in(&root));

    // Its new owner writes it: the cache never serves those bytes as the version.
    fs::write(&staged, b"changed").unwrap();
    assert!(disk
        .read(
            &BlockKey {
                object: Arc::new(k.clone()),
                index: 0
            },
            BS
        )
        .is_none());
    // Adopted once, it cannot be adopted again, and the version can be cached anew.
    assert!(held.adopt(&dir.path().join("again")).is_err());
    write_blocks(&disk, &k, &data, 0..3);
    assert_eq!(read_whole(disk.complete(&k, 2_500).unwrap().file()), data);
    drop(held);
    assert_eq!(disk.usage().0, 2_500);
}
