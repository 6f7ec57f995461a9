//! `scripts/install` into a temporary prefix, with the binary under test (building a release
//! binary would take minutes), and `--uninstall` from the same prefix.

use std::path::Path;
use std::process::Command;

fn install(prefix: &Path, extra: &[&str]) -> std::process::Output {
    Command::new(concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/install"))
        .arg("--prefix")
        .arg(prefix)
        .args(["--binary", env!("CARGO_BIN_EXE_confluencefs")])
        .args(extra)
        .output()
        .expect("scripts/install runs")
}

#[test]
fn install_puts_binary_helper_completions_and_man_page_in_place_and_uninstall_removes_them() {
    let prefix = tempfile::tempdir().unwrap();
    let output = install(prefix.path(), &[]);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let p = prefix.path();
    let binary = p.join("bin/confluencefs");
    let version = Command::new(&binary).arg("--version").output().unwrap();
    assert!(String::from_utf8_lossy(&version.stdout).starts_with("confluencefs "));
    // SAFETY: geteuid cannot fail.
    let helper_dir = if unsafe { libc::geteuid() } == 0 {
        "sbin"
    } else {
        "bin"
    };
    let helper = p.join(helper_dir).join("mount.confluencefs");
    assert_eq!(std::fs::read_link(&helper).unwrap(), binary);
    let expected = [
        (
            "share/bash-completion/completions/confluencefs",
            "--cache-size",
        ),
        (
            "share/zsh/site-functions/_confluencefs",
            "#compdef confluencefs",
        ),
        (
            "share/fish/vendor_completions.d/confluencefs.fish",
            "complete -c confluencefs",
        ),
        ("share/man/man1/confluencefs.1", ".TH"),
    ];
    for (file, wanted) in expected {
        let text = std::fs::read_to_string(p.join(file)).unwrap();
        assert!(text.contains(wanted), "{file} has no {wanted:?}");
    }

    let output = install(prefix.path(), &["--uninstall"]);
    assert!(output.status.success());
    assert!(!binary.exists() && std::fs::symlink_metadata(&helper).is_err());
    for (file, _) in expected {
        assert!(!p.join(file).exists(), "{file} is left");
    }
    let refused = install(prefix.path(), &["--bogus"]);
    assert_eq!(refused.status.code(), Some(2));
}
