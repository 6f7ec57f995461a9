//! The site's content and every rule about changing it, independent of HTTP.
//!
//! Records live in ordered maps keyed by id (Confluence lists "by content id ascending"), and
//! the store keeps secondary indexes — children by parent, attachments by container, content by
//! space, versions by media file id — so that listing 20,000 attachments across 2,000 pages
//! never scans the whole site. Indexes are rebuilt from the records when a state file is loaded;
//! only the records are persisted. All methods are synchronous and cheap: callers hold a mutex.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use serde::{Deserialize, Serialize};

use crate::model::{Blob, Content, ContentKind, FileVersion, Property, Space, Status, Version};

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub(crate) enum StoreError {
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    BadRequest(String),
    #[error("{0}")]
    Conflict(String),
}

type Result<T> = std::result::Result<T, StoreError>;

/// The first id handed out; real ids are large numbers, and a non-trivial start catches
/// clients that assume small ids.
const FIRST_ID: u64 = 98_305;

pub(crate) const DUPLICATE_ATTACHMENT: &str =
    "com.atlassian.confluence.api.service.exceptions.BadRequestException: Cannot add a new attachment with same file name as an existing attachment: ";

/// The v1 answer to a page update whose version is not the current one + 1, as a live Cloud
/// site sent it in 2026 ("409 ConflictException: Version must be incremented on update. Current
/// version is: 2", a public design note written against a live instance); the package of the
/// exception class follows the `BadRequestException` of docs/CONFLUENCE.md §1.2.
pub(crate) const STALE_VERSION: &str =
    "com.atlassian.confluence.api.service.exceptions.ConflictException: Version must be incremented on update. Current version is: ";

/// A v1 content update: the new version number and whatever else changes.
pub(crate) struct ContentChange<'a> {
    pub number: u32,
    pub title: Option<&'a str>,
    pub parent: Option<u64>,
    pub body: Option<String>,
    pub message: &'a str,
    pub minor_edit: bool,
}

/// What is written to the state file: records only, indexes are derived.
#[derive(Serialize, Deserialize, Default)]
pub(crate) struct Snapshot {
    pub next_id: u64,
    pub spaces: Vec<Space>,
    pub contents: Vec<Content>,
}

#[derive(Default)]
pub(crate) struct Store {
    pub spaces: BTreeMap<String, Space>,
    pub contents: BTreeMap<u64, Content>,
    next_id: u64,
    children: HashMap<u64, BTreeSet<u64>>,
    attachments: HashMap<u64, BTreeSet<u64>>,
    by_space: HashMap<String, BTreeSet<u64>>,
    files: HashMap<String, (u64, u32)>,
    /// (container, filename) → attachments of any status with that name.
    att_titles: HashMap<(u64, String), Vec<u64>>,
    /// (space, lowercased title) → pages of any status with that title.
    page_titles: HashMap<(String, String), Vec<u64>>,
    /// Records changed since the last `take_changes`, for the journal.
    dirty: BTreeSet<u64>,
    dirty_spaces: BTreeSet<String>,
}

/// One journal line: the records changed by one or more mutations, in full, and the ids of
/// records that no longer exist.
#[derive(Serialize, Deserialize, Default)]
pub(crate) struct Changes {
    pub next_id: u64,
    #[serde(default)]
    pub spaces: Vec<Space>,
    #[serde(default)]
    pub contents: Vec<Content>,
    #[serde(default)]
    pub removed: Vec<u64>,
}

fn not_found(id: u64) -> StoreError {
    StoreError::NotFound(format!("No content found with id: ContentId{{id={id}}}"))
}

impl Store {
    pub(crate) fn new() -> Store {
        Store {
            next_id: FIRST_ID,
            ..Store::default()
        }
    }

    pub(crate) fn from_snapshot(snapshot: Snapshot) -> Store {
        let mut store = Store::new();
        store.next_id = snapshot.next_id.max(FIRST_ID);
        for space in snapshot.spaces {
            store.spaces.insert(space.key.clone(), space);
        }
        for content in snapshot.contents {
            store.index(&content);
            store.contents.insert(content.id, content);
        }
        store.dirty.clear();
        store
    }

