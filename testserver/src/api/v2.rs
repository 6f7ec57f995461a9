//! The v2 API (Cloud only, under `/wiki/api/v2`): spaces, pages, blog posts, their children,
//! attachments (metadata, versions, trash/purge) and content properties addressed by id.
//! v2 has no upload; uploads stay on v1, as on the real site.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::Value;

use super::errors::ApiError;
use super::paging::{v2_list, Cursor};
use super::render_v2;
use super::{Params, Shared};
use crate::clock;
use crate::model::{Content, ContentKind, Status};
use crate::store::Store;

pub(crate) fn routes() -> Router<Shared> {
    Router::new()
        .route("/spaces", get(spaces))
        .route("/spaces/{id}", get(space))
        .route("/spaces/{id}/pages", get(space_pages))
        .route("/spaces/{id}/blogposts", get(space_blogposts))
        .route("/pages", get(pages).post(create_page))
        .route(
            "/pages/{id}",
            get(page).put(update_page).delete(delete_page),
        )
        .route("/pages/{id}/versions", get(content_versions))
        .route("/blogposts/{id}/versions", get(content_versions))
        .route("/pages/{id}/children", get(children))
        .route("/pages/{id}/direct-children", get(direct_children))
        .route("/pages/{id}/attachments", get(container_attachments))
        .route(
            "/pages/{id}/properties",
            get(properties).post(create_property),
        )
        .route(
            "/pages/{id}/properties/{pid}",
            get(property).put(put_property).delete(delete_property),
        )
        .route("/blogposts", get(blogposts))
        .route("/blogposts/{id}", get(blogpost).delete(delete_page))
        .route("/blogposts/{id}/attachments", get(container_attachments))
        .route(
            "/blogposts/{id}/properties",
            get(properties).post(create_property),
        )
        .route(
            "/blogposts/{id}/properties/{pid}",
            get(property).put(put_property).delete(delete_property),
        )
        .route(
            "/attachments/{id}",
            get(attachment).delete(delete_attachment),
        )
        .route("/attachments/{id}/versions", get(attachment_versions))
        .route("/attachments/{id}/versions/{n}", get(attachment_version))
        .route(
            "/attachments/{id}/properties",
            get(properties).post(create_property),
        )
        .route(
            "/attachments/{id}/properties/{pid}",
            get(property).put(put_property).delete(delete_property),
        )
}

fn not_found(what: &str, id: &str) -> ApiError {
    ApiError::v2(404, format!("Cannot find a {what} with id [{id}]"))
}

fn parse_id(app: &super::App, s: &str, what: &str) -> Result<u64, ApiError> {
    app.parse_id(s).map_err(|_| not_found(what, s))
}

/// Content of `kind` by id, in any of `statuses` (default: current).
fn find<'a>(
    store: &'a Store,
    id: u64,
    kind: ContentKind,
    statuses: &[Status],
) -> Option<&'a Content> {
    store
        .get(id)
        .filter(|c| c.kind == kind && statuses.contains(&c.status))
}

/// The v2 `status` filter. `draft` is refused as on the real site; `archived`/`deleted` are
/// accepted and match nothing here (this server has neither).
fn statuses(p: &Params) -> Result<Vec<Status>, ApiError> {
    let values = p.list("status");
    if values.is_empty() {
        return Ok(vec![Status::Current]);
    }
    let mut out = Vec::new();
    for v in values {
        match v.as_str() {
            "current" => out.push(Status::Current),
            "trashed" => out.push(Status::Trashed),
            "archived" | "deleted" | "any" => {}
            other => return Err(ApiError::v2(400, format!("Invalid status value: {other}"))),
        }
    }
    Ok(out)
}

