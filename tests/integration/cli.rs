//! The `confluencefs` binary: `check` and `tree` against the test server, and the one-line
//! refusals for a wrong URL and bad credentials.

use std::process::{Command, Output};

use confluencefs::confluence::Flavor;

use crate::support::{Server, TOKEN, USER};

fn confluencefs(args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_confluencefs"));
    command.args(args);
    for var in ["CONFLUENCE_URL", "CONFLUENCE_USER", "CONFLUENCE_TOKEN"] {
        command.env_remove(var);
    }
    command.envs(env.iter().copied());
    command.output().expect("confluencefs runs")
}

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

#[tokio::test]
async fn check_names_flavor_user_and_spaces_on_both_flavors() {
    for flavor in [Flavor::Cloud, Flavor::DataCenter] {
        let server = Server::start(flavor);
        let url = server.base_url();
        let output = confluencefs(
            &["check"],
            &[
                ("CONFLUENCE_URL", &url),
                ("CONFLUENCE_USER", USER),
                ("CONFLUENCE_TOKEN", TOKEN),
            ],
        );
        assert!(output.status.success(), "{flavor:?}: {}", stderr(&output));
        let text = stdout(&output);
        let expected = match flavor {
            Flavor::Cloud => "(Confluence Cloud)",
            Flavor::DataCenter => "(Confluence Data Center)",
        };
        assert!(text.contains(expected), "{text}");
        assert!(text.contains("spaces: 2"), "{text}");
        assert!(text.contains("DOCS") && text.contains("ENG"), "{text}");
    }
}

#[tokio::test]
async fn bad_credentials_are_one_line_naming_the_user() {
    let server = Server::start(Flavor::Cloud);
    let url = server.base_url();
    let output = confluencefs(
        &["check", "--url", &url],
        &[
            ("CONFLUENCE_USER", USER),
            ("CONFLUENCE_TOKEN", "not-the-token"),
        ],
    );
    assert_eq!(output.status.code(), Some(1));
    let err = stderr(&output);
    assert_eq!(err.trim_end().lines().count(), 1, "{err}");
    assert!(
        err.contains("refused the credentials") && err.contains(USER),
        "{err}"
    );
    assert!(!err.contains("not-the-token"), "the token leaked: {err}");
}

#[tokio::test]
async fn unreachable_url_is_one_line_naming_the_url() {
    // A port that was just free: nothing listens there.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let url = format!("http://127.0.0.1:{port}/wiki");
    let output = confluencefs(
        &["check", "--url", &url],
        &[("CONFLUENCE_USER", USER), ("CONFLUENCE_TOKEN", TOKEN)],
    );
    assert_eq!(output.status.code(), Some(1));
    let err = stderr(&output);
    assert_eq!(err.trim_end().lines().count(), 1, "{err}");
    assert!(err.contains(&format!("127.0.0.1:{port}")), "{err}");
}

#[tokio::test]
async fn missing_token_is_refused_before_any_request() {
    let server = Server::start(Flavor::Cloud);
    server.clear_requests().await;
    let url = server.base_url();
    let output = confluencefs(&["check", "--url", &url], &[("CONFLUENCE_USER", USER)]);
    assert_eq!(output.status.code(), Some(1));
    assert!(
        stderr(&output).contains("CONFLUENCE_TOKEN"),
        "{}",
        stderr(&output)
    );
    assert!(server.requests().await.is_empty());
}

#[tokio::test]
async fn token_file_gives_a_bearer_token_on_data_center() {
    let server = Server::start(Flavor::DataCenter);
    let dir = tempfile::tempdir().unwrap();
    let token_file = dir.path().join("token");
    std::fs::write(&token_file, format!("{TOKEN}\n")).unwrap();
    let url = server.base_url();
    let output = confluencefs(
        &[
            "check",
            "--url",
            &url,
            "--token-file",
            token_file.to_str().unwrap(),
        ],
        &[],
    );
    assert!(output.status.success(), "{}", stderr(&output));
    assert!(stdout(&output).contains("(Confluence Data Center)"));
}

