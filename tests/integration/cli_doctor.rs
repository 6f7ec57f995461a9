//! `confluencefs doctor`: one line per check, `ok` or `FAIL: what to do`, exit status 1 on any
//! failure; a machine without `/dev/fuse` access is played by pointing the hidden device
//! variable at a missing path or at something that cannot be opened read-write.

use confluencefs::confluence::Flavor;

use crate::cli_sites::{stderr, stdout, Home};
use crate::support::{Server, TOKEN, USER};

/// The line of `doctor`'s output that starts with `label`.
fn line<'a>(text: &'a str, label: &str) -> &'a str {
    text.lines()
        .find(|l| l.starts_with(label))
        .unwrap_or_else(|| panic!("no {label:?} line in:\n{text}"))
}

#[tokio::test]
async fn a_good_machine_and_site_pass_every_check() {
    let server = Server::start(Flavor::Cloud);
    let home = Home::new();
    let mountpoint = tempfile::tempdir().unwrap();
    let cache = tempfile::tempdir().unwrap();
    let env = [("CONFLUENCE_USER", USER), ("CONFLUENCE_TOKEN", TOKEN)];
    let output = home.run(
        &[
            "doctor",
            &server.base_url(),
            "--mountpoint",
            mountpoint.path().to_str().unwrap(),
            "--cache-dir",
            cache.path().to_str().unwrap(),
            "--allow-other",
        ],
        &env,
    );
    let text = stdout(&output);
    assert!(output.status.success(), "{text}{}", stderr(&output));
    for label in [
        "/dev/fuse",
        "fusermount3",
        "user_allow_other",
        "mountpoint",
        "cache directory",
        "site",
    ] {
        assert!(line(&text, label).contains(" ok"), "{label}: {text}");
    }
    assert!(line(&text, "site").contains("Confluence Cloud"), "{text}");
    assert!(!text.contains("FAIL"), "{text}");
}

#[tokio::test]
async fn each_failure_is_one_line_saying_what_to_do() {
    let server = Server::start(Flavor::DataCenter);
    let home = Home::new();
    let busy = tempfile::tempdir().unwrap();
    std::fs::write(busy.path().join("x"), "x").unwrap();
    let missing = home.dir.path().join("no-fuse");
    let env = [
        ("CONFLUENCE_TOKEN", "wrong-token"),
        ("CONFLUENCEFS_DOCTOR_FUSE_DEVICE", missing.to_str().unwrap()),
    ];
    let output = home.run(
        &[
            "doctor",
            &server.base_url(),
            "--mountpoint",
            busy.path().to_str().unwrap(),
        ],
        &env,
    );
    assert_eq!(output.status.code(), Some(1));
    let text = stdout(&output);
    assert!(
        line(&text, "/dev/fuse").contains("FAIL: ") && text.contains("modprobe fuse"),
        "{text}"
    );
    assert!(line(&text, "mountpoint").contains("not empty"), "{text}");
    let site = line(&text, "site");
    assert!(
        site.contains("FAIL: ") && site.contains("refused the credentials"),
        "{text}"
    );
    assert!(
        site.contains("personal access token") && !site.contains("wrong-token"),
        "{text}"
    );
    assert!(
        stderr(&output).contains("3 check(s) failed"),
        "{}",
        stderr(&output)
    );

    // A device that is there but cannot be opened read-write (root opens anything, so a
    // directory plays the part).
    let not_a_device = tempfile::tempdir().unwrap();
    let env = [(
        "CONFLUENCEFS_DOCTOR_FUSE_DEVICE",
        not_a_device.path().to_str().unwrap(),
    )];
    let output = home.run(&["doctor"], &env);
    assert_eq!(output.status.code(), Some(1));
    let text = stdout(&output);
    assert!(
        line(&text, "/dev/fuse").contains("FAIL: cannot open"),
        "{text}"
    );
    assert!(line(&text, "site").contains("none given"), "{text}");
}
