//! Importing a directory tree as a site (`--seed DIR`).
//!
//! Top-level folders are spaces (folder name = key, with a "<KEY> Home" page). Inside a
//! space, folders are pages under the home page and files are attachments of the home page;
//! deeper folders are child pages, and a page folder's files are its attachments. `@blog`
//! holds blog posts (`YYYY-MM-DD Title` folders). `NAME.properties.json` beside `NAME` sets
//! the content properties of that attachment, `@page.properties.json` those of the page, and
//! `@page.storage.xml` the page's body (storage format). With `seed_page_bodies`, pages without
//! one get a generated body of a few KiB (see `filler`), for full-text benchmarks.
//!
//! Files are referenced where they are, never copied or read (only `stat`ed), so a tree of
//! 20,000 attachments seeds in well under a second or two. Their `mtime` becomes the version
//! time. Page titles must be unique per space, as in Confluence; a repeated folder name gets
//! a " (2)" suffix rather than failing the whole seed.

use std::collections::BTreeMap;
use std::io;
use std::path::{Path, PathBuf};

use crate::blobs::new_uuid;
use crate::clock;
use crate::model::{Blob, ContentKind, FileVersion};
use crate::store::{Store, StoreError};

const PROPERTIES_SUFFIX: &str = ".properties.json";
const PAGE_PROPERTIES: &str = "@page.properties.json";
const PAGE_BODY: &str = "@page.storage.xml";

fn store_err(e: StoreError) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, e.to_string())
}

fn sorted_entries(dir: &Path) -> io::Result<Vec<(String, PathBuf, std::fs::Metadata)>> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        let name = entry.file_name().to_string_lossy().into_owned();
        if name.starts_with('.') {
            continue;
        }
        let path = entry.path();
        // Follow symlinks: seed trees are often assembled from links.
        let meta = std::fs::metadata(&path)?;
        out.push((name, path, meta));
    }
    out.sort_by(|a, b| a.0.cmp(&b.0));
    Ok(out)
}

fn mtime_ms(meta: &std::fs::Metadata) -> i64 {
    meta.modified()
        .ok()
        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
        .map(|d| d.as_millis() as i64)
        .unwrap_or_else(clock::now_ms)
}

fn read_properties(path: &Path) -> io::Result<BTreeMap<String, serde_json::Value>> {
    let bytes = std::fs::read(path)?;
    serde_json::from_slice(&bytes).map_err(|e| {
        io::Error::new(
            io::ErrorKind::InvalidData,
            format!("{}: {e}", path.display()),
        )
    })
}

fn set_properties(store: &mut Store, id: u64, path: &Path, now: i64) -> io::Result<()> {
    for (key, value) in read_properties(path)? {
        store
            .put_property(id, &key, value, 1, false, now)
            .map_err(store_err)?;
    }
    Ok(())
}

/// Attaches the files of `dir` to `container`, applying `*.properties.json` side files.
fn attach_files(
    store: &mut Store,
    container: u64,
    files: &[(String, PathBuf, std::fs::Metadata)],
) -> io::Result<()> {
    let now = clock::now_ms();
    let mut ids = BTreeMap::new();
    for (name, path, meta) in files {
        if name == PAGE_PROPERTIES || name == PAGE_BODY || name.ends_with(PROPERTIES_SUFFIX) {
            continue;
        }
        let file = FileVersion {
            file_id: new_uuid(),
            size: meta.len(),
            media_type: crate::api::upload::guess_media_type(name).to_string(),
            blob: Blob::External(std::fs::canonicalize(path)?),
        };
        let id = store
            .add_attachment(container, name, file, "", false, mtime_ms(meta))
            .map_err(store_err)?;
        ids.insert(name.clone(), id);
    }
    for (name, path, _) in files {
        if name == PAGE_PROPERTIES {
            set_properties(store, container, path, now)?;
        } else if let Some(target) = name.strip_suffix(PROPERTIES_SUFFIX) {
            match ids.get(target) {
                Some(id) => set_properties(store, *id, path, now)?,
                None => tracing::warn!(
                    "{}: no attachment named {target:?} beside it",
                    path.display()
                ),
            }
        }
    }
    Ok(())
}

