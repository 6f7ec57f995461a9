//! `confluencefs tree`: walks spaces, pages, blog posts and attachments and prints them as the
//! filesystem lays them out (pages as directories, attachments as files, blog posts under
//! `@blog`), or as one JSON document with `--json`. It is a whole-site crawl, one listing
//! request per page, so it is meant for small sites and for seeing what the client sees; the
//! mount lists lazily instead. The walk builds the tree first and prints it after, so that the
//! text and the JSON are two views of one value.

use std::future::Future;
use std::pin::Pin;

use serde::Serialize;

use crate::confluence::{Client, ClientConfig, ContentKind, Page};

/// `tree --json`: the spaces.
#[derive(Serialize)]
struct TreeReport {
    spaces: Vec<SpaceNode>,
}

#[derive(Serialize)]
struct SpaceNode {
    key: String,
    name: String,
    /// Top-level pages.
    pages: Vec<PageNode>,
    /// Blog posts (the `@blog` directory).
    blog: Vec<PageNode>,
}

#[derive(Serialize)]
struct PageNode {
    id: String,
    title: String,
    /// Bytes of the page's body in the storage format (its `<name>.md` is shown when not 0).
    text_bytes: u64,
    attachments: Vec<AttachmentNode>,
    /// Child pages (always empty for blog posts).
    children: Vec<PageNode>,
}

#[derive(Serialize)]
struct AttachmentNode {
    id: String,
    title: String,
    size: u64,
    version: u64,
    media_type: String,
}

pub(super) async fn run(config: ClientConfig, only: &[String], json: bool) -> anyhow::Result<()> {
    let client = Client::connect(config).await?;
    let keys: Vec<&str> = only.iter().map(String::as_str).collect();
    let spaces = client.list_spaces(&keys).await?;
    if let Some(missing) = only
        .iter()
        .find(|key| !spaces.iter().any(|space| &space.key == *key))
    {
        anyhow::bail!("no space with key {missing} (or it is not visible to this user)");
    }
    let mut report = TreeReport { spaces: Vec::new() };
    for space in spaces {
        let mut pages = Vec::new();
        for page in client.list_top_level_pages(&space.key).await? {
            pages.push(walk(&client, page).await?);
        }
        let mut blog = Vec::new();
        for post in client.list_blog_posts(&space.key).await? {
            blog.push(walk(&client, post).await?);
        }
        report.spaces.push(SpaceNode {
            key: space.key,
            name: space.name,
            pages,
            blog,
        });
    }
    if json {
        println!("{}", serde_json::to_string_pretty(&report)?);
        return Ok(());
    }
    for space in &report.spaces {
        println!("{}/", space.key);
        for page in &space.pages {
            print_page(page, 1);
        }
        if !space.blog.is_empty() {
            println!("  @blog/");
            for post in &space.blog {
                print_page(post, 2);
            }
        }
    }
    Ok(())
}

fn walk(
    client: &Client,
    page: Page,
) -> Pin<Box<dyn Future<Output = anyhow::Result<PageNode>> + '_>> {
    Box::pin(async move {
        let attachments = client
            .list_attachments(&page.container())
            .await?
            .into_iter()
            .map(|a| AttachmentNode {
                id: a.id,
                title: a.title,
                size: a.size,
                version: a.version,
                media_type: a.media_type,
            })
            .collect();
        let mut children = Vec::new();
        if page.kind == ContentKind::Page {
            for child in client.list_child_pages(&page.id).await? {
                children.push(walk(client, child).await?);
            }
        }
        Ok(PageNode {
            text_bytes: page.body.as_deref().map_or(0, |b| b.trim().len() as u64),
            id: page.id,
            title: page.title,
            attachments,
            children,
        })
    })
}

fn print_page(page: &PageNode, depth: usize) {
    let indent = "  ".repeat(depth);
    println!("{indent}{}/", page.title);
    if page.text_bytes > 0 {
        println!(
            "{indent}  {}.md  (page text, {} bytes stored)",
            page.title, page.text_bytes
        );
    }
    for attachment in &page.attachments {
        println!(
            "{indent}  {}  ({} bytes, v{})",
            attachment.title, attachment.size, attachment.version
        );
    }
    for child in &page.children {
        print_page(child, depth + 1);
    }
}
