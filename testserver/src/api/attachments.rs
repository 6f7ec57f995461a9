//! v1 attachment routes: list a container's attachments, create (POST, create-only), upsert
//! (PUT, Cloud only; Datacenter answers 405), a new version by id (`/{attId}/data`), and
//! rename/move by JSON (`PUT /{attId}`).
//!
//! Bytes are streamed to disk before the store is locked; the store is then changed in one
//! short critical section, and duplicate names are checked for the whole request before any
//! file is committed, so a refused request leaves nothing behind.

use axum::extract::{Path, Request, State};
use axum::http::{header, HeaderValue};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Deserialize;
use serde_json::{json, Value};

use super::errors::ApiError;
use super::paging::{v1_envelope, Window};
use super::render;
use super::upload::{read_upload, IncomingFile, Upload, UploadError};
use super::{Expand, Params, Shared};
use crate::blobs::new_uuid;
use crate::clock;
use crate::model::{Blob, ContentKind, FileVersion};
use crate::store::{Store, DUPLICATE_ATTACHMENT};

pub(crate) async fn list(
    State(app): State<Shared>,
    Path(id): Path<String>,
    p: Params,
) -> Result<Json<Value>, ApiError> {
    let cid = app.parse_id(&id)?;
    // `metadata` is expanded by default on this resource.
    let ex = Expand::from_params(&p).with(&["metadata"]);
    let w = Window::v1(&app, &p, 25)?;
    let filename = p.get("filename");
    let media_type = p.get("mediaType");
    let store = app.store();
    let c = store.get_current(cid)?;
    if c.kind == ContentKind::Attachment {
        return Err(ApiError::v1(404, format!("No content found with id: {id}")));
    }
    let ids: Vec<u64> = store
        .attachments_of(cid, true)
        .into_iter()
        .filter(|i| {
            let Some(a) = store.get(*i) else { return false };
            filename.map_or(true, |f| a.title == f)
                && media_type.map_or(true, |m| a.file().is_some_and(|f| f.media_type == m))
        })
        .collect();
    let results = render::contents(&app, &store, &w.slice(&ids), &ex);
    Ok(Json(v1_envelope(
        &app,
        results,
        w,
        ids.len(),
        &format!("/rest/api/content/{id}/child/attachment"),
        &p,
        &["expand", "filename", "mediaType"],
    )))
}

fn upload_expand() -> Expand {
    Expand::none().with(&["version", "container", "metadata"])
}

fn file_version(app: &super::App, f: &IncomingFile) -> Result<FileVersion, ApiError> {
    let file_id = new_uuid();
    app.blobs
        .commit(&f.path, &file_id)
        .map_err(|e| ApiError::v1(500, format!("storing the upload: {e}")))?;
    Ok(FileVersion {
        file_id,
        size: f.size,
        media_type: f.media_type.clone(),
        blob: Blob::Stored,
    })
}

fn check_container(store: &Store, cid: u64) -> Result<(), ApiError> {
    let c = store.get_current(cid)?;
    if c.kind == ContentKind::Attachment {
        return Err(ApiError::v1(
            404,
            format!("No content found with id: {cid}"),
        ));
    }
    Ok(())
}

/// Applies an upload: POST creates only (400 on any existing name), PUT creates or adds a
/// version. Returns the ids touched, in request order.
fn apply(app: &super::App, cid: u64, upload: &Upload, upsert: bool) -> Result<Vec<u64>, ApiError> {
    let now = clock::now_ms();
    let mut store = app.store();
    check_container(&store, cid)?;
    if !upsert {
        let mut seen = std::collections::HashSet::new();
        for f in &upload.files {
            if store.find_attachment(cid, &f.name).is_some() || !seen.insert(f.name.as_str()) {
                return Err(ApiError::v1(
                    400,
                    format!("{DUPLICATE_ATTACHMENT}{}", f.name),
                ));
            }
        }
    }
    let mut ids = Vec::new();
    for (i, f) in upload.files.iter().enumerate() {
        let fv = file_version(app, f)?;
        let id = match store.find_attachment(cid, &f.name) {
            Some(existing) => {
                store.add_attachment_version(
                    existing,
                    fv,
                    upload.comment(i),
                    upload.minor_edit,
                    now,
                )?;
                existing
            }
            None => {
                store.add_attachment(cid, &f.name, fv, upload.comment(i), upload.minor_edit, now)?
            }
        };
        ids.push(id);
    }
    Ok(ids)
}

/// Reads a multipart upload request's body into `incoming/`.
async fn read_request(app: &Shared, req: Request) -> Result<Upload, ApiError> {
    let content_type = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    read_upload(
        content_type.as_deref(),
        req.into_body(),
        &app.blobs,
        app.config.max_attachment_size,
    )
    .await
    .map_err(|e| match (e, app.config.oversize_status) {
        // The v1 spec documents 404 for "exceeds the maximum configured attachment size".
        (e @ UploadError::TooLarge(_), 404) => ApiError::v1(404, e.to_string()),
        (e, _) => e.into(),
    })
}