async fn spaces(State(app): State<Shared>, p: Params) -> Result<Response, ApiError> {
    let c = Cursor::v2(&p, 25)?;
    let keys = p.list("keys");
    let ids = p.list("ids");
    let store = app.store();
    let mut all: Vec<&crate::model::Space> = store
        .spaces
        .values()
        .filter(|s| keys.is_empty() || keys.contains(&s.key))
        .filter(|s| ids.is_empty() || ids.contains(&s.id.to_string()))
        .collect();
    all.sort_by_key(|s| s.id);
    let results = c
        .slice(&all)
        .into_iter()
        .map(|s| render_v2::space(&app, s))
        .collect();
    Ok(v2_list(&app, results, c, all.len(), "/api/v2/spaces", &p))
}

async fn space(State(app): State<Shared>, Path(id): Path<String>) -> Result<Json<Value>, ApiError> {
    let store = app.store();
    let s = id
        .parse::<u64>()
        .ok()
        .and_then(|n| store.space_by_id(n))
        .ok_or_else(|| not_found("space", &id))?;
    Ok(Json(render_v2::space(&app, s)))
}

fn list_contents(
    app: &super::App,
    p: &Params,
    path: &str,
    kind: ContentKind,
    space_ids: Option<Vec<u64>>,
) -> Result<Response, ApiError> {
    let c = Cursor::v2(p, 25)?;
    body_format(p, false)?;
    let st = statuses(p)?;
    let title = p.get("title").map(str::to_lowercase);
    let only_ids: Vec<String> = p.list("id");
    let root_only = p.get("depth") == Some("root");
    let store = app.store();
    let keys: Vec<String> = match &space_ids {
        Some(ids) => store
            .spaces
            .values()
            .filter(|s| ids.contains(&s.id))
            .map(|s| s.key.clone())
            .collect(),
        None => store.spaces.keys().cloned().collect(),
    };
    let mut ids: Vec<u64> = Vec::new();
    for key in &keys {
        ids.extend(
            store
                .space_contents(key)
                .filter(|x| x.kind == kind && st.contains(&x.status))
                .filter(|x| {
                    title
                        .as_ref()
                        .map_or(true, |t| &x.title.to_lowercase() == t)
                })
                .filter(|x| only_ids.is_empty() || only_ids.contains(&x.id.to_string()))
                .filter(|x| !(root_only && x.parent.is_some()))
                .map(|x| x.id),
        );
    }
    ids.sort_unstable();
    let results = c
        .slice(&ids)
        .into_iter()
        .filter_map(|i| store.get(i))
        .map(|x| render_v2::page(app, &store, x, p.get("body-format")))
        .collect();
    Ok(v2_list(app, results, c, ids.len(), path, p))
}

fn space_ids_param(p: &Params) -> Option<Vec<u64>> {
    let v = p.list("space-id");
    (!v.is_empty()).then(|| v.iter().filter_map(|s| s.parse().ok()).collect())
}

fn known_space(app: &super::App, id: &str) -> Result<u64, ApiError> {
    let n = id.parse::<u64>().map_err(|_| not_found("space", id))?;
    if app.store().space_by_id(n).is_none() {
        return Err(not_found("space", id));
    }
    Ok(n)
}

async fn space_pages(
    State(app): State<Shared>,
    Path(id): Path<String>,
    p: Params,
) -> Result<Response, ApiError> {
    let n = known_space(&app, &id)?;
    list_contents(
        &app,
        &p,
        &format!("/api/v2/spaces/{id}/pages"),
        ContentKind::Page,
        Some(vec![n]),
    )
}

async fn space_blogposts(
    State(app): State<Shared>,
    Path(id): Path<String>,
    p: Params,
) -> Result<Response, ApiError> {
    let n = known_space(&app, &id)?;
    list_contents(
        &app,
        &p,
        &format!("/api/v2/spaces/{id}/blogposts"),
        ContentKind::Blogpost,
        Some(vec![n]),
    )
}

async fn pages(State(app): State<Shared>, p: Params) -> Result<Response, ApiError> {
    list_contents(
        &app,
        &p,
        "/api/v2/pages",
        ContentKind::Page,
        space_ids_param(&p),
    )
}

