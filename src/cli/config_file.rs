//! The configuration file: named sites, their credentials and their mount defaults.
//!
//! It is read with `toml` into typed structs that refuse unknown keys, so a typo (`tokenfile`)
//! is an error naming the file and line rather than a setting silently ignored. It is written
//! (by `confluencefs site add|remove`) with `toml_edit`, which keeps the user's comments and
//! layout, through a temporary file renamed over the old one, `0600` in a `0700` directory.
//!
//! A token written inline is a password in a file: like `ssh` with a key file, a file that holds
//! one and that group or others may read is refused, in one line that says how to fix it. The
//! other token sources (`token_file`, `token_command`, `~/.netrc`) keep the secret elsewhere.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context};
use serde::Deserialize;

/// The environment variable naming the configuration file (beaten by `--config`).
pub(super) const CONFIG_ENV: &str = "CONFLUENCEFS_CONFIG";

/// The whole file.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct ConfigFile {
    /// The site a command uses when it is given neither a URL nor a site name.
    pub default_site: Option<String>,
    /// `[sites.NAME]` tables.
    #[serde(default)]
    pub sites: BTreeMap<String, SiteEntry>,
}

/// One `[sites.NAME]` table, as written.
#[derive(Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct SiteEntry {
    pub url: String,
    pub user: Option<String>,
    /// First line of this file (`~` expanded; relative to the configuration file's directory).
    pub token_file: Option<String>,
    /// An argv run without a shell; its stdout, trimmed, is the token.
    pub token_command: Option<Vec<String>>,
    /// The token itself (the file must then be private).
    pub token: Option<String>,
    pub flavor: Option<String>,
    /// Mount defaults; a flag or `-o` option given for the same setting wins.
    #[serde(flatten)]
    pub mount: MountDefaults,
}

impl std::fmt::Debug for SiteEntry {
    /// Everything but the inline token.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SiteEntry")
            .field("url", &self.url)
            .field("user", &self.user)
            .field("token_file", &self.token_file)
            .field("token_command", &self.token_command)
            .field("token", &self.token.as_ref().map(|_| "***"))
            .field("flavor", &self.flavor)
            .field("mount", &self.mount)
            .finish()
    }
}

/// Settings of `confluencefs mount` a site may give defaults for.
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct MountDefaults {
    pub spaces: Option<Vec<String>>,
    pub read_only: Option<bool>,
    pub cache_dir: Option<String>,
    pub cache_size: Option<SizeValue>,
    pub memory_cache_size: Option<SizeValue>,
    pub metadata_ttl: Option<f64>,
    pub op_timeout: Option<f64>,
    pub uid: Option<u32>,
    pub gid: Option<u32>,
    /// Octal, as a string: `"022"`.
    pub umask: Option<String>,
    /// Octal, as a string: `"0644"`.
    pub file_mode: Option<String>,
    /// Octal, as a string: `"0755"`.
    pub dir_mode: Option<String>,
}

/// A size as TOML lets one write it: `"10G"` or a number of bytes.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub(super) enum SizeValue {
    Bytes(u64),
    Text(String),
}

impl SizeValue {
    pub(super) fn bytes(&self) -> anyhow::Result<u64> {
        match self {
            SizeValue::Bytes(n) => Ok(*n),
            SizeValue::Text(text) => super::units::parse_size(text).map_err(|e| anyhow::anyhow!(e)),
        }
    }
}

/// Where the configuration file is: `--config`, else `$CONFLUENCEFS_CONFIG`, else
/// `$XDG_CONFIG_HOME/confluencefs/config.toml`, else `~/.config/confluencefs/config.toml`.
/// The flag says whether the user named it (then it must exist).
pub(super) fn config_path(flag: Option<&Path>) -> (PathBuf, bool) {
    if let Some(path) = flag {
        return (path.to_path_buf(), true);
    }
    if let Some(path) = std::env::var_os(CONFIG_ENV).filter(|p| !p.is_empty()) {
        return (PathBuf::from(path), true);
    }
    let dir = match std::env::var_os("XDG_CONFIG_HOME").filter(|d| !d.is_empty()) {
        Some(dir) => PathBuf::from(dir),
        None => home().join(".config"),
    };
    (dir.join("confluencefs").join("config.toml"), false)
}

