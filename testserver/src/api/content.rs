//! v1 content routes: read, look up, create, update (rename/move), trash and purge pages and
//! blog posts (and attachments, which share `/content/{id}`), their children, and versions.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Deserialize;
use serde_json::Value;

use super::errors::ApiError;
use super::paging::{v1_envelope, Window};
use super::render;
use super::{Expand, Params, Shared};
use crate::clock;
use crate::model::{Content, ContentKind, Status};
use crate::store::ContentChange;

pub(crate) async fn current_user(State(app): State<Shared>) -> Json<Value> {
    Json(render::user(&app))
}

/// Fetches content visible under the request's `status` filter (default: current only).
fn visible<'a>(
    store: &'a crate::store::Store,
    id: u64,
    p: &Params,
) -> Result<&'a Content, ApiError> {
    let statuses = p.list("status");
    let c = store.get(id).ok_or_else(|| {
        ApiError::v1(
            404,
            format!("No content found with id: ContentId{{id={id}}}"),
        )
    })?;
    let ok = match c.status {
        // `historical` is how clients ask for an old version of current content
        // (`?status=historical&version=N`, as atlassian-python-api's `get_page_by_id` does).
        Status::Current => {
            statuses.is_empty()
                || statuses
                    .iter()
                    .any(|s| s == "current" || s == "any" || s == "historical")
        }
        Status::Trashed => statuses.iter().any(|s| s == "trashed" || s == "any"),
    };
    if ok {
        Ok(c)
    } else {
        Err(ApiError::v1(
            404,
            format!("No content found with id: ContentId{{id={id}}}"),
        ))
    }
}

pub(crate) async fn one(
    State(app): State<Shared>,
    Path(id): Path<String>,
    p: Params,
) -> Result<Json<Value>, ApiError> {
    let id = app.parse_id(&id)?;
    let ex = Expand::from_params(&p);
    let store = app.store();
    let c = visible(&store, id, &p)?;
    let body = match p.get("version").and_then(|v| v.parse::<u32>().ok()) {
        Some(n) => {
            let v = c
                .version(n)
                .ok_or_else(|| ApiError::v1(404, format!("No version {n} of content {id}")))?;
            render::content_at(&app, &store, c, v, &ex)
        }
        None => render::content(&app, &store, c, &ex),
    };
    Ok(Json(body))
}

/// `GET /content?spaceKey=&title=&type=`: lookup by title, or a listing of a space's content.
pub(crate) async fn lookup(State(app): State<Shared>, p: Params) -> Result<Json<Value>, ApiError> {
    let kind = match p.get("type").unwrap_or("page") {
        "page" => ContentKind::Page,
        "blogpost" => ContentKind::Blogpost,
        other => {
            return Err(ApiError::v1(
                400,
                format!("Type {other} is not supported by this resource"),
            ))
        }
    };
    let ex = Expand::from_params(&p);
    let w = Window::v1(&app, &p, 25)?;
    let store = app.store();
    let keys: Vec<String> = match p.get("spaceKey") {
        Some(k) => vec![k.to_string()],
        None => store.spaces.keys().cloned().collect(),
    };
    let title = p.get("title");
    let want_trashed = p.list("status").iter().any(|s| s == "trashed");
    let mut ids = Vec::new();
    for key in &keys {
        for c in store.space_contents(key) {
            let status_ok = if want_trashed {
                c.status == Status::Trashed
            } else {
                c.is_current()
            };
            if c.kind == kind && status_ok && title.map_or(true, |t| t == c.title) {
                ids.push(c.id);
            }
        }
    }
    ids.sort_unstable();
    let results = render::contents(&app, &store, &w.slice(&ids), &ex);
    Ok(Json(v1_envelope(
        &app,
        results,
        w,
        ids.len(),
        "/rest/api/content",
        &p,
        &["spaceKey", "title", "type", "status", "expand"],
    )))
}

#[derive(Deserialize, Default)]
struct IdRef {
    id: Option<Value>,
}