#[tokio::test]
async fn tree_shows_pages_as_directories_and_attachments_as_files() {
    let server = Server::start(Flavor::Cloud);
    let url = server.base_url();
    let output = confluencefs(
        &["tree", "--space", "DOCS"],
        &[
            ("CONFLUENCE_URL", &url),
            ("CONFLUENCE_USER", USER),
            ("CONFLUENCE_TOKEN", TOKEN),
        ],
    );
    assert!(output.status.success(), "{}", stderr(&output));
    let text = stdout(&output);
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines[0], "DOCS/");
    assert!(lines.contains(&"  DOCS Home/"), "{text}");
    assert!(lines.contains(&"      Chapter One/"), "{text}");
    assert!(lines.contains(&"        ch1.txt  (12 bytes, v1)"), "{text}");
    assert!(lines.contains(&"  @blog/"), "{text}");
    assert!(!text.contains("ENG/"), "{text}");

    let output = confluencefs(
        &["tree", "--space", "NOPE"],
        &[
            ("CONFLUENCE_URL", &url),
            ("CONFLUENCE_USER", USER),
            ("CONFLUENCE_TOKEN", TOKEN),
        ],
    );
    assert_eq!(output.status.code(), Some(1));
    assert!(stderr(&output).contains("no space with key NOPE"));
}

#[test]
fn the_background_mount_keeps_no_token_in_its_environment() {
    let server = Server::start(Flavor::DataCenter);
    let cache = tempfile::tempdir().unwrap();
    let mountpoint = tempfile::tempdir().unwrap();
    let output = crate::mounted::mount_command(
        &server.base_url(),
        mountpoint.path(),
        cache.path(),
        &["--allow-other"],
    );
    let guard = Unmount(mountpoint.path().to_path_buf());
    assert!(output.status.success(), "mount failed: {}", stderr(&output));
    let pid = crate::mounted::mount_pid(mountpoint.path()).expect("the mount process runs");
    let environ = std::fs::read(format!("/proc/{pid}/environ")).unwrap();
    let environ = String::from_utf8_lossy(&environ);
    assert!(
        environ.contains("CONFLUENCE_USER="),
        "the environment was read"
    );
    assert!(!environ.contains("CONFLUENCE_TOKEN"), "{environ}");
    assert!(
        !environ.contains(TOKEN),
        "the token is in the daemon's environment"
    );
    let notice = stderr(&output);
    assert_eq!(notice.lines().count(), 1, "one line: {notice}");
    assert!(
        notice.contains("allow-other") && notice.contains("every local user"),
        "{notice}"
    );
    assert!(!notice.contains(TOKEN));
    // The mount works with the credential it was handed another way.
    let listed = std::fs::read_dir(mountpoint.path().join("DOCS"))
        .unwrap()
        .count();
    assert!(listed > 0);
    drop(guard);
}

/// Unmounts when dropped, even when the test panics.
struct Unmount(std::path::PathBuf);

impl Drop for Unmount {
    fn drop(&mut self) {
        crate::mounted::unmount(&self.0);
    }
}

/// Runs `confluencefs ARGS` and returns its stdout, panicking if it fails.
fn generated(args: &[&str]) -> String {
    let output = confluencefs(args, &[]);
    assert!(output.status.success(), "{args:?}: {}", stderr(&output));
    stdout(&output)
}

/// Feeds `input` to `program args` and returns its status, stdout and stderr.
fn pipe_through(program: &str, args: &[&str], input: &str) -> (bool, String, String) {
    use std::io::Write;
    let mut child = Command::new(program)
        .args(args)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap_or_else(|err| panic!("{program} runs: {err}"));
    child
        .stdin
        .take()
        .unwrap()
        .write_all(input.as_bytes())
        .unwrap();
    let output = child.wait_with_output().unwrap();
    (output.status.success(), stdout(&output), stderr(&output))
}

#[test]
fn completions_are_generated_for_bash_zsh_and_fish() {
    for shell in ["bash", "zsh", "fish"] {
        let script = generated(&["completions", shell]);
        // fish names long options without their dashes (`-l cache-size`).
        let long = if shell == "fish" {
            "-l cache-size"
        } else {
            "--cache-size"
        };
        for word in ["mount", long, "pending", "check", "completions"] {
            assert!(script.contains(word), "{shell}: no {word:?}");
        }
    }
    let (ok, _, errors) = pipe_through("bash", &["-n"], &generated(&["completions", "bash"]));
    assert!(ok, "bash -n: {errors}");
    let refused = confluencefs(&["completions", "tcsh"], &[]);
    assert!(!refused.status.success());
}

