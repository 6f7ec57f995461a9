//! Extended attributes: content properties as `user.<key>`, metadata as `user.confluence.*`.
//!
//! Properties are fetched the first time one is asked for (never during a listing) and cached
//! for the metadata TTL. Metadata comes from what the listing already knows, so it costs
//! nothing. Names outside `user.` (`security.capability` on every write, `system.posix_acl_*`
//! on every `ls -l`) are answered ENODATA from memory without a request.

use std::sync::Arc;

use super::fs_error::FsError;
use super::inode::Node;
use super::ConfluenceFs;
use crate::confluence::Property;

const USER: &str = "user.";
const META: &str = "user.confluence.";
/// On the mount root: where this mount spools uploads (read by `confluencefs pending`).
pub(super) const SPOOL_XATTR: &str = "user.confluencefs.spool";

impl ConfluenceFs {
    /// The value of xattr `name` of `ino`.
    pub async fn getxattr(&self, ino: u64, name: &str) -> Result<Vec<u8>, FsError> {
        let Some(key) = name.strip_prefix(USER) else {
            return Err(FsError::NoAttribute);
        };
        if name == SPOOL_XATTR && ino == super::inode::ROOT_INO {
            return self
                .spool_dir()
                .map(|dir| dir.as_os_str().as_encoded_bytes().to_vec())
                .ok_or(FsError::NoAttribute);
        }
        if name == "user.confluence.comment" {
            if let Some(file) = self.files.lock_existing(ino).await {
                if let Some(comment) = &file.comment {
                    return Ok(comment.clone().into_bytes());
                }
            }
        }
        if let Some(field) = name.strip_prefix(META) {
            return self
                .metadata(ino)?
                .into_iter()
                .find(|(k, _)| *k == field)
                .map(|(_, v)| v.into_bytes())
                .ok_or(FsError::NoAttribute);
        }
        let properties = self.properties_of(ino).await?;
        properties
            .iter()
            .find(|p| p.key == key)
            .map(|p| p.value.to_string().into_bytes())
            .ok_or(FsError::NoAttribute)
    }

    /// `setfattr -n user.KEY -v VALUE`: creates or updates content property KEY (JSON when the
    /// value parses as JSON, a JSON string otherwise). `user.confluence.comment` sets the
    /// version comment of the file's next upload; other `user.confluence.*` are read-only.
    pub async fn setxattr(&self, ino: u64, name: &str, value: &[u8]) -> Result<(), FsError> {
        self.writer()?;
        let Some(key) = name.strip_prefix(USER) else {
            return Err(FsError::NotSupported);
        };
        if name == "user.confluence.comment" {
            let entry = self.entry(ino)?;
            if entry.node.is_dir() {
                return Err(FsError::NotPermitted("comments belong to files"));
            }
            let comment = String::from_utf8(value.to_vec())
                .map_err(|_| FsError::Invalid("a comment must be UTF-8".into()))?;
            self.files.lock(ino).await.comment = Some(comment);
            return Ok(());
        }
        if name.starts_with(META) || name.starts_with("user.confluencefs.") {
            return Err(FsError::NotPermitted("confluence metadata is read-only"));
        }
        if key.is_empty() {
            return Err(FsError::Invalid("an empty property key".into()));
        }
        let id = self.property_owner(ino)?;
        let json = serde_json::from_slice::<serde_json::Value>(value).unwrap_or_else(|_| {
            serde_json::Value::String(String::from_utf8_lossy(value).into_owned())
        });
        self.client.set_property(&id, key, json).await?;
        self.tree.properties.invalidate(&ino).await;
        Ok(())
    }

    /// `setfattr -x user.KEY`: deletes content property KEY.
    pub async fn removexattr(&self, ino: u64, name: &str) -> Result<(), FsError> {
        self.writer()?;
        let Some(key) = name.strip_prefix(USER) else {
            return Err(FsError::NoAttribute);
        };
        if name == "user.confluence.comment" {
            let mut file = self
                .files
                .lock_existing(ino)
                .await
                .ok_or(FsError::NoAttribute)?;
            let removed = file.comment.take().map(|_| ());
            let local = self.is_local(ino);
            self.files.settle(&mut file, local);
            return removed.ok_or(FsError::NoAttribute);
        }
        if name.starts_with(META) || name.starts_with("user.confluencefs.") {
            return Err(FsError::NotPermitted("confluence metadata is read-only"));
        }
        let id = self.property_owner(ino)?;
        let known = self.properties_of(ino).await?;
        if !known.iter().any(|p| p.key == key) {
            return Err(FsError::NoAttribute);
        }
        match self.client.delete_property(&id, key).await {
            Ok(()) => {}
            Err(err) if err.status() == Some(404) => return Err(FsError::NoAttribute),
            Err(err) => return Err(err.into()),
        }
        self.tree.properties.invalidate(&ino).await;
        Ok(())
    }