#[derive(Deserialize, Default)]
struct SpaceRef {
    key: Option<String>,
}

#[derive(Deserialize, Default)]
struct Storage {
    value: Option<String>,
    representation: Option<String>,
}

#[derive(Deserialize, Default)]
struct BodyIn {
    storage: Option<Storage>,
    #[serde(flatten)]
    other: serde_json::Map<String, Value>,
}

#[derive(Deserialize, Default)]
struct VersionIn {
    number: Option<u32>,
    message: Option<String>,
    #[serde(rename = "minorEdit", default)]
    minor_edit: bool,
}

#[derive(Deserialize, Default)]
pub(crate) struct ContentIn {
    #[serde(rename = "type")]
    kind: Option<String>,
    title: Option<String>,
    space: Option<SpaceRef>,
    ancestors: Option<Vec<IdRef>>,
    body: Option<BodyIn>,
    version: Option<VersionIn>,
}

fn id_of(app: &super::App, v: &Value) -> Result<u64, ApiError> {
    match v {
        Value::String(s) => app.parse_id(s),
        Value::Number(n) => n
            .as_u64()
            .ok_or_else(|| ApiError::v1(400, "Invalid content id")),
        _ => Err(ApiError::v1(400, "Invalid content id")),
    }
}

fn parse_json<T: for<'de> Deserialize<'de>>(body: &[u8]) -> Result<T, ApiError> {
    serde_json::from_slice(body)
        .map_err(|e| ApiError::v1(400, format!("Could not parse request body: {e}")))
}

fn written_expand() -> Expand {
    Expand::none().with(&[
        "space",
        "history",
        "version",
        "ancestors",
        "container",
        "body.storage",
    ])
}

pub(crate) async fn create(
    State(app): State<Shared>,
    body: axum::body::Bytes,
) -> Result<Json<Value>, ApiError> {
    let input: ContentIn = parse_json(&body)?;
    let kind = match input.kind.as_deref().unwrap_or("page") {
        "page" => ContentKind::Page,
        "blogpost" => ContentKind::Blogpost,
        other => {
            return Err(ApiError::v1(
                400,
                format!("Content type {other} cannot be created with this resource"),
            ))
        }
    };
    let space = input
        .space
        .and_then(|s| s.key)
        .ok_or_else(|| ApiError::v1(400, "Space key is required"))?;
    let title = input.title.unwrap_or_default();
    let body_text = input
        .body
        .and_then(|b| b.storage)
        .and_then(|s| s.value)
        .unwrap_or_default();
    let id = {
        let mut store = app.store();
        let parent = match input.ancestors.as_ref().and_then(|a| a.last()) {
            Some(IdRef { id: Some(v) }) => Some(id_of(&app, v)?),
            _ => None,
        };
        // A page created without a parent goes under the space's home page, as the UI does.
        let parent = match (kind, parent) {
            (ContentKind::Page, None) => store.space(&space).map(|s| s.homepage),
            (_, p) => p,
        };
        store.create_content(kind, &space, &title, parent, body_text, clock::now_ms())?
    };
    app.persist().await;
    let store = app.store();
    let c = store.get(id).expect("just created");
    Ok(Json(render::content(&app, &store, c, &written_expand())))
}

/// The storage value of a written body. Only the storage representation is accepted (this
/// server does not convert wiki markup or the editor format); a body without one is a 400.
fn storage_value(body: Option<BodyIn>) -> Result<Option<String>, ApiError> {
    let Some(b) = body else { return Ok(None) };
    match b.storage {
        Some(Storage {
            value: Some(v),
            representation,
        }) if representation.as_deref().map_or(true, |r| r == "storage") => Ok(Some(v)),
        Some(_) => Err(ApiError::v1(
            400,
            "com.atlassian.confluence.api.service.exceptions.BadRequestException: Body storage must have a value and the representation 'storage'",
        )),
        None if b.other.is_empty() => Ok(None),
        None => Err(ApiError::v1(
            400,
            "com.atlassian.confluence.api.service.exceptions.BadRequestException: Only the storage representation can be written to this server",
        )),
    }
}