    /// Replays one journal line over the records.
    pub(crate) fn apply_changes(&mut self, changes: Changes) {
        self.next_id = self.next_id.max(changes.next_id);
        for space in changes.spaces {
            self.spaces.insert(space.key.clone(), space);
        }
        for content in changes.contents {
            if let Some(old) = self.contents.remove(&content.id) {
                self.unindex(&old);
            }
            self.index(&content);
            self.contents.insert(content.id, content);
        }
        for id in changes.removed {
            if let Some(old) = self.contents.remove(&id) {
                self.unindex(&old);
            }
        }
        self.dirty.clear();
        self.dirty_spaces.clear();
    }

    /// Serialises the records changed since the last call as one journal line (None when
    /// nothing changed). Cost is proportional to the change, not to the site.
    pub(crate) fn take_changes(&mut self) -> Option<serde_json::Result<Vec<u8>>> {
        if self.dirty.is_empty() && self.dirty_spaces.is_empty() {
            return None;
        }
        #[derive(Serialize)]
        struct Borrowed<'a> {
            next_id: u64,
            spaces: Vec<&'a Space>,
            contents: Vec<&'a Content>,
            removed: Vec<u64>,
        }
        let dirty = std::mem::take(&mut self.dirty);
        let dirty_spaces = std::mem::take(&mut self.dirty_spaces);
        let line = Borrowed {
            next_id: self.next_id,
            spaces: dirty_spaces
                .iter()
                .filter_map(|k| self.spaces.get(k))
                .collect(),
            contents: dirty
                .iter()
                .filter_map(|id| self.contents.get(id))
                .collect(),
            removed: dirty
                .iter()
                .copied()
                .filter(|id| !self.contents.contains_key(id))
                .collect(),
        };
        Some(serde_json::to_vec(&line))
    }

    /// Forgets pending changes (a full snapshot is about to include them).
    pub(crate) fn clear_changes(&mut self) {
        self.dirty.clear();
        self.dirty_spaces.clear();
    }

    /// Serialises the records without cloning them (the state file of a large site is
    /// written often, under the lock).
    pub(crate) fn write_snapshot(&self, out: &mut Vec<u8>) -> serde_json::Result<()> {
        #[derive(Serialize)]
        struct Borrowed<'a> {
            next_id: u64,
            spaces: Vec<&'a Space>,
            contents: Vec<&'a Content>,
        }
        serde_json::to_writer(
            out,
            &Borrowed {
                next_id: self.next_id,
                spaces: self.spaces.values().collect(),
                contents: self.contents.values().collect(),
            },
        )
    }

    fn index(&mut self, c: &Content) {
        self.dirty.insert(c.id);
        match c.kind {
            ContentKind::Attachment => {
                if let Some(p) = c.parent {
                    self.attachments.entry(p).or_default().insert(c.id);
                    self.att_titles
                        .entry((p, c.title.clone()))
                        .or_default()
                        .push(c.id);
                }
                for v in &c.versions {
                    if let Some(f) = &v.file {
                        self.files.insert(f.file_id.clone(), (c.id, v.number));
                    }
                }
            }
            ContentKind::Page | ContentKind::Blogpost => {
                self.by_space
                    .entry(c.space_key.clone())
                    .or_default()
                    .insert(c.id);
                if let (ContentKind::Page, Some(p)) = (c.kind, c.parent) {
                    self.children.entry(p).or_default().insert(c.id);
                }
                if c.kind == ContentKind::Page {
                    self.page_titles
                        .entry((c.space_key.clone(), c.title.to_lowercase()))
                        .or_default()
                        .push(c.id);
                }
            }
        }
    }

    fn unindex(&mut self, c: &Content) {
        self.dirty.insert(c.id);
        if let Some(p) = c.parent {
            let map = match c.kind {
                ContentKind::Attachment => &mut self.attachments,
                _ => &mut self.children,
            };
            if let Some(set) = map.get_mut(&p) {
                set.remove(&c.id);
            }
            if c.kind == ContentKind::Attachment {
                if let Some(v) = self.att_titles.get_mut(&(p, c.title.clone())) {
                    v.retain(|i| *i != c.id);
                }
            }
        }
        if c.kind == ContentKind::Page {
            if let Some(v) = self
                .page_titles
                .get_mut(&(c.space_key.clone(), c.title.to_lowercase()))
            {
                v.retain(|i| *i != c.id);
            }
        }
        if c.kind != ContentKind::Attachment {
            if let Some(set) = self.by_space.get_mut(&c.space_key) {
                set.remove(&c.id);
            }
        }
        for v in &c.versions {
            if let Some(f) = &v.file {
                self.files.remove(&f.file_id);
            }
        }
    }

    fn touch(&mut self, id: u64) {
        self.dirty.insert(id);
    }

    pub(crate) fn alloc_id(&mut self) -> u64 {
        let id = self.next_id;
        self.next_id += 1;
        id
    }

    pub(crate) fn get(&self, id: u64) -> Option<&Content> {
        self.contents.get(&id)
    }

    pub(crate) fn get_current(&self, id: u64) -> Result<&Content> {
        match self.contents.get(&id) {
            Some(c) if c.is_current() => Ok(c),
            _ => Err(not_found(id)),
        }
    }

    pub(crate) fn space(&self, key: &str) -> Option<&Space> {
        self.spaces.get(key)
    }

    pub(crate) fn space_by_id(&self, id: u64) -> Option<&Space> {
        self.spaces.values().find(|s| s.id == id)
    }

    /// (attachment id, version number) of a media file id.
    pub(crate) fn file(&self, file_id: &str) -> Option<(u64, u32)> {
        self.files.get(file_id).copied()
    }

    /// Current child pages of a page, by id.
    pub(crate) fn child_pages(&self, parent: u64) -> Vec<u64> {
        self.children
            .get(&parent)
            .map(|set| {
                set.iter()
                    .copied()
                    .filter(|id| self.contents.get(id).is_some_and(Content::is_current))
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Attachments of a container, by id; `current_only` hides trashed ones.
    pub(crate) fn attachments_of(&self, container: u64, current_only: bool) -> Vec<u64> {
        self.attachments
            .get(&container)
            .map(|set| {
                set.iter()
                    .copied()
                    .filter(|id| {
                        !current_only || self.contents.get(id).is_some_and(Content::is_current)
                    })
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Pages and blog posts of a space (any status), by id.
    pub(crate) fn space_contents(&self, key: &str) -> impl Iterator<Item = &Content> {
        self.by_space
            .get(key)
            .into_iter()
            .flat_map(|set| set.iter())
            .filter_map(|id| self.contents.get(id))
    }

    /// Ancestors of a page or attachment, root first (for an attachment: its container's
    /// ancestors, then the container).
    pub(crate) fn ancestors(&self, id: u64) -> Vec<u64> {
        let mut out = Vec::new();
        let mut cur = self.contents.get(&id).and_then(|c| c.parent);
        while let Some(p) = cur {
            if out.contains(&p) {
                break;
            }
            out.push(p);
            cur = self.contents.get(&p).and_then(|c| c.parent);
        }
        out.reverse();
        out
    }

    pub(crate) fn create_space(&mut self, key: &str, name: &str, now: i64) -> Result<u64> {
        if self.spaces.contains_key(key) {
            return Err(StoreError::BadRequest(format!(
                "A space already exists with key {key}"
            )));
        }
        let space_id = self.alloc_id();
        self.dirty_spaces.insert(key.to_string());
        self.spaces.insert(
            key.to_string(),
            Space {
                id: space_id,
                key: key.to_string(),
                name: name.to_string(),
                homepage: 0,
                created_ms: now,
            },
        );
        let home = self.create_content(
            ContentKind::Page,
            key,
            &format!("{key} Home"),
            None,
            String::new(),
            now,
        )?;
        if let Some(s) = self.spaces.get_mut(key) {
            s.homepage = home;
        }
        Ok(home)
    }

    /// Gives content that has only its first version the body it was created with (space home
    /// pages are created empty by `create_space`; the demo fills them in). No new version.
    pub(crate) fn set_initial_body(&mut self, id: u64, body: String) -> Result<()> {
        let c = self.content_mut_current(id)?;
        if c.versions.len() != 1 || c.kind == ContentKind::Attachment {
            return Err(StoreError::BadRequest(format!(
                "Content {id} already has later versions"
            )));
        }
        c.body = body;
        Ok(())
    }

    /// The current page titled `title` in a space (titles are unique per space, compared
    /// case-insensitively; an exact match wins).
    pub(crate) fn page_by_title(&self, space: &str, title: &str) -> Option<u64> {
        let ids = self
            .page_titles
            .get(&(space.to_string(), title.to_lowercase()))?;
        let current: Vec<&Content> = ids
            .iter()
            .filter_map(|id| self.contents.get(id))
            .filter(|c| c.is_current())
            .collect();
        current
            .iter()
            .find(|c| c.title == title)
            .or(current.first())
            .map(|c| c.id)
    }

    pub(crate) fn title_taken(&self, space: &str, title: &str, except: Option<u64>) -> bool {
        self.page_titles
            .get(&(space.to_string(), title.to_lowercase()))
            .is_some_and(|ids| {
                ids.iter().any(|id| {
                    Some(*id) != except && self.contents.get(id).is_some_and(Content::is_current)
                })
            })
    }

    fn check_parent(&self, space: &str, parent: u64) -> Result<()> {
        match self.contents.get(&parent) {
            Some(p) if p.is_current() && p.kind == ContentKind::Page && p.space_key == space => {
                Ok(())
            }
            Some(p) if p.is_current() && p.kind == ContentKind::Page => Err(
                StoreError::BadRequest("Can't add a parent from another space".to_string()),
            ),
            _ => Err(StoreError::BadRequest(format!(
                "Could not find parent page with id {parent}"
            ))),
        }
    }

    pub(crate) fn create_content(
        &mut self,
        kind: ContentKind,
        space: &str,
        title: &str,
        parent: Option<u64>,
        body: String,
        now: i64,
    ) -> Result<u64> {
        if !self.spaces.contains_key(space) {
            return Err(StoreError::NotFound(format!("No space with key : {space}")));
        }
        if title.trim().is_empty() {
            return Err(StoreError::BadRequest(
                "Title is required for content of type ".to_string() + kind.as_str(),
            ));
        }
        if kind == ContentKind::Page && self.title_taken(space, title, None) {
            return Err(StoreError::BadRequest(
                "A page with this title already exists: A page already exists with the same TITLE in this space"
                    .to_string(),
            ));
        }
        let parent = match kind {
            ContentKind::Page => {
                if let Some(p) = parent {
                    self.check_parent(space, p)?;
                }
                parent
            }
            _ => None,
        };
        let id = self.alloc_id();
        let content = Content {
            id,
            kind,
            status: Status::Current,
            space_key: space.to_string(),
            title: title.to_string(),
            parent,
            created_ms: now,
            versions: vec![Version {
                number: 1,
                when_ms: now,
                message: String::new(),
                minor_edit: false,
                file: None,
                title: None,
                body: None,
            }],
            body,
            properties: BTreeMap::new(),
        };
        self.index(&content);
        self.contents.insert(id, content);
        Ok(id)
    }

    /// v1 `PUT /content/{id}` for pages and blog posts: a new version, optionally with a new
    /// title, parent or body.
    pub(crate) fn update_content(
        &mut self,
        id: u64,
        change: ContentChange<'_>,
        now: i64,
    ) -> Result<()> {
        let ContentChange {
            number,
            title,
            parent,
            body,
            message,
            minor_edit,
        } = change;
        let c = self.get_current(id)?;
        if c.kind == ContentKind::Attachment {
            return Err(StoreError::BadRequest(
                "Use the attachment resource to update attachments".to_string(),
            ));
        }
        let cur = c.current().number;
        if number != cur + 1 {
            return Err(StoreError::Conflict(format!("{STALE_VERSION}{cur}")));
        }
        let space = c.space_key.clone();
        let kind = c.kind;
        if let Some(t) = title {
            if t.trim().is_empty() {
                return Err(StoreError::BadRequest("Title cannot be empty".to_string()));
            }
            if kind == ContentKind::Page && self.title_taken(&space, t, Some(id)) {
                return Err(StoreError::BadRequest(
                    "A page with this title already exists: A page already exists with the same TITLE in this space"
                        .to_string(),
                ));
            }
        }
        if let (ContentKind::Page, Some(p)) = (kind, parent) {
            self.check_parent(&space, p)?;
            if p == id || self.ancestors(p).contains(&id) {
                return Err(StoreError::BadRequest(
                    "Cannot move a page to be a child of itself or of its descendants".to_string(),
                ));
            }
        }
        let old = self.contents.remove(&id).expect("checked above");
        self.unindex(&old);
        let mut c = old;
        let (old_title, old_body) = (c.title.clone(), c.body.clone());
        if let Some(last) = c.versions.last_mut() {
            last.title = Some(old_title);
            last.body = Some(old_body);
        }
        if let Some(t) = title {
            c.title = t.to_string();
        }
        if kind == ContentKind::Page && parent.is_some() {
            c.parent = parent;
        }
        if let Some(b) = body {
            c.body = b;
        }
        c.versions.push(Version {
            number,
            when_ms: now,
            message: message.to_string(),
            minor_edit,
            file: None,
            title: None,
            body: None,
        });
        self.index(&c);
        self.contents.insert(id, c);
        Ok(())
    }

    fn container_ok(&self, container: u64) -> Result<&Content> {
        let c = self.get_current(container)?;
        if c.kind == ContentKind::Attachment {
            return Err(StoreError::BadRequest(
                "Attachments cannot contain attachments".to_string(),
            ));
        }
        Ok(c)
    }

    pub(crate) fn find_attachment(&self, container: u64, title: &str) -> Option<u64> {
        self.att_titles
            .get(&(container, title.to_string()))?
            .iter()
            .copied()
            .find(|id| self.contents.get(id).is_some_and(Content::is_current))
    }

    pub(crate) fn add_attachment(
        &mut self,
        container: u64,
        title: &str,
        file: FileVersion,
        comment: &str,
        minor_edit: bool,
        now: i64,
    ) -> Result<u64> {
        let space = self.container_ok(container)?.space_key.clone();
        if self.find_attachment(container, title).is_some() {
            return Err(StoreError::BadRequest(format!(
                "{DUPLICATE_ATTACHMENT}{title}"
            )));
        }
        let id = self.alloc_id();
        let content = Content {
            id,
            kind: ContentKind::Attachment,
            status: Status::Current,
            space_key: space,
            title: title.to_string(),
            parent: Some(container),
            created_ms: now,
            versions: vec![Version {
                number: 1,
                when_ms: now,
                message: comment.to_string(),
                minor_edit,
                file: Some(file),
                title: None,
                body: None,
            }],
            body: String::new(),
            properties: BTreeMap::new(),
        };
        self.index(&content);
        self.contents.insert(id, content);
        Ok(id)
    }

    pub(crate) fn add_attachment_version(
        &mut self,
        id: u64,
        file: FileVersion,
        comment: &str,
        minor_edit: bool,
        now: i64,
    ) -> Result<u32> {
        let c = self.get_current(id)?;
        if c.kind != ContentKind::Attachment {
            return Err(StoreError::BadRequest(format!(
                "Content with id {id} is not an attachment"
            )));
        }
        let number = c.current().number + 1;
        self.files.insert(file.file_id.clone(), (id, number));
        self.touch(id);
        let c = self.contents.get_mut(&id).expect("checked above");
        c.versions.push(Version {
            number,
            when_ms: now,
            message: comment.to_string(),
            minor_edit,
            file: Some(file),
            title: None,
            body: None,
        });
        Ok(number)
    }

    /// v1 `PUT …/child/attachment/{attId}`: rename and/or move. The version must be the
    /// current one: properties changes do not create a version.
    pub(crate) fn update_attachment(
        &mut self,
        id: u64,
        number: u32,
        title: Option<&str>,
        container: Option<u64>,
        media_type: Option<&str>,
    ) -> Result<()> {
        let c = self.get_current(id)?;
        if c.kind != ContentKind::Attachment {
            return Err(StoreError::BadRequest(format!(
                "Content with id {id} is not an attachment"
            )));
        }
        let cur = c.current().number;
        if number != cur {
            return Err(StoreError::Conflict(format!(
                "Version must match the current version of the attachment. Current version is: {cur}"
            )));
        }
        let old_container = c.parent.unwrap_or(0);
        let new_title = title.unwrap_or(&c.title).to_string();
        let new_container = container.unwrap_or(old_container);
        if new_title.trim().is_empty() || new_title.contains('/') {
            return Err(StoreError::BadRequest(format!(
                "Invalid attachment file name: {new_title}"
            )));
        }
        let target_space = self.container_ok(new_container)?.space_key.clone();
        if let Some(other) = self.find_attachment(new_container, &new_title) {
            if other != id {
                return Err(StoreError::BadRequest(format!(
                    "{DUPLICATE_ATTACHMENT}{new_title}"
                )));
            }
        }
        let old = self.contents.remove(&id).expect("checked above");
        self.unindex(&old);
        let mut c = old;
        c.title = new_title;
        c.parent = Some(new_container);
        c.space_key = target_space;
        if let Some(mt) = media_type {
            if let Some(f) = c.versions.last_mut().and_then(|v| v.file.as_mut()) {
                f.media_type = mt.to_string();
            }
        }
        self.index(&c);
        self.contents.insert(id, c);
        Ok(())
    }

    /// Moves current content to the trash. Child pages of a trashed page move up to its
    /// parent, as Confluence does.
    pub(crate) fn trash(&mut self, id: u64) -> Result<()> {
        let c = self.get_current(id)?;
        let (kind, parent) = (c.kind, c.parent);
        if kind == ContentKind::Page {
            let kids = self.child_pages(id);
            for kid in kids {
                let old = self.contents.remove(&kid).expect("indexed");
                self.unindex(&old);
                let mut moved = old;
                moved.parent = parent;
                self.index(&moved);
                self.contents.insert(kid, moved);
            }
        }
        self.touch(id);
        if let Some(c) = self.contents.get_mut(&id) {
            c.status = Status::Trashed;
        }
        Ok(())
    }

    /// Removes trashed content for good. Returns the stored files that nothing references
    /// any more, for the caller to delete.
    pub(crate) fn purge(&mut self, id: u64) -> Result<Vec<FileVersion>> {
        match self.contents.get(&id) {
            Some(c) if c.status == Status::Trashed => {}
            _ => {
                return Err(StoreError::NotFound(format!(
                    "No trashed content found with id: ContentId{{id={id}}}"
                )))
            }
        }
        let mut ids = vec![id];
        ids.extend(self.attachments_of(id, false));
        let mut files = Vec::new();
        for i in ids {
            if let Some(c) = self.contents.remove(&i) {
                self.unindex(&c);
                for v in c.versions {
                    if let Some(f) = v.file {
                        if matches!(f.blob, Blob::Stored) {
                            files.push(f);
                        }
                    }
                }
            }
        }
        Ok(files)
    }

    /// Deletes a historical version (never the current one). Returns the file of that
    /// version, if any, for the caller to delete.
    pub(crate) fn delete_version(&mut self, id: u64, number: u32) -> Result<Option<FileVersion>> {
        let c = self.get_current(id)?;
        if c.current().number == number {
            return Err(StoreError::BadRequest(
                "Cannot delete the current version of content".to_string(),
            ));
        }
        let Some(pos) = c.versions.iter().position(|v| v.number == number) else {
            return Err(StoreError::NotFound(format!(
                "No version {number} of content {id}"
            )));
        };
        self.touch(id);
        let c = self.contents.get_mut(&id).expect("checked above");
        let removed = c.versions.remove(pos);
        let file = removed.file;
        if let Some(f) = &file {
            self.files.remove(&f.file_id);
        }
        Ok(file.filter(|f| matches!(f.blob, Blob::Stored)))
    }

    fn content_mut_current(&mut self, id: u64) -> Result<&mut Content> {
        self.touch(id);
        match self.contents.get_mut(&id) {
            Some(c) if c.is_current() => Ok(c),
            _ => Err(not_found(id)),
        }
    }

    /// v1 `POST …/property` and v2 `POST …/properties`: create, 400 when the key exists.
    pub(crate) fn create_property(
        &mut self,
        id: u64,
        key: &str,
        value: serde_json::Value,
        now: i64,
    ) -> Result<Property> {
        if key.is_empty() || key.len() > 255 {
            return Err(StoreError::BadRequest(
                "Property key must be between 1 and 255 characters".to_string(),
            ));
        }
        self.get_current(id)?;
        if self.contents[&id].properties.contains_key(key) {
            return Err(StoreError::BadRequest(format!(
                "com.atlassian.confluence.api.service.exceptions.BadRequestException: Cannot create property with key {key} as one already exists"
            )));
        }
        let pid = self.alloc_id();
        let prop = Property {
            id: pid,
            key: key.to_string(),
            value,
            version: 1,
            when_ms: now,
            minor_edit: false,
        };
        self.content_mut_current(id)?
            .properties
            .insert(key.to_string(), prop.clone());
        Ok(prop)
    }

    /// v1 `PUT …/property/{key}`: version must be current+1; version 1 creates when absent.
    pub(crate) fn put_property(
        &mut self,
        id: u64,
        key: &str,
        value: serde_json::Value,
        number: u32,
        minor_edit: bool,
        now: i64,
    ) -> Result<Property> {
        let existing = self.get_current(id)?.properties.get(key).cloned();
        match existing {
            None if number == 1 => {
                let mut p = self.create_property(id, key, value, now)?;
                p.minor_edit = minor_edit;
                Ok(p)
            }
            None => Err(StoreError::NotFound(format!(
                "Cannot find property with key {key} on content {id} to update"
            ))),
            Some(p) if number != p.version + 1 => Err(StoreError::Conflict(format!(
                "Version must be incremented on update. Current version is: {}",
                p.version
            ))),
            Some(mut p) => {
                p.value = value;
                p.version = number;
                p.when_ms = now;
                p.minor_edit = minor_edit;
                self.content_mut_current(id)?
                    .properties
                    .insert(key.to_string(), p.clone());
                Ok(p)
            }
        }
    }

    pub(crate) fn delete_property(&mut self, id: u64, key: &str) -> Result<()> {
        let c = self.content_mut_current(id)?;
        match c.properties.remove(key) {
            Some(_) => Ok(()),
            None => Err(StoreError::NotFound(format!(
                "Cannot find property with key {key} on content {id}"
            ))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(id: &str) -> FileVersion {
        FileVersion {
            file_id: id.to_string(),
            size: 3,
            media_type: "text/plain".to_string(),
            blob: Blob::Stored,
        }
    }

    #[test]
    fn duplicate_attachment_names_are_refused_with_the_real_message() {
        let mut s = Store::new();
        let home = s.create_space("DOCS", "Docs", 0).unwrap();
        s.add_attachment(home, "a.txt", file("f1"), "", false, 0)
            .unwrap();
        let err = s
            .add_attachment(home, "a.txt", file("f2"), "", false, 0)
            .unwrap_err();
        assert_eq!(
            err,
            StoreError::BadRequest(format!("{DUPLICATE_ATTACHMENT}a.txt"))
        );
    }

    fn change(number: u32) -> ContentChange<'static> {
        ContentChange {
            number,
            title: Some("B"),
            parent: None,
            body: None,
            message: "",
            minor_edit: false,
        }
    }

    #[test]
    fn page_version_must_increment_and_titles_are_unique() {
        let mut s = Store::new();
        let home = s.create_space("DOCS", "Docs", 0).unwrap();
        let p = s
            .create_content(ContentKind::Page, "DOCS", "A", Some(home), String::new(), 0)
            .unwrap();
        assert!(matches!(
            s.create_content(ContentKind::Page, "DOCS", "a", Some(home), String::new(), 0),
            Err(StoreError::BadRequest(_))
        ));
        assert!(matches!(
            s.update_content(p, change(3), 1),
            Err(StoreError::Conflict(_))
        ));
        s.update_content(p, change(2), 1).unwrap();
        assert_eq!(s.get(p).unwrap().title, "B");
    }

    #[test]
    fn trashing_a_page_moves_its_children_up_and_purge_removes_attachments() {
        let mut s = Store::new();
        let home = s.create_space("DOCS", "Docs", 0).unwrap();
        let a = s
            .create_content(ContentKind::Page, "DOCS", "A", Some(home), String::new(), 0)
            .unwrap();
        let b = s
            .create_content(ContentKind::Page, "DOCS", "B", Some(a), String::new(), 0)
            .unwrap();
        let att = s.add_attachment(a, "x", file("fx"), "", false, 0).unwrap();
        s.trash(a).unwrap();
        assert_eq!(s.get(b).unwrap().parent, Some(home));
        let files = s.purge(a).unwrap();
        assert_eq!(files.len(), 1);
        assert!(s.get(att).is_none());
        assert!(s.file("fx").is_none());
    }

    #[test]
    fn property_versions_follow_the_v1_rules() {
        let mut s = Store::new();
        let home = s.create_space("DOCS", "Docs", 0).unwrap();
        let v = serde_json::json!({"a": 1});
        assert!(matches!(
            s.put_property(home, "k", v.clone(), 2, false, 0),
            Err(StoreError::NotFound(_))
        ));
        s.put_property(home, "k", v.clone(), 1, false, 0).unwrap();
        assert!(matches!(
            s.put_property(home, "k", v.clone(), 1, false, 0),
            Err(StoreError::Conflict(_))
        ));
        assert_eq!(
            s.put_property(home, "k", v, 2, false, 0).unwrap().version,
            2
        );
    }
}
