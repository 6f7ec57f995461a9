//! Listing: spaces, pages, blog posts, attachments, and that every page of a long list is read
//! with the largest page size the server allows.

use confluencefs::confluence::{ContainerRef, ContentKind, Flavor};

use crate::both_flavors;
use crate::support::{page_by_title, write, Server};

both_flavors!(
    spaces_and_home_pages,
    page_tree_and_blog_posts,
    attachments_of_a_page,
    attachment_pagination_uses_the_largest_pages,
    find_attachment_by_filename_is_one_request
);

async fn spaces_and_home_pages(flavor: Flavor) {
    let server = Server::start(flavor);
    let client = server.client().await;
    let spaces = client.list_spaces(&[]).await.unwrap();
    let keys: Vec<&str> = spaces.iter().map(|s| s.key.as_str()).collect();
    assert!(keys.contains(&"DOCS") && keys.contains(&"ENG"), "{keys:?}");

    let only = client.list_spaces(&["ENG"]).await.unwrap();
    assert_eq!(only.len(), 1);
    assert_eq!(only[0].key, "ENG");

    let docs = client.get_space("DOCS").await.unwrap();
    let home_id = docs.homepage_id.clone().expect("a home page id");
    let top = client.list_top_level_pages("DOCS").await.unwrap();
    let home = top
        .iter()
        .find(|p| p.id == home_id)
        .expect("home page is top-level");
    assert_eq!(home.title, "DOCS Home");
    assert_eq!(home.kind, ContentKind::Page);
    assert!(home.version >= 1);

    let missing = client.get_space("NOPE").await.unwrap_err();
    assert_eq!(missing.status(), Some(404), "{missing:?}");
}

async fn page_tree_and_blog_posts(flavor: Flavor) {
    let server = Server::start(flavor);
    let client = server.client().await;
    let home = page_by_title(&client, "DOCS", "DOCS Home").await;
    let children = client.list_child_pages(&home.id).await.unwrap();
    let mut titles: Vec<&str> = children.iter().map(|p| p.title.as_str()).collect();
    titles.sort();
    assert_eq!(titles, ["Guide", "Reference"]);
    assert!(children
        .iter()
        .all(|p| p.parent_id.as_deref() == Some(&*home.id)));

    let guide = children.iter().find(|p| p.title == "Guide").unwrap();
    let grandchildren = client.list_child_pages(&guide.id).await.unwrap();
    assert_eq!(grandchildren.len(), 1);
    assert_eq!(grandchildren[0].title, "Chapter One");

    let posts = client.list_blog_posts("DOCS").await.unwrap();
    assert_eq!(posts.len(), 1, "{posts:?}");
    assert_eq!(posts[0].title, "Launch Notes");
    assert_eq!(posts[0].kind, ContentKind::BlogPost);
    // Blog posts hold attachments too.
    let files = client
        .list_attachments(&posts[0].container())
        .await
        .unwrap();
    assert_eq!(files.len(), 1);
    assert_eq!(files[0].title, "launch.txt");
    assert_eq!(
        files[0].container,
        ContainerRef::blog_post(posts[0].id.clone())
    );

    let page = client.get_page(&guide.id).await.unwrap();
    assert_eq!(page.title, "Guide");
    assert_eq!(page.space_key.as_deref(), Some("DOCS"));
}

async fn attachments_of_a_page(flavor: Flavor) {
    let server = Server::start(flavor);
    let client = server.client().await;
    let guide = page_by_title(&client, "DOCS", "Guide").await;
    let mut files = client.list_attachments(&guide.container()).await.unwrap();
    files.sort_by(|a, b| a.title.cmp(&b.title));
    let names: Vec<&str> = files.iter().map(|a| a.title.as_str()).collect();
    assert_eq!(names, ["data.bin", "notes.txt"]);
    let notes = &files[1];
    assert_eq!(notes.size, b"hello notes\n".len() as u64);
    assert_eq!(notes.version, 1);
    assert_eq!(notes.container, guide.container());
    assert!(notes.modified > std::time::UNIX_EPOCH);
    assert!(notes
        .web_url
        .as_deref()
        .is_some_and(|u| u.starts_with("http")));
    if flavor == Flavor::Cloud {
        assert!(notes.id.starts_with("att"), "{}", notes.id);
    }

    let again = client.get_attachment(&notes.id).await.unwrap();
    assert_eq!(again.title, "notes.txt");
    assert_eq!(again.size, notes.size);
    assert_eq!(again.container, guide.container());
}

const MANY: usize = 600;

