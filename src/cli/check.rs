//! `confluencefs check`: the same probe a mount will make first, printed for a human.

use crate::confluence::{Client, ClientConfig, Flavor};

pub(super) async fn run(config: ClientConfig) -> anyhow::Result<()> {
    let client = Client::connect(config).await?;
    let flavor = match client.flavor() {
        Flavor::Cloud => "Confluence Cloud",
        Flavor::DataCenter => "Confluence Data Center",
    };
    println!("site:   {} ({flavor})", client.base_url());
    println!("user:   {}", client.current_user().name());
    let spaces = client.list_spaces(&[]).await?;
    println!("spaces: {}", spaces.len());
    for space in &spaces {
        println!("  {:<12} {}", space.key, space.name);
    }
    Ok(())
}