async fn blogposts(State(app): State<Shared>, p: Params) -> Result<Response, ApiError> {
    list_contents(
        &app,
        &p,
        "/api/v2/blogposts",
        ContentKind::Blogpost,
        space_ids_param(&p),
    )
}

/// The `body-format` parameter, refused (400) when the route does not offer it.
fn body_format(p: &Params, single: bool) -> Result<Option<&str>, ApiError> {
    match p.get("body-format") {
        None => Ok(None),
        Some(f) if render_v2::body_format_ok(f, single) => Ok(Some(f)),
        Some(f) => Err(ApiError::v2(
            400,
            format!("Invalid value for body-format: {f}"),
        )),
    }
}

fn one_content(
    app: &super::App,
    id: &str,
    kind: ContentKind,
    p: &Params,
) -> Result<Json<Value>, ApiError> {
    let what = if kind == ContentKind::Page {
        "page"
    } else {
        "blog post"
    };
    let n = parse_id(app, id, what)?;
    let format = body_format(p, true)?;
    // `historical` (and `draft`) are accepted on single-content reads [spec V2]; an old
    // version is asked for with `version=N`.
    let wanted: Vec<String> = p
        .list("status")
        .into_iter()
        .filter(|s| s != "historical" && s != "draft")
        .collect();
    let mut st = statuses(&Params(
        wanted
            .into_iter()
            .map(|v| ("status".to_string(), v))
            .collect(),
    ))?;
    st.push(Status::Current);
    let store = app.store();
    let c = find(&store, n, kind, &st).ok_or_else(|| not_found(what, id))?;
    let v = match p.get("version") {
        None => c.current(),
        Some(raw) => raw
            .parse::<u32>()
            .ok()
            .and_then(|number| c.version(number))
            .ok_or_else(|| {
                ApiError::v2(404, format!("Cannot find version {raw} of {what} [{id}]"))
            })?,
    };
    Ok(Json(render_v2::page_at(app, &store, c, v, format)))
}

async fn page(
    State(app): State<Shared>,
    Path(id): Path<String>,
    p: Params,
) -> Result<Json<Value>, ApiError> {
    one_content(&app, &id, ContentKind::Page, &p)
}

async fn blogpost(
    State(app): State<Shared>,
    Path(id): Path<String>,
    p: Params,
) -> Result<Json<Value>, ApiError> {
    one_content(&app, &id, ContentKind::Blogpost, &p)
}

/// `DELETE /pages/{id}` and `/blogposts/{id}`: trash, or purge a trashed one with `purge=true`.
async fn delete_page(
    State(app): State<Shared>,
    Path(id): Path<String>,
    p: Params,
) -> Result<Response, ApiError> {
    let n = parse_id(&app, &id, "page")?;
    trash_or_purge(&app, n, p.flag("purge"), &id).await
}

async fn trash_or_purge(
    app: &super::App,
    n: u64,
    purge: bool,
    id: &str,
) -> Result<Response, ApiError> {
    let removed = {
        let mut store = app.store();
        if purge {
            match store.get(n).map(|c| c.status) {
                Some(Status::Trashed) => store.purge(n).map_err(|e| ApiError::from(e).into_v2())?,
                Some(Status::Current) => {
                    return Err(ApiError::v2(
                        400,
                        "Content must be trashed before it can be purged",
                    ))
                }
                None => return Err(not_found("content", id)),
            }
        } else {
            store.trash(n).map_err(|_| not_found("content", id))?;
            Vec::new()
        }
    };
    app.persist().await;
    for f in &removed {
        app.blobs.remove(f);
    }
    Ok(StatusCode::NO_CONTENT.into_response())
}

