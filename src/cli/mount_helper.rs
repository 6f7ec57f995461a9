//! The command line mount(8) gives a helper, turned into `confluencefs mount …` before clap
//! sees it.
//!
//! `mount -t fuse.confluencefs`, `mount -a` over an fstab line and systemd's mount units all end
//! in `mount.fuse3`, which runs `confluencefs SOURCE MOUNTPOINT -o OPTIONS`: no subcommand, and
//! every setting in `-o`. A helper installed as `mount.confluencefs` (or mount(8)'s own name
//! for one, `mount.fuse.confluencefs`) is run the same way, with `-t TYPE` and mount(8)'s `-n`
//! and `-s` possibly added. Rewriting the arguments, rather than giving clap a second grammar,
//! keeps one definition of the mount flags; the `-o` values that stand for flags (`user=`,
//! `token_file=`, `cache_dir=`) are then moved onto them by
//! [`MountArgs::take_option_values`](super::mount_args::MountArgs::take_option_values). The
//! background process is started with the same arguments and rewrites them the same way.

use std::ffi::{OsStr, OsString};
use std::path::Path;

/// Program names under which the binary acts as `confluencefs mount`.
const HELPER_NAMES: [&str; 2] = ["mount.confluencefs", "mount.fuse.confluencefs"];

/// Returns `argv` as clap should parse it: unchanged for an ordinary command line, else
/// `confluencefs mount SOURCE MOUNTPOINT …` with the flags mount(8) adds for helpers left out.
/// `subcommands` are the names that make a first argument a subcommand rather than a source.
pub(crate) fn normalize(argv: Vec<OsString>, subcommands: &[&str]) -> Vec<OsString> {
    let mut args = argv.into_iter();
    let program = args.next().unwrap_or_else(|| "confluencefs".into());
    let rest: Vec<OsString> = args.collect();
    let as_helper = Path::new(&program)
        .file_name()
        .and_then(OsStr::to_str)
        .is_some_and(|name| HELPER_NAMES.contains(&name));
    let source_first = rest.first().is_some_and(|first| {
        let first = first.to_string_lossy();
        !first.starts_with('-') && !subcommands.contains(&first.as_ref())
    });
    if !as_helper && !source_first {
        let mut argv = vec![program];
        argv.extend(rest);
        return argv;
    }
    let mut out: Vec<OsString> = vec!["confluencefs".into(), "mount".into()];
    let mut rest = rest.into_iter();
    while let Some(arg) = rest.next() {
        match arg.to_str() {
            // The type is always ours; -n (no mtab) and -s (sloppy) mean nothing here.
            Some("-t") => {
                rest.next();
            }
            Some("-n" | "-s") => {}
            Some(text) if text.starts_with("-t") && text.len() > 2 => {}
            _ => out.push(arg),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(argv: &[&str]) -> Vec<String> {
        let argv = argv.iter().map(OsString::from).collect();
        normalize(argv, &["check", "mount", "help"])
            .into_iter()
            .map(|a| a.into_string().unwrap())
            .collect()
    }

    #[test]
    fn mount_form_becomes_the_mount_subcommand() {
        assert_eq!(
            run(&["/usr/bin/confluencefs", "https://x", "/mnt", "-o", "ro"]),
            ["confluencefs", "mount", "https://x", "/mnt", "-o", "ro"]
        );
        assert_eq!(
            run(&[
                "/sbin/mount.confluencefs",
                "https://x",
                "/mnt",
                "-o",
                "rw",
                "-t",
                "fuse.confluencefs",
                "-n"
            ]),
            ["confluencefs", "mount", "https://x", "/mnt", "-o", "rw"]
        );
        assert_eq!(
            run(&[
                "mount.fuse.confluencefs",
                "https://x",
                "/mnt",
                "-tfuse.confluencefs"
            ]),
            ["confluencefs", "mount", "https://x", "/mnt"]
        );
    }

    #[test]
    fn ordinary_command_lines_are_left_alone() {
        for argv in [
            &["confluencefs", "check", "--url", "x"][..],
            &["confluencefs", "mount", "https://x", "/mnt", "-t"],
            &["confluencefs", "--version"],
            &["confluencefs"],
        ] {
            assert_eq!(run(argv), argv);
        }
    }
}
