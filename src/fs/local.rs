//! What this machine knows that the server does not (yet): the local layer over listings.
//!
//! Three kinds of facts live here, per directory:
//! - local entries: files created here and not uploaded yet, scratch files of editors and
//!   rsync (which are never uploaded under their own name), uploads waiting in the spool;
//! - hidden names: an attachment renamed to a scratch name keeps its place on the server
//!   (so that the editor's "rename away, write anew" save becomes one new version), but
//!   must look gone here;
//! - vacated names: which attachment such a hidden name stood for, so that a new file
//!   created under that name uploads as the attachment's next version rather than a
//!   duplicate.
//!
//! Listings from the server are merged with this layer on every readdir and lookup.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Mutex;

use crate::confluence::Attachment;

#[derive(Default)]
pub(super) struct LocalLayer {
    inner: Mutex<Layers>,
}

#[derive(Default)]
struct Layers {
    entries: HashMap<u64, BTreeMap<String, u64>>,
    hidden: HashMap<u64, HashSet<String>>,
    vacated: HashMap<(u64, String), Attachment>,
}

/// What the local layer says about one name.
pub(super) enum LocalAnswer {
    /// A local entry with this inode.
    Entry(u64),
    /// The name is hidden here although the server still lists it.
    Hidden,
    /// Nothing local: ask the listing.
    Unknown,
}

impl LocalLayer {
    /// Every inode the layer names: local entries and the directories that hold any fact.
    pub(super) fn inodes(&self) -> HashSet<u64> {
        let layers = self.inner.lock().unwrap();
        let mut inos: HashSet<u64> = layers.entries.keys().copied().collect();
        inos.extend(
            layers
                .entries
                .values()
                .flat_map(|names| names.values().copied()),
        );
        inos.extend(layers.hidden.keys().copied());
        inos.extend(layers.vacated.keys().map(|(parent, _)| *parent));
        inos
    }

    pub(super) fn lookup(&self, parent: u64, name: &str) -> LocalAnswer {
        let layers = self.inner.lock().unwrap();
        if let Some(ino) = layers.entries.get(&parent).and_then(|e| e.get(name)) {
            return LocalAnswer::Entry(*ino);
        }
        if layers
            .hidden
            .get(&parent)
            .is_some_and(|hidden| hidden.contains(name))
        {
            return LocalAnswer::Hidden;
        }
        LocalAnswer::Unknown
    }

    pub(super) fn add(&self, parent: u64, name: &str, ino: u64) {
        let mut layers = self.inner.lock().unwrap();
        layers
            .entries
            .entry(parent)
            .or_default()
            .insert(name.to_string(), ino);
        if let Some(hidden) = layers.hidden.get_mut(&parent) {
            hidden.remove(name);
        }
    }

    /// The local entry `name` goes (deleted, renamed away, or uploaded). If the name was
    /// vacated by an editor, the attachment it stood for is still on the server, moved aside
    /// under a scratch name: the name is hidden again, or that attachment would show through.
    pub(super) fn remove(&self, parent: u64, name: &str) {
        let mut layers = self.inner.lock().unwrap();
        if let Some(entries) = layers.entries.get_mut(&parent) {
            entries.remove(name);
        }
        if layers.vacated.contains_key(&(parent, name.to_string())) {
            layers
                .hidden
                .entry(parent)
                .or_default()
                .insert(name.to_string());
        }
    }

    /// A local entry (`local_name`, if the file was one) became the attachment `name`, which
    /// the listing names now: the entry goes, and `name` stands for that attachment, no longer
    /// for one an editor moved aside nor hidden. In one step, so that no view of the layer
    /// shows the name hidden on the way.
    pub(super) fn landed(&self, parent: u64, local_name: Option<&str>, name: &str) {
        let mut layers = self.inner.lock().unwrap();
        layers.vacated.remove(&(parent, name.to_string()));
        if let Some(local_name) = local_name {
            if let Some(entries) = layers.entries.get_mut(&parent) {
                entries.remove(local_name);
            }
            if layers
                .vacated
                .contains_key(&(parent, local_name.to_string()))
            {
                layers
                    .hidden
                    .entry(parent)
                    .or_default()
                    .insert(local_name.to_string());
            }
        }
        if let Some(hidden) = layers.hidden.get_mut(&parent) {
            hidden.remove(name);
        }
    }

    pub(super) fn hide(&self, parent: u64, name: &str) {
        let mut layers = self.inner.lock().unwrap();
        layers
            .hidden
            .entry(parent)
            .or_default()
            .insert(name.to_string());
    }

    pub(super) fn unhide(&self, parent: u64, name: &str) {
        let mut layers = self.inner.lock().unwrap();
        if let Some(hidden) = layers.hidden.get_mut(&parent) {
            hidden.remove(name);
        }
    }

    pub(super) fn vacate(&self, parent: u64, name: &str, attachment: Attachment) {
        self.inner
            .lock()
            .unwrap()
            .vacated
            .insert((parent, name.to_string()), attachment);
    }

    /// The attachment that last stood under `name`, if it was renamed to a scratch name.
    pub(super) fn vacated(&self, parent: u64, name: &str) -> Option<Attachment> {
        self.inner
            .lock()
            .unwrap()
            .vacated
            .get(&(parent, name.to_string()))
            .cloned()
    }

    pub(super) fn take_vacated(&self, parent: u64, name: &str) -> Option<Attachment> {
        self.inner
            .lock()
            .unwrap()
            .vacated
            .remove(&(parent, name.to_string()))
    }

    /// Where attachment `id` was vacated from, if it was.
    pub(super) fn vacated_name_of(&self, id: &str) -> Option<(u64, String)> {
        self.inner
            .lock()
            .unwrap()
            .vacated
            .iter()
            .find(|(_, att)| att.id == id)
            .map(|(key, _)| key.clone())
    }

    /// Local entries and hidden names of `parent`, for merging into a listing.
    pub(super) fn view(&self, parent: u64) -> (Vec<(String, u64)>, HashSet<String>) {
        let layers = self.inner.lock().unwrap();
        let entries = layers
            .entries
            .get(&parent)
            .map(|e| e.iter().map(|(n, i)| (n.clone(), *i)).collect())
            .unwrap_or_default();
        let hidden = layers.hidden.get(&parent).cloned().unwrap_or_default();
        (entries, hidden)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_hide_and_vacate() {
        let layer = LocalLayer::default();
        assert!(matches!(layer.lookup(1, "a"), LocalAnswer::Unknown));
        layer.hide(1, "a");
        assert!(matches!(layer.lookup(1, "a"), LocalAnswer::Hidden));
        layer.add(1, "a", 7);
        assert!(matches!(layer.lookup(1, "a"), LocalAnswer::Entry(7)));
        let (entries, hidden) = layer.view(1);
        assert_eq!(entries, vec![("a".to_string(), 7)]);
        assert!(hidden.is_empty());
        layer.remove(1, "a");
        assert!(matches!(layer.lookup(1, "a"), LocalAnswer::Unknown));
        assert!(matches!(layer.lookup(2, "a"), LocalAnswer::Unknown));
    }
}
