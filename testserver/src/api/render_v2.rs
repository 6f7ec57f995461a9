//! v2 JSON (Cloud only), following the `SpaceBulk`, `PageBulk`, `BlogPostBulk`,
//! `AttachmentBulk`, `ChildPage`, `ContentProperty` and `Version` schemas of the v2 OpenAPI
//! document and the real capture in `examples/`. All ids are strings; all times are UTC `Z`;
//! an attachment's `createdAt` is its current version's time.

use serde_json::{json, Value};

use super::render::{self, author_id};
use super::App;
use crate::clock::format_v2;
use crate::model::{Content, ContentKind, Property, Space, Version};
use crate::store::Store;

pub(crate) fn version(app: &App, v: &Version) -> Value {
    json!({
        "createdAt": format_v2(v.when_ms),
        "message": v.message,
        "number": v.number,
        "minorEdit": v.minor_edit,
        "authorId": author_id(app),
    })
}

pub(crate) fn space(app: &App, s: &Space) -> Value {
    json!({
        "id": s.id.to_string(),
        "key": s.key,
        "name": s.name,
        "type": "global",
        "status": "current",
        "authorId": author_id(app),
        "createdAt": format_v2(s.created_ms),
        "homepageId": s.homepage.to_string(),
        "_links": {"webui": format!("/spaces/{}", s.key)},
    })
}

fn space_id(store: &Store, c: &Content) -> String {
    store
        .space(&c.space_key)
        .map(|s| s.id.to_string())
        .unwrap_or_default()
}

/// A page or blog post; `body_format` (`storage`, …) embeds the body as v2 does on request.
pub(crate) fn page(app: &App, store: &Store, c: &Content, body_format: Option<&str>) -> Value {
    page_at(app, store, c, c.current(), body_format)
}

/// The body formats v2 accepts: every one on a single page or blog post
/// (`PrimaryBodyRepresentationSingle`), only `storage` and `atlas_doc_format` in listings
/// (`PrimaryBodyRepresentation`) [spec V2].
pub(crate) fn body_format_ok(format: &str, single: bool) -> bool {
    match format {
        "storage" | "atlas_doc_format" => true,
        "view" | "export_view" | "anonymous_export_view" | "styled_view" | "editor" => single,
        _ => false,
    }
}

/// A page or blog post as it was at version `v` (title, body, version; `status` is
/// `historical` for an old version).
pub(crate) fn page_at(
    app: &App,
    store: &Store,
    c: &Content,
    v: &Version,
    body_format: Option<&str>,
) -> Value {
    let stored = v.body.as_deref().unwrap_or(&c.body);
    let body = match body_format {
        Some(f) if body_format_ok(f, true) => {
            json!({ f: {"representation": f, "value": super::body::represent(app, store, c, stored, f)} })
        }
        _ => json!({}),
    };
    let historical = v.number != c.current().number;
    let links = json!({
        "webui": render::webui(app, store, c),
        "editui": format!("/pages/resumedraft.action?draftId={}", c.id),
        "tinyui": format!("/x/{}", c.id),
    });
    let mut o = json!({
        "id": c.id.to_string(),
        "status": if historical { "historical" } else { c.status.as_str() },
        "title": v.title.as_deref().unwrap_or(&c.title),
        "spaceId": space_id(store, c),
        "authorId": author_id(app),
        "createdAt": format_v2(c.created_ms),
        "version": version(app, v),
        "body": body,
        "_links": links,
    });
    if c.kind == ContentKind::Page {
        let m = o.as_object_mut().expect("object");
        if let Some(p) = c.parent {
            m.insert("parentId".into(), json!(p.to_string()));
            m.insert("parentType".into(), json!("page"));
        }
        m.insert("position".into(), json!(0));
        m.insert("ownerId".into(), json!(author_id(app)));
    }
    o
}

pub(crate) fn attachment(app: &App, store: &Store, c: &Content, v: &Version) -> Value {
    let f = v.file.as_ref();
    let container = c.parent.unwrap_or(0).to_string();
    let container_kind = c.parent.and_then(|p| store.get(p)).map(|p| p.kind);
    let download = render::servlet_download(app, c, v);
    let webui = render::webui(app, store, c);
    let mut o = json!({
        "id": app.wire_id(c),
        "status": c.status.as_str(),
        "title": c.title,
        "createdAt": format_v2(v.when_ms),
        "mediaType": f.map(|f| f.media_type.clone()),
        "mediaTypeDescription": f.map(|f| render::media_type_description(&f.media_type)),
        "comment": v.message,
        "fileId": f.map(|f| f.file_id.clone()),
        "fileSize": f.map(|f| f.size),
        "webuiLink": webui,
        "downloadLink": download,
        "version": version(app, v),
        "_links": {"download": download, "webui": webui},
    });
    let key = match container_kind {
        Some(ContentKind::Blogpost) => "blogPostId",
        _ => "pageId",
    };
    o.as_object_mut()
        .expect("object")
        .insert(key.into(), json!(container));
    o
}

pub(crate) fn property(app: &App, p: &Property) -> Value {
    json!({
        "id": p.id.to_string(),
        "key": p.key,
        "value": p.value,
        "version": {
            "createdAt": format_v2(p.when_ms),
            "message": "",
            "number": p.version,
            "minorEdit": p.minor_edit,
            "authorId": author_id(app),
        },
    })
}
