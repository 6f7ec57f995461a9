//! The disk cache across a remount: a file read whole through one mount is read again by the
//! next one without a request, however fast the first read was (the disk writer must not drop
//! blocks it could not keep up with), and the cache directory keeps one private file per
//! version.

use std::path::Path;

use confluencefs::confluence::Flavor;

use crate::mounted::Mounted;
use crate::support::{pattern, seed_basic, write, Logged, Server};

const MIB: usize = 1 << 20;
const SIZE: usize = 64 * MIB + 12_345;
const BIG: &str = "DOCS/DOCS Home/Big/big.bin";

fn describe(log: &[Logged]) -> Vec<String> {
    log.iter()
        .map(|r| {
            format!(
                "{} {} {} -> {} ({} bytes)",
                r.method, r.path, r.query, r.status, r.bytes
            )
        })
        .collect()
}

/// Regular files under `dir` (recursively), with their modes.
fn files_and_modes(dir: &Path, out: &mut Vec<(String, u32)>) {
    use std::os::unix::fs::PermissionsExt;
    for entry in std::fs::read_dir(dir).unwrap().flatten() {
        let meta = entry.metadata().unwrap();
        let mode = meta.permissions().mode() & 0o777;
        let name = entry.path().display().to_string();
        if meta.is_dir() {
            out.push((name.clone(), mode));
            files_and_modes(&entry.path(), out);
        } else {
            out.push((name, mode));
        }
    }
}

#[test]
fn a_file_read_whole_is_read_again_after_a_remount_without_a_request() {
    let server = Server::start_seeded(Flavor::DataCenter, |root| {
        seed_basic(root);
        write(root, "DOCS/Big/big.bin", &pattern(SIZE));
    });
    let cache = tempfile::tempdir().unwrap();
    {
        let mount = Mounted::with_cache(&server, &[], cache.path(), None);
        mount.sh_ok(&format!("cat '{BIG}' > /dev/null"));
    }
    let mount = Mounted::with_cache(&server, &[], cache.path(), None);
    mount.sh_ok(&format!("stat '{BIG}' > /dev/null"));
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(server.clear_requests());
    let bytes = std::fs::read(mount.join(BIG)).unwrap();
    assert!(bytes == pattern(SIZE), "the re-read has other bytes");
    let log = runtime.block_on(server.requests());
    assert!(
        log.is_empty(),
        "the re-read after a remount made {} requests: {:?}",
        log.len(),
        describe(&log)
    );

    // Private to the mounting user, and one file per version (plus its record), not one per block.
    let mut found = Vec::new();
    files_and_modes(cache.path(), &mut found);
    for (name, mode) in &found {
        let meta = std::fs::metadata(name).unwrap();
        let want = if meta.is_dir() { 0o700 } else { 0o600 };
        assert_eq!(*mode, want, "{name}");
    }
    let blocks_dir = found
        .iter()
        .filter(|(name, _)| name.contains("/blocks/") && std::fs::metadata(name).unwrap().is_file())
        .count();
    assert!(
        blocks_dir <= 4,
        "{blocks_dir} files in the disk cache for one version: {found:?}"
    );
}
