//! Named sites: the configuration file, its token sources (file, command, inline), `~/.netrc`,
//! the order in which flags, the environment and the file are consulted, and `confluencefs site
//! add|list|remove`. Each command runs the real binary with an environment of the test's own
//! (a temporary `XDG_CONFIG_HOME` and `NETRC`), so the machine's files never take part.

use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;
use std::process::{Command, Output, Stdio};

use confluencefs::confluence::Flavor;

use crate::support::{Server, TOKEN, USER};

/// A home for one test: its configuration directory, its netrc and its files.
pub(crate) struct Home {
    pub dir: tempfile::TempDir,
}

impl Home {
    pub(crate) fn new() -> Home {
        Home {
            dir: tempfile::tempdir().unwrap(),
        }
    }

    /// Where `confluencefs` looks for its configuration in this home.
    pub(crate) fn config_path(&self) -> PathBuf {
        self.dir.path().join("config/confluencefs/config.toml")
    }

    /// Writes the configuration file with `mode`.
    pub(crate) fn write_config(&self, text: &str, mode: u32) {
        let path = self.config_path();
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, text).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).unwrap();
    }

    /// Writes `name` in the home with `text`, mode 0600, and returns its path.
    pub(crate) fn file(&self, name: &str, text: &str) -> PathBuf {
        let path = self.dir.path().join(name);
        std::fs::write(&path, text).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
        path
    }

    /// `confluencefs ARGS` with no Confluence variables but `env`, this home's configuration
    /// and netrc, and `stdin` on its standard input.
    pub(crate) fn run_with_input(
        &self,
        args: &[&str],
        env: &[(&str, &str)],
        stdin: &str,
    ) -> Output {
        use std::io::Write;
        let mut command = self.command(args, env);
        let mut child = command
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("confluencefs runs");
        let _ = child.stdin.take().unwrap().write_all(stdin.as_bytes());
        child.wait_with_output().unwrap()
    }

    pub(crate) fn run(&self, args: &[&str], env: &[(&str, &str)]) -> Output {
        self.run_with_input(args, env, "")
    }

    pub(crate) fn command(&self, args: &[&str], env: &[(&str, &str)]) -> Command {
        let mut command = Command::new(env!("CARGO_BIN_EXE_confluencefs"));
        command.args(args);
        for var in [
            "CONFLUENCE_URL",
            "CONFLUENCE_USER",
            "CONFLUENCE_TOKEN",
            "CONFLUENCEFS_CONFIG",
        ] {
            command.env_remove(var);
        }
        command
            .env("XDG_CONFIG_HOME", self.dir.path().join("config"))
            .env("NETRC", self.dir.path().join("netrc"))
            .envs(env.iter().copied());
        command
    }
}

pub(crate) fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

pub(crate) fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// A `[sites.NAME]` table for `url` with `lines` after the URL.
fn site(name: &str, url: &str, lines: &str) -> String {
    format!("[sites.{name}]\nurl = \"{url}\"\n{lines}\n")
}

fn assert_ok(output: &Output, what: &str) {
    assert!(output.status.success(), "{what}: {}", stderr(output));
}

/// The one line a refusal must be, containing `wanted`.
fn assert_refused(output: &Output, wanted: &str) -> String {
    assert_eq!(output.status.code(), Some(1), "{}", stdout(output));
    let err = stderr(output);
    assert_eq!(err.trim_end().lines().count(), 1, "{err}");
    assert!(err.contains(wanted), "no {wanted:?} in: {err}");
    err
}

