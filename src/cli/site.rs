//! Which site a command talks to, as whom, and with what token: the flags, the environment,
//! the configuration file and `~/.netrc`, in that order of precedence.
//!
//! Every command that reaches Confluence names the site the same way (`URL|SITE` as its first
//! argument, or `--url`, or `CONFLUENCE_URL`, or the file's `default_site`), and every setting is
//! then looked for in one order — a flag, then its environment variable, then the site's table
//! in the file, then `~/.netrc` for the credentials only — so that a flag always wins and a
//! file never surprises a command line that already worked. The result, [`Site`], keeps the
//! token's *source* rather than the token: a token file is read by the process that uses it,
//! and a token command runs once, in the command the user typed (a background mount's process
//! gets its output on stdin, never in its environment).

use std::io::BufRead;
use std::path::PathBuf;
use std::process::{Command, Stdio};

use anyhow::{bail, Context};

use super::config_file::{Config, MountDefaults};
use crate::confluence::{ClientConfig, Credentials, Flavor, Secret};

/// Environment variable that tells a `--foreground` process to read its token from the first
/// line of stdin instead of `CONFLUENCE_TOKEN`.
pub const TOKEN_ON_STDIN_ENV: &str = "CONFLUENCEFS_TOKEN_ON_STDIN";

/// How to reach Confluence, as `check` and `tree` take it.
#[derive(Debug, clap::Args)]
pub(super) struct SiteArgs {
    /// A Confluence URL (https://SITE.atlassian.net[/wiki], http://host:8090,
    /// http://host/confluence) or the name of a site in the configuration file.
    #[arg(value_name = "URL|SITE")]
    pub site: Option<String>,
    /// The same as URL|SITE [env: CONFLUENCE_URL].
    #[arg(long, conflicts_with = "site")]
    pub url: Option<String>,
    /// User (Cloud: e-mail; Data Center: user name). Without it the token is a Data Center
    /// personal access token, sent as a Bearer token.
    #[arg(long, env = "CONFLUENCE_USER")]
    pub user: Option<String>,
    /// Read the token from the first line of this file instead of CONFLUENCE_TOKEN.
    #[arg(long)]
    pub token_file: Option<PathBuf>,
    /// Skip flavor detection.
    #[arg(long, value_parser = ["cloud", "datacenter"])]
    pub flavor: Option<String>,
}

impl SiteArgs {
    /// What the user chose, before the file and the environment are consulted.
    pub(super) fn choice(&self) -> SiteChoice {
        SiteChoice {
            named: self.site.clone().or_else(|| self.url.clone()),
            user: self.user.clone(),
            token_file: self.token_file.clone(),
            flavor: self.flavor.clone(),
        }
    }
}

/// The flags that pick a site and its credentials, from any command.
#[derive(Debug, Default, Clone)]
pub(super) struct SiteChoice {
    /// The URL or site name given as an argument or a flag.
    pub named: Option<String>,
    /// `--user`, or `CONFLUENCE_USER` (clap merges the two; both beat the file).
    pub user: Option<String>,
    /// `--token-file`.
    pub token_file: Option<PathBuf>,
    /// `--flavor`.
    pub flavor: Option<String>,
}

/// Where the token comes from. The token itself is only held where it was given inline.
pub(super) enum TokenSource {
    /// The first line of a file (`--token-file`, or the site's `token_file`).
    File(PathBuf),
    /// `CONFLUENCE_TOKEN`, the site's inline `token`, or a netrc password.
    Given(Secret),
    /// The first line of stdin: a background mount's process, from its parent.
    Stdin,
    /// The site's `token_command`.
    Command { site: String, argv: Vec<String> },
    /// Nothing gave one.
    Missing,
}

/// A site resolved: URL, user, token source, flavor and mount defaults.
pub(super) struct Site {
    pub url: String,
    pub user: Option<String>,
    pub token: TokenSource,
    pub flavor: Option<Flavor>,
    /// The site's mount settings from the file (empty without a site).
    pub defaults: MountDefaults,
    /// The site's `cache_dir`, resolved.
    pub cache_dir: Option<PathBuf>,
}

/// True when `text` is a URL rather than a site name.
pub(super) fn is_url(text: &str) -> bool {
    text.contains("://")
}

