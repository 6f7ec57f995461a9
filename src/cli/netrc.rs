//! `~/.netrc` (or `$NETRC`), read as curl reads it, for the credentials of a site when nothing
//! else gave them.
//!
//! The format is a stream of whitespace-separated words (`machine HOST login USER password
//! TOKEN`, `default`, `account`, `macdef NAME` followed by lines up to a blank one), with `#`
//! comments and, as in curl 7.84 and later, double-quoted words with `\"`, `\\`, `\n`, `\r` and
//! `\t` escapes. It is small enough that a parser of our own costs less than a dependency, and
//! it can then follow curl's choice exactly: with a user known, the entry for the host with
//! that login; without one, the first entry for the host; `default` only when no `machine`
//! entry matched.

use std::path::{Path, PathBuf};

/// One `machine` (or `default`) entry.
#[derive(Clone, PartialEq, Eq)]
pub(super) struct NetrcEntry {
    /// `None` for `default`.
    pub machine: Option<String>,
    pub login: Option<String>,
    pub password: Option<String>,
}

impl std::fmt::Debug for NetrcEntry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NetrcEntry")
            .field("machine", &self.machine)
            .field("login", &self.login)
            .field("password", &self.password.as_ref().map(|_| "***"))
            .finish()
    }
}

/// Where the netrc file is: `$NETRC`, else `~/.netrc`.
pub(super) fn netrc_path() -> PathBuf {
    match std::env::var_os("NETRC").filter(|p| !p.is_empty()) {
        Some(path) => PathBuf::from(path),
        None => super::config_file::home().join(".netrc"),
    }
}

/// The entry curl would use for `host` (and `user`, when known), if the file has one with a
/// password. A missing or unreadable file has none.
pub(super) fn lookup(path: &Path, host: &str, user: Option<&str>) -> Option<NetrcEntry> {
    let text = std::fs::read_to_string(path).ok()?;
    find(&parse(&text), host, user)
}

fn find(entries: &[NetrcEntry], host: &str, user: Option<&str>) -> Option<NetrcEntry> {
    let fits = |entry: &&NetrcEntry| {
        entry.password.is_some()
            && user.map_or(true, |user| {
                entry.login.as_deref().map_or(true, |login| login == user)
            })
    };
    entries
        .iter()
        .filter(|e| {
            e.machine
                .as_deref()
                .is_some_and(|m| m.eq_ignore_ascii_case(host))
        })
        .find(fits)
        .or_else(|| entries.iter().filter(|e| e.machine.is_none()).find(fits))
        .cloned()
}

/// Every entry of `text`, in order.
pub(super) fn parse(text: &str) -> Vec<NetrcEntry> {
    let mut words = Words { rest: text };
    let mut entries: Vec<NetrcEntry> = Vec::new();
    while let Some(word) = words.next() {
        match word.as_str() {
            "machine" => entries.push(NetrcEntry {
                machine: Some(words.next().unwrap_or_default()),
                login: None,
                password: None,
            }),
            "default" => entries.push(NetrcEntry {
                machine: None,
                login: None,
                password: None,
            }),
            "login" | "password" | "account" => {
                let value = words.next();
                if let (Some(entry), Some(value)) = (entries.last_mut(), value) {
                    match word.as_str() {
                        "login" => entry.login = Some(value),
                        "password" => entry.password = Some(value),
                        _ => {}
                    }
                }
            }
            "macdef" => {
                words.next();
                words.skip_macro();
            }
            _ => {} // unknown words are skipped, as curl does
        }
    }
    entries
}

/// The words of a netrc file, comments left out and quotes undone.
struct Words<'a> {
    rest: &'a str,
}

impl Words<'_> {
    fn next(&mut self) -> Option<String> {
        loop {
            self.rest = self.rest.trim_start();
            if self.rest.starts_with('#') {
                self.rest = self.rest.find('\n').map_or("", |i| &self.rest[i..]);
                continue;
            }
            break;
        }
        if self.rest.is_empty() {
            return None;
        }
        if let Some(quoted) = self.rest.strip_prefix('"') {
            let mut word = String::new();
            let mut chars = quoted.char_indices();
            while let Some((i, c)) = chars.next() {
                match c {
                    '"' => {
                        self.rest = &quoted[i + 1..];
                        return Some(word);
                    }
                    '\\' => match chars.next() {
                        Some((_, 'n')) => word.push('\n'),
                        Some((_, 'r')) => word.push('\r'),
                        Some((_, 't')) => word.push('\t'),
                        Some((_, other)) => word.push(other),
                        None => {}
                    },
                    other => word.push(other),
                }
            }
            self.rest = "";
            return Some(word);
        }
        let end = self
            .rest
            .find(char::is_whitespace)
            .unwrap_or(self.rest.len());
        let word = self.rest[..end].to_string();
        self.rest = &self.rest[end..];
        Some(word)
    }

    /// A macro's body runs to the first empty line.
    fn skip_macro(&mut self) {
        self.rest = match self.rest.find("\n\n") {
            Some(i) => &self.rest[i + 2..],
            None => "",
        };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const FILE: &str = r#"
# work wiki
machine wiki.example.com login ann password "two words \"quoted\""
machine wiki.example.com
    login bob
    password b0b   # a comment after a word
macdef init
cd /pub
get x

machine other.example login carol password c4rol account acct
default login anon password anon-pass
"#;

    #[test]
    fn the_first_entry_for_the_host_without_a_user() {
        let entries = parse(FILE);
        assert_eq!(entries.len(), 4, "{entries:?}");
        let found = find(&entries, "WIKI.example.com", None).unwrap();
        assert_eq!(found.login.as_deref(), Some("ann"));
        assert_eq!(found.password.as_deref(), Some("two words \"quoted\""));
    }

    #[test]
    fn the_entry_with_the_login_when_the_user_is_known() {
        let entries = parse(FILE);
        let found = find(&entries, "wiki.example.com", Some("bob")).unwrap();
        assert_eq!(found.password.as_deref(), Some("b0b"));
        let other = find(&entries, "other.example", None).unwrap();
        assert_eq!(other.password.as_deref(), Some("c4rol"));
    }

    #[test]
    fn default_only_when_no_machine_matches() {
        let entries = parse(FILE);
        let found = find(&entries, "elsewhere.example", None).unwrap();
        assert_eq!(found.machine, None);
        assert_eq!(found.login.as_deref(), Some("anon"));
        // A known user that no machine entry has falls to `default`, whose login differs: none.
        assert!(find(&entries, "wiki.example.com", Some("zed")).is_none());
        assert!(
            find(&parse("machine a login b"), "a", None).is_none(),
            "no password"
        );
    }

    #[test]
    fn debug_hides_the_password() {
        let shown = format!("{:?}", parse(FILE));
        assert!(!shown.contains("b0b") && shown.contains("bob"), "{shown}");
    }
}
