//! Where Cloud's downloads really come from, remembered for a while.
//!
//! A Cloud download answers 302 to a media host with a short-lived token in the link
//! (docs/CONFLUENCE.md §1.6). Asking for every range again would cost one more round trip per
//! range; the link is good for minutes, so it is reused for [`MEDIA_LINK_REUSE`]. Ranges started
//! together (read-ahead) would each find no link yet, so one of them asks and the others wait
//! for its redirect ([`MediaLinks::resolving`]). The client owns one of these, and the download
//! code consults it; it knows nothing else.

use url::Url;

/// How long a media link found through a redirect is used without asking again.
pub(super) const MEDIA_LINK_REUSE: std::time::Duration = std::time::Duration::from_secs(120);

/// Locks that let one request per download URL ask for the redirect while the others wait for
/// its answer: striped by the URL's hash, so their number is fixed.
const RESOLVING_STRIPES: usize = 64;

/// Recent redirect targets of download URLs, by download URL.
pub(crate) struct MediaLinks {
    links: std::sync::Mutex<std::collections::HashMap<String, (Url, std::time::Instant)>>,
    resolving: Vec<std::sync::Arc<tokio::sync::Mutex<()>>>,
}

impl Default for MediaLinks {
    fn default() -> Self {
        MediaLinks {
            links: Default::default(),
            resolving: (0..RESOLVING_STRIPES).map(|_| Default::default()).collect(),
        }
    }
}

impl MediaLinks {
    /// Waits until no other request is asking for `source`'s redirect, and holds that turn
    /// until the guard is dropped: the ranges a reader starts at once (read-ahead) then cost
    /// one redirect between them, not one each.
    pub(crate) async fn resolving(&self, source: &Url) -> tokio::sync::OwnedMutexGuard<()> {
        use std::hash::{Hash, Hasher};
        let mut hasher = std::collections::hash_map::DefaultHasher::new();
        source.as_str().hash(&mut hasher);
        let stripe = (hasher.finish() as usize) % self.resolving.len();
        self.resolving[stripe].clone().lock_owned().await
    }

    pub(crate) fn get(&self, source: &Url) -> Option<Url> {
        let links = self.links.lock().unwrap();
        let (target, at) = links.get(source.as_str())?;
        (at.elapsed() < MEDIA_LINK_REUSE).then(|| target.clone())
    }

    pub(crate) fn put(&self, source: &Url, target: Url) {
        let mut links = self.links.lock().unwrap();
        if links.len() > 4096 {
            links.retain(|_, (_, at)| at.elapsed() < MEDIA_LINK_REUSE);
        }
        links.insert(source.to_string(), (target, std::time::Instant::now()));
    }

    pub(crate) fn forget(&self, source: &Url) {
        self.links.lock().unwrap().remove(source.as_str());
    }
}
