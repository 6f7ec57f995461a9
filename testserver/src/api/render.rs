//! v1 JSON for users, spaces, content and versions, following the `Content`, `Space`,
//! `Version` and `User` schemas of the Cloud v1 OpenAPI document and the shapes of real
//! answers described in docs/CONFLUENCE.md §4.
//!
//! Confluence sends only what was expanded and lists every other expandable field under
//! `_expandable`; clients that forget to expand must see the field missing, so the renderers
//! follow the same rule. Flavor differences (user shape, timestamps with offset, `att` ids,
//! link forms, `position`, `hidden`) are all decided here.

use percent_encoding::{utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};
use serde_json::{json, Map, Value};

use super::{App, Expand};
use crate::clock;
use crate::config::Flavor;
use crate::model::{Content, ContentKind, Space, Version};
use crate::store::Store;

/// Characters left alone in a URL path segment or query value (RFC 3986 unreserved).
const COMPONENT: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

pub(crate) fn encode_component(s: &str) -> String {
    utf8_percent_encode(s, COMPONENT).to_string()
}

/// Titles in web UI links use `+` for spaces, as Confluence does.
fn webui_title(s: &str) -> String {
    encode_component(s).replace("%20", "+")
}

pub(crate) const ACCOUNT_ID: &str = "557058:5f0c2d1e-9b1a-4f7e-8c3d-2a6b7e9f0a11";
pub(crate) const USER_KEY: &str = "8a7f808a8c5d1c8f018c5d1e2f3a0001";

pub(crate) fn user(app: &App) -> Value {
    let name = display_name(&app.config.user);
    match app.flavor() {
        Flavor::Cloud => json!({
            "type": "known",
            "accountId": ACCOUNT_ID,
            "accountType": "atlassian",
            "email": app.config.user,
            "publicName": name,
            "profilePicture": {"path": "/wiki/aa-avatar/default.png", "width": 48, "height": 48, "isDefault": true},
            "displayName": name,
            "isExternalCollaborator": false,
            "_expandable": {"operations": "", "personalSpace": ""},
            "_links": {"self": format!("{}/rest/api/user?accountId={ACCOUNT_ID}", app.base_url)}
        }),
        Flavor::Datacenter => json!({
            "type": "known",
            "username": app.config.user,
            "userKey": USER_KEY,
            "profilePicture": {"path": format!("{}/images/icons/profilepics/default.svg", app.context), "width": 48, "height": 48, "isDefault": true},
            "displayName": name,
            "_links": {"self": format!("{}/rest/api/user?key={USER_KEY}", app.base_url)},
            "_expandable": {"status": ""}
        }),
    }
}

/// v2 `authorId`.
pub(crate) fn author_id(app: &App) -> &'static str {
    match app.flavor() {
        Flavor::Cloud => ACCOUNT_ID,
        Flavor::Datacenter => USER_KEY,
    }
}

fn display_name(user: &str) -> String {
    let local = user.split('@').next().unwrap_or(user);
    let mut chars = local.chars();
    match chars.next() {
        Some(f) => format!("{}{} User", f.to_uppercase(), chars.as_str()),
        None => "User".to_string(),
    }
}

pub(crate) fn when(app: &App, ms: i64) -> String {
    clock::format(ms, app.flavor())
}

/// Confluence's human form of a time (`friendlyWhen`, `friendlyLastModified`).
pub(crate) fn friendly(ms: i64) -> String {
    let age = (clock::now_ms() - ms).max(0) / 1000;
    match age {
        0..=59 => "just a moment ago".to_string(),
        60..=3599 => format!("{} minutes ago", age / 60),
        3600..=86_399 => format!("{} hours ago", age / 3600),
        _ => {
            const MONTHS: [&str; 12] = [
                "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
            ];
            let (y, m, d) = clock::ymd(ms);
            format!("{} {d}, {y}", MONTHS[(m - 1) as usize])
        }
    }
}