fn child_rows(
    app: &super::App,
    id: &str,
    p: &Params,
    path: &str,
    typed: bool,
) -> Result<Response, ApiError> {
    let c = Cursor::v2(p, 25)?;
    let n = parse_id(app, id, "page")?;
    let store = app.store();
    let parent = find(&store, n, ContentKind::Page, &[Status::Current])
        .ok_or_else(|| not_found("page", id))?;
    let kids = store.child_pages(parent.id);
    let results = c
        .slice(&kids)
        .into_iter()
        .enumerate()
        .filter_map(|(i, k)| store.get(k).map(|x| (i, x)))
        .map(|(i, x)| {
            let mut o = serde_json::json!({
                "id": x.id.to_string(),
                "status": x.status.as_str(),
                "title": x.title,
                "spaceId": store.space(&x.space_key).map(|s| s.id.to_string()),
                "childPosition": c.offset + i,
            });
            if typed {
                o["type"] = serde_json::json!("page");
            }
            o
        })
        .collect();
    Ok(v2_list(app, results, c, kids.len(), path, p))
}

async fn children(
    State(app): State<Shared>,
    Path(id): Path<String>,
    p: Params,
) -> Result<Response, ApiError> {
    child_rows(
        &app,
        &id,
        &p,
        &format!("/api/v2/pages/{id}/children"),
        false,
    )
}

async fn direct_children(
    State(app): State<Shared>,
    Path(id): Path<String>,
    p: Params,
) -> Result<Response, ApiError> {
    child_rows(
        &app,
        &id,
        &p,
        &format!("/api/v2/pages/{id}/direct-children"),
        true,
    )
}

async fn container_attachments(
    State(app): State<Shared>,
    uri: axum::http::Uri,
    Path(id): Path<String>,
    p: Params,
) -> Result<Response, ApiError> {
    let blog = uri.path().contains("/blogposts/");
    let (kind, what) = if blog {
        (ContentKind::Blogpost, "blog post")
    } else {
        (ContentKind::Page, "page")
    };
    let c = Cursor::v2(&p, 50)?;
    let st = statuses(&p)?;
    let n = parse_id(&app, &id, what)?;
    let filename = p.get("filename");
    let media_type = p.get("mediaType");
    let store = app.store();
    find(&store, n, kind, &[Status::Current]).ok_or_else(|| not_found(what, &id))?;
    let mut ids: Vec<u64> = store
        .attachments_of(n, false)
        .into_iter()
        .filter(|i| {
            store.get(*i).is_some_and(|a| {
                st.contains(&a.status)
                    && filename.map_or(true, |f| a.title == f)
                    && media_type.map_or(true, |m| a.file().is_some_and(|f| f.media_type == m))
            })
        })
        .collect();
    match p.get("sort") {
        Some("-created-date") => ids.reverse(),
        Some("modified-date") => ids.sort_by_key(|i| store.get(*i).map(|a| a.current().when_ms)),
        Some("-modified-date") => {
            ids.sort_by_key(|i| std::cmp::Reverse(store.get(*i).map(|a| a.current().when_ms)))
        }
        _ => {}
    }
    let results = c
        .slice(&ids)
        .into_iter()
        .filter_map(|i| store.get(i))
        .map(|a| render_v2::attachment(&app, &store, a, a.current()))
        .collect();
    let base = if blog { "blogposts" } else { "pages" };
    Ok(v2_list(
        &app,
        results,
        c,
        ids.len(),
        &format!("/api/v2/{base}/{id}/attachments"),
        &p,
    ))
}

fn the_attachment<'a>(
    app: &super::App,
    store: &'a Store,
    id: &str,
    any_status: bool,
) -> Result<&'a Content, ApiError> {
    let n = parse_id(app, id, "attachment")?;
    let st: &[Status] = if any_status {
        &[Status::Current, Status::Trashed]
    } else {
        &[Status::Current]
    };
    find(store, n, ContentKind::Attachment, st).ok_or_else(|| not_found("attachment", id))
}