#[tokio::test]
async fn check_and_tree_take_a_site_name_with_a_token_file() {
    let server = Server::start(Flavor::Cloud);
    let home = Home::new();
    let token = home.file("work.token", &format!("{TOKEN}\n"));
    home.write_config(
        &site(
            "work",
            &server.base_url(),
            &format!("user = \"{USER}\"\ntoken_file = \"{}\"", token.display()),
        ),
        0o644,
    );
    let output = home.run(&["check", "work"], &[]);
    assert_ok(&output, "check work");
    assert!(stdout(&output).contains("spaces: 2"), "{}", stdout(&output));
    let output = home.run(&["tree", "work", "--space", "ENG"], &[]);
    assert_ok(&output, "tree work");
    assert!(stdout(&output).starts_with("ENG/"), "{}", stdout(&output));
    // --url and CONFLUENCE_URL take a site name too, and the file's URL gets its credentials.
    assert_ok(&home.run(&["check", "--url", "work"], &[]), "--url work");
    assert_ok(
        &home.run(&["check"], &[("CONFLUENCE_URL", &server.base_url())]),
        "CONFLUENCE_URL of a known site",
    );
    assert_refused(&home.run(&["check", "nowhere"], &[]), "no site \"nowhere\"");
    assert_refused(
        &home.run(&["check"], &[]),
        "no site: give a URL or a site name",
    );
}

#[tokio::test]
async fn flags_beat_the_environment_which_beats_the_file() {
    let server = Server::start(Flavor::Cloud);
    let home = Home::new();
    let text = site(
        "work",
        &server.base_url(),
        &format!("user = \"{USER}\"\ntoken = \"{TOKEN}\""),
    );
    home.write_config(&text, 0o600);
    assert_ok(&home.run(&["check", "work"], &[]), "the file alone");
    // The environment's user beats the file's, and is refused by the server.
    let env_user = [("CONFLUENCE_USER", "env@example.com")];
    let err = assert_refused(&home.run(&["check", "work"], &env_user), "refused");
    assert!(err.contains("env@example.com"), "{err}");
    // The flag beats the environment.
    assert_ok(
        &home.run(&["check", "work", "--user", USER], &env_user),
        "--user over CONFLUENCE_USER",
    );
    // The environment's token beats the file's, the flag's beats the environment's.
    let env_token = [("CONFLUENCE_TOKEN", "wrong-token")];
    assert_refused(&home.run(&["check", "work"], &env_token), "refused");
    let token_file = home.file("t", TOKEN);
    let flag = [
        "check",
        "work",
        "--token-file",
        token_file.to_str().unwrap(),
    ];
    assert_ok(
        &home.run(&flag, &env_token),
        "--token-file over CONFLUENCE_TOKEN",
    );
    // --config and CONFLUENCEFS_CONFIG name another file.
    let other = home.file("other.toml", &site("elsewhere", &server.base_url(), ""));
    let other = other.to_str().unwrap();
    let output = home.run(&["check", "work", "--config", other], &[]);
    assert_refused(&output, "no site \"work\"");
    let output = home.run(&["check", "elsewhere"], &[("CONFLUENCEFS_CONFIG", other)]);
    assert_refused(&output, "no token");
}

#[tokio::test]
async fn an_open_file_holding_a_token_is_refused_in_one_line() {
    let server = Server::start(Flavor::Cloud);
    let home = Home::new();
    let text = site("work", &server.base_url(), &format!("token = \"{TOKEN}\""));
    home.write_config(&text, 0o640);
    let output = home.run(&["check", "work"], &[]);
    let err = assert_refused(&output, "chmod 600");
    assert!(!err.contains(TOKEN), "{err}");
    // Without an inline token the same mode is fine.
    let token = home.file("t", TOKEN);
    let text = site(
        "work",
        &server.base_url(),
        &format!("user = \"{USER}\"\ntoken_file = \"{}\"", token.display()),
    );
    home.write_config(&text, 0o644);
    assert_ok(&home.run(&["check", "work"], &[]), "no inline token");
}

#[tokio::test]
async fn token_command_runs_without_a_shell_and_fails_in_one_line() {
    let server = Server::start(Flavor::DataCenter);
    let home = Home::new();
    // A PAT on Data Center: no user. `$0` would be expanded by a shell; argv keeps it.
    let script = home.file("token.sh", &format!("#!/bin/sh\necho \"{TOKEN}\"\n"));
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o700)).unwrap();
    let text = site(
        "dc",
        &server.base_url(),
        &format!(
            "token_command = [\"{}\", \"$0 not expanded\"]",
            script.display()
        ),
    );
    home.write_config(&text, 0o644);
    let output = home.run(&["check", "dc"], &[]);
    assert_ok(&output, "token_command");
    assert!(stdout(&output).contains("Data Center"));

    let failing = site(
        "dc",
        &server.base_url(),
        "token_command = [\"sh\", \"-c\", \"printf %s%s \\\"$0\\\" \\\"$0\\\"; exit 7\", \"half\"]",
    );
    home.write_config(&failing, 0o644);
    server.clear_requests().await;
    let err = assert_refused(&home.run(&["check", "dc"], &[]), "exit status: 7");
    assert!(
        !err.contains("halfhalf"),
        "the command's output is in: {err}"
    );
    assert!(
        server.requests().await.is_empty(),
        "a request without a token"
    );
}

