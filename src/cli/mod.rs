//! The command line: raw flags (clap) are kept apart from what they are turned into.
//!
//! `Args` is what the user typed; `connect_config` validates it into a `ClientConfig`
//! (credentials from the environment or a token file — never from a flag, where `ps` would show
//! a token, nor from the URL, which is refused when it carries a user name or password; the
//! background mount process gets the token on its stdin, see `mount`). Each subcommand lives
//! in its own module and returns `anyhow::Result`; `main` prints
//! the whole error chain on one line and exits non-zero, so a wrong URL or a refused credential
//! is one clear line, not a backtrace. The command line mount(8) gives a helper is rewritten
//! into `mount …` before parsing (`mount_helper`). `-v`/`-vv`/`-q` are global flags that only
//! pick the default log filter: `CONFLUENCEFS_LOG`, a filter the user wrote, still wins.

mod check;
mod config_file;
mod doctor;
mod generate;
pub mod mount_args;
mod mount_helper;
mod netrc;
mod pending;
mod site;
mod site_commands;
mod status;
mod tree;
mod units;
mod watch;

use std::path::PathBuf;

use clap::{CommandFactory, Parser, Subcommand};

use config_file::Config;
use site::SiteArgs;

#[derive(Debug, Parser)]
#[command(name = "confluencefs", version, about = "Confluence as a filesystem")]
struct Args {
    #[command(subcommand)]
    command: Command,
    /// More log: -v debug, -vv trace (CONFLUENCEFS_LOG, when set, wins).
    #[arg(short, long, action = clap::ArgAction::Count, global = true)]
    verbose: u8,
    /// Less log: errors only (CONFLUENCEFS_LOG, when set, wins).
    #[arg(short, long, global = true, conflicts_with = "verbose")]
    quiet: bool,
    /// The configuration file of named sites [env: CONFLUENCEFS_CONFIG]
    /// [default: $XDG_CONFIG_HOME/confluencefs/config.toml or ~/.config/confluencefs/config.toml]
    #[arg(long, global = true, value_name = "FILE")]
    config: Option<PathBuf>,
}

/// How much to log, from `-v`, `-vv` and `-q`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Verbosity {
    Quiet,
    Normal,
    Debug,
    Trace,
}

impl Verbosity {
    fn of(args: &Args) -> Verbosity {
        match (args.quiet, args.verbose) {
            (true, _) => Verbosity::Quiet,
            (false, 0) => Verbosity::Normal,
            (false, 1) => Verbosity::Debug,
            (false, _) => Verbosity::Trace,
        }
    }

    /// The log filter for a command whose usual one is `normal`. Other crates stay at `warn`
    /// whatever the level, and fuser's session at `error` when `normal` keeps it there (see
    /// `run_mount`).
    fn filter(self, normal: &str) -> String {
        let ours = match self {
            Verbosity::Quiet => return "error".to_string(),
            Verbosity::Normal => return normal.to_string(),
            Verbosity::Debug => "confluencefs=debug",
            Verbosity::Trace => "confluencefs=trace",
        };
        let session = "fuser::session=error";
        if normal.split(',').any(|part| part == session) {
            format!("{ours},{session},warn")
        } else {
            format!("{ours},warn")
        }
    }
}

