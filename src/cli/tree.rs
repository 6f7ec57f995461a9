//! `confluencefs tree`: walks spaces, pages, blog posts and attachments and prints them as the
//! filesystem lays them out (pages as directories, attachments as files, blog posts under
//! `@blog`). It is a whole-site crawl, one listing request per page, so it is meant for small
//! sites and for seeing what the client sees; the mount lists lazily instead.

use std::future::Future;
use std::pin::Pin;

use crate::confluence::{Client, ClientConfig, Page};

pub(super) async fn run(config: ClientConfig, only: &[String]) -> anyhow::Result<()> {
    let client = Client::connect(config).await?;
    let keys: Vec<&str> = only.iter().map(String::as_str).collect();
    let spaces = client.list_spaces(&keys).await?;
    if let Some(missing) = only
        .iter()
        .find(|key| !spaces.iter().any(|space| &space.key == *key))
    {
        anyhow::bail!("no space with key {missing} (or it is not visible to this user)");
    }
    for space in spaces {
        println!("{}/", space.key);
        for page in client.list_top_level_pages(&space.key).await? {
            print_page(&client, &page, 1).await?;
        }
        let posts = client.list_blog_posts(&space.key).await?;
        if !posts.is_empty() {
            println!("  @blog/");
            for post in posts {
                print_page(&client, &post, 2).await?;
            }
        }
    }
    Ok(())
}

fn print_page<'a>(
    client: &'a Client,
    page: &'a Page,
    depth: usize,
) -> Pin<Box<dyn Future<Output = anyhow::Result<()>> + 'a>> {
    Box::pin(async move {
        let indent = "  ".repeat(depth);
        println!("{indent}{}/", page.title);
        for attachment in client.list_attachments(&page.container()).await? {
            println!(
                "{indent}  {}  ({} bytes, v{})",
                attachment.title, attachment.size, attachment.version
            );
        }
        if page.kind == crate::confluence::ContentKind::Page {
            for child in client.list_child_pages(&page.id).await? {
                print_page(client, &child, depth + 1).await?;
            }
        }
        Ok(())
    })
}
