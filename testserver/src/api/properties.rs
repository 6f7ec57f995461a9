//! v1 content properties on pages, blog posts and attachments: list (limit 10 by default),
//! create, read, versioned update (`version.number` = current + 1; version 1 creates an
//! absent key; anything else is 409, or 404 when absent) and delete (204).

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Deserialize;
use serde_json::Value;

use super::errors::ApiError;
use super::paging::{v1_envelope, Window};
use super::render;
use super::{Params, Shared};
use crate::clock;

pub(crate) async fn list(
    State(app): State<Shared>,
    Path(id): Path<String>,
    p: Params,
) -> Result<Json<Value>, ApiError> {
    let cid = app.parse_id(&id)?;
    let w = Window::v1(&app, &p, 10)?;
    let keys = p.list("key");
    let store = app.store();
    let c = store.get_current(cid)?;
    let props: Vec<&crate::model::Property> = c
        .properties
        .values()
        .filter(|pr| keys.is_empty() || keys.contains(&pr.key))
        .collect();
    let results = w
        .slice(&props)
        .into_iter()
        .map(|pr| render::property(&app, c, pr))
        .collect();
    Ok(Json(v1_envelope(
        &app,
        results,
        w,
        props.len(),
        &format!("/rest/api/content/{id}/property"),
        &p,
        &["key", "expand"],
    )))
}

pub(crate) async fn one(
    State(app): State<Shared>,
    Path((id, key)): Path<(String, String)>,
) -> Result<Json<Value>, ApiError> {
    let cid = app.parse_id(&id)?;
    let store = app.store();
    let c = store.get_current(cid)?;
    let pr = c.properties.get(&key).ok_or_else(|| {
        ApiError::v1(
            404,
            format!("com.atlassian.confluence.api.service.exceptions.NotFoundException: Cannot find property with key {key} on content {id}"),
        )
    })?;
    Ok(Json(render::property(&app, c, pr)))
}

#[derive(Deserialize)]
struct NewProperty {
    key: Option<String>,
    value: Option<Value>,
}

async fn create_inner(
    app: Shared,
    id: String,
    key: Option<String>,
    body: &[u8],
) -> Result<Json<Value>, ApiError> {
    let cid = app.parse_id(&id)?;
    let input: NewProperty = serde_json::from_slice(body)
        .map_err(|e| ApiError::v1(400, format!("Could not parse request body: {e}")))?;
    let key = key
        .or(input.key)
        .ok_or_else(|| ApiError::v1(400, "Property key is required"))?;
    let value = input
        .value
        .ok_or_else(|| ApiError::v1(400, "Property value is required"))?;
    app.store()
        .create_property(cid, &key, value, clock::now_ms())?;
    app.persist().await;
    let store = app.store();
    let c = store.get_current(cid)?;
    Ok(Json(render::property(&app, c, &c.properties[&key])))
}

pub(crate) async fn create(
    State(app): State<Shared>,
    Path(id): Path<String>,
    body: axum::body::Bytes,
) -> Result<Json<Value>, ApiError> {
    create_inner(app, id, None, &body).await
}

pub(crate) async fn create_with_key(
    State(app): State<Shared>,
    Path((id, key)): Path<(String, String)>,
    body: axum::body::Bytes,
) -> Result<Json<Value>, ApiError> {
    create_inner(app, id, Some(key), &body).await
}

#[derive(Deserialize)]
struct PropertyVersion {
    number: Option<u32>,
    #[serde(rename = "minorEdit")]
    minor_edit: Option<bool>,
}

#[derive(Deserialize)]
struct PropertyUpdate {
    value: Option<Value>,
    version: Option<PropertyVersion>,
}

pub(crate) async fn put(
    State(app): State<Shared>,
    Path((id, key)): Path<(String, String)>,
    body: axum::body::Bytes,
) -> Result<Json<Value>, ApiError> {
    let cid = app.parse_id(&id)?;
    let input: PropertyUpdate = serde_json::from_slice(&body)
        .map_err(|e| ApiError::v1(400, format!("Could not parse request body: {e}")))?;
    let value = input
        .value
        .ok_or_else(|| ApiError::v1(400, "Property value is required"))?;
    let version = input
        .version
        .ok_or_else(|| ApiError::v1(400, "Property version is required"))?;
    let number = version
        .number
        .ok_or_else(|| ApiError::v1(400, "Property version number is required"))?;
    app.store().put_property(
        cid,
        &key,
        value,
        number,
        version.minor_edit.unwrap_or(true),
        clock::now_ms(),
    )?;
    app.persist().await;
    let store = app.store();
    let c = store.get_current(cid)?;
    Ok(Json(render::property(&app, c, &c.properties[&key])))
}

pub(crate) async fn delete(
    State(app): State<Shared>,
    Path((id, key)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    let cid = app.parse_id(&id)?;
    app.store().delete_property(cid, &key)?;
    app.persist().await;
    Ok(StatusCode::NO_CONTENT.into_response())
}