async fn attachment(
    State(app): State<Shared>,
    Path(id): Path<String>,
    p: Params,
) -> Result<Json<Value>, ApiError> {
    let store = app.store();
    let a = the_attachment(&app, &store, &id, true)?;
    let v = match p.get("version").and_then(|v| v.parse::<u32>().ok()) {
        Some(n) => a
            .version(n)
            .ok_or_else(|| not_found("attachment version", &n.to_string()))?,
        None => a.current(),
    };
    let mut o = render_v2::attachment(&app, &store, a, v);
    o["_links"]["base"] = serde_json::json!(app.base_url);
    let wire = app.wire_id(a);
    // `include-*` sub-collections: the first 50, with `meta.hasMore` and a link to the rest.
    let sub = |items: Vec<Value>, total: usize, path: &str| {
        let more = total > items.len();
        let mut meta = serde_json::json!({"hasMore": more});
        if more {
            meta["cursor"] = serde_json::json!(super::paging::encode_cursor(items.len()));
        }
        serde_json::json!({
            "results": items,
            "meta": meta,
            "_links": {"self": format!("{}/api/v2/attachments/{wire}/{path}", app.context)},
        })
    };
    if p.flag("include-versions") {
        let all: Vec<Value> = a
            .versions
            .iter()
            .rev()
            .map(|v| render_v2::version(&app, v))
            .collect();
        let total = all.len();
        o["versions"] = sub(all.into_iter().take(50).collect(), total, "versions");
    }
    if p.flag("include-properties") {
        let all: Vec<Value> = a
            .properties
            .values()
            .map(|pr| render_v2::property(&app, pr))
            .collect();
        let total = all.len();
        o["properties"] = sub(all.into_iter().take(50).collect(), total, "properties");
    }
    if p.flag("include-labels") {
        o["labels"] = sub(Vec::new(), 0, "labels");
    }
    if p.get("include-version") == Some("false") {
        if let Some(m) = o.as_object_mut() {
            m.remove("version");
        }
    }
    Ok(Json(o))
}

async fn delete_attachment(
    State(app): State<Shared>,
    Path(id): Path<String>,
    p: Params,
) -> Result<Response, ApiError> {
    let n = parse_id(&app, &id, "attachment")?;
    if app
        .store()
        .get(n)
        .map_or(true, |c| c.kind != ContentKind::Attachment)
    {
        return Err(not_found("attachment", &id));
    }
    trash_or_purge(&app, n, p.flag("purge"), &id).await
}

async fn attachment_versions(
    State(app): State<Shared>,
    Path(id): Path<String>,
    p: Params,
) -> Result<Response, ApiError> {
    let c = Cursor::v2(&p, 25)?;
    let store = app.store();
    let a = the_attachment(&app, &store, &id, false)?;
    let mut all: Vec<&crate::model::Version> = a.versions.iter().collect();
    if p.get("sort") != Some("modified-date") {
        all.reverse();
    }
    let results = c
        .slice(&all)
        .into_iter()
        .map(|v| {
            let mut o = render_v2::version(&app, v);
            o["attachment"] = serde_json::json!({"id": app.wire_id(a), "title": a.title});
            o
        })
        .collect();
    Ok(v2_list(
        &app,
        results,
        c,
        all.len(),
        &format!("/api/v2/attachments/{id}/versions"),
        &p,
    ))
}

async fn attachment_version(
    State(app): State<Shared>,
    Path((id, n)): Path<(String, u32)>,
) -> Result<Json<Value>, ApiError> {
    let store = app.store();
    let a = the_attachment(&app, &store, &id, false)?;
    let v = a.version(n).ok_or_else(|| {
        ApiError::v2(404, format!("Cannot find version {n} of attachment [{id}]"))
    })?;
    let mut o = render_v2::version(&app, v);
    o["contentTypeModified"] = serde_json::json!(false);
    o["collaborators"] = serde_json::json!([]);
    if n > 1 {
        o["prevVersion"] = serde_json::json!(n - 1);
    }
    if n < a.current().number {
        o["nextVersion"] = serde_json::json!(n + 1);
    }
    Ok(Json(o))
}