pub(crate) fn version(app: &App, c: &Content, v: &Version) -> Value {
    let id = app.wire_id(c);
    let mut o = json!({
        "by": user(app),
        "when": when(app, v.when_ms),
        "friendlyWhen": friendly(v.when_ms),
        "message": v.message,
        "number": v.number,
        "minorEdit": v.minor_edit,
    });
    let m = o.as_object_mut().expect("object");
    match app.flavor() {
        Flavor::Cloud => {
            m.insert("contentTypeModified".into(), json!(false));
            m.insert(
                "_expandable".into(),
                json!({"collaborators": "", "content": format!("/rest/api/content/{id}")}),
            );
            m.insert(
                "_links".into(),
                json!({"self": format!("{}/rest/api/content/{id}/version/{}", app.base_url, v.number)}),
            );
        }
        Flavor::Datacenter => {
            m.insert("hidden".into(), json!(false));
            m.insert(
                "_links".into(),
                json!({"self": format!("{}/rest/experimental/content/{id}/version/{}", app.base_url, v.number)}),
            );
            m.insert(
                "_expandable".into(),
                json!({"content": format!("/rest/api/content/{id}")}),
            );
        }
    }
    o
}

pub(crate) fn space(app: &App, store: &Store, s: &Space, ex: &Expand) -> Value {
    let key = &s.key;
    let mut expandable = json!({
        "settings": format!("/rest/api/space/{key}/settings"),
        "metadata": "",
        "operations": "",
        "lookAndFeel": format!("/rest/api/settings/lookandfeel?spaceKey={key}"),
        "identifiers": "",
        "permissions": "",
        "icon": "",
        "description": "",
        "theme": format!("/rest/api/space/{key}/theme"),
        "history": "",
        "homepage": format!("/rest/api/content/{}", s.homepage),
    });
    let mut o = json!({
        "id": s.id,
        "key": key,
        "name": s.name,
        "type": "global",
        "status": "current",
    });
    let m = o.as_object_mut().expect("object");
    if ex.has("homepage") {
        if let Some(home) = store.get(s.homepage) {
            m.insert(
                "homepage".into(),
                content(app, store, home, &ex.below("homepage")),
            );
            expandable
                .as_object_mut()
                .expect("object")
                .remove("homepage");
        }
    }
    if ex.has("description") {
        m.insert(
            "description".into(),
            json!({"plain": {"value": "", "representation": "plain", "embeddedContent": []}}),
        );
        expandable
            .as_object_mut()
            .expect("object")
            .remove("description");
    }
    m.insert("_expandable".into(), expandable);
    m.insert(
        "_links".into(),
        json!({"webui": format!("/spaces/{key}"), "self": format!("{}/rest/api/space/{key}", app.base_url)}),
    );
    o
}

pub(crate) fn content(app: &App, store: &Store, c: &Content, ex: &Expand) -> Value {
    content_at(app, store, c, c.current(), ex)
}

/// The v1 bodies of one page of results, in the order of `ids` (ids no longer stored are
/// skipped).
pub(crate) fn contents(app: &App, store: &Store, ids: &[u64], ex: &Expand) -> Vec<Value> {
    ids.iter()
        .filter_map(|&id| store.get(id))
        .map(|c| content(app, store, c, ex))
        .collect()
}

fn blog_path(c: &Content) -> String {
    let (y, m, d) = clock::ymd(c.created_ms);
    format!("{y:04}/{m:02}/{d:02}")
}

pub(crate) fn webui(app: &App, store: &Store, c: &Content) -> String {
    match c.kind {
        ContentKind::Page => format!(
            "/spaces/{}/pages/{}/{}",
            c.space_key,
            c.id,
            webui_title(&c.title)
        ),
        ContentKind::Blogpost => format!(
            "/spaces/{}/blog/{}/{}/{}",
            c.space_key,
            blog_path(c),
            c.id,
            webui_title(&c.title)
        ),
        ContentKind::Attachment => {
            let container = c.parent.unwrap_or(0);
            let preview = encode_component(&format!("/{container}/{}/{}", c.id, c.title));
            match (app.flavor(), c.parent.and_then(|p| store.get(p))) {
                (Flavor::Datacenter, Some(parent)) => {
                    format!("{}?preview={preview}", webui(app, store, parent))
                }
                _ => format!(
                    "/pages/viewpageattachments.action?pageId={container}&preview={preview}"
                ),
            }
        }
    }
}

/// The download servlet form, `/download/attachments/{pageId}/{name}?version=N&modificationDate=MS&api=v2`
/// (Cloud adds `cacheVersion=1`).
pub(crate) fn servlet_download(app: &App, c: &Content, v: &Version) -> String {
    let cache = if app.is_cloud() {
        "&cacheVersion=1"
    } else {
        ""
    };
    format!(
        "/download/attachments/{}/{}?version={}&modificationDate={}{cache}&api=v2",
        c.parent.unwrap_or(0),
        encode_component(&c.title),
        v.number,
        v.when_ms
    )
}

