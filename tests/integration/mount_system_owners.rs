//! `--uid`, `--gid`, `--umask`, `--file-mode` and `--dir-mode` (and their `-o` forms), seen
//! through `stat` on a real mount; a mode set with chmod still wins over them, also after a
//! remount.

use std::os::unix::fs::MetadataExt;

use confluencefs::confluence::Flavor;

use crate::mounted::Mounted;
use crate::support::Server;

fn owner_and_mode(path: &std::path::Path) -> (u32, u32, u32) {
    let meta = std::fs::metadata(path).unwrap();
    (meta.uid(), meta.gid(), meta.mode() & 0o7777)
}

#[test]
fn stat_shows_the_given_owner_and_modes_and_chmod_still_wins() {
    let server = Server::start(Flavor::Cloud);
    let cache = tempfile::tempdir().unwrap();
    let args = [
        "--uid",
        "12345",
        "--gid",
        "54321",
        "--file-mode",
        "0640",
        "--dir-mode",
        "0750",
    ];
    {
        let mount = Mounted::with_cache(&server, &args, cache.path(), None);
        assert_eq!(owner_and_mode(&mount.path), (12345, 54321, 0o750));
        assert_eq!(
            owner_and_mode(&mount.join("DOCS/DOCS Home/Guide")),
            (12345, 54321, 0o750)
        );
        let file = mount.join("DOCS/DOCS Home/Guide/notes.txt");
        assert_eq!(owner_and_mode(&file), (12345, 54321, 0o640));
        mount.sh_ok("chmod 604 'DOCS/DOCS Home/Guide/notes.txt'");
        assert_eq!(owner_and_mode(&file).2, 0o604);
        // History is never writable, whatever the file mode says.
        let old = mount.join("DOCS/DOCS Home/Guide/@versions/notes.txt/1.txt");
        assert_eq!(owner_and_mode(&old).2, 0o440);
    }
    // The mode chmod set is kept on the server, and beats the new default after a remount.
    let mount = Mounted::with_cache(&server, &["-o", "umask=077"], cache.path(), None);
    assert_eq!(
        owner_and_mode(&mount.join("DOCS/DOCS Home/Guide/notes.txt")).2,
        0o604
    );
    assert_eq!(
        owner_and_mode(&mount.join("DOCS/DOCS Home/Guide/data.bin")).2,
        0o600
    );
    assert_eq!(owner_and_mode(&mount.join("DOCS/DOCS Home/Guide")).2, 0o700);
    // SAFETY: getuid cannot fail.
    let me = unsafe { libc::getuid() };
    assert_eq!(
        owner_and_mode(&mount.join("DOCS")).0,
        me,
        "the default owner"
    );
}

#[test]
fn o_options_and_a_read_only_mount_drop_the_w_bits() {
    let server = Server::start(Flavor::DataCenter);
    let mount = Mounted::new(
        &server,
        &["-o", "ro,uid=4242,gid=4343,file_mode=0666,dir_mode=0777"],
    );
    assert_eq!(owner_and_mode(&mount.join("DOCS")), (4242, 4343, 0o555));
    assert_eq!(
        owner_and_mode(&mount.join("DOCS/DOCS Home/welcome.txt")),
        (4242, 4343, 0o444)
    );
}