/// Resolves `choice` against the environment, `config` and the netrc file.
pub(super) fn resolve(config: &Config, choice: SiteChoice) -> anyhow::Result<Site> {
    let named = choice
        .named
        .or_else(|| {
            std::env::var("CONFLUENCE_URL")
                .ok()
                .filter(|u| !u.trim().is_empty())
        })
        .or_else(|| config.file.default_site.clone());
    let Some(named) = named else {
        bail!(
            "no site: give a URL or a site name (or set CONFLUENCE_URL, or default_site in {})",
            config.path.display()
        );
    };
    let (name, url, entry) = if is_url(&named) {
        match config.site_by_url(&named) {
            Some((name, entry)) => (
                Some(name.to_string()),
                named.trim().to_string(),
                Some(entry),
            ),
            None => (None, named.trim().to_string(), None),
        }
    } else {
        let Some(entry) = config.site(&named) else {
            let known: Vec<&str> = config.file.sites.keys().map(String::as_str).collect();
            let known = if known.is_empty() {
                "it has none".to_string()
            } else {
                format!("it has {}", known.join(", "))
            };
            bail!(
                "no site {named:?} in {} ({known}); a URL starts with https://, and \
                 `confluencefs site add {named} URL` adds a site",
                config.path.display()
            );
        };
        (Some(named.clone()), entry.url.clone(), Some(entry))
    };

    let mut user = choice
        .user
        .filter(|u| !u.is_empty())
        .or_else(|| entry.and_then(|e| e.user.clone()));
    let env_token = env_token();
    let site_name = name.clone().unwrap_or_default();
    let token = if let Some(path) = choice.token_file {
        TokenSource::File(path)
    } else if std::env::var_os(TOKEN_ON_STDIN_ENV).is_some() {
        TokenSource::Stdin
    } else if let Some(token) = env_token {
        TokenSource::Given(Secret::new(token))
    } else if let Some(path) = entry.and_then(|e| e.token_file.as_deref()) {
        TokenSource::File(config.resolve_path(path))
    } else if let Some(argv) = entry.and_then(|e| e.token_command.clone()) {
        TokenSource::Command {
            site: site_name,
            argv,
        }
    } else if let Some(token) = entry.and_then(|e| e.token.clone()) {
        TokenSource::Given(Secret::new(token.trim()))
    } else {
        match netrc_entry(&url, user.as_deref()) {
            Some(found) => {
                if user.is_none() {
                    user = found.login;
                }
                TokenSource::Given(Secret::new(found.password.unwrap_or_default()))
            }
            None => TokenSource::Missing,
        }
    };
    let flavor = match choice
        .flavor
        .or_else(|| entry.and_then(|e| e.flavor.clone()))
        .as_deref()
    {
        None => None,
        Some("cloud") => Some(Flavor::Cloud),
        Some("datacenter") => Some(Flavor::DataCenter),
        Some(other) => bail!("flavor {other:?} of site {name:?}: use cloud or datacenter"),
    };
    let defaults = entry.map(|e| e.mount.clone()).unwrap_or_default();
    let cache_dir = defaults
        .cache_dir
        .as_deref()
        .map(|dir| config.resolve_path(dir));
    Ok(Site {
        url,
        user,
        token,
        flavor,
        defaults,
        cache_dir,
    })
}

/// The netrc entry for `url`'s host, if the URL parses and the file has one.
fn netrc_entry(url: &str, user: Option<&str>) -> Option<super::netrc::NetrcEntry> {
    let host = url::Url::parse(url.trim()).ok()?.host_str()?.to_string();
    super::netrc::lookup(&super::netrc::netrc_path(), &host, user)
}

/// `CONFLUENCE_TOKEN`, trimmed, if set and not blank.
pub(super) fn env_token() -> Option<String> {
    std::env::var("CONFLUENCE_TOKEN")
        .ok()
        .map(|t| t.trim().to_string())
        .filter(|t| !t.is_empty())
}