/// The loaded file and where it came from.
#[derive(Debug)]
pub(super) struct Config {
    pub path: PathBuf,
    pub file: ConfigFile,
}

impl Config {
    /// Reads the file at [`config_path`]. A default path that does not exist is an empty
    /// configuration; one the user named must exist.
    pub(super) fn load(flag: Option<&Path>) -> anyhow::Result<Config> {
        let (path, named) = config_path(flag);
        let text = match std::fs::read_to_string(&path) {
            Ok(text) => text,
            Err(err) if err.kind() == std::io::ErrorKind::NotFound && !named => {
                return Ok(Config {
                    path,
                    file: ConfigFile::default(),
                })
            }
            Err(err) => return Err(err).with_context(|| format!("cannot read {}", path.display())),
        };
        let file: ConfigFile = toml::from_str(&text)
            .map_err(|err| anyhow::anyhow!("{}: {}", path.display(), one_line_toml(&err)))?;
        for (name, site) in &file.sites {
            let sources = [
                site.token_file.is_some(),
                site.token_command.is_some(),
                site.token.is_some(),
            ];
            if sources.iter().filter(|s| **s).count() > 1 {
                bail!(
                    "{}: site {name:?} gives more than one of token_file, token_command and token",
                    path.display()
                );
            }
            if site.token_command.as_ref().is_some_and(Vec::is_empty) {
                bail!(
                    "{}: site {name:?} has an empty token_command",
                    path.display()
                );
            }
        }
        if file.sites.values().any(|site| site.token.is_some()) {
            refuse_if_open(&path)?;
        }
        Ok(Config { path, file })
    }

    /// The site called `name`.
    pub(super) fn site(&self, name: &str) -> Option<&SiteEntry> {
        self.file.sites.get(name)
    }

    /// The first site whose URL is `url` (as the client would clean both up), for a command
    /// given a URL that the file knows under a name.
    pub(super) fn site_by_url(&self, url: &str) -> Option<(&str, &SiteEntry)> {
        let wanted = site_key(url)?;
        self.file
            .sites
            .iter()
            .find(|(_, site)| site_key(&site.url).as_ref() == Some(&wanted))
            .map(|(name, site)| (name.as_str(), site))
    }

    /// `path` from the file made usable: `~` is the home directory, and a relative path is
    /// relative to the file's directory.
    pub(super) fn resolve_path(&self, path: &str) -> PathBuf {
        let expanded = expand_home(path);
        if expanded.is_absolute() {
            return expanded;
        }
        self.path
            .parent()
            .map_or(expanded.clone(), |dir| dir.join(&expanded))
    }
}

/// What tells two spellings of a site URL apart: scheme, host, port and path without trailing
/// slashes, `/wiki` standing for a bare `*.atlassian.net` host (as the client reads it).
fn site_key(url: &str) -> Option<(String, String, Option<u16>, String)> {
    let url = url::Url::parse(url.trim()).ok()?;
    let host = url.host_str()?.to_ascii_lowercase();
    let mut path = url.path().trim_end_matches('/').to_string();
    if path.is_empty() && host.ends_with(".atlassian.net") {
        path = "/wiki".to_string();
    }
    Some((
        url.scheme().to_string(),
        host,
        url.port_or_known_default(),
        path,
    ))
}

/// A TOML error on one line: toml's own message spans several (a caret under the column).
fn one_line_toml(err: &toml::de::Error) -> String {
    let message = err.message().trim().to_string();
    match err.span() {
        Some(span) => format!("invalid configuration at byte {}: {message}", span.start),
        None => format!("invalid configuration: {message}"),
    }
}

/// Refuses a file that group or others may read, since it holds a token.
fn refuse_if_open(path: &Path) -> anyhow::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(path)
        .with_context(|| format!("cannot read {}", path.display()))?
        .permissions()
        .mode();
    if mode & 0o077 != 0 {
        bail!(
            "{} holds a token and can be read by others (mode {:o}): chmod 600 {0}",
            path.display(),
            mode & 0o777
        );
    }
    Ok(())
}