#[tokio::test]
async fn netrc_gives_user_and_token_for_the_host_as_curl_reads_it() {
    let server = Server::start(Flavor::Cloud);
    let home = Home::new();
    let host = url::Url::parse(&server.base_url())
        .unwrap()
        .host_str()
        .unwrap()
        .to_string();
    home.file(
        "netrc",
        &format!(
            "# mine\nmachine other.example login x password y\n\
             machine {host}\n  login \"{USER}\"\n  password {TOKEN}\ndefault login a password b\n"
        ),
    );
    let output = home.run(&["check", &server.base_url()], &[]);
    assert_ok(&output, "netrc");
    // A token from elsewhere wins: netrc is the last resort.
    let output = home.run(
        &["check", &server.base_url()],
        &[
            ("CONFLUENCE_TOKEN", "wrong-token"),
            ("CONFLUENCE_USER", USER),
        ],
    );
    assert_refused(&output, "refused");
    // A user netrc does not know falls to `default`, whose login is not that user: no token.
    let output = home.run(
        &["check", &server.base_url(), "--user", "someone@else"],
        &[],
    );
    assert_refused(&output, "no token");
}

#[test]
fn mount_takes_a_site_name_and_its_mount_defaults() {
    let server = Server::start(Flavor::Cloud);
    let home = Home::new();
    let cache = tempfile::tempdir().unwrap();
    let token = home.file("t", TOKEN);
    home.write_config(
        &site(
            "work",
            &server.base_url(),
            &format!(
                "user = \"{USER}\"\ntoken_command = [\"cat\", \"{}\"]\ncache_dir = \"{}\"\n\
                 spaces = [\"ENG\"]\nread_only = true",
                token.display(),
                cache.path().display()
            ),
        ),
        0o644,
    );
    let mountpoint = tempfile::tempdir().unwrap();
    let mount = mountpoint.path().to_str().unwrap();
    let output = home.run(&["mount", "work", mount], &[]);
    let _guard = Unmount(mountpoint.path().to_path_buf());
    assert_ok(&output, "mount work");
    let listed: Vec<String> = std::fs::read_dir(mountpoint.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(listed, ["ENG"], "spaces = [\"ENG\"] from the file");
    assert!(
        cache.path().join("confluencefs.log").exists(),
        "cache_dir from the file"
    );
    let err = std::fs::write(mountpoint.path().join("ENG/x.txt"), b"x").unwrap_err();
    assert_eq!(
        err.raw_os_error(),
        Some(libc::EROFS),
        "read_only from the file"
    );
    // The serving process got the token from its parent, never ran the command itself and
    // keeps no token in its environment.
    let pid = crate::mounted::mount_pid(mountpoint.path()).unwrap();
    let environ = std::fs::read(format!("/proc/{pid}/environ")).unwrap();
    assert!(!String::from_utf8_lossy(&environ).contains(TOKEN));
}

/// Unmounts when dropped, even when the test panics, and waits for the process to end.
pub(crate) struct Unmount(pub PathBuf);

impl Drop for Unmount {
    fn drop(&mut self) {
        let pid = crate::mounted::mount_pid(&self.0);
        crate::mounted::unmount(&self.0);
        wait_gone(pid);
    }
}

/// Waits until process `pid` (if any) has ended.
pub(crate) fn wait_gone(pid: Option<u32>) {
    let Some(pid) = pid else { return };
    for _ in 0..300 {
        match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
            Ok(stat) if !stat.contains(") Z ") => {}
            _ => return,
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}

#[tokio::test]
async fn site_add_writes_a_private_file_from_a_token_on_stdin() {
    use std::os::unix::fs::MetadataExt;
    let server = Server::start(Flavor::Cloud);
    let home = Home::new();
    let url = server.base_url();
    let add = ["site", "add", "work", &url, "--user", USER, "--default"];
    let output = home.run_with_input(&add, &[], &format!("{TOKEN}\n"));
    assert_ok(&output, "site add");
    let path = home.config_path();
    assert_eq!(std::fs::metadata(&path).unwrap().mode() & 0o777, 0o600);
    let dir = std::fs::metadata(path.parent().unwrap()).unwrap();
    assert_eq!(dir.mode() & 0o777, 0o700);
    // default_site: no name needed.
    assert_ok(&home.run(&["check"], &[]), "check with the default site");

    let listed = home.run(&["site", "list"], &[]);
    assert_ok(&listed, "site list");
    let text = stdout(&listed);
    assert!(
        text.contains("work (default)") && text.contains("in the file"),
        "{text}"
    );
    assert!(!text.contains(TOKEN), "{text}");

    let again = home.run_with_input(&add, &[], "x\n");
    assert_refused(&again, "already");
    let reserved = home.run_with_input(&["site", "add", "mount", &url], &[], "x\n");
    assert_refused(&reserved, "is a confluencefs command");
    let empty = home.run_with_input(&["site", "add", "blank", &url], &[], "\n");
    assert_refused(&empty, "no token given");

    assert_ok(&home.run(&["site", "remove", "work"], &[]), "site remove");
    assert_refused(&home.run(&["check", "work"], &[]), "no site \"work\"");
    assert_refused(&home.run(&["site", "remove", "work"], &[]), "no site");
}

#[tokio::test]
async fn site_add_keyring_stores_the_token_with_secret_tool() {
    let server = Server::start(Flavor::Cloud);
    let home = Home::new();
    // A secret-tool that keeps each secret in a file named after the site.
    let bin = home.dir.path().join("bin");
    let keyring = home.dir.path().join("keyring");
    std::fs::create_dir_all(&bin).unwrap();
    std::fs::create_dir_all(&keyring).unwrap();
    let fake = bin.join("secret-tool");
    std::fs::write(
        &fake,
        "#!/bin/sh\ncase \"$1\" in\n  store) echo \"$2\" > \"$FAKE_KEYRING/$4.label\"; cat > \"$FAKE_KEYRING/$4\" ;;\n  \
         lookup) cat \"$FAKE_KEYRING/$3\" ;;\n  clear) rm \"$FAKE_KEYRING/$3\" ;;\nesac\n",
    )
    .unwrap();
    std::fs::set_permissions(&fake, std::fs::Permissions::from_mode(0o755)).unwrap();
    let path = format!("{}:{}", bin.display(), std::env::var("PATH").unwrap());
    let env = [
        ("PATH", path.as_str()),
        ("FAKE_KEYRING", keyring.to_str().unwrap()),
    ];
    let url = server.base_url();
    let add = ["site", "add", "kr", &url, "--user", USER, "--keyring"];
    assert_ok(
        &home.run_with_input(&add, &env, &format!("{TOKEN}\n")),
        "add --keyring",
    );
    assert_eq!(std::fs::read_to_string(keyring.join("kr")).unwrap(), TOKEN);
    let label = std::fs::read_to_string(keyring.join("kr.label")).unwrap();
    assert_eq!(label.trim(), "--label=confluencefs kr");
    let file = std::fs::read_to_string(home.config_path()).unwrap();
    assert!(!file.contains(TOKEN), "{file}");
    assert!(
        file.contains(r#"token_command = ["secret-tool", "lookup", "confluencefs", "kr"]"#),
        "{file}"
    );
    assert_ok(
        &home.run(&["check", "kr"], &env),
        "check through the keyring",
    );
    assert_ok(&home.run(&["site", "remove", "kr"], &env), "remove");
    assert!(!keyring.join("kr").exists(), "the keyring entry stays");
    // Without secret-tool on PATH, --keyring is one line saying what is missing.
    let output = home.run_with_input(&add, &[("PATH", "/nonexistent")], "t\n");
    assert_refused(&output, "secret-tool");
}
