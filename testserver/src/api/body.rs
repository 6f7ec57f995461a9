//! Body representations of a page or blog post: `storage` as stored, `view`/`export_view`/
//! `styled_view`/`anonymous_export_view` as HTML rendered by [`crate::storage`], and
//! `atlas_doc_format` as an ADF document in a JSON string — one place for v1's `expand=body.X`
//! and v2's `body-format=X`, so both APIs always agree.
//!
//! `view` links are context-relative (`/wiki/display/…`), `export_view` links absolute, as the
//! export is meant to be read away from the site. `editor` is answered with the storage value
//! (this server has no editor format).

use super::{render, App};
use crate::config::Flavor;
use crate::model::Content;
use crate::storage::{self, Site};
use crate::store::Store;

/// The representations v1 lists under `body` (in this order).
pub(crate) const V1_REPRESENTATIONS: &[&str] = &[
    "storage",
    "view",
    "export_view",
    "styled_view",
    "editor",
    "anonymous_export_view",
    "atlas_doc_format",
];

fn html(app: &App, store: &Store, c: &Content, storage_value: &str, absolute: bool) -> String {
    let me = render::user(app);
    let user_name = me["displayName"].as_str().unwrap_or("").to_string();
    let user_id = match app.flavor() {
        Flavor::Cloud => render::ACCOUNT_ID.to_string(),
        Flavor::Datacenter => app.config.user.clone(),
    };
    let find_page = |key: &str, title: &str| store.page_by_title(key, title);
    let find_attachment = |container: u64, name: &str| {
        let id = store.find_attachment(container, name)?;
        let v = store.get(id)?.current();
        Some((id, v.number, v.when_ms))
    };
    let prefix = if absolute {
        app.base_url.as_str()
    } else {
        app.context.as_str()
    };
    let site = Site {
        prefix,
        page_id: c.id,
        space_key: &c.space_key,
        title: &c.title,
        cloud: app.is_cloud(),
        user_name: &user_name,
        user_id: &user_id,
        find_page: &find_page,
        find_attachment: &find_attachment,
    };
    storage::to_html(storage_value, &site)
}

/// `storage_value` (the body of some version of `c`) in representation `rep`.
pub(crate) fn represent(
    app: &App,
    store: &Store,
    c: &Content,
    storage_value: &str,
    rep: &str,
) -> String {
    match rep {
        "view" => html(app, store, c, storage_value, false),
        "export_view" | "anonymous_export_view" => html(app, store, c, storage_value, true),
        "styled_view" => format!(
            "<style>.wiki-content {{ font-family: -apple-system, sans-serif; line-height: 1.43; }} .wiki-content pre {{ background: #f4f5f7; }}</style><div class=\"wiki-content\">{}</div>",
            html(app, store, c, storage_value, true)
        ),
        "atlas_doc_format" => storage::to_adf(storage_value),
        _ => storage_value.to_string(),
    }
}