    /// The content id whose properties an inode's xattrs are.
    fn property_owner(&self, ino: u64) -> Result<String, FsError> {
        match self.entry(ino)?.node {
            Node::Page(page) => Ok(page.id),
            Node::Attachment(att) => Ok(att.id),
            // Not on the server yet: it has no properties to set until its upload lands.
            Node::Local(_) => Err(FsError::Busy),
            _ => Err(FsError::NotPermitted(
                "only pages and files carry properties",
            )),
        }
    }

    /// The xattr names of `ino`, each NUL-terminated, as `listxattr(2)` returns them.
    pub async fn listxattr(&self, ino: u64) -> Result<Vec<u8>, FsError> {
        let mut out = Vec::new();
        for (field, _) in self.metadata(ino)? {
            out.extend_from_slice(META.as_bytes());
            out.extend_from_slice(field.as_bytes());
            out.push(0);
        }
        if self.has_properties(ino)? {
            for property in self.properties_of(ino).await?.iter() {
                out.extend_from_slice(USER.as_bytes());
                out.extend_from_slice(property.key.as_bytes());
                out.push(0);
            }
        }
        Ok(out)
    }

    /// Whether `ino` is an object that can carry content properties.
    fn has_properties(&self, ino: u64) -> Result<bool, FsError> {
        Ok(matches!(
            self.entry(ino)?.node,
            Node::Page(_) | Node::Attachment(_)
        ))
    }

    async fn properties_of(&self, ino: u64) -> Result<Arc<Vec<Property>>, FsError> {
        let entry = self.entry(ino)?;
        let id = match &entry.node {
            Node::Page(page) => page.id.clone(),
            Node::Attachment(att) => att.id.clone(),
            _ => return Err(FsError::NoAttribute),
        };
        self.tree
            .properties
            .try_get_with(ino, async {
                self.client
                    .list_properties(&id)
                    .await
                    .map(Arc::new)
                    .map_err(FsError::from)
            })
            .await
            .map_err(|err: Arc<FsError>| match &*err {
                FsError::Client(client) => FsError::Client(client.clone()),
                _ => FsError::NoAttribute,
            })
    }

    /// `user.confluence.*` fields of `ino`, from what is already known about it.
    fn metadata(&self, ino: u64) -> Result<Vec<(&'static str, String)>, FsError> {
        let entry = self.entry(ino)?;
        let mut fields = Vec::new();
        let mut push = |k: &'static str, v: Option<String>| {
            if let Some(v) = v.filter(|v| !v.is_empty()) {
                fields.push((k, v));
            }
        };
        match &entry.node {
            Node::Space(space) => {
                push("id", Some(space.id.clone()));
                push("key", Some(space.key.clone()));
                push("title", Some(space.name.clone()));
                push("url", space.web_url.clone());
            }
            Node::Page(page) => {
                push("id", Some(page.id.clone()));
                push("type", Some(page.kind.v1_type().to_string()));
                push("title", Some(page.title.clone()));
                push("version", Some(page.version.to_string()));
                push("space", page.space_key.clone());
                push("url", page.web_url.clone());
                push(
                    "created_by",
                    page.author.as_ref().map(|a| a.name().to_string()),
                );
            }
            Node::Attachment(att) | Node::VersionsOf(att) => {
                push("id", Some(att.id.clone()));
                push("title", Some(att.title.clone()));
                push("version", Some(att.version.to_string()));
                push("media_type", Some(att.media_type.clone()));
                push("comment", Some(att.comment.clone()));
                push("container", Some(att.container.id.clone()));
                push("url", att.web_url.clone());
                push("download", att.download_path.clone());
                push(
                    "created_by",
                    att.author.as_ref().map(|a| a.name().to_string()),
                );
            }
            Node::Version {
                attachment, number, ..
            } => {
                push("id", Some(attachment.id.clone()));
                push("title", Some(attachment.title.clone()));
                push("version", Some(number.to_string()));
            }
            Node::Text(
                super::text_node::TextNode::Markdown { page, .. }
                | super::text_node::TextNode::Storage { page, .. },
            ) => {
                push("id", Some(page.id.clone()));
                push("title", Some(page.title.clone()));
                push("version", Some(page.version.to_string()));
                push("url", page.web_url.clone());
            }
            Node::Root
            | Node::Blog { .. }
            | Node::Versions { .. }
            | Node::Local(_)
            | Node::Text(_) => {}
        }
        Ok(fields)
    }
}
