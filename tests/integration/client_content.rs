//! Pages (create, rename, move, trash, purge), content properties and CQL search.

use serde_json::json;

use confluencefs::confluence::{ClientError, ContentKind, Flavor, NewAttachment, SearchHit};

use crate::both_flavors;
use crate::support::{page_by_title, Server, TOKEN, USER};

both_flavors!(
    create_rename_move_page,
    trash_then_purge,
    properties_create_update_conflict_delete,
    cql_search_finds_pages_and_attachments
);

async fn create_rename_move_page(flavor: Flavor) {
    let server = Server::start(flavor);
    let client = server.client().await;
    let guide = page_by_title(&client, "DOCS", "Guide").await;
    let reference = page_by_title(&client, "DOCS", "Reference").await;

    let created = client
        .create_page("DOCS", ContentKind::Page, Some(&guide.id), "Neue Seite ✓")
        .await
        .unwrap();
    assert_eq!(created.title, "Neue Seite ✓");
    assert_eq!(created.kind, ContentKind::Page);
    let children = client.list_child_pages(&guide.id).await.unwrap();
    assert!(children.iter().any(|p| p.id == created.id));

    let duplicate = client
        .create_page("DOCS", ContentKind::Page, Some(&guide.id), "Neue Seite ✓")
        .await
        .unwrap_err();
    assert!(
        matches!(duplicate, ClientError::AlreadyExists { .. }),
        "got {duplicate:?}"
    );

    let renamed = client
        .move_page(&created.id, Some("Renamed Page"), None)
        .await
        .unwrap();
    assert_eq!(renamed.title, "Renamed Page");
    assert_eq!(renamed.version, created.version + 1);

    let moved = client
        .move_page(&created.id, None, Some(&reference.id))
        .await
        .unwrap();
    assert_eq!(moved.title, "Renamed Page");
    let under_reference = client.list_child_pages(&reference.id).await.unwrap();
    assert!(under_reference.iter().any(|p| p.id == created.id));
    let under_guide = client.list_child_pages(&guide.id).await.unwrap();
    assert!(!under_guide.iter().any(|p| p.id == created.id));

    let post = client
        .create_page("DOCS", ContentKind::BlogPost, None, "Fresh Post")
        .await
        .unwrap();
    assert_eq!(post.kind, ContentKind::BlogPost);
    let posts = client.list_blog_posts("DOCS").await.unwrap();
    assert!(posts.iter().any(|p| p.id == post.id));
}

async fn trash_then_purge(flavor: Flavor) {
    let server = Server::start(flavor);
    let client = server.client().await;
    let guide = page_by_title(&client, "DOCS", "Guide").await;
    let page = client
        .create_page("DOCS", ContentKind::Page, Some(&guide.id), "Doomed")
        .await
        .unwrap();
    client.trash_content(&page.id).await.unwrap();
    let children = client.list_child_pages(&guide.id).await.unwrap();
    assert!(
        !children.iter().any(|p| p.id == page.id),
        "trashed pages are not listed"
    );
    client.purge_content(&page.id).await.unwrap();
    let gone = client.get_page(&page.id).await.unwrap_err();
    assert!(matches!(gone, ClientError::NotFound { .. }), "got {gone:?}");

    // Attachments go the same way.
    let att = client
        .upload_attachment(
            &guide.container(),
            NewAttachment::from_bytes("tmp.txt", "t"),
            true,
        )
        .await
        .unwrap();
    client.trash_content(&att.id).await.unwrap();
    assert!(client
        .find_attachment(&guide.container(), "tmp.txt")
        .await
        .unwrap()
        .is_none());
    client.purge_content(&att.id).await.unwrap();
    let error = client.purge_content(&att.id).await.unwrap_err();
    assert_eq!(error.status(), Some(404), "{error:?}");
}