#[test]
fn man_page_renders_and_covers_every_command() {
    let page = generated(&["man"]);
    assert!(page.starts_with(".ie") || page.contains(".TH"), "not roff");
    // -P-cbou: plain text, no overstrike bold or underline.
    let (ok, text, warnings) = pipe_through("groff", &["-man", "-Tutf8", "-ww", "-P-cbou"], &page);
    assert!(ok, "groff: {warnings}");
    assert!(warnings.trim().is_empty(), "groff warns: {warnings}");
    // Some groff setups print hyphens and minus signs as their own characters.
    let plain = text.replace(['\u{2010}', '\u{2212}'], "-");
    for word in [
        "mount",
        "--cache-size",
        "pending",
        "--token-file",
        "completions",
    ] {
        assert!(
            plain.contains(word),
            "the man page has no {word:?}:\n{plain}"
        );
    }
}

#[tokio::test]
async fn q_silences_a_warning_and_vv_shows_trace_lines() {
    use std::os::unix::fs::PermissionsExt;
    let server = Server::start(Flavor::Cloud);
    let dir = tempfile::tempdir().unwrap();
    let token_file = dir.path().join("token");
    std::fs::write(&token_file, TOKEN).unwrap();
    // Readable by others: worth a warning.
    std::fs::set_permissions(&token_file, std::fs::Permissions::from_mode(0o644)).unwrap();
    let token_file = token_file.to_string_lossy().into_owned();
    let url = server.base_url();
    let check = |flags: &[&str]| {
        let mut args = vec![
            "check",
            "--url",
            &url,
            "--user",
            USER,
            "--token-file",
            &token_file,
        ];
        args.extend_from_slice(flags);
        let output = confluencefs(&args, &[]);
        assert!(output.status.success(), "{flags:?}: {}", stderr(&output));
        stderr(&output)
    };
    let usual = check(&[]);
    assert!(usual.contains("WARN"), "{usual}");
    assert!(
        !usual.contains("TRACE") && !usual.contains("DEBUG"),
        "{usual}"
    );
    let quiet = check(&["-q"]);
    assert!(quiet.trim().is_empty(), "-q: {quiet}");
    let loud = check(&["-vv"]);
    assert!(
        loud.contains("TRACE") && loud.contains("WARN"),
        "-vv: {loud}"
    );
    // CONFLUENCEFS_LOG still wins.
    let args = [
        "-q",
        "check",
        "--url",
        &url,
        "--user",
        USER,
        "--token-file",
        &token_file,
    ];
    let output = confluencefs(&args, &[("CONFLUENCEFS_LOG", "warn")]);
    assert!(stderr(&output).contains("WARN"), "{}", stderr(&output));
}

#[test]
fn v_puts_debug_lines_in_the_mount_log() {
    let server = Server::start(Flavor::DataCenter);
    let log_of = |flags: &[&str]| {
        let cache = tempfile::tempdir().unwrap();
        let mountpoint = tempfile::tempdir().unwrap();
        let output = crate::mounted::mount_command(
            &server.base_url(),
            mountpoint.path(),
            cache.path(),
            flags,
        );
        let guard = Unmount(mountpoint.path().to_path_buf());
        assert!(output.status.success(), "mount failed: {}", stderr(&output));
        let pid = crate::mounted::mount_pid(mountpoint.path());
        let _ = std::fs::read_dir(mountpoint.path().join("DOCS"))
            .unwrap()
            .count();
        drop(guard);
        wait_exit(pid);
        std::fs::read_to_string(cache.path().join("confluencefs.log")).unwrap()
    };
    let usual = log_of(&[]);
    assert!(usual.contains(" INFO "), "{usual}");
    assert!(!usual.contains(" DEBUG "), "{usual}");
    let verbose = log_of(&["-v"]);
    assert!(verbose.contains(" DEBUG "), "{verbose}");
    assert!(!verbose.contains(" TRACE "), "{verbose}");
}

/// Waits until process `pid` (if any) has ended, so that its log is complete.
fn wait_exit(pid: Option<u32>) {
    let Some(pid) = pid else { return };
    for _ in 0..300 {
        match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
            Ok(stat) if !stat.contains(") Z ") => {}
            _ => return,
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}