/// `PUT /content/{id}` (`ContentUpdate`): `version.number` must be the current number + 1
/// (else 409, [`crate::store::STALE_VERSION`]); `type` and `title` are required for pages and
/// blog posts (400, per the spec's 400 "missing required parameters (version, type, title)";
/// the title may be the current one). `version.message` and `version.minorEdit` are kept with
/// the new version. The id never changes.
///
/// A PUT without `body` keeps the current body. The spec only says `body` is "the updated body
/// of the content" and does not require it (`ContentUpdate.required` is `type` and `version`);
/// atlassian-python-api treats it as optional for title-only updates (issue #575, 2020). Whether
/// a real site then keeps or blanks the body is [unverified]; clients should send the body they
/// mean to keep, as ours does.
pub(crate) async fn update(
    State(app): State<Shared>,
    Path(id): Path<String>,
    body: axum::body::Bytes,
) -> Result<Json<Value>, ApiError> {
    let id = app.parse_id(&id)?;
    let input: ContentIn = parse_json(&body)?;
    let version = input.version.unwrap_or_default();
    let number = version
        .number
        .ok_or_else(|| ApiError::v1(400, "Version number is required to update content"))?;
    {
        let mut store = app.store();
        let kind = store
            .get_current(id)
            .map(|c| c.kind)
            .map_err(ApiError::from)?;
        match input.kind.as_deref() {
            None => {
                return Err(ApiError::v1(
                    400,
                    "com.atlassian.confluence.api.service.exceptions.BadRequestException: Type is required to update content",
                ))
            }
            Some(t) if t != kind.as_str() => {
                return Err(ApiError::v1(
                    400,
                    format!("com.atlassian.confluence.api.service.exceptions.BadRequestException: Content type {t} does not match the type of content {id}"),
                ))
            }
            Some(_) => {}
        }
        if input.title.is_none() && kind != ContentKind::Attachment {
            return Err(ApiError::v1(
                400,
                "com.atlassian.confluence.api.service.exceptions.BadRequestException: Title is required to update a page or blog post",
            ));
        }
        let parent = match input.ancestors.as_ref().and_then(|a| a.last()) {
            Some(IdRef { id: Some(v) }) => Some(id_of(&app, v)?),
            _ => None,
        };
        let body_text = storage_value(input.body)?;
        let change = ContentChange {
            number,
            title: input.title.as_deref(),
            parent,
            body: body_text,
            message: version.message.as_deref().unwrap_or(""),
            minor_edit: version.minor_edit,
        };
        store.update_content(id, change, clock::now_ms())?;
    }
    app.persist().await;
    let store = app.store();
    let c = store.get(id).expect("just updated");
    Ok(Json(render::content(&app, &store, c, &written_expand())))
}

/// `DELETE /content/{id}` trashes; with `status=trashed` it purges trashed content.
pub(crate) async fn delete(
    State(app): State<Shared>,
    Path(id): Path<String>,
    p: Params,
) -> Result<Response, ApiError> {
    let id = app.parse_id(&id)?;
    let purge = p.get("status") == Some("trashed");
    let removed = {
        let mut store = app.store();
        if purge {
            store.purge(id)?
        } else {
            store.trash(id)?;
            Vec::new()
        }
    };
    app.persist().await;
    for f in &removed {
        app.blobs.remove(f);
    }
    Ok(StatusCode::NO_CONTENT.into_response())
}

pub(crate) async fn children_map(
    State(app): State<Shared>,
    Path(id): Path<String>,
    p: Params,
) -> Result<Json<Value>, ApiError> {
    let id = app.parse_id(&id)?;
    let ex = Expand::from_params(&p);
    let store = app.store();
    let c = store.get_current(id)?;
    Ok(Json(render::children(&app, &store, c, &ex)))
}