/// `$HOME`, or `/` when it is not set.
pub(super) fn home() -> PathBuf {
    std::env::var_os("HOME")
        .filter(|h| !h.is_empty())
        .map_or_else(|| PathBuf::from("/"), PathBuf::from)
}

/// `~` and `~/x` with the home directory put in; anything else as it is.
pub(super) fn expand_home(path: &str) -> PathBuf {
    if path == "~" {
        return home();
    }
    match path.strip_prefix("~/") {
        Some(rest) => home().join(rest),
        None => PathBuf::from(path),
    }
}

/// Edits of the file that keep what `site add` and `site remove` do not touch.
pub(super) struct ConfigEdit {
    path: PathBuf,
    document: toml_edit::DocumentMut,
}

impl ConfigEdit {
    /// The file at `path` (or an empty one if it does not exist yet), ready to edit.
    pub(super) fn open(path: &Path) -> anyhow::Result<ConfigEdit> {
        let text = match std::fs::read_to_string(path) {
            Ok(text) => text,
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => String::new(),
            Err(err) => return Err(err).with_context(|| format!("cannot read {}", path.display())),
        };
        let document = text
            .parse::<toml_edit::DocumentMut>()
            .map_err(|err| anyhow::anyhow!("{}: {}", path.display(), err.message()))?;
        Ok(ConfigEdit {
            path: path.to_path_buf(),
            document,
        })
    }

    fn sites(&mut self) -> anyhow::Result<&mut toml_edit::Table> {
        let sites = self
            .document
            .entry("sites")
            .or_insert_with(|| {
                let mut table = toml_edit::Table::new();
                table.set_implicit(true);
                toml_edit::Item::Table(table)
            })
            .as_table_mut();
        sites.with_context(|| format!("{}: `sites` is not a table", self.path.display()))
    }

    /// Whether a site `name` is in the file.
    pub(super) fn has_site(&mut self, name: &str) -> anyhow::Result<bool> {
        Ok(self.sites()?.contains_key(name))
    }

    /// Adds `[sites.NAME]` with `values` (already TOML values), in their order.
    pub(super) fn add_site(
        &mut self,
        name: &str,
        values: Vec<(&str, toml_edit::Value)>,
    ) -> anyhow::Result<()> {
        let mut table = toml_edit::Table::new();
        for (key, value) in values {
            table.insert(key, toml_edit::Item::Value(value));
        }
        self.sites()?.insert(name, toml_edit::Item::Table(table));
        Ok(())
    }

    /// Makes `name` the `default_site`.
    pub(super) fn set_default(&mut self, name: &str) {
        self.document["default_site"] = toml_edit::value(name);
    }

    /// Removes `[sites.NAME]`; false when there was none.
    pub(super) fn remove_site(&mut self, name: &str) -> anyhow::Result<bool> {
        Ok(self.sites()?.remove(name).is_some())
    }