async fn receive(
    app: &Shared,
    id: &str,
    req: Request,
    upsert: bool,
) -> Result<Json<Value>, ApiError> {
    let cid = app.parse_id(id)?;
    check_container(&app.store(), cid)?;
    let upload = read_request(app, req).await?;
    let ids = apply(app, cid, &upload, upsert)?;
    app.persist().await;
    let store = app.store();
    let results: Vec<Value> = ids
        .iter()
        .filter_map(|i| store.get(*i))
        .map(|a| render::content(app, &store, a, &upload_expand()))
        .collect();
    Ok(Json(json!({
        "results": results,
        "size": results.len(),
        "_links": {"base": app.base_url, "context": app.context},
    })))
}

pub(crate) async fn create(
    State(app): State<Shared>,
    Path(id): Path<String>,
    p: Params,
    req: Request,
) -> Result<Json<Value>, ApiError> {
    // Datacenter's `allowDuplicated=true` (AttachmentService.addAttachments(…, allowDuplicated,
    // …)): read here as "a same-named upload becomes a new version". The exact semantics are
    // unverified (docs/CONFLUENCE.md §1.2).
    let upsert = !app.is_cloud() && p.flag("allowDuplicated");
    receive(&app, &id, req, upsert).await
}

pub(crate) async fn create_or_update(
    State(app): State<Shared>,
    Path(id): Path<String>,
    req: axum::extract::Request,
) -> Result<Response, ApiError> {
    if !app.is_cloud() {
        // Datacenter has no upsert (mcp-atlassian#1378).
        let mut r = axum::http::StatusCode::METHOD_NOT_ALLOWED.into_response();
        r.headers_mut()
            .insert(header::ALLOW, HeaderValue::from_static("GET,POST,OPTIONS"));
        return Ok(r);
    }
    Ok(receive(&app, &id, req, true).await?.into_response())
}

fn attachment_of(store: &Store, cid: u64, att: u64) -> Result<(), ApiError> {
    match store.get(att) {
        Some(a) if a.is_current() && a.kind == ContentKind::Attachment && a.parent == Some(cid) => {
            Ok(())
        }
        _ => Err(ApiError::v1(
            404,
            format!("No attachment found with id: {att} on content {cid}"),
        )),
    }
}

/// `POST …/child/attachment/{attId}/data`: a new version of the bytes, same id.
pub(crate) async fn new_version(
    State(app): State<Shared>,
    Path((id, att)): Path<(String, String)>,
    req: Request,
) -> Result<Json<Value>, ApiError> {
    let cid = app.parse_id(&id)?;
    let aid = app.parse_id(&att)?;
    attachment_of(&app.store(), cid, aid)?;
    let upload = read_request(&app, req).await?;
    {
        let mut store = app.store();
        attachment_of(&store, cid, aid)?;
        let f = &upload.files[0];
        let fv = file_version(&app, f)?;
        store.add_attachment_version(
            aid,
            fv,
            upload.comment(0),
            upload.minor_edit,
            clock::now_ms(),
        )?;
    }
    app.persist().await;
    let store = app.store();
    let a = store.get(aid).expect("just updated");
    Ok(Json(render::content(&app, &store, a, &upload_expand())))
}

#[derive(Deserialize)]
struct VersionRef {
    number: Option<u32>,
}

#[derive(Deserialize)]
struct ContainerRef {
    id: Option<Value>,
}

#[derive(Deserialize)]
struct MetadataIn {
    #[serde(rename = "mediaType")]
    media_type: Option<String>,
}

#[derive(Deserialize)]
struct AttachmentUpdate {
    version: Option<VersionRef>,
    title: Option<String>,
    container: Option<ContainerRef>,
    metadata: Option<MetadataIn>,
}

/// `PUT …/child/attachment/{attId}`: rename and/or move; `version.number` must be current.
pub(crate) async fn update_properties(
    State(app): State<Shared>,
    Path((id, att)): Path<(String, String)>,
    body: axum::body::Bytes,
) -> Result<Json<Value>, ApiError> {
    let cid = app.parse_id(&id)?;
    let aid = app.parse_id(&att)?;
    let input: AttachmentUpdate = serde_json::from_slice(&body)
        .map_err(|e| ApiError::v1(400, format!("Could not parse request body: {e}")))?;
    let number = input
        .version
        .and_then(|v| v.number)
        .ok_or_else(|| ApiError::v1(400, "Version number is required"))?;
    let container = match input.container.and_then(|c| c.id) {
        Some(Value::String(s)) => Some(app.parse_id(&s)?),
        Some(Value::Number(n)) => n.as_u64(),
        _ => None,
    };
    {
        let mut store = app.store();
        attachment_of(&store, cid, aid)?;
        if let Some(t) = container {
            check_container(&store, t)
                .map_err(|_| ApiError::v1(403, format!("Cannot move attachment to content {t}")))?;
        }
        store.update_attachment(
            aid,
            number,
            input.title.as_deref(),
            container,
            input.metadata.and_then(|m| m.media_type).as_deref(),
        )?;
    }
    app.persist().await;
    let store = app.store();
    let a = store.get(aid).expect("just updated");
    Ok(Json(render::content(&app, &store, a, &upload_expand())))
}