async fn properties_create_update_conflict_delete(flavor: Flavor) {
    let server = Server::start(flavor);
    let client = server.client().await;
    let guide = page_by_title(&client, "DOCS", "Guide").await;
    let notes = client
        .find_attachment(&guide.container(), "notes.txt")
        .await
        .unwrap()
        .unwrap();
    for id in [guide.id.as_str(), notes.id.as_str()] {
        assert!(client.get_property(id, "color").await.unwrap().is_none());
        let created = client
            .set_property(id, "color", json!({"name": "grün", "rgb": [0, 255, 0]}))
            .await
            .unwrap();
        assert_eq!(created.version, 1);
        let updated = client
            .set_property(id, "color", json!("blue"))
            .await
            .unwrap();
        assert_eq!(updated.version, 2);
        let read = client.get_property(id, "color").await.unwrap().unwrap();
        assert_eq!(read.value, json!("blue"));
        assert_eq!(read.version, 2);

        // Someone else writes version 3 behind our back; a stale PUT is refused by the server…
        let url = format!("{}/rest/api/content/{id}/property/color", server.base_url());
        let http = reqwest::Client::new();
        let put = |n: u64| {
            http.put(&url)
                .basic_auth(USER, Some(TOKEN))
                .json(&json!({"key": "color", "value": n, "version": {"number": n}}))
                .send()
        };
        assert_eq!(put(3).await.unwrap().status(), 200);
        assert_eq!(put(3).await.unwrap().status(), 409, "stale version refused");
        // …while the client reads the current version first and lands version 4.
        let after = client.set_property(id, "color", json!(true)).await.unwrap();
        assert_eq!(after.version, 4);

        client.set_property(id, "size", json!(42)).await.unwrap();
        let mut keys: Vec<String> = client
            .list_properties(id)
            .await
            .unwrap()
            .into_iter()
            .map(|p| p.key)
            .collect();
        keys.sort();
        assert_eq!(keys, ["color", "size"]);

        client.delete_property(id, "color").await.unwrap();
        assert!(client.get_property(id, "color").await.unwrap().is_none());
        let error = client.delete_property(id, "color").await.unwrap_err();
        assert!(
            matches!(error, ClientError::NotFound { .. }),
            "got {error:?}"
        );
    }
}

async fn cql_search_finds_pages_and_attachments(flavor: Flavor) {
    let server = Server::start(flavor);
    let client = server.client().await;
    let hits = client
        .search("type=page AND title=\"Guide\"")
        .await
        .unwrap();
    assert_eq!(hits.len(), 1, "{hits:?}");
    let guide = match &hits[0] {
        SearchHit::Page(page) => page.clone(),
        other => panic!("expected a page, got {other:?}"),
    };
    assert_eq!(guide.title, "Guide");

    let hits = client
        .search(&format!("type=attachment AND container={}", guide.id))
        .await
        .unwrap();
    let mut names: Vec<String> = hits
        .iter()
        .map(|h| match h {
            SearchHit::Attachment(a) => a.title.clone(),
            other => panic!("expected an attachment, got {other:?}"),
        })
        .collect();
    names.sort();
    assert_eq!(names, ["data.bin", "notes.txt"]);

    let none = client
        .search("type=page AND title=\"No Such Page\"")
        .await
        .unwrap();
    assert!(none.is_empty());
}

both_flavors!(lost_create_answer_is_not_repeated);

async fn lost_create_answer_is_not_repeated(flavor: Flavor) {
    let server = Server::start(flavor);
    let client = server.client().await;
    let guide = page_by_title(&client, "DOCS", "Guide").await;

    // The server creates the page, then the connection dies inside its answer.
    server.clear_requests().await;
    server.faults(json!({"reset_next": 1})).await;
    let page = client
        .create_page("DOCS", ContentKind::Page, Some(&guide.id), "Made Once")
        .await
        .unwrap();
    assert_eq!(page.title, "Made Once");
    let log = server.requests().await;
    assert_eq!(
        log.iter().filter(|r| r.method == "POST").count(),
        1,
        "{log:#?}"
    );
    assert!(
        log.iter()
            .any(|r| r.method == "GET" && r.query.contains("title=Made")),
        "it looked for the page instead: {log:#?}"
    );
    let children = client.list_child_pages(&guide.id).await.unwrap();
    assert_eq!(
        children.iter().filter(|p| p.title == "Made Once").count(),
        1
    );
}
