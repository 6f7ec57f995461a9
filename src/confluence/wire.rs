//! The JSON Confluence sends, and its conversion to the public model.
//!
//! Every field is optional or defaulted unless Confluence always sends it, because the same
//! object arrives with different expansions from different endpoints, and Cloud, Data Center
//! and our test server each leave out different things. Ids are accepted as strings or numbers
//! (v1 `space.id` is a number, docs/CONFLUENCE.md §0).

use std::collections::HashMap;
use std::time::UNIX_EPOCH;

use serde::{Deserialize, Deserializer};

use super::model::{
    Attachment, AttachmentVersion, ChildTypes, ContainerRef, ContentKind, FsProperty, Page,
    Property, SearchHit, Space, User, FS_PROPERTY,
};
use super::site::Site;
use super::timestamp::parse_rfc3339;

/// An id that may arrive as a JSON string or number.
fn id<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    match serde_json::Value::deserialize(d)? {
        serde_json::Value::String(s) => Ok(s),
        serde_json::Value::Number(n) => Ok(n.to_string()),
        other => Err(serde::de::Error::custom(format!(
            "expected an id, got {other}"
        ))),
    }
}

fn opt_id<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    match Option::<serde_json::Value>::deserialize(d)? {
        Some(serde_json::Value::String(s)) => Ok(Some(s)),
        Some(serde_json::Value::Number(n)) => Ok(Some(n.to_string())),
        _ => Ok(None),
    }
}

/// `_links`: a free map; only string values matter to us.
#[derive(Debug, Default, Deserialize)]
pub(crate) struct Links(#[serde(default)] pub(crate) HashMap<String, serde_json::Value>);

impl Links {
    pub(crate) fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).and_then(|v| v.as_str())
    }
}

/// One entry of a listing, kept apart when it does not have the shape we need (a negative or
/// non-numeric size, no id): one malformed entry then costs that entry, not the whole listing.
#[derive(Debug)]
pub(crate) enum Listed<T> {
    Good(T),
    Bad {
        /// The entry's id, when it has a usable one, to name it in the log.
        id: Option<String>,
        reason: String,
    },
}

impl<'de, T: serde::de::DeserializeOwned> Deserialize<'de> for Listed<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Listed<T>, D::Error> {
        // Anything that is JSON at all is accepted here; only then is it asked to be a `T`.
        // The entry is kept as its text, not as a `serde_json::Value`: building and dropping a
        // tree of maps for every entry was most of the mount's CPU in a listing of 10,000
        // attachments (`malloc` and `BTreeMap::insert`).
        let raw = Box::<serde_json::value::RawValue>::deserialize(d)?;
        Ok(match serde_json::from_str::<T>(raw.get()) {
            Ok(good) => Listed::Good(good),
            Err(e) => Listed::Bad {
                id: serde_json::from_str::<IdOnly>(raw.get())
                    .ok()
                    .and_then(|entry| match entry.id {
                        Some(serde_json::Value::String(s)) => Some(s),
                        Some(serde_json::Value::Number(n)) => Some(n.to_string()),
                        _ => None,
                    }),
                reason: e.to_string(),
            },
        })
    }
}

/// Just the id of a listing's entry, to name one that could not be read.
#[derive(Deserialize)]
struct IdOnly {
    #[serde(default)]
    id: Option<serde_json::Value>,
}

/// v1 list envelope (`{results,start,limit,size,_links}`).
#[derive(Debug, Deserialize)]
pub(crate) struct V1List<T> {
    pub(crate) results: Vec<T>,
    #[serde(default, rename = "_links")]
    pub(crate) links: Links,
}