fn unique_title(store: &Store, space: &str, wanted: &str) -> String {
    let taken = |t: &str| store.title_taken(space, t, None);
    if !taken(wanted) {
        return wanted.to_string();
    }
    (2..)
        .map(|n| format!("{wanted} ({n})"))
        .find(|t| !taken(t))
        .expect("some suffix is free")
}

/// The body of a page seeded from `dir`: its `@page.storage.xml`, else a generated one when
/// asked for, else empty.
fn page_body(dir: &Path, title: &str, generate: bool) -> io::Result<String> {
    match std::fs::read_to_string(dir.join(PAGE_BODY)) {
        Ok(s) => Ok(s),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(if generate {
            crate::filler::page_body(title)
        } else {
            String::new()
        }),
        Err(e) => Err(e),
    }
}

fn import_page_dir(
    store: &mut Store,
    space: &str,
    page: u64,
    dir: &Path,
    bodies: bool,
) -> io::Result<()> {
    let entries = sorted_entries(dir)?;
    let (dirs, files): (Vec<_>, Vec<_>) = entries.into_iter().partition(|e| e.2.is_dir());
    attach_files(store, page, &files)?;
    for (name, path, meta) in dirs {
        let title = unique_title(store, space, &name);
        let child = store
            .create_content(
                ContentKind::Page,
                space,
                &title,
                Some(page),
                page_body(&path, &title, bodies)?,
                mtime_ms(&meta),
            )
            .map_err(store_err)?;
        import_page_dir(store, space, child, &path, bodies)?;
    }
    Ok(())
}

fn import_blog(store: &mut Store, space: &str, dir: &Path) -> io::Result<()> {
    for (name, path, meta) in sorted_entries(dir)? {
        if !meta.is_dir() {
            continue;
        }
        let (when, title) = match name.split_once(' ') {
            Some((date, rest)) if !rest.trim().is_empty() => match clock::parse_day(date) {
                Some(ms) => (ms, rest.trim().to_string()),
                None => (mtime_ms(&meta), name.clone()),
            },
            _ => (mtime_ms(&meta), name.clone()),
        };
        let post = store
            .create_content(
                ContentKind::Blogpost,
                space,
                &title,
                None,
                String::new(),
                when,
            )
            .map_err(store_err)?;
        let files: Vec<_> = sorted_entries(&path)?
            .into_iter()
            .filter(|e| !e.2.is_dir())
            .collect();
        attach_files(store, post, &files)?;
    }
    Ok(())
}

/// Imports every space folder of `root` into `store`.
pub(crate) fn import(store: &mut Store, root: &Path, bodies: bool) -> io::Result<()> {
    for (key, path, meta) in sorted_entries(root)? {
        if !meta.is_dir() {
            continue;
        }
        let home = match store.space(&key) {
            Some(s) => s.homepage,
            None => store
                .create_space(&key, &key, mtime_ms(&meta))
                .map_err(store_err)?,
        };
        let entries = sorted_entries(&path)?;
        let (dirs, files): (Vec<_>, Vec<_>) = entries.into_iter().partition(|e| e.2.is_dir());
        attach_files(store, home, &files)?;
        for (name, sub, sub_meta) in dirs {
            if name == "@blog" {
                import_blog(store, &key, &sub)?;
                continue;
            }
            let title = unique_title(store, &key, &name);
            let page = store
                .create_content(
                    ContentKind::Page,
                    &key,
                    &title,
                    Some(home),
                    page_body(&sub, &title, bodies)?,
                    mtime_ms(&sub_meta),
                )
                .map_err(store_err)?;
            import_page_dir(store, &key, page, &sub, bodies)?;
        }
    }
    Ok(())
}
