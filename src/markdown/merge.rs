//! Three-way merge of storage bodies, one top-level block at a time.
//!
//! When the page changed on the server while a user edited its Markdown, we would rather merge
//! than refuse. Blocks are compared in canonical form, each side is diffed against the base
//! (longest common subsequence, after the common head and tail are set aside), and the two sets
//! of changes are applied together only when no change of one side overlaps or adjoins a change
//! of the other. Anything closer than that is for a person to decide, so it gives None.

use super::xml::{self, Node};

/// A body split into its top-level blocks: original bytes and canonical form.
struct Blocks {
    bytes: Vec<String>,
    keys: Vec<String>,
}

fn blocks(storage: &str) -> Option<Blocks> {
    let nodes = xml::parse(storage).ok()?;
    let mut bytes = Vec::new();
    let mut keys = Vec::new();
    for node in nodes.iter().filter(|n| !n.is_blank_text()) {
        bytes.push(storage[node.span.clone()].to_string());
        let mut key = String::new();
        xml::write_canonical(std::slice::from_ref::<Node>(node), None, &mut key);
        keys.push(key);
    }
    Some(Blocks { bytes, keys })
}

/// A change: base blocks `from..to` become the other side's blocks `with`.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Hunk {
    from: usize,
    to: usize,
    with: std::ops::Range<usize>,
}

/// The largest table the LCS may build; larger differences are not merged.
const MAX_CELLS: usize = 16_000_000;

fn diff(base: &[String], other: &[String]) -> Option<Vec<Hunk>> {
    let head = base.iter().zip(other).take_while(|(a, b)| a == b).count();
    let tail = base[head..]
        .iter()
        .rev()
        .zip(other[head..].iter().rev())
        .take_while(|(a, b)| a == b)
        .count();
    let a = &base[head..base.len() - tail];
    let b = &other[head..other.len() - tail];
    if (a.len() + 1).saturating_mul(b.len() + 1) > MAX_CELLS {
        return None;
    }
    // lcs[i][j]: the LCS length of a[i..] and b[j..].
    let w = b.len() + 1;
    let mut lcs = vec![0u32; (a.len() + 1) * w];
    for i in (0..a.len()).rev() {
        for j in (0..b.len()).rev() {
            lcs[i * w + j] = if a[i] == b[j] {
                lcs[(i + 1) * w + j + 1] + 1
            } else {
                lcs[(i + 1) * w + j].max(lcs[i * w + j + 1])
            };
        }
    }
    let mut hunks = Vec::new();
    let (mut i, mut j) = (0, 0);
    let mut open: Option<(usize, usize)> = None;
    while i < a.len() || j < b.len() {
        if i < a.len() && j < b.len() && a[i] == b[j] {
            if let Some((fi, fj)) = open.take() {
                hunks.push(Hunk {
                    from: head + fi,
                    to: head + i,
                    with: head + fj..head + j,
                });
            }
            i += 1;
            j += 1;
            continue;
        }
        open.get_or_insert((i, j));
        if j < b.len() && (i == a.len() || lcs[i * w + j + 1] >= lcs[(i + 1) * w + j]) {
            j += 1;
        } else {
            i += 1;
        }
    }
    if let Some((fi, fj)) = open {
        hunks.push(Hunk {
            from: head + fi,
            to: head + a.len(),
            with: head + fj..head + b.len(),
        });
    }
    Some(hunks)
}

pub(crate) fn merge(base: &str, theirs: &str, ours: &str) -> Option<String> {
    let base_b = blocks(base)?;
    let theirs_b = blocks(theirs)?;
    let ours_b = blocks(ours)?;
    let theirs_h = diff(&base_b.keys, &theirs_b.keys)?;
    let ours_h = diff(&base_b.keys, &ours_b.keys)?;
    // Both sides made the same change: one hunk. Otherwise the hunks must keep apart.
    let mut all: Vec<(Hunk, &Blocks)> = Vec::new();
    for h in &theirs_h {
        all.push((h.clone(), &theirs_b));
    }
    for h in &ours_h {
        let same = theirs_h.iter().any(|t| {
            t.from == h.from
                && t.to == h.to
                && theirs_b.keys[t.with.clone()] == ours_b.keys[h.with.clone()]
        });
        if same {
            continue;
        }
        for t in &theirs_h {
            // Overlapping or adjoining ranges (an insertion is an empty range) conflict.
            if h.from <= t.to && t.from <= h.to {
                return None;
            }
        }
        all.push((h.clone(), &ours_b));
    }
    all.sort_by_key(|(h, _)| (h.from, h.to));
    let mut out = String::new();
    let mut at = 0;
    for (hunk, side) in all {
        for block in &base_b.bytes[at..hunk.from] {
            out.push_str(block);
        }
        for block in &side.bytes[hunk.with.clone()] {
            out.push_str(block);
        }
        at = hunk.to;
    }
    for block in &base_b.bytes[at..] {
        out.push_str(block);
    }
    Some(out)
}

/// `converted` with every block equivalent to a block of `original` (in order) replaced by
/// that block's original bytes; `original` itself when the whole is equivalent.
pub(crate) fn preserve(converted: &str, original: &str) -> String {
    if super::equivalent(converted, original) {
        return original.to_string();
    }
    let (Some(new), Some(old)) = (blocks(converted), blocks(original)) else {
        return converted.to_string();
    };
    let Some(hunks) = diff(&old.keys, &new.keys) else {
        return converted.to_string();
    };
    // Blocks outside the hunks are unchanged: take them from the original.
    let mut out = String::new();
    let mut at_old = 0;
    for hunk in &hunks {
        for block in &old.bytes[at_old..hunk.from] {
            out.push_str(block);
        }
        for block in &new.bytes[hunk.with.clone()] {
            out.push_str(block);
        }
        at_old = hunk.to;
    }
    for block in &old.bytes[at_old..] {
        out.push_str(block);
    }
    out
}
