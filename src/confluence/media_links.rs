//! Where Cloud's downloads really come from, remembered for a while.
//!
//! A Cloud download answers 302 to a media host with a short-lived token in the link
//! (docs/CONFLUENCE.md §1.6). Asking for every range again would cost one more round trip per
//! range; the link is good for minutes, so it is reused for [`MEDIA_LINK_REUSE`]. The client
//! owns one of these, and the download code consults it; it knows nothing else.

use url::Url;

/// How long a media link found through a redirect is used without asking again.
pub(super) const MEDIA_LINK_REUSE: std::time::Duration = std::time::Duration::from_secs(120);

/// Recent redirect targets of download URLs, by download URL.
#[derive(Default)]
pub(crate) struct MediaLinks {
    links: std::sync::Mutex<std::collections::HashMap<String, (Url, std::time::Instant)>>,
}

impl MediaLinks {
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
