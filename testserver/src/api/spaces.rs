//! v1 space routes: the space list (sorted by key), one space, and a space's content grouped
//! by type (`{page: ContentArray, blogpost: ContentArray}`), ordered by content id.

use axum::extract::{Path, State};
use axum::Json;
use serde_json::{json, Value};

use super::errors::ApiError;
use super::paging::{v1_envelope, Window};
use super::render;
use super::{Expand, Params, Shared};
use crate::model::ContentKind;

pub(crate) async fn list(State(app): State<Shared>, p: Params) -> Result<Json<Value>, ApiError> {
    let ex = Expand::from_params(&p);
    let w = Window::v1(&app, &p, 25)?;
    let keys = p.list("spaceKey");
    let ids: Vec<u64> = p
        .list("spaceId")
        .iter()
        .filter_map(|s| s.parse().ok())
        .collect();
    let store = app.store();
    let spaces: Vec<&crate::model::Space> = store
        .spaces
        .values()
        .filter(|s| keys.is_empty() || keys.contains(&s.key))
        .filter(|s| ids.is_empty() || ids.contains(&s.id))
        .collect();
    let results = w
        .slice(&spaces)
        .into_iter()
        .map(|s| render::space(&app, &store, s, &ex))
        .collect();
    Ok(Json(v1_envelope(
        &app,
        results,
        w,
        spaces.len(),
        "/rest/api/space",
        &p,
        &["spaceKey", "spaceId", "type", "status", "expand"],
    )))
}

pub(crate) async fn one(
    State(app): State<Shared>,
    Path(key): Path<String>,
    p: Params,
) -> Result<Json<Value>, ApiError> {
    let ex = Expand::from_params(&p);
    let store = app.store();
    let s = store
        .space(&key)
        .ok_or_else(|| ApiError::v1(404, format!("No space with key : {key}")))?;
    Ok(Json(render::space(&app, &store, s, &ex)))
}

fn typed_array(
    app: &super::App,
    store: &crate::store::Store,
    key: &str,
    kind: ContentKind,
    p: &Params,
) -> Result<Value, ApiError> {
    let ex = Expand::from_params(p);
    let w = Window::v1(app, p, 25)?;
    let root_only = p.get("depth") == Some("root");
    let ids: Vec<u64> = store
        .space_contents(key)
        .filter(|c| c.kind == kind && c.is_current())
        .filter(|c| !(root_only && kind == ContentKind::Page && c.parent.is_some()))
        .map(|c| c.id)
        .collect();
    let results = render::contents(app, store, &w.slice(&ids), &ex);
    Ok(v1_envelope(
        app,
        results,
        w,
        ids.len(),
        &format!("/rest/api/space/{key}/content/{}", kind.as_str()),
        p,
        &["depth", "expand"],
    ))
}

pub(crate) async fn content(
    State(app): State<Shared>,
    Path(key): Path<String>,
    p: Params,
) -> Result<Json<Value>, ApiError> {
    let store = app.store();
    if store.space(&key).is_none() {
        return Err(ApiError::v1(404, format!("No space with key : {key}")));
    }
    let page = typed_array(&app, &store, &key, ContentKind::Page, &p)?;
    let blog = typed_array(&app, &store, &key, ContentKind::Blogpost, &p)?;
    Ok(Json(json!({
        "page": page,
        "blogpost": blog,
        "_links": {"base": app.base_url, "context": app.context},
    })))
}

pub(crate) async fn content_of_type(
    State(app): State<Shared>,
    Path((key, kind)): Path<(String, String)>,
    p: Params,
) -> Result<Json<Value>, ApiError> {
    let kind = match kind.as_str() {
        "page" => ContentKind::Page,
        "blogpost" => ContentKind::Blogpost,
        other => return Err(ApiError::v1(400, format!("Invalid content type: {other}"))),
    };
    let store = app.store();
    if store.space(&key).is_none() {
        return Err(ApiError::v1(404, format!("No space with key : {key}")));
    }
    Ok(Json(typed_array(&app, &store, &key, kind, &p)?))
}