/// v2 list envelope (`{results,_links{next,base}}`).
#[derive(Debug, Deserialize)]
pub(crate) struct V2List<T> {
    pub(crate) results: Vec<T>,
    #[serde(default, rename = "_links")]
    pub(crate) links: Links,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct V1User {
    #[serde(rename = "type")]
    pub(crate) user_type: Option<String>,
    pub(crate) account_id: Option<String>,
    pub(crate) username: Option<String>,
    pub(crate) user_key: Option<String>,
    pub(crate) display_name: Option<String>,
    pub(crate) public_name: Option<String>,
    pub(crate) email: Option<String>,
}

impl V1User {
    pub(crate) fn into_model(self) -> User {
        User {
            account_id: self.account_id,
            username: self.username,
            user_key: self.user_key,
            display_name: self.display_name.or(self.public_name),
            email: self.email,
        }
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct V1Version {
    #[serde(default)]
    pub(crate) number: u64,
    pub(crate) when: Option<String>,
    pub(crate) message: Option<String>,
    pub(crate) by: Option<V1User>,
    #[serde(default)]
    pub(crate) minor_edit: bool,
}

impl V1Version {
    pub(crate) fn into_model(self) -> AttachmentVersion {
        AttachmentVersion {
            number: self.number,
            created: self.when.as_deref().and_then(parse_rfc3339),
            message: self.message.unwrap_or_default(),
            minor_edit: self.minor_edit,
            author: self.by.map(V1User::into_model),
        }
    }
}

#[derive(Debug, Deserialize)]
pub(crate) struct V1Ref {
    #[serde(deserialize_with = "id")]
    pub(crate) id: String,
    #[serde(rename = "type")]
    pub(crate) content_type: Option<String>,
    pub(crate) title: Option<String>,
}

/// `body` of a v1 content, as far as we ask for it (`body.storage`).
#[derive(Debug, Deserialize, Default)]
pub(crate) struct V1Body {
    pub(crate) storage: Option<V1BodyValue>,
}

#[derive(Debug, Deserialize)]
pub(crate) struct V1BodyValue {
    #[serde(default)]
    pub(crate) value: String,
}

#[derive(Debug, Deserialize)]
pub(crate) struct V1SpaceRef {
    pub(crate) key: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct V1Metadata {
    pub(crate) media_type: Option<String>,
    pub(crate) comment: Option<String>,
    /// Expanded content properties by key (`metadata.properties.KEY`).
    pub(crate) properties: Option<serde_json::Map<String, serde_json::Value>>,
}

impl V1Metadata {
    /// Our property, when properties were expanded: `Some(default)` when the object has none.
    fn fs_property(&self) -> Option<FsProperty> {
        let properties = self.properties.as_ref()?;
        let Some(found) = properties.get(FS_PROPERTY) else {
            return Some(FsProperty::default());
        };
        let version = found
            .pointer("/version/number")
            .and_then(serde_json::Value::as_u64)
            .unwrap_or(1);
        let value = found.get("value").cloned().unwrap_or_default();
        Some(FsProperty::from_value(&value, version))
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct V1Extensions {
    pub(crate) media_type: Option<String>,
    pub(crate) file_size: Option<u64>,
    pub(crate) comment: Option<String>,
    pub(crate) file_id: Option<String>,
}

/// v1 `history` (expanded): when the content was first created.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct V1History {
    pub(crate) created_date: Option<String>,
}

/// v1 `Content`: page, blog post, attachment, or anything else a search returns.
#[derive(Debug, Deserialize)]
pub(crate) struct V1Content {
    #[serde(deserialize_with = "id")]
    pub(crate) id: String,
    #[serde(rename = "type", default)]
    pub(crate) content_type: String,
    pub(crate) status: Option<String>,
    #[serde(default)]
    pub(crate) title: String,
    pub(crate) version: Option<V1Version>,
    pub(crate) space: Option<V1SpaceRef>,
    pub(crate) ancestors: Option<Vec<V1Ref>>,
    pub(crate) container: Option<V1Ref>,
    pub(crate) history: Option<V1History>,
    pub(crate) metadata: Option<V1Metadata>,
    pub(crate) extensions: Option<V1Extensions>,
    pub(crate) body: Option<V1Body>,
    #[serde(rename = "childTypes")]
    pub(crate) child_types: Option<V1ChildTypes>,
    #[serde(default, rename = "_links")]
    pub(crate) links: Links,
}

/// `childTypes` of a v1 content: `{attachment: {value}, comment: {value}, page: {value}}`, each
/// key present only when asked for.
#[derive(Debug, Default, Deserialize)]
pub(crate) struct V1ChildTypes {
    page: Option<V1ChildType>,
    attachment: Option<V1ChildType>,
}

#[derive(Debug, Deserialize)]
struct V1ChildType {
    value: Option<bool>,
}

impl V1ChildTypes {
    fn into_model(self) -> ChildTypes {
        ChildTypes {
            pages: self.page.and_then(|t| t.value),
            attachments: self.attachment.and_then(|t| t.value),
        }
    }
}

impl V1Content {
    pub(crate) fn into_page(self, site: &Site) -> Option<Page> {
        let kind = ContentKind::from_v1_type(&self.content_type)?;
        let version = self.version.unwrap_or_default();
        let fs = self.metadata.as_ref().and_then(V1Metadata::fs_property);
        let body = self
            .body
            .and_then(|b| b.storage)
            .map(|s| std::sync::Arc::from(s.value));
        let ancestor_titles = self.ancestors.as_ref().and_then(|a| {
            a.iter()
                .map(|p| p.title.clone())
                .collect::<Option<Vec<String>>>()
        });
        Some(Page {
            fs,
            body,
            ancestor_titles,
            child_types: self
                .child_types
                .map(V1ChildTypes::into_model)
                .unwrap_or_default(),
            web_url: web_url(site, self.links.get("webui")),
            id: self.id,
            kind,
            title: self.title,
            status: self.status.unwrap_or_else(|| "current".into()),
            space_key: self.space.and_then(|s| s.key),
            parent_id: self.ancestors.and_then(|a| a.last().map(|p| p.id.clone())),
            version: version.number,
            modified: version.when.as_deref().and_then(parse_rfc3339),
            created: self
                .history
                .and_then(|h| h.created_date)
                .as_deref()
                .and_then(parse_rfc3339),
            author: version.by.map(V1User::into_model),
        })
    }

    /// `fallback` names the container when the answer does not (lists without `container`
    /// expanded).
    pub(crate) fn into_attachment(
        self,
        site: &Site,
        fallback: Option<&ContainerRef>,
    ) -> Option<Attachment> {
        if self.content_type != "attachment" && !self.content_type.is_empty() {
            return None;
        }
        let container = match self.container {
            Some(c) => ContainerRef {
                kind: c
                    .content_type
                    .as_deref()
                    .and_then(ContentKind::from_v1_type)
                    .unwrap_or(ContentKind::Page),
                id: c.id,
            },
            None => fallback?.clone(),
        };
        let version = self.version.unwrap_or_default();
        let metadata = self.metadata.unwrap_or_default();
        let extensions = self.extensions.unwrap_or_default();
        Some(Attachment {
            fs: metadata.fs_property(),
            web_url: web_url(site, self.links.get("webui")),
            download_path: self.links.get("download").map(str::to_string),
            id: self.id,
            title: self.title,
            container,
            media_type: extensions
                .media_type
                .or(metadata.media_type)
                .unwrap_or_else(|| "application/octet-stream".into()),
            size: extensions.file_size.unwrap_or(0),
            version: version.number,
            modified: version
                .when
                .as_deref()
                .and_then(parse_rfc3339)
                .unwrap_or(UNIX_EPOCH),
            comment: metadata
                .comment
                .or(extensions.comment)
                .or(version.message)
                .unwrap_or_default(),
            author: version.by.map(V1User::into_model),
            status: self.status.unwrap_or_else(|| "current".into()),
            file_id: extensions.file_id,
        })
    }

    pub(crate) fn into_search_hit(self, site: &Site) -> SearchHit {
        match self.content_type.as_str() {
            "page" | "blogpost" => {
                let (id, content_type, title) = (
                    self.id.clone(),
                    self.content_type.clone(),
                    self.title.clone(),
                );
                match self.into_page(site) {
                    Some(page) => SearchHit::Page(page),
                    None => SearchHit::Other {
                        id,
                        content_type,
                        title,
                    },
                }
            }
            "attachment" => {
                let (id, title) = (self.id.clone(), self.title.clone());
                match self.into_attachment(site, None) {
                    Some(attachment) => SearchHit::Attachment(attachment),
                    None => SearchHit::Other {
                        id,
                        content_type: "attachment".into(),
                        title,
                    },
                }
            }
            _ => SearchHit::Other {
                id: self.id,
                content_type: self.content_type,
                title: self.title,
            },
        }
    }
}

#[derive(Debug, Deserialize)]
pub(crate) struct V1Space {
    #[serde(deserialize_with = "id")]
    pub(crate) id: String,
    pub(crate) key: String,
    #[serde(default)]
    pub(crate) name: String,
    #[serde(rename = "type")]
    pub(crate) space_type: Option<String>,
    pub(crate) homepage: Option<V1Ref>,
    #[serde(default, rename = "_links")]
    pub(crate) links: Links,
}

impl V1Space {
    pub(crate) fn into_model(self, site: &Site) -> Space {
        Space {
            web_url: web_url(site, self.links.get("webui")),
            id: self.id,
            key: self.key,
            name: self.name,
            space_type: self.space_type,
            homepage_id: self.homepage.map(|h| h.id),
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct V2Space {
    #[serde(deserialize_with = "id")]
    pub(crate) id: String,
    pub(crate) key: String,
    #[serde(default)]
    pub(crate) name: String,
    #[serde(rename = "type")]
    pub(crate) space_type: Option<String>,
    #[serde(default, deserialize_with = "opt_id")]
    pub(crate) homepage_id: Option<String>,
    #[serde(default, rename = "_links")]
    pub(crate) links: Links,
}

impl V2Space {
    pub(crate) fn into_model(self, site: &Site) -> Space {
        Space {
            web_url: web_url(site, self.links.get("webui")),
            id: self.id,
            key: self.key,
            name: self.name,
            space_type: self.space_type,
            homepage_id: self.homepage_id,
        }
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct V2Version {
    #[serde(default)]
    pub(crate) number: u64,
    pub(crate) message: Option<String>,
    #[serde(default)]
    pub(crate) minor_edit: bool,
    pub(crate) author_id: Option<String>,
    pub(crate) created_at: Option<String>,
}

impl V2Version {
    pub(crate) fn into_model(self) -> AttachmentVersion {
        AttachmentVersion {
            number: self.number,
            created: self.created_at.as_deref().and_then(parse_rfc3339),
            message: self.message.unwrap_or_default(),
            minor_edit: self.minor_edit,
            author: self.author_id.map(account),
        }
    }
}

/// A page as v2 answers a create (`POST /pages`).
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct V2Page {
    #[serde(deserialize_with = "id")]
    pub(crate) id: String,
    pub(crate) status: Option<String>,
    #[serde(default)]
    pub(crate) title: String,
    #[serde(default, deserialize_with = "opt_id")]
    pub(crate) parent_id: Option<String>,
    pub(crate) created_at: Option<String>,
    pub(crate) version: Option<V2Version>,
    #[serde(default, rename = "_links")]
    pub(crate) links: Links,
}

impl V2Page {
    pub(crate) fn into_page(self, site: &Site, space_key: &str) -> Page {
        let version = self.version.unwrap_or_default();
        let created = self.created_at.as_deref().and_then(parse_rfc3339);
        Page {
            fs: None,
            body: None,
            ancestor_titles: None,
            child_types: ChildTypes::default(),
            id: self.id,
            kind: ContentKind::Page,
            title: self.title,
            status: self.status.unwrap_or_else(|| "current".to_string()),
            space_key: Some(space_key.to_string()),
            parent_id: self.parent_id,
            version: version.number.max(1),
            modified: version
                .created_at
                .as_deref()
                .and_then(parse_rfc3339)
                .or(created),
            created,
            author: version.author_id.map(account),
            web_url: web_url(site, self.links.get("webui")),
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct V2Attachment {
    #[serde(deserialize_with = "id")]
    pub(crate) id: String,
    pub(crate) status: Option<String>,
    #[serde(default)]
    pub(crate) title: String,
    pub(crate) created_at: Option<String>,
    #[serde(default, deserialize_with = "opt_id")]
    pub(crate) page_id: Option<String>,
    #[serde(default, deserialize_with = "opt_id")]
    pub(crate) blog_post_id: Option<String>,
    pub(crate) media_type: Option<String>,
    pub(crate) comment: Option<String>,
    pub(crate) file_id: Option<String>,
    pub(crate) file_size: Option<u64>,
    pub(crate) webui_link: Option<String>,
    pub(crate) version: Option<V2Version>,
    #[serde(default, rename = "_links")]
    pub(crate) links: Links,
}

impl V2Attachment {
    pub(crate) fn into_model(
        self,
        site: &Site,
        fallback: Option<&ContainerRef>,
    ) -> Option<Attachment> {
        let container = match (self.page_id, self.blog_post_id) {
            (Some(id), _) => ContainerRef::page(id),
            (None, Some(id)) => ContainerRef::blog_post(id),
            (None, None) => fallback?.clone(),
        };
        let version = self.version.unwrap_or_default();
        let when = version.created_at.or(self.created_at);
        let webui = self
            .webui_link
            .or_else(|| self.links.get("webui").map(str::to_string));
        // v2's `downloadLink` is the servlet path, which Cloud refuses for API tokens since 2026
        // (docs/CONFLUENCE.md §1.6): the REST download path is the one a user can actually fetch.
        let download_path = Some(format!(
            "/rest/api/content/{}/child/attachment/{}/download",
            container.id, self.id
        ));
        Some(Attachment {
            fs: None,
            web_url: web_url(site, webui.as_deref()),
            download_path,
            id: self.id,
            title: self.title,
            container,
            media_type: self
                .media_type
                .unwrap_or_else(|| "application/octet-stream".into()),
            size: self.file_size.unwrap_or(0),
            version: version.number,
            modified: when
                .as_deref()
                .and_then(parse_rfc3339)
                .unwrap_or(UNIX_EPOCH),
            comment: self.comment.or(version.message).unwrap_or_default(),
            author: version.author_id.map(account),
            status: self.status.unwrap_or_else(|| "current".into()),
            file_id: self.file_id,
        })
    }
}

#[derive(Debug, Deserialize)]
pub(crate) struct V1PropertyVersion {
    #[serde(default)]
    pub(crate) number: u64,
}

#[derive(Debug, Deserialize)]
pub(crate) struct V1Property {
    #[serde(default, deserialize_with = "opt_id")]
    pub(crate) id: Option<String>,
    pub(crate) key: String,
    #[serde(default)]
    pub(crate) value: serde_json::Value,
    pub(crate) version: Option<V1PropertyVersion>,
}

impl V1Property {
    pub(crate) fn into_model(self) -> Property {
        Property {
            id: self.id.unwrap_or_default(),
            key: self.key,
            value: self.value,
            version: self.version.map(|v| v.number).unwrap_or(1),
        }
    }
}

fn account(account_id: String) -> User {
    User {
        account_id: Some(account_id),
        ..User::default()
    }
}

fn web_url(site: &Site, link: Option<&str>) -> Option<String> {
    link.and_then(|l| site.follow(l).ok())
        .map(|u| u.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::confluence::site::{normalize_site_url, Flavor};

    /// A Data Center v1 attachment as `GET …/child/attachment?expand=version,container` answers
    /// it: the shape of the real answers (docs/CONFLUENCE.md §4.1), with values of our own.
    const DC_ATTACHMENT: &str = r#"{
        "id": "3310042", "type": "attachment", "status": "current", "title": "plans.zip",
        "version": {
            "by": {"type": "known", "username": "mkowalska", "userKey": "8a7f80cb6d1",
                   "profilePicture": {"path": "/images/icons/profilepics/default.svg",
                                      "width": 48, "height": 48, "isDefault": true},
                   "displayName": "Małgorzata K.",
                   "_links": {"self": "https://wiki.example.org/rest/api/user?key=8a7f80cb6d1"},
                   "_expandable": {"status": ""}},
            "when": "2025-03-07T09:15:42.125+01:00", "message": "", "number": 3,
            "minorEdit": false, "hidden": false,
            "_links": {"self": "https://wiki.example.org/rest/experimental/content/3310042/version/3"},
            "_expandable": {"content": "/rest/api/content/3310042"}},
        "position": 0,
        "container": {"id": "3310017", "type": "page", "status": "current", "title": "Site plans",
                      "position": 2, "extensions": {"position": 2},
                      "_links": {"webui": "/display/OPS/Site+plans", "self": "https://wiki.example.org/rest/api/content/3310017"},
                      "_expandable": {"space": "/rest/api/space/OPS", "version": ""}},
        "metadata": {"mediaType": "application/zip"},
        "extensions": {"mediaType": "application/zip", "fileSize": 48213, "comment": ""},
        "_links": {"download": "/download/attachments/3310017/plans.zip?version=3&modificationDate=1741335342125&api=v2",
                   "webui": "/pages/viewpageattachments.action?pageId=3310017&preview=%2F3310017%2F3310042%2Fplans.zip",
                   "self": "https://wiki.example.org/rest/api/content/3310042"},
        "_expandable": {"children": "/rest/api/content/3310042/child", "space": "/rest/api/space/OPS"}
    }"#;

    #[test]
    fn datacenter_attachment_converts() {
        let site = Site::new(
            normalize_site_url("https://wiki.example.org").unwrap(),
            Flavor::DataCenter,
        );
        let content: V1Content = serde_json::from_str(DC_ATTACHMENT).unwrap();
        let att = content.into_attachment(&site, None).unwrap();
        assert_eq!(att.id, "3310042");
        assert_eq!(att.container, ContainerRef::page("3310017"));
        assert_eq!(att.size, 48213);
        assert_eq!(att.version, 3);
        assert_eq!(att.media_type, "application/zip");
        assert_eq!(att.author.unwrap().name(), "Małgorzata K.");
        // 09:15:42.125 at +01:00 is 08:15:42.125 UTC.
        assert_eq!(
            att.modified.duration_since(UNIX_EPOCH).unwrap().as_millis(),
            1_741_335_342_125
        );
    }

    #[test]
    fn cloud_v2_attachment_converts() {
        let json = r#"{"id":"att1441849","status":"current","title":"test.txt","createdAt":"2025-11-18T20:57:17.434Z",
            "pageId":"1507344","mediaType":"text/plain","comment":"c","fileSize":14,
            "webuiLink":"/pages/viewpageattachments.action?pageId=1507344",
            "downloadLink":"/download/attachments/1507344/test.txt?version=5",
            "version":{"number":5,"message":"c","minorEdit":false,"authorId":"557058:x","createdAt":"2025-11-18T20:57:17.434Z"}}"#;
        let site = Site::new(
            normalize_site_url("https://x.atlassian.net").unwrap(),
            Flavor::Cloud,
        );
        let v2: V2Attachment = serde_json::from_str(json).unwrap();
        let att = v2.into_model(&site, None).unwrap();
        assert_eq!(att.version, 5);
        assert_eq!(att.size, 14);
        assert_eq!(att.container, ContainerRef::page("1507344"));
        assert_eq!(
            att.web_url.as_deref(),
            Some("https://x.atlassian.net/wiki/pages/viewpageattachments.action?pageId=1507344")
        );
    }

    #[test]
    fn a_malformed_entry_is_kept_apart() {
        let list: V1List<Listed<V1Space>> = serde_json::from_str(
            r#"{"results":[{"id":1,"key":"A"},{"id":2},{"key":"C"},{"id":4,"key":"D"}]}"#,
        )
        .unwrap();
        let shapes: Vec<String> = list
            .results
            .into_iter()
            .map(|entry| match entry {
                Listed::Good(space) => space.key,
                Listed::Bad { id, .. } => format!("bad {id:?}"),
            })
            .collect();
        assert_eq!(shapes, ["A", "bad Some(\"2\")", "bad None", "D"]);
    }

    #[test]
    fn numeric_space_id_is_accepted() {
        let space: V1Space = serde_json::from_str(
            r#"{"id":123456,"key":"DS","name":"Demo","homepage":{"id":"98"}}"#,
        )
        .unwrap();
        assert_eq!(space.id, "123456");
        assert_eq!(space.homepage.unwrap().id, "98");
    }
}