// Parsed once per run: the size of the mount variant costs nothing worth a box.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Subcommand)]
enum Command {
    /// Check the URL and the credentials, then print the site, its flavor, the user and the spaces.
    Check {
        #[command(flatten)]
        site: SiteArgs,
        /// Print one JSON object (site, flavor, user, account_id, username, spaces).
        #[arg(long)]
        json: bool,
    },
    /// Print a completion script for SHELL on stdout (e.g. `confluencefs completions bash >
    /// ~/.local/share/bash-completion/completions/confluencefs`).
    Completions {
        /// bash, zsh, fish, elvish or powershell.
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
    /// Check what a mount needs (/dev/fuse, fusermount3, the mountpoint, the cache
    /// directory, the site and its credentials), one line each; exit status 1 if any fails.
    Doctor(doctor::DoctorArgs),
    /// Print the man page (roff) on stdout: `confluencefs man | man -l -`.
    Man,
    /// Mount Confluence at MOUNTPOINT; returns once the mount is ready (unless --foreground).
    /// `umount MOUNTPOINT` ends it.
    Mount(mount_args::MountArgs),
    /// List the uploads waiting in the spool, and why; retry or drop them.
    Pending(pending::PendingArgs),
    /// Show each running mount: site, cache, requests, uploads in flight, the spool, the last
    /// errors, and whether it is safe to unmount.
    Status(status::StatusArgs),
    /// Add, list or remove the named sites of the configuration file.
    Site {
        #[command(subcommand)]
        command: site_commands::SiteCommand,
    },
    /// Print the tree the filesystem will show: spaces, pages, blog posts, attachments.
    Tree {
        #[command(flatten)]
        site: SiteArgs,
        /// Only these spaces (repeatable).
        #[arg(long = "space", value_name = "KEY")]
        spaces: Vec<String>,
        /// Print one JSON document (spaces → pages → attachments and children).
        #[arg(long)]
        json: bool,
    },
}

/// Runs the command line and returns the process exit code.
pub fn main() -> i32 {
    let command = Args::command();
    let mut subcommands: Vec<&str> = command.get_subcommands().map(|c| c.get_name()).collect();
    subcommands.push("help");
    let argv = mount_helper::normalize(std::env::args_os().collect(), &subcommands);
    let args = Args::parse_from(argv);
    let verbosity = Verbosity::of(&args);
    let config = args.config;
    let result = match args.command {
        Command::Mount(args) => run_mount(args, verbosity, config),
        Command::Pending(args) => pending::run(args, config.as_deref()),
        Command::Status(args) => status::run(args),
        Command::Doctor(args) => {
            init_logging(&verbosity.filter("error"));
            doctor::run(args, config.as_deref())
        }
        Command::Site { command } => site_commands::run(command, config.as_deref(), &subcommands),
        Command::Completions { shell } => generate::completions(shell),
        Command::Man => generate::man(),
        command => {
            init_logging(&verbosity.filter("warn"));
            run_client_command(command, config)
        }
    };
    match result {
        Ok(()) => 0,
        Err(err) => {
            eprintln!("confluencefs: {}", one_line(&err));
            1
        }
    }
}

fn run_mount(
    mut args: mount_args::MountArgs,
    verbosity: Verbosity,
    config: Option<PathBuf>,
) -> anyhow::Result<()> {
    args.take_option_values()?;
    let config = Config::load(args.config.as_deref().or(config.as_deref()))?;
    let site = site::resolve(&config, args.site_choice())?;
    // Refused here already, so that a wrong URL is not first handed to a background process.
    crate::confluence::check_site_url(&site.url)?;
    if !args.foreground {
        // Handed to the background process on its stdin, so that it never sits in that
        // process's environment; a token file is read by the background process itself.
        let token = site.token_for_child()?;
        mount_args::spawn_background(token.as_deref(), site.user.as_deref())?;
        if args.allows_others() {
            eprintln!("{}", args.allow_other_notice());
        }
        return Ok(());
    }
    if args.allows_others() && std::env::var_os(mount_args::NOTIFY_ENV).is_none() {
        eprintln!("{}", args.allow_other_notice());
    }
    // fuser warns when, after an external `umount`, it tries to unmount what is already gone:
    // a harmless line on every such unmount, so its session's warnings are left out by default.
    if std::env::var_os(mount_args::NOTIFY_ENV).is_some() {
        crate::mount::keep_early_log();
    }
    init_logging(&verbosity.filter(MOUNT_LOG));
    let client = site.client_config()?;
    let config = args.into_config(client, &site)?;
    // What -v is first for: the settings this mount runs with, as the flags and -o made them.
    tracing::debug!(
        mountpoint = %config.mountpoint.display(),
        cache_dir = %config.cache_dir.display(),
        spaces = ?config.spaces,
        read_only = config.read_only,
        allow_other = config.allow_other,
        disk_cache_bytes = config.disk_cache_bytes,
        memory_cache_bytes = config.memory_cache_bytes,
        metadata_ttl = ?config.metadata_ttl,
        options = ?config.options,
        "mount settings"
    );
    crate::mount::run(config)
}

fn run_client_command(command: Command, config: Option<PathBuf>) -> anyhow::Result<()> {
    let config = Config::load(config.as_deref())?;
    let connect = |args: &SiteArgs| site::resolve(&config, args.choice())?.client_config();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(err) => anyhow::bail!("cannot start the async runtime: {err}"),
    };
    runtime.block_on(async {
        match command {
            Command::Check { site, json } => check::run(connect(&site)?, json).await,
            Command::Tree { site, spaces, json } => tree::run(connect(&site)?, &spaces, json).await,
            Command::Mount(_)
            | Command::Pending(_)
            | Command::Status(_)
            | Command::Site { .. }
            | Command::Doctor(_)
            | Command::Completions { .. }
            | Command::Man => unreachable!("handled in main"),
        }
    })
}