/// The content a `/…/{id}/properties` path names, checked against the path's kind.
fn property_owner(
    app: &super::App,
    store: &Store,
    uri: &axum::http::Uri,
    id: &str,
) -> Result<u64, ApiError> {
    let path = uri.path();
    let (kind, what) = if path.contains("/attachments/") {
        (ContentKind::Attachment, "attachment")
    } else if path.contains("/blogposts/") {
        (ContentKind::Blogpost, "blog post")
    } else {
        (ContentKind::Page, "page")
    };
    let n = parse_id(app, id, what)?;
    find(store, n, kind, &[Status::Current])
        .map(|c| c.id)
        .ok_or_else(|| not_found(what, id))
}

async fn properties(
    State(app): State<Shared>,
    axum::extract::OriginalUri(uri): axum::extract::OriginalUri,
    Path(id): Path<String>,
    p: Params,
) -> Result<Response, ApiError> {
    let c = Cursor::v2(&p, 25)?;
    let key = p.get("key");
    let store = app.store();
    let owner = property_owner(&app, &store, &uri, &id)?;
    let content = store.get(owner).expect("checked");
    let all: Vec<&crate::model::Property> = content
        .properties
        .values()
        .filter(|pr| key.map_or(true, |k| pr.key == k))
        .collect();
    let results = c
        .slice(&all)
        .into_iter()
        .map(|pr| render_v2::property(&app, pr))
        .collect();
    let path = uri
        .path()
        .strip_prefix(app.context.as_str())
        .unwrap_or(uri.path())
        .to_string();
    Ok(v2_list(&app, results, c, all.len(), &path, &p))
}

#[derive(Deserialize)]
struct PropertyIn {
    key: Option<String>,
    value: Option<Value>,
    version: Option<PropertyVersionIn>,
}

#[derive(Deserialize)]
struct PropertyVersionIn {
    number: Option<u32>,
}

fn body_of(bytes: &[u8]) -> Result<PropertyIn, ApiError> {
    serde_json::from_slice(bytes)
        .map_err(|e| ApiError::v2(400, format!("Invalid request body: {e}")))
}

async fn create_property(
    State(app): State<Shared>,
    uri: axum::http::Uri,
    Path(id): Path<String>,
    bytes: axum::body::Bytes,
) -> Result<Json<Value>, ApiError> {
    let input = body_of(&bytes)?;
    let key = input
        .key
        .ok_or_else(|| ApiError::v2(400, "key is required"))?;
    let value = input.value.unwrap_or(Value::Null);
    let prop = {
        let mut store = app.store();
        let owner = property_owner(&app, &store, &uri, &id)?;
        store
            .create_property(owner, &key, value, clock::now_ms())
            .map_err(|e| ApiError::from(e).into_v2())?
    };
    app.persist().await;
    Ok(Json(render_v2::property(&app, &prop)))
}

fn property_key(store: &Store, owner: u64, pid: &str) -> Result<String, ApiError> {
    store
        .get(owner)
        .and_then(|c| c.properties.values().find(|p| p.id.to_string() == pid))
        .map(|p| p.key.clone())
        .ok_or_else(|| {
            ApiError::v2(
                404,
                format!("Cannot find a content property with id [{pid}]"),
            )
        })
}

async fn property(
    State(app): State<Shared>,
    uri: axum::http::Uri,
    Path((id, pid)): Path<(String, String)>,
) -> Result<Json<Value>, ApiError> {
    let store = app.store();
    let owner = property_owner(&app, &store, &uri, &id)?;
    let key = property_key(&store, owner, &pid)?;
    Ok(Json(render_v2::property(
        &app,
        &store.get(owner).expect("checked").properties[&key],
    )))
}