impl Site {
    /// The token, read or run now. A token file is not read here: see [`Site::credentials`].
    fn token(&self) -> anyhow::Result<Option<String>> {
        Ok(match &self.token {
            TokenSource::File(_) => None,
            TokenSource::Given(secret) => Some(secret.expose().to_string()),
            TokenSource::Stdin => {
                let mut line = String::new();
                std::io::stdin()
                    .lock()
                    .read_line(&mut line)
                    .context("cannot read the token from the mount command")?;
                Some(line.trim().to_string())
            }
            TokenSource::Command { site, argv } => Some(run_token_command(site, argv)?),
            TokenSource::Missing => None,
        }
        .filter(|t| !t.is_empty()))
    }

    /// What a background mount's process needs on its stdin: the token, unless it comes from
    /// a file the process reads itself.
    pub(super) fn token_for_child(&self) -> anyhow::Result<Option<String>> {
        if matches!(self.token, TokenSource::File(_)) {
            return Ok(None);
        }
        self.token()?.map(Some).context(NO_TOKEN)
    }

    /// The credentials: the token from its source, with the user for Basic auth, or alone as a
    /// Data Center personal access token.
    pub(super) fn credentials(&self) -> anyhow::Result<Credentials> {
        if let TokenSource::File(path) = &self.token {
            return Ok(Credentials::from_token_file(self.user.clone(), path)?);
        }
        let token = self.token()?.context(NO_TOKEN)?;
        Ok(match &self.user {
            Some(user) => Credentials::basic(user.clone(), token),
            None => Credentials::bearer(token),
        })
    }

    /// The client's configuration for this site.
    pub(super) fn client_config(&self) -> anyhow::Result<ClientConfig> {
        // Before the token is looked for: a URL with a password in it is the first thing to fix.
        crate::confluence::check_site_url(&self.url)?;
        let mut config = ClientConfig::new(self.url.clone(), self.credentials()?);
        config.flavor = self.flavor;
        Ok(config)
    }
}

const NO_TOKEN: &str = "no token: set CONFLUENCE_TOKEN, pass --token-file FILE, or give the \
                        site a token in the configuration file (confluencefs site add)";

/// Runs a site's `token_command` without a shell and returns its stdout, trimmed. Its stderr
/// and stdin stay the terminal's, so a password prompt or the tool's own complaint reach the
/// user; on failure our line names the command and its exit status, never its stdout.
fn run_token_command(site: &str, argv: &[String]) -> anyhow::Result<String> {
    let (program, args) = argv.split_first().context("empty token_command")?;
    let output = Command::new(program)
        .args(args)
        .stdin(Stdio::inherit())
        .stderr(Stdio::inherit())
        .stdout(Stdio::piped())
        .output()
        .with_context(|| format!("cannot run the token_command of site {site:?} ({program})"))?;
    if !output.status.success() {
        bail!(
            "the token_command of site {site:?} ({}) failed: {}",
            argv.join(" "),
            output.status
        );
    }
    let token = String::from_utf8(output.stdout)
        .ok()
        .map(|t| t.trim().to_string())
        .filter(|t| !t.is_empty());
    token.with_context(|| {
        format!(
            "the token_command of site {site:?} ({}) printed no token",
            argv.join(" ")
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_failing_token_command_names_its_status_and_not_its_output() {
        // Prints "s3cr3ts3cr3t", which is not in its argv.
        let argv: Vec<String> = ["sh", "-c", "printf %s%s \"$0\" \"$0\"; exit 3", "s3cr3t"]
            .map(String::from)
            .to_vec();
        let err = run_token_command("work", &argv).unwrap_err().to_string();
        assert!(
            err.contains("exit status: 3") && err.contains("\"work\""),
            "{err}"
        );
        assert!(
            !err.contains("s3cr3ts3cr3t") && !err.contains('\n'),
            "{err}"
        );
        let ok: Vec<String> = ["sh", "-c", "printf '  tok \\n'"]
            .map(String::from)
            .to_vec();
        assert_eq!(run_token_command("work", &ok).unwrap(), "tok");
        let silent: Vec<String> = ["true"].map(String::from).to_vec();
        let err = run_token_command("work", &silent).unwrap_err().to_string();
        assert!(err.contains("printed no token"), "{err}");
        let missing: Vec<String> = ["/nonexistent/tool"].map(String::from).to_vec();
        assert!(run_token_command("work", &missing).is_err());
    }
}
