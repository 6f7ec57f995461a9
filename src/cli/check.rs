//! `confluencefs check`: the same probe a mount will make first, printed for a human or, with
//! `--json`, as one JSON object whose field names are documented (docs/CONFIGURATION.md,
//! `--json`) and kept stable for scripts.

use serde::Serialize;

use crate::confluence::{Client, ClientConfig, Flavor};

/// `check --json`.
#[derive(Serialize)]
struct CheckReport {
    /// The REST base the client settled on.
    site: String,
    /// `cloud` or `datacenter`.
    flavor: &'static str,
    /// The user's display name (or login).
    user: String,
    /// Cloud account id, when the site has one.
    account_id: Option<String>,
    /// Data Center user name, when the site has one.
    username: Option<String>,
    spaces: Vec<SpaceReport>,
}

#[derive(Serialize)]
struct SpaceReport {
    key: String,
    name: String,
}

pub(super) async fn run(config: ClientConfig, json: bool) -> anyhow::Result<()> {
    let client = Client::connect(config).await?;
    let spaces = client.list_spaces(&[]).await?;
    let user = client.current_user();
    if json {
        let report = CheckReport {
            site: client.base_url().to_string(),
            flavor: flavor_name(client.flavor()),
            user: user.name().to_string(),
            account_id: user.account_id.clone(),
            username: user.username.clone(),
            spaces: spaces
                .iter()
                .map(|s| SpaceReport {
                    key: s.key.clone(),
                    name: s.name.clone(),
                })
                .collect(),
        };
        println!("{}", serde_json::to_string_pretty(&report)?);
        return Ok(());
    }
    let flavor = match client.flavor() {
        Flavor::Cloud => "Confluence Cloud",
        Flavor::DataCenter => "Confluence Data Center",
    };
    println!("site:   {} ({flavor})", client.base_url());
    println!("user:   {}", user.name());
    println!("spaces: {}", spaces.len());
    for space in &spaces {
        println!("  {:<12} {}", space.key, space.name);
    }
    Ok(())
}

/// The flavor as `--json` spells it.
pub(super) fn flavor_name(flavor: Flavor) -> &'static str {
    match flavor {
        Flavor::Cloud => "cloud",
        Flavor::DataCenter => "datacenter",
    }
}