/// v1 `_links.download`: the REST path on Cloud (what Cloud sends since 2026), the servlet on DC.
pub(crate) fn v1_download(app: &App, c: &Content, v: &Version) -> String {
    if app.is_cloud() && !app.config.legacy_download_links {
        let mut s = format!(
            "/rest/api/content/{}/child/attachment/{}/download",
            c.parent.unwrap_or(0),
            app.wire_id(c)
        );
        if v.number != c.current().number {
            s.push_str(&format!("?version={}", v.number));
        }
        s
    } else {
        servlet_download(app, c, v)
    }
}

pub(crate) fn media_type_description(mt: &str) -> &'static str {
    match mt {
        "image/png" => "PNG Image",
        "image/jpeg" => "JPEG Image",
        "image/gif" => "GIF Image",
        "image/svg+xml" => "SVG Image",
        "application/pdf" => "PDF Document",
        "text/plain" => "Text File",
        "text/csv" => "CSV File",
        "text/markdown" => "Markdown File",
        "application/json" => "JSON File",
        "application/zip" => "Zip Archive",
        _ => "File",
    }
}

/// A content object as it was at version `v` (`status` is `historical` for an old version).
pub(crate) fn content_at(app: &App, store: &Store, c: &Content, v: &Version, ex: &Expand) -> Value {
    let id = app.wire_id(c);
    let is_att = c.kind == ContentKind::Attachment;
    let historical = v.number != c.current().number;
    let status = if historical {
        "historical"
    } else {
        c.status.as_str()
    };
    let mut o = Map::new();
    let mut exp = Map::new();
    o.insert("id".into(), json!(id));
    o.insert("type".into(), json!(c.kind.as_str()));
    o.insert("status".into(), json!(status));
    o.insert(
        "title".into(),
        json!(v.title.as_deref().unwrap_or(&c.title)),
    );
    // DC content carries a top-level `position`: -1 on attachments, the page's place on pages
    // (as in the captured DC attachment and its container).
    if app.flavor() == Flavor::Datacenter {
        match c.kind {
            ContentKind::Attachment => {
                o.insert("position".into(), json!(-1));
            }
            ContentKind::Page => {
                o.insert("position".into(), json!(0));
            }
            _ => {}
        }
    }
    if app.is_cloud() {
        o.insert("macroRenderedOutput".into(), json!({}));
    }

    let space_link = format!("/rest/api/space/{}", c.space_key);
    let space_obj = store.space(&c.space_key);
    if ex.has("space") {
        if let Some(s) = space_obj {
            o.insert("space".into(), space(app, store, s, &ex.below("space")));
        }
    } else {
        exp.insert("space".into(), json!(space_link));
    }

    if ex.has("history") {
        let mut h = json!({
            "latest": !historical,
            "createdBy": user(app),
            "createdDate": when(app, c.created_ms),
            "_links": {"self": format!("{}/rest/api/content/{id}/history", app.base_url)},
        });
        let hm = h.as_object_mut().expect("object");
        let sub = ex.below("history");
        let mut hexp = Map::new();
        if sub.has("lastUpdated") {
            hm.insert("lastUpdated".into(), version(app, c, c.current()));
        } else {
            hexp.insert("lastUpdated".into(), json!(""));
        }
        if sub.has("previousVersion") {
            if let Some(prev) = c.versions.iter().rev().nth(1) {
                hm.insert("previousVersion".into(), version(app, c, prev));
            }
        } else {
            hexp.insert("previousVersion".into(), json!(""));
        }
        hexp.insert("contributors".into(), json!(""));
        hexp.insert("nextVersion".into(), json!(""));
        hm.insert("_expandable".into(), Value::Object(hexp));
        o.insert("history".into(), h);
    } else {
        exp.insert(
            "history".into(),
            json!(format!("/rest/api/content/{id}/history")),
        );
    }

    if ex.has("version") {
        o.insert("version".into(), version(app, c, v));
    } else {
        exp.insert("version".into(), json!(""));
    }

    if ex.has("ancestors") {
        let anc: Vec<Value> = store
            .ancestors(c.id)
            .into_iter()
            .filter_map(|a| store.get(a))
            .map(|a| content(app, store, a, &Expand::none()))
            .collect();
        o.insert("ancestors".into(), json!(anc));
    } else {
        exp.insert("ancestors".into(), json!(""));
    }

    if ex.has("container") {
        let parent = if is_att {
            c.parent.and_then(|p| store.get(p))
        } else {
            None
        };
        match (parent, space_obj) {
            (Some(p), _) => {
                o.insert(
                    "container".into(),
                    content(app, store, p, &ex.below("container")),
                );
            }
            (None, Some(s)) => {
                o.insert(
                    "container".into(),
                    space(app, store, s, &ex.below("container")),
                );
            }
            _ => {}
        }
    } else if is_att {
        exp.insert(
            "container".into(),
            json!(format!("/rest/api/content/{}", c.parent.unwrap_or(0))),
        );
    } else {
        exp.insert("container".into(), json!(space_link));
    }

    if ex.has("children") {
        o.insert(
            "children".into(),
            children(app, store, c, &ex.below("children")),
        );
    } else {
        exp.insert(
            "children".into(),
            json!(format!("/rest/api/content/{id}/child")),
        );
    }
    exp.insert(
        "descendants".into(),
        json!(format!("/rest/api/content/{id}/descendant")),
    );

    if ex.has("body") && !is_att {
        let sub = ex.below("body");
        let mut b = Map::new();
        let mut bexp = Map::new();
        let stored = v.body.as_deref().unwrap_or(&c.body);
        for &rep in super::body::V1_REPRESENTATIONS {
            if sub.has(rep) {
                let value = super::body::represent(app, store, c, stored, rep);
                b.insert(
                    rep.into(),
                    json!({"value": value, "representation": rep, "embeddedContent": [], "_expandable": {"content": format!("/rest/api/content/{id}")}}),
                );
            } else {
                bexp.insert(rep.into(), json!(""));
            }
        }
        b.insert("_expandable".into(), Value::Object(bexp));
        o.insert("body".into(), Value::Object(b));
    } else {
        exp.insert("body".into(), json!(""));
    }

    let file = v.file.as_ref();
    if ex.has("metadata") {
        let mut md = Map::new();
        if let Some(f) = file {
            md.insert("comment".into(), json!(v.message));
            md.insert("mediaType".into(), json!(f.media_type));
        }
        if app.is_cloud() {
            md.insert(
                "labels".into(),
                json!({"results": [], "start": 0, "limit": 200, "size": 0,
                       "_links": {"self": format!("{}/rest/api/content/{id}/label", app.base_url)}}),
            );
        }
        if ex.below("metadata").has("properties") {
            // `metadata.properties.KEY` names the properties wanted; plain `metadata.properties`
            // gives them all.
            let keys = ex.below("metadata").below("properties");
            let props: Map<String, Value> = c
                .properties
                .values()
                .filter(|p| keys.is_empty() || keys.has(&p.key))
                .map(|p| (p.key.clone(), property(app, c, p)))
                .collect();
            md.insert("properties".into(), Value::Object(props));
        }
        let mut md_exp = Map::new();
        for k in [
            "currentuser",
            "comments",
            "simple",
            "properties",
            "frontend",
            "likes",
        ] {
            if !md.contains_key(k) {
                md_exp.insert(k.into(), json!(""));
            }
        }
        md.insert("_expandable".into(), Value::Object(md_exp));
        o.insert("metadata".into(), Value::Object(md));
    } else {
        exp.insert("metadata".into(), json!(""));
    }
    if ex.has("childTypes") {
        // Whether the content has children of each type, without the children: the three
        // documented keys, each `{value, _links}`; `childTypes.all` (or a bare `childTypes`)
        // gives all three, `childTypes.page` and friends one each.
        let wanted = ex.below("childTypes");
        let mut types = Map::new();
        for (key, present) in [
            ("attachment", !store.attachments_of(c.id, true).is_empty()),
            ("comment", false),
            ("page", !store.child_pages(c.id).is_empty()),
        ] {
            if wanted.is_empty() || wanted.has("all") || wanted.has(key) {
                types.insert(
                    key.into(),
                    json!({"value": present, "_links": {
                        "self": format!("{}/rest/api/content/{}/child/{key}", app.base_url, c.id)
                    }}),
                );
            }
        }
        o.insert("childTypes".into(), Value::Object(types));
    }
    for k in [
        "operations",
        "restrictions",
        "childTypes",
        "schedulePublishDate",
    ] {
        if k == "childTypes" && ex.has("childTypes") {
            continue;
        }
        let val = if k == "restrictions" {
            json!(format!("/rest/api/content/{id}/restriction/byOperation"))
        } else {
            json!("")
        };
        exp.insert(k.into(), val);
    }
    if app.flavor() == Flavor::Datacenter {
        exp.insert(
            "relevantViewRestrictions".into(),
            json!(format!(
                "/rest/api/content/{id}/restriction/relevantViewRestrictions"
            )),
        );
    }

    match file {
        Some(f) => {
            let mut ext =
                json!({"mediaType": f.media_type, "fileSize": f.size, "comment": v.message});
            if app.is_cloud() {
                let m = ext.as_object_mut().expect("object");
                m.insert(
                    "mediaTypeDescription".into(),
                    json!(media_type_description(&f.media_type)),
                );
                m.insert("fileId".into(), json!(f.file_id));
                m.insert(
                    "collectionName".into(),
                    json!(format!("contentId-{}", c.parent.unwrap_or(0))),
                );
            }
            o.insert("extensions".into(), ext);
        }
        None => {
            o.insert("extensions".into(), json!({"position": 0}));
        }
    }

    o.insert("_expandable".into(), Value::Object(exp));
    let mut links = Map::new();
    links.insert("webui".into(), json!(webui(app, store, c)));
    if is_att {
        links.insert("download".into(), json!(v1_download(app, c, v)));
    } else {
        let edit_key = if app.is_cloud() { "editui" } else { "edit" };
        links.insert(
            edit_key.into(),
            json!(format!("/pages/resumedraft.action?draftId={}", c.id)),
        );
        links.insert("tinyui".into(), json!(tiny_link(c.id)));
    }
    links.insert(
        "self".into(),
        json!(format!("{}/rest/api/content/{id}", app.base_url)),
    );
    o.insert("_links".into(), Value::Object(links));
    Value::Object(o)
}