    /// Writes the file: a `0600` temporary file in the same (`0700`, created if need be)
    /// directory, renamed over the old one, so that a crash leaves one or the other.
    pub(super) fn save(&self) -> anyhow::Result<()> {
        use std::io::Write;
        use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
        let dir = self
            .path
            .parent()
            .filter(|d| !d.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        if !dir.exists() {
            std::fs::DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(dir)
                .with_context(|| format!("cannot create {}", dir.display()))?;
        }
        let mut file = tempfile::Builder::new()
            .prefix(".config.toml.")
            .permissions(std::fs::Permissions::from_mode(0o600))
            .tempfile_in(dir)
            .with_context(|| format!("cannot write in {}", dir.display()))?;
        file.write_all(self.document.to_string().as_bytes())?;
        file.as_file().sync_all()?;
        file.persist(&self.path)
            .with_context(|| format!("cannot write {}", self.path.display()))?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn write(dir: &Path, text: &str, mode: u32) -> PathBuf {
        let path = dir.join("config.toml");
        std::fs::write(&path, text).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).unwrap();
        path
    }

    #[test]
    fn sites_and_their_defaults_are_read() {
        let dir = tempfile::tempdir().unwrap();
        let path = write(
            dir.path(),
            r#"
default_site = "work"
[sites.work]
url = "https://example.atlassian.net"
user = "me@example.com"
token_command = ["pass", "show", "confluence"]
cache_size = "2G"
spaces = ["DOCS"]
file_mode = "0640"

[sites.dc]
url = "http://wiki:8090/"
token_file = "tokens/dc"
cache_size = 1024
"#,
            0o644,
        );
        let config = Config::load(Some(&path)).unwrap();
        assert_eq!(config.file.default_site.as_deref(), Some("work"));
        let work = config.site("work").unwrap();
        assert_eq!(work.user.as_deref(), Some("me@example.com"));
        assert_eq!(work.token_command.as_ref().unwrap()[0], "pass");
        let size = work.mount.cache_size.as_ref().unwrap().bytes().unwrap();
        assert_eq!(size, 2 << 30);
        let dc = config.site("dc").unwrap();
        assert_eq!(dc.mount.cache_size.as_ref().unwrap().bytes().unwrap(), 1024);
        assert_eq!(
            config.resolve_path(dc.token_file.as_deref().unwrap()),
            dir.path().join("tokens/dc")
        );
        assert_eq!(config.site_by_url("http://wiki:8090").unwrap().0, "dc");
        assert!(config.site_by_url("http://other").is_none());
        let by_wiki = config.site_by_url("https://EXAMPLE.atlassian.net/wiki/");
        assert_eq!(by_wiki.unwrap().0, "work");
    }

    #[test]
    fn an_open_file_with_an_inline_token_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let text = "[sites.a]\nurl = \"https://a.example\"\ntoken = \"sekrit\"\n";
        let path = write(dir.path(), text, 0o644);
        let err = Config::load(Some(&path)).unwrap_err().to_string();
        assert!(
            err.contains("chmod 600") && err.contains("can be read by others"),
            "{err}"
        );
        assert!(!err.contains("sekrit"), "{err}");
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
        let config = Config::load(Some(&path)).unwrap();
        assert!(!format!("{config:?}").contains("sekrit"));
    }

    #[test]
    fn typos_and_two_token_sources_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = write(
            dir.path(),
            "[sites.a]\nurl = \"x\"\ntokenfile = \"t\"\n",
            0o600,
        );
        let err = Config::load(Some(&path)).unwrap_err().to_string();
        assert!(err.contains("tokenfile") && !err.contains('\n'), "{err}");
        let two = "[sites.a]\nurl = \"x\"\ntoken_file = \"t\"\ntoken_command = [\"c\"]\n";
        let path = write(dir.path(), two, 0o600);
        let err = Config::load(Some(&path)).unwrap_err().to_string();
        assert!(err.contains("more than one"), "{err}");
    }

    #[test]
    fn a_missing_default_file_is_empty_and_a_named_one_an_error() {
        let dir = tempfile::tempdir().unwrap();
        assert!(Config::load(Some(&dir.path().join("none.toml"))).is_err());
    }

    #[test]
    fn edits_keep_comments_and_make_the_file_private() {
        let dir = tempfile::tempdir().unwrap();
        let path = write(
            dir.path(),
            "# my sites\n[sites.old]\nurl = \"https://old.example\" # keep\n",
            0o644,
        );
        let mut edit = ConfigEdit::open(&path).unwrap();
        assert!(edit.has_site("old").unwrap());
        edit.add_site(
            "new",
            vec![("url", "https://new.example".into()), ("user", "me".into())],
        )
        .unwrap();
        edit.save().unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(
            text.contains("# my sites") && text.contains("# keep"),
            "{text}"
        );
        assert!(
            text.contains("[sites.new]\nurl = \"https://new.example\""),
            "{text}"
        );
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        let mut edit = ConfigEdit::open(&path).unwrap();
        assert!(edit.remove_site("old").unwrap());
        assert!(!edit.remove_site("old").unwrap());
        edit.save().unwrap();
        let config = Config::load(Some(&path)).unwrap();
        assert_eq!(config.file.sites.keys().collect::<Vec<_>>(), ["new"]);
    }
}