async fn put_property(
    State(app): State<Shared>,
    uri: axum::http::Uri,
    Path((id, pid)): Path<(String, String)>,
    bytes: axum::body::Bytes,
) -> Result<Json<Value>, ApiError> {
    let input = body_of(&bytes)?;
    let number = input
        .version
        .and_then(|v| v.number)
        .ok_or_else(|| ApiError::v2(400, "version.number is required"))?;
    let prop = {
        let mut store = app.store();
        let owner = property_owner(&app, &store, &uri, &id)?;
        let key = property_key(&store, owner, &pid)?;
        if input.key.as_deref().is_some_and(|k| k != key) {
            return Err(ApiError::v2(
                400,
                "The key of a content property cannot be changed",
            ));
        }
        store
            .put_property(
                owner,
                &key,
                input.value.unwrap_or(Value::Null),
                number,
                false,
                clock::now_ms(),
            )
            .map_err(|e| ApiError::from(e).into_v2())?
    };
    app.persist().await;
    Ok(Json(render_v2::property(&app, &prop)))
}

async fn delete_property(
    State(app): State<Shared>,
    uri: axum::http::Uri,
    Path((id, pid)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    {
        let mut store = app.store();
        let owner = property_owner(&app, &store, &uri, &id)?;
        let key = property_key(&store, owner, &pid)?;
        store
            .delete_property(owner, &key)
            .map_err(|e| ApiError::from(e).into_v2())?;
    }
    app.persist().await;
    Ok(StatusCode::NO_CONTENT.into_response())
}

#[derive(Deserialize)]
struct BodyWrite {
    value: Option<String>,
}

#[derive(Deserialize)]
struct PageWrite {
    #[serde(rename = "spaceId")]
    space_id: Option<String>,
    status: Option<String>,
    title: Option<String>,
    #[serde(rename = "parentId")]
    parent_id: Option<String>,
    body: Option<Value>,
    version: Option<PageVersionIn>,
}

#[derive(Deserialize)]
struct PageVersionIn {
    number: Option<u32>,
    message: Option<String>,
}

fn body_value(body: &Option<Value>) -> Option<String> {
    let b = body.as_ref()?;
    // Either `{representation, value}` or `{storage: {representation, value}}`.
    let flat: Option<BodyWrite> = serde_json::from_value(b.clone()).ok();
    flat.and_then(|f| f.value).or_else(|| {
        b.get("storage")
            .and_then(|s| s.get("value"))
            .and_then(Value::as_str)
            .map(str::to_string)
    })
}

fn page_write(bytes: &[u8]) -> Result<PageWrite, ApiError> {
    serde_json::from_slice(bytes)
        .map_err(|e| ApiError::v2(400, format!("Invalid request body: {e}")))
}

/// `POST /pages`: under the space's home page unless `root-level=true` or a parent is given.
async fn create_page(
    State(app): State<Shared>,
    p: Params,
    bytes: axum::body::Bytes,
) -> Result<Json<Value>, ApiError> {
    let input = page_write(&bytes)?;
    if input.status.as_deref() == Some("draft") {
        return Err(ApiError::v2(
            400,
            "Draft pages are not supported by this server",
        ));
    }
    let space_id = input
        .space_id
        .as_deref()
        .and_then(|s| s.parse::<u64>().ok())
        .ok_or_else(|| ApiError::v2(400, "spaceId is required"))?;
    let root_level = p.flag("root-level");
    let id = {
        let mut store = app.store();
        let space = store
            .space_by_id(space_id)
            .ok_or_else(|| not_found("space", &space_id.to_string()))?;
        let (key, home) = (space.key.clone(), space.homepage);
        let parent = match (&input.parent_id, root_level) {
            (Some(_), true) => {
                return Err(ApiError::v2(
                    400,
                    "parentId may not be set with root-level=true",
                ))
            }
            (Some(pid), false) => Some(parse_id(&app, pid, "page")?),
            (None, true) => None,
            (None, false) => Some(home),
        };
        store
            .create_content(
                ContentKind::Page,
                &key,
                input.title.as_deref().unwrap_or(""),
                parent,
                body_value(&input.body).unwrap_or_default(),
                clock::now_ms(),
            )
            .map_err(|e| ApiError::from(e).into_v2())?
    };
    app.persist().await;
    let store = app.store();
    Ok(Json(render_v2::page(
        &app,
        &store,
        store.get(id).expect("just created"),
        Some("storage"),
    )))
}

/// The v2 409 title for a stale page version. The text is from a third-party test fixture of a
/// v2 client ([unverified] against a live site); the shape is the v2 error body of
/// docs/CONFLUENCE.md §3.
fn stale_v2(current: u32, provided: u32) -> String {
    format!(
        "Version must be incremented when updating a page. Current Version: [{current}]. Provided version: [{provided}]"
    )
}

/// `PUT /pages/{id}`: a new version (number = current + 1), optionally retitled or moved.
async fn update_page(
    State(app): State<Shared>,
    Path(id): Path<String>,
    bytes: axum::body::Bytes,
) -> Result<Json<Value>, ApiError> {
    let n = parse_id(&app, &id, "page")?;
    let input = page_write(&bytes)?;
    let number = input
        .version
        .as_ref()
        .and_then(|v| v.number)
        .ok_or_else(|| ApiError::v2(400, "version.number is required"))?;
    let title = input
        .title
        .clone()
        .ok_or_else(|| ApiError::v2(400, "title is required"))?;
    {
        let mut store = app.store();
        let current = find(&store, n, ContentKind::Page, &[Status::Current])
            .ok_or_else(|| not_found("page", &id))?;
        if let Some(sid) = &input.space_id {
            let same = store
                .space(&current.space_key)
                .is_some_and(|s| s.id.to_string() == *sid);
            if !same {
                return Err(ApiError::v2(
                    400,
                    "Moving a page to another space is not supported",
                ));
            }
        }
        let parent = match &input.parent_id {
            Some(pid) => Some(parse_id(&app, pid, "page")?),
            None => None,
        };
        let cur = current.current().number;
        if number != cur + 1 {
            return Err(ApiError::v2(409, stale_v2(cur, number)));
        }
        let change = crate::store::ContentChange {
            number,
            title: Some(&title),
            parent,
            body: body_value(&input.body),
            message: input
                .version
                .as_ref()
                .and_then(|v| v.message.as_deref())
                .unwrap_or(""),
            minor_edit: false,
        };
        store
            .update_content(n, change, clock::now_ms())
            .map_err(|e| ApiError::from(e).into_v2())?;
    }
    app.persist().await;
    let store = app.store();
    Ok(Json(render_v2::page(
        &app,
        &store,
        store.get(n).expect("just updated"),
        Some("storage"),
    )))
}

/// `GET /pages/{id}/versions` and `/blogposts/{id}/versions`: newest first by default.
async fn content_versions(
    State(app): State<Shared>,
    axum::extract::OriginalUri(uri): axum::extract::OriginalUri,
    Path(id): Path<String>,
    p: Params,
) -> Result<Response, ApiError> {
    let c = Cursor::v2(&p, 25)?;
    let blog = uri.path().contains("/blogposts/");
    let (kind, what, key) = if blog {
        (ContentKind::Blogpost, "blog post", "blogpost")
    } else {
        (ContentKind::Page, "page", "page")
    };
    let n = parse_id(&app, &id, what)?;
    let store = app.store();
    let content = find(&store, n, kind, &[Status::Current]).ok_or_else(|| not_found(what, &id))?;
    let mut all: Vec<&crate::model::Version> = content.versions.iter().collect();
    if p.get("sort") != Some("modified-date") {
        all.reverse();
    }
    let results = c
        .slice(&all)
        .into_iter()
        .map(|v| {
            let mut o = render_v2::version(&app, v);
            o[key] = serde_json::json!({"id": content.id.to_string(), "title": content.title});
            o
        })
        .collect();
    let base = if blog { "blogposts" } else { "pages" };
    Ok(v2_list(
        &app,
        results,
        c,
        all.len(),
        &format!("/api/v2/{base}/{id}/versions"),
        &p,
    ))
}
