//! Who we are to Confluence, and how that is kept out of sight.
//!
//! A token comes from the environment or from a file, never from the command line (where `ps`
//! shows it to every user). `Debug` prints `***` in its place, and the value reaches reqwest only
//! as a header marked sensitive, so neither a log line nor an error message can contain it.

use std::fmt;
use std::path::Path;

use super::client_error::ClientError;

/// A secret string whose `Debug` and `Display` never show the value.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// Wraps `value`.
    pub fn new(value: impl Into<String>) -> Secret {
        Secret(value.into())
    }

    /// The value itself, for the one place that puts it on the wire.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

/// How requests prove who sends them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Credentials {
    /// Cloud: account email + API token. Data Center: username + password.
    Basic {
        /// The account's e-mail address (Cloud) or user name (Data Center).
        user: String,
        /// The API token (Cloud) or password (Data Center).
        token: Secret,
    },
    /// Data Center personal access token.
    Bearer {
        /// The token itself.
        token: Secret,
    },
}

impl Credentials {
    /// Basic authentication with `user` and `token` (an API token on Cloud, a password on Data
    /// Center).
    pub fn basic(user: impl Into<String>, token: impl Into<String>) -> Credentials {
        Credentials::Basic {
            user: user.into(),
            token: Secret::new(token),
        }
    }

    /// A Data Center personal access token, sent as `Authorization: Bearer`.
    pub fn bearer(token: impl Into<String>) -> Credentials {
        Credentials::Bearer {
            token: Secret::new(token),
        }
    }

    /// `CONFLUENCE_TOKEN`, with `CONFLUENCE_USER` for Basic auth; without a user, the token is a
    /// Data Center personal access token (Bearer).
    pub fn from_env() -> Result<Credentials, ClientError> {
        let token = non_empty_var("CONFLUENCE_TOKEN").ok_or_else(|| {
            ClientError::Config("CONFLUENCE_TOKEN is not set (or is empty)".into())
        })?;
        Ok(match non_empty_var("CONFLUENCE_USER") {
            Some(user) => Credentials::basic(user, token),
            None => Credentials::bearer(token),
        })
    }

    /// The first line of `path`, trimmed, as the token; with `user` it is Basic auth, without it
    /// Bearer. A file that group or others may read is accepted with a warning, like a key file
    /// that `ssh` would frown at: refusing it would lock out setups that already work.
    pub fn from_token_file(
        user: Option<String>,
        path: impl AsRef<Path>,
    ) -> Result<Credentials, ClientError> {
        let path = path.as_ref();
        let io_error = |source| ClientError::Io {
            path: path.display().to_string(),
            source,
        };
        let text = std::fs::read_to_string(path).map_err(io_error)?;
        warn_if_readable_by_others(path);
        let token = text.lines().next().unwrap_or("").trim().to_string();
        if token.is_empty() {
            return Err(ClientError::Config(format!(
                "token file {} is empty",
                path.display()
            )));
        }
        Ok(match user {
            Some(user) => Credentials::basic(user, token),
            None => Credentials::bearer(token),
        })
    }

    /// Names the identity in messages ("demo@example.com", "a personal access token").
    pub fn who(&self) -> String {
        match self {
            Credentials::Basic { user, .. } => user.clone(),
            Credentials::Bearer { .. } => "a personal access token".to_string(),
        }
    }

    pub(crate) fn apply(&self, request: reqwest::RequestBuilder) -> reqwest::RequestBuilder {
        match self {
            Credentials::Basic { user, token } => request.basic_auth(user, Some(token.expose())),
            Credentials::Bearer { token } => request.bearer_auth(token.expose()),
        }
    }
}

fn non_empty_var(name: &str) -> Option<String> {
    std::env::var(name)
        .ok()
        .map(|v| v.trim().to_string())
        .filter(|v| !v.is_empty())
}

#[cfg(unix)]
fn warn_if_readable_by_others(path: &Path) {
    use std::os::unix::fs::PermissionsExt;
    if let Ok(meta) = std::fs::metadata(path) {
        let mode = meta.permissions().mode();
        if mode & 0o077 != 0 {
            tracing::warn!(
                path = %path.display(),
                mode = format!("{:o}", mode & 0o777),
                "the token file can be read by group or others; chmod 600 it"
            );
        }
    }
}

#[cfg(not(unix))]
fn warn_if_readable_by_others(_path: &Path) {}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    #[test]
    fn debug_hides_the_token() {
        let basic = Credentials::basic("ann@example.com", "s3cret-token");
        let bearer = Credentials::bearer("pat-value");
        let shown = format!("{basic:?} {bearer:?}");
        assert!(!shown.contains("s3cret"), "{shown}");
        assert!(!shown.contains("pat-value"), "{shown}");
        assert!(shown.contains("***") && shown.contains("ann@example.com"));
    }

    #[test]
    fn token_file_takes_first_trimmed_line() {
        let mut file = tempfile::NamedTempFile::new().unwrap();
        writeln!(file, "  tok-123  \nsecond line").unwrap();
        let creds = Credentials::from_token_file(Some("u".into()), file.path()).unwrap();
        assert_eq!(creds, Credentials::basic("u", "tok-123"));
        let creds = Credentials::from_token_file(None, file.path()).unwrap();
        assert_eq!(creds, Credentials::bearer("tok-123"));
    }

    #[test]
    fn empty_token_file_is_refused() {
        let file = tempfile::NamedTempFile::new().unwrap();
        let err = Credentials::from_token_file(None, file.path()).unwrap_err();
        assert!(matches!(err, ClientError::Config(_)));
    }
}