async fn attachment_pagination_uses_the_largest_pages(flavor: Flavor) {
    let server = Server::start_seeded(flavor, |root| {
        for i in 0..MANY {
            write(
                root,
                &format!("BIG/Many/file-{i:04}.txt"),
                format!("{i}\n").as_bytes(),
            );
        }
    });
    let client = server.client().await;
    let many = page_by_title(&client, "BIG", "Many").await;
    server.clear_requests().await;
    let files = client.list_attachments(&many.container()).await.unwrap();
    assert_eq!(files.len(), MANY);
    let mut names: Vec<&str> = files.iter().map(|a| a.title.as_str()).collect();
    names.sort();
    names.dedup();
    assert_eq!(names.len(), MANY, "every attachment exactly once");

    let log = server.requests().await;
    let lists: Vec<_> = log
        .iter()
        .filter(|r| r.method == "GET" && r.path.contains("attachment"))
        .collect();
    // v1 on both flavors, so that the `confluencefs` property (modes, times) comes along.
    let _ = flavor;
    assert_eq!(lists.len(), MANY.div_ceil(200), "{lists:#?}");
    assert!(lists.iter().all(|r| r.path.contains("/child/attachment")
        && r.query.contains("metadata.properties.confluencefs")
        && r.status == 200));
    assert_eq!(
        log.len(),
        lists.len(),
        "nothing else was requested: {log:#?}"
    );
}

async fn find_attachment_by_filename_is_one_request(flavor: Flavor) {
    let server = Server::start(flavor);
    let client = server.client().await;
    let guide = page_by_title(&client, "DOCS", "Guide").await;
    server.clear_requests().await;
    let found = client
        .find_attachment(&guide.container(), "notes.txt")
        .await
        .unwrap()
        .expect("notes.txt is there");
    assert_eq!(found.title, "notes.txt");
    let missing = client
        .find_attachment(&guide.container(), "absent.txt")
        .await
        .unwrap();
    assert!(missing.is_none());
    let log = server.requests().await;
    assert_eq!(log.len(), 2, "{log:#?}");
    assert!(
        log.iter().all(|r| r.query.contains("filename=")),
        "{log:#?}"
    );
}

both_flavors!(server_cap_on_page_size_is_honoured);

/// A server that caps v1 pages below what we ask (50 < 200) is followed page by page through
/// its `next` links: nothing is skipped, nothing is read twice.
async fn server_cap_on_page_size_is_honoured(flavor: Flavor) {
    let seed = tempfile::tempdir().unwrap();
    for i in 0..120 {
        write(seed.path(), &format!("CAP/Parent/Child {i:03}/f.txt"), b"x");
    }
    for i in 0..130 {
        write(seed.path(), &format!("CAP/Files/f{i:03}.txt"), b"x");
    }
    let config = confluence_testserver::Config {
        flavor: crate::support::server_flavor(flavor),
        seed_dir: Some(seed.path().to_path_buf()),
        v1_limit_cap: 50,
        ..Default::default()
    };
    let server = Server::start_with(flavor, config, vec![seed]);
    let client = server.client().await;
    let parent = page_by_title(&client, "CAP", "Parent").await;
    let files = page_by_title(&client, "CAP", "Files").await;

    server.clear_requests().await;
    let children = client.list_child_pages(&parent.id).await.unwrap();
    let mut titles: Vec<&str> = children.iter().map(|p| p.title.as_str()).collect();
    titles.sort();
    titles.dedup();
    assert_eq!(titles.len(), 120);
    assert_eq!(server.requests().await.len(), 3, "⌈120/50⌉ pages");

    server.clear_requests().await;
    let attachments = client.list_attachments(&files.container()).await.unwrap();
    assert_eq!(attachments.len(), 130);
    // v1 on both flavors: ⌈130/50⌉.
    assert_eq!(server.requests().await.len(), 3);

    // CQL search pages under the same cap.
    server.clear_requests().await;
    let hits = client
        .search(&format!("parent={}", parent.id))
        .await
        .unwrap();
    let mut ids: Vec<String> = hits
        .iter()
        .map(|h| match h {
            confluencefs::confluence::SearchHit::Page(p) => p.id.clone(),
            other => panic!("expected pages, got {other:?}"),
        })
        .collect();
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), 120);
    let log = server.requests().await;
    assert_eq!(log.len(), 3, "{log:#?}");
    // Cloud pages search by cursor, Data Center by `start`; the client follows `_links.next`.
    let next_by = match flavor {
        Flavor::Cloud => "cursor=",
        Flavor::DataCenter => "start=",
    };
    assert!(
        log[1..].iter().all(|r| r.query.contains(next_by)),
        "{log:#?}"
    );
}
