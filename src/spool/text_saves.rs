//! Page texts in the spool: saves that the server refused or could not take.
//!
//! A text save is one `PUT` of the page based on the version the text was made from, so it
//! needs none of an attachment's machinery (no streaming, no size check to tell whether it
//! landed). It is kept apart from `uploader.rs`'s attachment path for that reason, and shares
//! only the loop and the bookkeeping. A transient failure is retried like an upload; a
//! conflict (someone saved a newer version) is never retried blindly: it waits, `Failed`,
//! for `confluencefs pending --retry`, which merges the two texts when their changes touch
//! different blocks ([`retry_text`]) and otherwise leaves the merge to the user.

use std::sync::Arc;

use crate::confluence::{Client, ClientError, Page};
use crate::markdown;

use super::record::{EntryState, SpoolEntry, UploadRecord, UploadTarget};
use super::upload_error::UploadError;

/// How a text entry's delivery ended.
#[derive(Debug)]
pub enum TextOutcome {
    /// The page has the text now.
    Saved(Box<Page>),
    /// Someone saved another version since the text's base, and the two do not merge.
    Conflict {
        /// The page's version now.
        current: u64,
    },
}

/// The page a text entry updates, as its record describes it (enough for a `PUT`).
fn page_of(record: &UploadRecord) -> Option<(Page, u64, &str)> {
    let UploadTarget::PageText {
        page_id,
        kind,
        title,
        space_key,
        base_version,
        base_body,
        ..
    } = &record.target
    else {
        return None;
    };
    let page = Page {
        id: page_id.clone(),
        kind: *kind,
        title: title.clone(),
        status: "current".into(),
        space_key: space_key.clone(),
        parent_id: None,
        version: *base_version,
        modified: None,
        created: None,
        author: None,
        web_url: None,
        fs: None,
        body: None,
        ancestor_titles: None,
        child_types: Default::default(),
    };
    Some((page, *base_version, base_body))
}

/// Delivers a text entry: a `PUT` on its base when the page is still there; when the page
/// moved on, either our own save landed already, or — with `merge` — the two texts are merged
/// block by block, or it is a conflict.
pub async fn deliver_text(
    client: &Client,
    entry: &SpoolEntry,
    merge: bool,
) -> Result<TextOutcome, UploadError> {
    let record = &entry.record;
    let Some((mut page, base, base_body)) = page_of(record) else {
        return Err(UploadError::Client(Arc::new(ClientError::Config(
            "not a page text entry".into(),
        ))));
    };
    let ours = std::fs::read_to_string(&entry.data_path).map_err(|e| {
        UploadError::Client(Arc::new(ClientError::Config(format!(
            "cannot read the spooled text: {e}"
        ))))
    })?;
    let current = client.get_page(&page.id).await?;
    let theirs = current.body.as_deref().unwrap_or_default();
    page.title = current.title.clone();
    page.space_key = current.space_key.clone().or(page.space_key);
    let (on, text) = if current.version == base {
        (base, ours)
    } else if markdown::equivalent(theirs, &ours) {
        // Ours, landed (an answer lost on the way), or the same edit made twice.
        return Ok(TextOutcome::Saved(Box::new(current)));
    } else if merge {
        match markdown::merge(base_body, theirs, &ours) {
            Some(merged) => (current.version, merged),
            None => {
                return Ok(TextOutcome::Conflict {
                    current: current.version,
                })
            }
        }
    } else {
        return Ok(TextOutcome::Conflict {
            current: current.version,
        });
    };
    let comment = record.comment.as_str();
    match client
        .update_page_body(&page, on, &text, comment, record.minor_edit)
        .await
    {
        Ok(saved) => Ok(TextOutcome::Saved(Box::new(saved))),
        Err(ClientError::Conflict { .. }) => {
            let now = client.get_page(&page.id).await?;
            Ok(TextOutcome::Conflict {
                current: now.version,
            })
        }
        Err(err) => Err(err.into()),
    }
}

/// The state a text entry is left in after a conflict.
pub fn conflict_state(base: u64, current: u64) -> EntryState {
    EntryState::Failed {
        errno: libc::ESTALE,
        reason: format!(
            "conflict: this text was based on version {base}, the page is at version {current} \
             now; `confluencefs pending --retry ID` merges it onto version {current} when the \
             two edits touch different blocks, otherwise merge by hand (the text is the entry's \
             data file) and `confluencefs pending --drop ID`"
        ),
    }
}

/// `pending --retry` of a text entry: merged onto the current version where the changes
/// touch different blocks. Returns the outcome; the entry is removed when saved, marked a
/// conflict otherwise.
pub async fn retry_text(
    client: &Client,
    spool: &super::Spool,
    entry: &SpoolEntry,
) -> Result<TextOutcome, UploadError> {
    let outcome = deliver_text(client, entry, true).await?;
    match &outcome {
        TextOutcome::Saved(_) => {
            spool.remove(&entry.id).map_err(UploadError::Spool)?;
        }
        TextOutcome::Conflict { current } => {
            let mut failed = entry.clone();
            if let UploadTarget::PageText { base_version, .. } = &entry.record.target {
                failed.record.state = conflict_state(*base_version, *current);
            }
            spool.update(&failed).map_err(UploadError::Spool)?;
        }
    }
    Ok(outcome)
}