/// Confluence's tiny links are the id's little-endian bytes in URL-safe base64.
fn tiny_link(id: u64) -> String {
    let bytes = id.to_le_bytes();
    let len = bytes.iter().rposition(|b| *b != 0).map_or(1, |i| i + 1);
    let enc = base64::Engine::encode(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD,
        &bytes[..len],
    );
    format!("/x/{enc}")
}

/// The `children` expansion / `GET /content/{id}/child` body.
pub(crate) fn children(app: &App, store: &Store, c: &Content, ex: &Expand) -> Value {
    let id = app.wire_id(c);
    let mut o = Map::new();
    let mut exp = Map::new();
    for kind in ["attachment", "comment", "page"] {
        let path = format!("/rest/api/content/{id}/child/{kind}");
        if ex.has(kind) {
            let ids = match kind {
                "attachment" => store.attachments_of(c.id, true),
                "page" => store.child_pages(c.id),
                _ => Vec::new(),
            };
            let sub = if kind == "attachment" {
                ex.below(kind).with(&["metadata"])
            } else {
                ex.below(kind)
            };
            let items: Vec<Value> = ids
                .iter()
                .take(25)
                .filter_map(|i| store.get(*i))
                .map(|x| content(app, store, x, &sub))
                .collect();
            let arr = super::paging::v1_embedded(app, items, ids.len(), 25, &path);
            o.insert(kind.into(), arr);
        } else {
            exp.insert(kind.into(), json!(path));
        }
    }
    o.insert("_expandable".into(), Value::Object(exp));
    o.insert(
        "_links".into(),
        json!({"self": format!("{}/rest/api/content/{id}/child", app.base_url)}),
    );
    Value::Object(o)
}

/// v1 `ContentProperty`.
pub(crate) fn property(app: &App, c: &Content, p: &crate::model::Property) -> Value {
    let id = app.wire_id(c);
    json!({
        "id": p.id.to_string(),
        "key": p.key,
        "value": p.value,
        "version": {
            "when": when(app, p.when_ms),
            "message": "",
            "number": p.version,
            "minorEdit": p.minor_edit,
            "contentTypeModified": false
        },
        "_links": {
            "base": app.base_url,
            "context": app.context,
            "self": format!("{}/rest/api/content/{id}/property/{}", app.base_url, encode_component(&p.key))
        },
        "_expandable": {"content": format!("/rest/api/content/{id}"), "additionalProperties": ""}
    })
}
