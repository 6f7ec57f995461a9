//! Extended attributes: content properties as `user.<key>`, metadata as `user.confluence.*`.
//!
//! Properties are fetched the first time one is asked for (never during a listing) and cached
//! for the metadata TTL. Metadata comes from what the listing already knows, so it costs
//! nothing. Names outside `user.` (`security.capability` on every write, `system.posix_acl_*`
//! on every `ls -l`) are answered ENODATA from memory without a request.

use std::sync::Arc;

use super::error::FsError;
use super::inode::Node;
use super::ConfluenceFs;
use crate::confluence::Property;

const USER: &str = "user.";
const META: &str = "user.confluence.";

impl ConfluenceFs {
    /// The value of xattr `name` of `ino`.
    pub async fn getxattr(&self, ino: u64, name: &str) -> Result<Vec<u8>, FsError> {
        let Some(key) = name.strip_prefix(USER) else {
            return Err(FsError::NoAttribute);
        };
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
        self.properties
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
            Node::Root | Node::Blog { .. } | Node::Versions { .. } => {}
        }
        Ok(fields)
    }
}