/// The error chain on one line, skipping causes whose text the message before already quotes
/// (reqwest and hyper errors repeat their sources in their own `Display`).
fn one_line(err: &anyhow::Error) -> String {
    let mut line = String::new();
    for cause in err.chain() {
        let text = cause.to_string();
        if !line.contains(&text) {
            if !line.is_empty() {
                line.push_str(": ");
            }
            line.push_str(&text);
        }
    }
    line
}

/// The log filter of a mount without `-v` or `-q`.
const MOUNT_LOG: &str = "confluencefs=info,fuser::session=error,warn";

/// Logs through `tracing` with `CONFLUENCEFS_LOG` as the filter when it is set (a spec the
/// user wrote beats `-v` and `-q`), else `default`. Whatever the filter, the last warnings and
/// errors are also kept for a mount's status (`mount::RecentErrors`).
fn init_logging(default: &str) {
    use tracing_subscriber::layer::SubscriberExt;
    use tracing_subscriber::util::SubscriberInitExt;
    use tracing_subscriber::Layer;
    let filter = tracing_subscriber::EnvFilter::try_from_env("CONFLUENCEFS_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    let log = tracing_subscriber::fmt::layer()
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_writer(|| crate::mount::LogWriter)
        .with_filter(filter);
    let recent = crate::mount::RecentErrors.with_filter(tracing::level_filters::LevelFilter::WARN);
    let _ = tracing_subscriber::registry()
        .with(log)
        .with(recent)
        .try_init();
}

#[cfg(test)]
mod tests {
    use super::*;

    fn verbosity(argv: &[&str]) -> Verbosity {
        Verbosity::of(&Args::try_parse_from(argv).unwrap())
    }

    #[test]
    fn verbosity_flags_set_the_filter() {
        let mount = ["confluencefs", "mount", "https://x", "/mnt"];
        assert_eq!(verbosity(&mount), Verbosity::Normal);
        assert_eq!(verbosity(&[&mount[..], &["-v"]].concat()), Verbosity::Debug);
        assert_eq!(
            verbosity(&["confluencefs", "-vv", "check", "--url", "x"]),
            Verbosity::Trace
        );
        assert_eq!(
            verbosity(&["confluencefs", "check", "-q", "--url", "x"]),
            Verbosity::Quiet
        );
        assert!(Args::try_parse_from(["confluencefs", "-q", "-v", "man"]).is_err());
        assert_eq!(Verbosity::Normal.filter(MOUNT_LOG), MOUNT_LOG);
        assert_eq!(
            Verbosity::Debug.filter(MOUNT_LOG),
            "confluencefs=debug,fuser::session=error,warn"
        );
        assert_eq!(Verbosity::Trace.filter("warn"), "confluencefs=trace,warn");
        assert_eq!(Verbosity::Quiet.filter(MOUNT_LOG), "error");
    }
}