pub(crate) async fn children_of_type(
    State(app): State<Shared>,
    Path((id, kind)): Path<(String, String)>,
    p: Params,
) -> Result<Json<Value>, ApiError> {
    let cid = app.parse_id(&id)?;
    let ex = Expand::from_params(&p);
    let w = Window::v1(&app, &p, 25)?;
    let store = app.store();
    let c = store.get_current(cid)?;
    let ids = match kind.as_str() {
        "page" => store.child_pages(c.id),
        "comment" => Vec::new(),
        "folder" if app.is_cloud() => Vec::new(),
        other => {
            return Err(ApiError::v1(
                400,
                format!(
                    "Invalid child type {other} for parent of type {}",
                    c.kind.as_str()
                ),
            ))
        }
    };
    let results = render::contents(&app, &store, &w.slice(&ids), &ex);
    Ok(Json(v1_envelope(
        &app,
        results,
        w,
        ids.len(),
        &format!("/rest/api/content/{id}/child/{kind}"),
        &p,
        &["expand"],
    )))
}

pub(crate) async fn history(
    State(app): State<Shared>,
    Path(id): Path<String>,
    p: Params,
) -> Result<Json<Value>, ApiError> {
    let id = app.parse_id(&id)?;
    let store = app.store();
    let c = visible(&store, id, &p)?;
    let ex = Expand::from_params(&p)
        .prefixed("history")
        .with(&["history"]);
    let full = render::content(&app, &store, c, &ex);
    Ok(Json(full["history"].clone()))
}

fn version_json(
    app: &super::App,
    store: &crate::store::Store,
    c: &Content,
    v: &crate::model::Version,
    ex: &Expand,
) -> Value {
    let mut o = render::version(app, c, v);
    if ex.has("content") {
        o["content"] = render::content_at(app, store, c, v, &ex.below("content"));
        if let Some(m) = o.get_mut("_expandable").and_then(Value::as_object_mut) {
            m.remove("content");
        }
    }
    o
}

/// Cloud `GET /rest/api/content/{id}/version`, DC `GET /rest/experimental/content/{id}/version`:
/// newest first.
pub(crate) async fn versions(
    State(app): State<Shared>,
    Path(id): Path<String>,
    p: Params,
) -> Result<Json<Value>, ApiError> {
    let cid = app.parse_id(&id)?;
    let ex = Expand::from_params(&p);
    let w = Window::v1(&app, &p, 200)?;
    let store = app.store();
    let c = store.get_current(cid)?;
    let all: Vec<&crate::model::Version> = c.versions.iter().rev().collect();
    let results = w
        .slice(&all)
        .into_iter()
        .map(|v| version_json(&app, &store, c, v, &ex))
        .collect();
    let path = if app.is_cloud() {
        format!("/rest/api/content/{id}/version")
    } else {
        format!("/rest/experimental/content/{id}/version")
    };
    Ok(Json(v1_envelope(
        &app,
        results,
        w,
        all.len(),
        &path,
        &p,
        &["expand"],
    )))
}

pub(crate) async fn version_one(
    State(app): State<Shared>,
    Path((id, number)): Path<(String, u32)>,
    p: Params,
) -> Result<Json<Value>, ApiError> {
    let cid = app.parse_id(&id)?;
    let ex = Expand::from_params(&p);
    let store = app.store();
    let c = store.get_current(cid)?;
    let v = c
        .version(number)
        .ok_or_else(|| ApiError::v1(404, format!("No version {number} of content {id}")))?;
    Ok(Json(version_json(&app, &store, c, v, &ex)))
}

/// `DELETE …/content/{id}/version/{n}`: drops a historical version (204); the current
/// version cannot be deleted (400).
pub(crate) async fn delete_version(
    State(app): State<Shared>,
    Path((id, number)): Path<(String, u32)>,
) -> Result<Response, ApiError> {
    let cid = app.parse_id(&id)?;
    let removed = app.store().delete_version(cid, number)?;
    app.persist().await;
    if let Some(f) = removed {
        app.blobs.remove(&f);
    }
    Ok(StatusCode::NO_CONTENT.into_response())
}
