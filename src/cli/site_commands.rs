//! `confluencefs site add|list|remove`: the configuration file's sites, edited for the user.
//!
//! The token never goes on the command line, where `ps` and the shell's history would keep it:
//! `site add` asks for it on the terminal with echo off (termios through libc, restored even
//! when reading fails), or reads the first line of stdin when stdin is not a terminal (`pass
//! show x | confluencefs site add …`). It is then written into the file, which `site add` makes
//! `0600`, or, with `--keyring`, handed to `secret-tool store` on its stdin and replaced in the
//! file by the `token_command` that looks it up again.

use std::io::{BufRead, IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use anyhow::{bail, Context};

use super::config_file::{config_path, Config, ConfigEdit, SiteEntry};

/// `confluencefs site …`.
#[derive(Debug, clap::Subcommand)]
pub(super) enum SiteCommand {
    /// Add a site to the configuration file. The token is asked for on the terminal (not
    /// echoed), or read from the first line of stdin when it is not a terminal.
    Add {
        /// The site's name, used as `confluencefs mount NAME DIR`.
        name: String,
        /// The Confluence URL.
        url: String,
        /// User (Cloud: e-mail; Data Center: user name); without it the token is a Data
        /// Center personal access token.
        #[arg(long)]
        user: Option<String>,
        /// Skip flavor detection for this site.
        #[arg(long, value_parser = ["cloud", "datacenter"])]
        flavor: Option<String>,
        /// Keep the token in the Secret Service keyring (through `secret-tool`), and only the
        /// command that looks it up in the file.
        #[arg(long, conflicts_with = "token_file")]
        keyring: bool,
        /// Read the token from this file at each use instead of storing it (nothing is asked).
        #[arg(long)]
        token_file: Option<PathBuf>,
        /// Make it the site used when a command names none.
        #[arg(long)]
        default: bool,
    },
    /// List the sites of the configuration file (never their tokens).
    List,
    /// Remove a site from the configuration file (and its keyring entry, if `site add
    /// --keyring` made one).
    Remove {
        /// The site's name.
        name: String,
    },
}

/// The attribute `secret-tool` stores our tokens under: `confluencefs=NAME`.
const KEYRING_ATTRIBUTE: &str = "confluencefs";

/// Runs a `site` command against the configuration file at `config` (or the default one).
pub(super) fn run(
    command: SiteCommand,
    config: Option<&Path>,
    reserved: &[&str],
) -> anyhow::Result<()> {
    let (path, _) = config_path(config);
    match command {
        SiteCommand::Add {
            name,
            url,
            user,
            flavor,
            keyring,
            token_file,
            default,
        } => {
            check_name(&name, reserved)?;
            crate::confluence::check_site_url(&url)?;
            let mut edit = ConfigEdit::open(&path)?;
            if edit.has_site(&name)? {
                bail!(
                    "site {name:?} is in {} already; `confluencefs site remove {name}` first",
                    path.display()
                );
            }
            let mut values: Vec<(&str, toml_edit::Value)> = vec![("url", url.as_str().into())];
            if let Some(user) = &user {
                values.push(("user", user.as_str().into()));
            }
            if let Some(flavor) = &flavor {
                values.push(("flavor", flavor.as_str().into()));
            }
            if let Some(file) = &token_file {
                let file = std::path::absolute(file).unwrap_or_else(|_| file.clone());
                values.push(("token_file", file.to_string_lossy().as_ref().into()));
            } else {
                let token = ask_token(&name, &url)?;
                if keyring {
                    store_in_keyring(&name, &token)?;
                    let lookup: toml_edit::Array = keyring_lookup(&name).iter().collect();
                    values.push(("token_command", lookup.into()));
                } else {
                    values.push(("token", token.as_str().into()));
                }
            }
            edit.add_site(&name, values)?;
            if default {
                edit.set_default(&name);
            }
            edit.save()?;
            eprintln!(
                "site {name} added to {}; try `confluencefs check {name}`",
                path.display()
            );
            Ok(())
        }
        SiteCommand::List => {
            let config = Config::load(config)?;
            if config.file.sites.is_empty() {
                println!("no sites in {}", config.path.display());
            }
            for (name, site) in &config.file.sites {
                let mark = if config.file.default_site.as_deref() == Some(name) {
                    " (default)"
                } else {
                    ""
                };
                println!(
                    "{name}{mark}  {}  {}  token: {}",
                    site.url,
                    site.user.as_deref().unwrap_or("(personal access token)"),
                    token_source(site)
                );
            }
            Ok(())
        }
        SiteCommand::Remove { name } => {
            let mut edit = ConfigEdit::open(&path)?;
            // The keyring entry goes too, if this site's token is the one `add --keyring` made.
            let in_keyring = Config::load(Some(&path))
                .ok()
                .and_then(|c| c.site(&name).and_then(|s| s.token_command.clone()))
                .is_some_and(|argv| argv == keyring_lookup(&name));
            if !edit.remove_site(&name)? {
                bail!("no site {name:?} in {}", path.display());
            }
            edit.save()?;
            if in_keyring {
                let cleared = Command::new("secret-tool")
                    .args(["clear", KEYRING_ATTRIBUTE, &name])
                    .status();
                if !cleared.is_ok_and(|s| s.success()) {
                    eprintln!("confluencefs: note: the keyring entry of {name} was not removed");
                }
            }
            eprintln!("site {name} removed from {}", path.display());
            Ok(())
        }
    }
}

/// What `site list` shows of a site's token: where it comes from, never the token.
fn token_source(site: &SiteEntry) -> String {
    if let Some(file) = &site.token_file {
        format!("file {file}")
    } else if let Some(argv) = &site.token_command {
        format!("command {}", argv.join(" "))
    } else if site.token.is_some() {
        "in the file".to_string()
    } else {
        "none (environment or ~/.netrc)".to_string()
    }
}

/// The `token_command` of a token kept by `site add --keyring`.
fn keyring_lookup(name: &str) -> Vec<String> {
    ["secret-tool", "lookup", KEYRING_ATTRIBUTE, name]
        .map(String::from)
        .to_vec()
}

/// Names that are words of the command line: a site called `mount` could not be told apart
/// from the subcommand in the form mount(8) uses, and a `://` would make it a URL.
fn check_name(name: &str, reserved: &[&str]) -> anyhow::Result<()> {
    let fine = !name.is_empty()
        && !name.starts_with('-')
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
    if !fine {
        bail!("site name {name:?}: use letters, digits, '-', '_' and '.'");
    }
    if reserved.contains(&name) {
        bail!("site name {name:?} is a confluencefs command; choose another");
    }
    Ok(())
}

/// The token, from the terminal without echo, or from stdin's first line.
fn ask_token(name: &str, url: &str) -> anyhow::Result<String> {
    let stdin = std::io::stdin();
    let token = if stdin.is_terminal() {
        eprint!("Token for {name} ({url}), not shown: ");
        let _ = std::io::stderr().flush();
        let line = read_without_echo(&stdin);
        eprintln!();
        line?
    } else {
        let mut line = String::new();
        stdin
            .lock()
            .read_line(&mut line)
            .context("cannot read the token from stdin")?;
        line
    };
    let token = token.trim().to_string();
    if token.is_empty() {
        bail!("no token given");
    }
    Ok(token)
}

/// One line from the terminal on `stdin` with echo off, echo restored afterwards.
fn read_without_echo(stdin: &std::io::Stdin) -> anyhow::Result<String> {
    use std::os::fd::AsRawFd;
    let fd = stdin.as_raw_fd();
    // SAFETY: termios is plain old data; tcgetattr fills it in for an open descriptor.
    let mut saved: libc::termios = unsafe { std::mem::zeroed() };
    // SAFETY: `fd` is stdin, open for the whole call; `saved` is a valid termios to write.
    if unsafe { libc::tcgetattr(fd, &mut saved) } != 0 {
        bail!(
            "cannot read the terminal's settings: {}",
            std::io::Error::last_os_error()
        );
    }
    let mut quiet = saved;
    quiet.c_lflag &= !libc::ECHO;
    quiet.c_lflag |= libc::ECHONL;
    // SAFETY: as above; `quiet` is a valid termios copied from the terminal's own.
    unsafe { libc::tcsetattr(fd, libc::TCSANOW, &quiet) };
    let mut line = String::new();
    let read = stdin.lock().read_line(&mut line);
    // SAFETY: restores the settings read above, on the same descriptor.
    unsafe { libc::tcsetattr(fd, libc::TCSANOW, &saved) };
    read.context("cannot read the token")?;
    Ok(line)
}

/// `secret-tool store --label … confluencefs NAME`, the token on its stdin.
fn store_in_keyring(name: &str, token: &str) -> anyhow::Result<()> {
    let found = std::env::var_os("PATH")
        .is_some_and(|path| std::env::split_paths(&path).any(|d| d.join("secret-tool").is_file()));
    if !found {
        bail!(
            "--keyring needs secret-tool (Debian package libsecret-tools) and a Secret Service \
             (GNOME Keyring, KeePassXC); without them, leave --keyring out"
        );
    }
    let mut child = Command::new("secret-tool")
        .args([
            "store",
            &format!("--label=confluencefs {name}"),
            KEYRING_ATTRIBUTE,
            name,
        ])
        .stdin(Stdio::piped())
        .spawn()
        .context("cannot run secret-tool")?;
    if let Some(mut input) = child.stdin.take() {
        input.write_all(token.as_bytes())?;
    }
    let status = child.wait()?;
    if !status.success() {
        bail!("secret-tool store failed: {status}");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_words_that_are_not_commands() {
        assert!(check_name("work", &["mount"]).is_ok());
        assert!(check_name("dc-2.old_one", &[]).is_ok());
        assert!(check_name("mount", &["mount"]).is_err());
        for bad in ["", "-x", "a b", "https://x", "a/b"] {
            assert!(check_name(bad, &[]).is_err(), "{bad:?}");
        }
    }
}
