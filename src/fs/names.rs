//! Names: how a Confluence title or filename becomes one path component, and back.
//!
//! Confluence titles and filenames may hold anything a path component may not: `/`, the names
//! `.` and `..`, more than 255 bytes. Some are also names we use ourselves (`@versions`,
//! `@blog`), and one page directory holds child pages *and* attachments, which Confluence lets
//! share a name. Every object must still get exactly one name, the same one on every listing,
//! and a name must lead back to its object without listing the directory where possible.
//!
//! So the mapping is a small, reversible escape (rclone's choice of `／` for `/`, with a quote
//! character that makes it injective), a prefix for the few reserved names, and, only where
//! needed, a tag with the object's id: `NAME (page ID)`. Ids are unique per kind, so a tagged
//! name is unique by construction, and it stays reachable because [`parse`] reads the id back.
//! Page titles are unique in a whole space, but a name need only be unique in its directory
//! (`docs/images` and `src/images`). A page made under a name whose title is taken elsewhere gets
//! a [`unique_title`] (`images (under 98312)`, the parent's id making it unique) and keeps the
//! chosen name in its `confluencefs` property; listings show that name, and the rules below
//! apply to it as they would to a title.
//!
//! Everything here is pure: no I/O, no clock, and the same children always get the same names
//! whatever order the server listed them in. docs/SEMANTICS.md's "Names" section states these rules for
//! users; the tests below check each of them.

use std::collections::HashSet;
use std::time::{SystemTime, UNIX_EPOCH};

use percent_encoding::{percent_decode_str, utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};

/// The hidden directory of a page's attachment history.
pub const VERSIONS_DIR: &str = "@versions";
/// The directory of a space's blog posts.
pub const BLOG_DIR: &str = "@blog";
/// The longest path component Linux accepts, in bytes.
pub const NAME_MAX: usize = 255;
/// The longest extension kept in tagged names and version file names, in bytes.
pub const EXTENSION_MAX: usize = 16;

/// Stands for `/` (U+FF0F FULLWIDTH SOLIDUS).
const SLASH: char = '\u{FF0F}';
/// Quotes the next character (U+201B SINGLE HIGH-REVERSED-9 QUOTATION MARK).
const QUOTE: char = '\u{201B}';
/// Stands for NUL (U+2400 SYMBOL FOR NULL).
const NUL_SIGN: char = '\u{2400}';

/// Names an escaped title may not take as they are (the empty name is reserved too).
const RESERVED: [&str; 4] = [".", "..", VERSIONS_DIR, BLOG_DIR];

/// Bytes of an id written as `%XX` in a tag, so that a tag never holds a space, a parenthesis,
/// a dot or a slash, and so can be read back from the end of a name unambiguously.
const ID_ESCAPES: &AsciiSet = &NON_ALPHANUMERIC.remove(b'-').remove(b'_');

/// The longest page title Confluence accepts, in characters.
pub const TITLE_MAX: usize = 255;

/// The title a page named `raw` gets under `parent_id` when `raw` is taken elsewhere in the
/// space: `raw (under PARENT_ID)`, then `raw (under PARENT_ID, N)` for a further `attempt`. The
/// name is cut (at a character) so that the title stays within [`TITLE_MAX`].
pub fn unique_title(raw: &str, parent_id: &str, attempt: u32) -> String {
    let tag = if attempt <= 1 {
        format!(" (under {parent_id})")
    } else {
        format!(" (under {parent_id}, {attempt})")
    };
    let room = TITLE_MAX.saturating_sub(tag.chars().count());
    let cut: String = raw.chars().take(room).collect();
    format!("{cut}{tag}")
}

/// A title or filename as one path component (rules 1 and 2): `/` becomes `／`, a literal `／`,
/// `‛` or `␀` is quoted with `‛`, NUL becomes `␀`, and a result that is empty, `.`, `..`,
/// `@versions` or `@blog` gets a leading `‛`. No length limit here: see [`assign_names`].
pub fn encode(raw: &str) -> String {
    let mut out = String::with_capacity(raw.len() + QUOTE.len_utf8());
    for ch in raw.chars() {
        match ch {
            '/' => out.push(SLASH),
            '\0' => out.push(NUL_SIGN),
            SLASH | QUOTE | NUL_SIGN => {
                out.push(QUOTE);
                out.push(ch);
            }
            _ => out.push(ch),
        }
    }
    if is_reserved(&out) {
        out.insert(0, QUOTE);
    }
    out
}

/// The title or filename that [`encode`] turns into `name`, or `None` when `encode` never
/// produces `name` (rule 7: a stray `‛`, a bare reserved name, a `/` or NUL), so that every
/// object has exactly one name: `decode(n) == Some(x)` implies `encode(&x) == n`.
pub fn decode(name: &str) -> Option<String> {
    match name.strip_prefix(QUOTE) {
        Some(rest) if is_reserved(rest) => return Some(rest.to_owned()),
        None if is_reserved(name) => return None,
        _ => {}
    }
    let mut out = String::with_capacity(name.len());
    let mut chars = name.chars();
    while let Some(ch) = chars.next() {
        match ch {
            QUOTE => match chars.next() {
                Some(quoted @ (QUOTE | SLASH | NUL_SIGN)) => out.push(quoted),
                _ => return None,
            },
            SLASH => out.push('/'),
            NUL_SIGN => out.push('\0'),
            '/' | '\0' => return None,
            _ => out.push(ch),
        }
    }
    Some(out)
}

fn is_reserved(escaped: &str) -> bool {
    escaped.is_empty() || RESERVED.contains(&escaped)
}

/// What a directory entry is in Confluence.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum EntryKind {
    /// A page: a directory.
    Page,
    /// A blog post: a directory under `@blog`.
    BlogPost,
    /// An attachment: a file.
    Attachment,
    /// A space: a directory of the mount's root, named by its key.
    Space,
}

impl EntryKind {
    /// The word in a tag: `(page ID)`, `(blog ID)`, `(attachment ID)`.
    fn tag_word(self) -> &'static str {
        match self {
            EntryKind::Page => "page",
            EntryKind::BlogPost => "blog",
            EntryKind::Attachment => "attachment",
            EntryKind::Space => "space",
        }
    }

    /// Who keeps a contested plain name: an attachment first (a file's name is what tools
    /// and links rely on), then pages, then blog posts.
    fn precedence(self) -> u8 {
        match self {
            EntryKind::Attachment => 0,
            EntryKind::Page => 1,
            EntryKind::BlogPost => 2,
            EntryKind::Space => 3,
        }
    }
}

/// One object of a directory, as [`assign_names`] needs it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Child<'a> {
    /// What the object is; decides who keeps a contested name.
    pub kind: EntryKind,
    /// Confluence's content or attachment id (digits; any string works).
    pub id: &'a str,
    /// The raw title or filename; for a blog post, [`blog_post_name`]'s `YYYY-MM-DD Title`.
    pub name: &'a str,
}

/// The names of one directory's children, in the order of `children` (rules 1–4).
///
/// A child gets its escaped name ([`encode`]) when that fits in 255 bytes and nobody with a
/// stronger claim wants it; otherwise its tagged name ([`tagged_name`]). Claims, strongest
/// first: a tagged name (it holds a unique id); then, among children with the same plain name,
/// attachments before pages before blog posts, and a lower id before a higher one (numeric
/// order for Confluence's numeric ids). The result depends only on the set of children, not
/// their order, and names are unique as long as no (kind, id) pair occurs twice: one object
/// listed twice is the caller's to drop.
pub fn assign_names(children: &[Child<'_>]) -> Vec<String> {
    let plain: Vec<String> = children.iter().map(|c| encode(c.name)).collect();
    let tagged: Vec<String> = children
        .iter()
        .zip(&plain)
        .map(|(c, component)| tag_component(component, c.kind, c.id))
        .collect();
    let mut keeps_plain: Vec<bool> = plain.iter().map(|p| p.len() <= NAME_MAX).collect();

    let mut order: Vec<usize> = (0..children.len()).collect();
    order.sort_by_key(|&i| {
        let c = &children[i];
        (c.kind.precedence(), c.id.len(), c.id, c.name)
    });

    // Each round either confirms every plain name or demotes at least one child to its tagged
    // name, so this ends within `children.len() + 1` rounds; in practice one or two.
    loop {
        let tagged_in_use: HashSet<&str> = (0..children.len())
            .filter(|&i| !keeps_plain[i])
            .map(|i| tagged[i].as_str())
            .collect();
        let mut claimed: HashSet<&str> = HashSet::new();
        let mut demoted = false;
        for &i in &order {
            if !keeps_plain[i] {
                continue;
            }
            let name = plain[i].as_str();
            if tagged_in_use.contains(name) || !claimed.insert(name) {
                keeps_plain[i] = false;
                demoted = true;
            }
        }
        if !demoted {
            break;
        }
    }

    plain
        .into_iter()
        .zip(tagged)
        .zip(keeps_plain)
        .map(|((plain, tagged), keep)| if keep { plain } else { tagged })
        .collect()
}

/// The name an object gets when its plain name is too long or taken (rules 3 and 4):
/// `NAME (page ID)`, `NAME (blog ID)`, `NAME (attachment ID).EXT` (the extension kept when
/// there is one, see [`version_file_name`]), with NAME cut at a character boundary so that the
/// whole fits in 255 bytes. A caller that found an object through [`NameQuery::ById`] compares
/// this with the name it was asked for.
pub fn tagged_name(kind: EntryKind, id: &str, raw: &str) -> String {
    tag_component(&encode(raw), kind, id)
}

fn tag_component(component: &str, kind: EntryKind, id: &str) -> String {
    let tag = format!(
        " ({} {})",
        kind.tag_word(),
        utf8_percent_encode(id, ID_ESCAPES)
    );
    let (stem, extension) = match kind {
        EntryKind::Attachment => split_extension(component),
        EntryKind::Page | EntryKind::BlogPost | EntryKind::Space => (component, None),
    };
    let suffix_len = tag.len() + extension.map_or(0, |e| e.len() + 1);
    let stem = cut(stem, NAME_MAX.saturating_sub(suffix_len));
    let mut out = String::with_capacity(stem.len() + suffix_len);
    out.push_str(stem);
    out.push_str(&tag);
    if let Some(extension) = extension {
        out.push('.');
        out.push_str(extension);
    }
    out
}

/// The longest prefix of an escaped name within `budget` bytes that does not split a quoted
/// pair, so that a cut name still reads as escaped text up to its tag.
fn cut(component: &str, budget: usize) -> &str {
    let mut end = 0;
    let mut chars = component.char_indices();
    while let Some((start, ch)) = chars.next() {
        let mut stop = start + ch.len_utf8();
        if ch == QUOTE {
            if let Some((next_start, next)) = chars.next() {
                stop = next_start + next.len_utf8();
            }
        }
        if stop > budget {
            break;
        }
        end = stop;
    }
    &component[..end]
}

/// A file name's extension (rule 6): the part after the last `.`, when that dot is not the
/// first character and the part is 1 to 16 bytes without a space.
fn extension(name: &str) -> Option<&str> {
    split_extension(name).1
}

fn split_extension(name: &str) -> (&str, Option<&str>) {
    match name.rfind('.') {
        Some(dot) if dot > 0 && is_extension(&name[dot + 1..]) => {
            (&name[..dot], Some(&name[dot + 1..]))
        }
        _ => (name, None),
    }
}

/// No dot (it is after the last one) and no space: that is what lets a tag be read back from
/// the end of a name, whatever the extension holds otherwise.
fn is_extension(text: &str) -> bool {
    !text.is_empty() && text.len() <= EXTENSION_MAX && !text.contains(['.', ' '])
}

/// The raw name of a blog post (rule 5): its date in UTC as `YYYY-MM-DD`, a space, its title.
/// Without a date (the server did not say) the date reads `0000-00-00`. Escape it with
/// [`assign_names`] like any other name.
pub fn blog_post_name(date: Option<SystemTime>, title: &str) -> String {
    match date {
        Some(time) => {
            let (year, month, day) = utc_date(time);
            format!("{year:04}-{month:02}-{day:02} {title}")
        }
        None => format!("0000-00-00 {title}"),
    }
}

/// The UTC calendar date of an instant (Howard Hinnant's `civil_from_days`).
fn utc_date(time: SystemTime) -> (i64, u32, u32) {
    let seconds = match time.duration_since(UNIX_EPOCH) {
        Ok(after) => i64::try_from(after.as_secs()).unwrap_or(i64::MAX),
        Err(before) => {
            let before = before.duration();
            let whole = i64::try_from(before.as_secs()).unwrap_or(i64::MAX);
            // Round towards the past, so that 1969-12-31T23:59:59.5 is still the 31st.
            -whole - i64::from(before.subsec_nanos() > 0)
        }
    };
    let days = seconds.div_euclid(86_400) + 719_468;
    let era = days.div_euclid(146_097);
    let day_of_era = days.rem_euclid(146_097);
    let year_of_era =
        (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let month_index = (5 * day_of_year + 2) / 153;
    let day = (day_of_year - (153 * month_index + 2) / 5 + 1) as u32;
    let month = (if month_index < 10 {
        month_index + 3
    } else {
        month_index - 9
    }) as u32;
    let year = year_of_era + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

/// What a name may stand for, found without listing its directory.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum NameQuery {
    /// The object whose title or filename (for a blog post: `YYYY-MM-DD Title`) is this.
    Plain(String),
    /// The object of this kind with this id (the name carries a tag).
    ById(EntryKind, String),
}

/// The objects `name` may stand for, most likely first: the decoded title or filename, then
/// the object named by a tag. At most one of each; empty when nothing can have this name.
///
/// Both kinds are there because a tag is only a hint: `report (page 123)` is page 123 when
/// it collides with an attachment `report`, and is just as well the title of another page.
/// Neither is an answer on its own either: an object matching a candidate has exactly `name`
/// only if its directory gives it `name` — [`assign_names`] over the listing, or at least
/// `encode` (for `Plain`) or [`tagged_name`] (for `ById`) of the object found. Every name
/// `assign_names` gives has its object among the candidates.
pub fn parse(name: &str) -> Vec<NameQuery> {
    let mut candidates = Vec::with_capacity(2);
    if let Some(raw) = decode(name) {
        candidates.push(NameQuery::Plain(raw));
    }
    if let Some((kind, id)) = parse_tag(name) {
        candidates.push(NameQuery::ById(kind, id));
    }
    candidates
}

/// The (kind, id) of a tagged name. The id has no space, `)` or `.` (see `ID_ESCAPES`) and an
/// extension has no space, so the tag is the text around the last space.
fn parse_tag(name: &str) -> Option<(EntryKind, String)> {
    let last_space = name.rfind(' ')?;
    let (head, tail) = (&name[..last_space], &name[last_space + 1..]);
    let close = tail.find(')')?;
    let (id_text, after) = (&tail[..close], &tail[close + 1..]);
    let kind = [EntryKind::Page, EntryKind::BlogPost, EntryKind::Attachment]
        .into_iter()
        .find(|kind| {
            head.strip_suffix(kind.tag_word())
                .is_some_and(|h| h.ends_with(" ("))
        })?;
    let tail_fits = match kind {
        _ if after.is_empty() => true,
        EntryKind::Attachment => after.strip_prefix('.').is_some_and(is_extension),
        EntryKind::Page | EntryKind::BlogPost | EntryKind::Space => false,
    };
    if !tail_fits || id_text.is_empty() {
        return None;
    }
    let id = percent_decode_str(id_text).decode_utf8().ok()?;
    // One spelling per id: `%31` is not `1`, `%2e` is not `%2E`.
    if utf8_percent_encode(&id, ID_ESCAPES).to_string() != id_text {
        return None;
    }
    Some((kind, id.into_owned()))
}

/// The name of one version of a file under `@versions/<file>/` (rule 6): the version number,
/// plus the file name's extension when it has one (`2.pdf` for `report.pdf`, `3` for
/// `Makefile`). `filename` is the raw filename; the extension is taken as it reads escaped.
pub fn version_file_name(filename: &str, version: u64) -> String {
    match extension(&encode(filename)) {
        Some(extension) => format!("{version}.{extension}"),
        None => version.to_string(),
    }
}

/// The version number [`version_file_name`] wrote into `name` for `filename`, or `None` for
/// any other spelling (`02.pdf`, `2.PDF`, `2` for a `.pdf`, `0.pdf`).
pub fn parse_version_file_name(name: &str, filename: &str) -> Option<u64> {
    let component = encode(filename);
    let digits = match extension(&component) {
        Some(extension) => name.strip_suffix(extension)?.strip_suffix('.')?,
        None => name,
    };
    if digits.is_empty() || digits.starts_with('0') || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

#[cfg(test)]
mod unique_title_tests {
    use super::*;

    #[test]
    fn unique_titles_name_the_parent_and_stay_within_the_limit() {
        assert_eq!(unique_title("images", "98312", 1), "images (under 98312)");
        assert_eq!(
            unique_title("images", "98312", 2),
            "images (under 98312, 2)"
        );
        let long = "x".repeat(300);
        let title = unique_title(&long, "7", 1);
        assert_eq!(title.chars().count(), TITLE_MAX);
        assert!(title.ends_with(" (under 7)"));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::rngs::StdRng;
    use rand::seq::SliceRandom;
    use rand::{Rng, SeedableRng};
    use std::time::Duration;

    fn page<'a>(id: &'a str, name: &'a str) -> Child<'a> {
        Child {
            kind: EntryKind::Page,
            id,
            name,
        }
    }

    fn attachment<'a>(id: &'a str, name: &'a str) -> Child<'a> {
        Child {
            kind: EntryKind::Attachment,
            id,
            name,
        }
    }

    fn blog<'a>(id: &'a str, name: &'a str) -> Child<'a> {
        Child {
            kind: EntryKind::BlogPost,
            id,
            name,
        }
    }

    fn nasty_names() -> Vec<String> {
        let mut names: Vec<String> = [
            "/",
            "a/b/c",
            "/leading",
            "trailing/",
            "//",
            "／",
            "‛",
            "‛／",
            "／‛",
            "‛‛",
            "a‛b",
            "‛.",
            "‛..",
            "‛@versions",
            "␀",
            "‛␀",
            "a\0b",
            "\0",
            ".",
            "..",
            "...",
            ".hidden",
            "..hidden",
            "./",
            "@versions",
            "@blog",
            "@other",
            "@versions.pdf",
            "@Versions",
            " @blog",
            "",
            " ",
            "trailing spaces  ",
            "  leading spaces",
            "Caf\u{e9}",
            "Cafe\u{301}",
            "Résumé 2024 📄.pdf",
            "👩‍👩‍👧‍👦",
            "report (page 123)",
            "x (attachment 9).pdf",
            "tab\tand\nnewline",
            "%2F",
            "back\\slash",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        names.push("x".repeat(300));
        names.push("é".repeat(150));
        names.push("/".repeat(100));
        names.push("‛".repeat(100));
        names
    }

    #[test]
    fn encode_examples_follow_the_rules() {
        assert_eq!(encode("a/b/c"), "a／b／c");
        assert_eq!(encode("／"), "‛／");
        assert_eq!(encode("‛"), "‛‛");
        assert_eq!(encode("‛／"), "‛‛‛／");
        assert_eq!(encode("a\0b"), "a␀b");
        assert_eq!(encode("␀"), "‛␀");
        assert_eq!(encode("."), "‛.");
        assert_eq!(encode(".."), "‛..");
        assert_eq!(encode("@versions"), "‛@versions");
        assert_eq!(encode("@blog"), "‛@blog");
        assert_eq!(encode(""), "‛");
        assert_eq!(encode("@other"), "@other");
        assert_eq!(encode("..."), "...");
        assert_eq!(encode(".hidden"), ".hidden");
        assert_eq!(encode("report.pdf"), "report.pdf");
    }

    #[test]
    fn nasty_names_round_trip() {
        for name in nasty_names() {
            let encoded = encode(&name);
            assert_eq!(decode(&encoded).as_deref(), Some(name.as_str()), "{name:?}");
        }
    }

    #[test]
    fn unicode_is_kept_byte_exact() {
        let nfc = "Caf\u{e9}";
        let nfd = "Cafe\u{301}";
        assert_eq!(encode(nfc).as_bytes(), nfc.as_bytes());
        assert_eq!(encode(nfd).as_bytes(), nfd.as_bytes());
        assert_ne!(encode(nfc), encode(nfd));
        assert_eq!(decode(nfd).unwrap().as_bytes(), nfd.as_bytes());
    }

    #[test]
    fn encoding_is_injective_on_nasty_names() {
        let names = nasty_names();
        let encoded: HashSet<String> = names.iter().map(|n| encode(n)).collect();
        assert_eq!(encoded.len(), names.len());
    }

    #[test]
    fn encoded_names_hold_no_slash_or_nul_and_are_never_dot_names() {
        for name in nasty_names() {
            let encoded = encode(&name);
            assert!(!encoded.contains(['/', '\0']), "{encoded:?}");
            assert!(!is_reserved(&encoded), "{encoded:?}");
        }
    }

    #[test]
    fn decode_rejects_what_encode_never_writes() {
        for name in [
            "‛",
            "a‛",
            "‛a",
            "‛@other",
            "‛...",
            "‛ .",
            "‛‛‛.",
            "a‛.b",
            ".",
            "..",
            "@versions",
            "@blog",
            "",
            "a/b",
            "a\0b",
        ] {
            // "‛" alone is the empty name, the only exception to "a lone ‛ is not found".
            let expected = (name == "‛").then(String::new);
            assert_eq!(decode(name), expected, "{name:?}");
        }
    }

    /// Strings over the characters that matter to the escaping, `len` up to `max_len`.
    fn random_name(rng: &mut StdRng, alphabet: &[char], max_len: usize) -> String {
        let len = rng.random_range(0..=max_len);
        (0..len)
            .map(|_| alphabet[rng.random_range(0..alphabet.len())])
            .collect()
    }

    const TRICKY: [char; 8] = ['/', '／', '‛', '.', '@', 'a', 'é', ' '];

    #[test]
    fn random_names_round_trip_and_stay_distinct() {
        let mut rng = StdRng::seed_from_u64(0x6e61_6d65);
        let mut seen = std::collections::HashMap::new();
        for _ in 0..20_000 {
            let name = random_name(&mut rng, &TRICKY, 10);
            let encoded = encode(&name);
            assert_eq!(decode(&encoded).as_deref(), Some(name.as_str()), "{name:?}");
            assert!(!encoded.contains(['/', '\0']));
            if let Some(other) = seen.insert(encoded.clone(), name.clone()) {
                assert_eq!(other, name, "two names encode to {encoded:?}");
            }
        }
        assert!(
            seen.len() > 5_000,
            "the generator should vary: {}",
            seen.len()
        );
    }

    #[test]
    fn random_components_decode_only_to_their_one_preimage() {
        // Whatever the kernel hands us: if it decodes, it is exactly what encode writes.
        let alphabet = ['／', '‛', '␀', '.', '@', 'a', '/', ' '];
        let mut rng = StdRng::seed_from_u64(7);
        let mut decoded = 0;
        for _ in 0..20_000 {
            let name = random_name(&mut rng, &alphabet, 6);
            if let Some(raw) = decode(&name) {
                assert_eq!(encode(&raw), name, "{name:?} decodes to {raw:?}");
                decoded += 1;
            }
        }
        assert!(decoded > 1_000, "too few decodable samples: {decoded}");
    }

    #[test]
    fn unique_names_stay_plain() {
        let children = [
            page("1", "Architecture"),
            page("2", "a/b"),
            attachment("3", "diagram.png"),
            attachment("4", "@versions"),
            page("5", "."),
        ];
        assert_eq!(
            assign_names(&children),
            ["Architecture", "a／b", "diagram.png", "‛@versions", "‛."]
        );
    }

    #[test]
    fn attachment_keeps_the_name_and_the_page_is_tagged() {
        let children = [page("123", "report"), attachment("456", "report")];
        assert_eq!(assign_names(&children), ["report (page 123)", "report"]);
        // The title may escape to the filename: "a/b" and "a／b" are different raw names.
        let children = [page("7", "a/b"), attachment("8", "a／b")];
        assert_eq!(assign_names(&children), ["a／b", "a‛／b"]);
        let children = [page("7", "a／b"), attachment("8", "a／b")];
        assert_eq!(assign_names(&children), ["a‛／b (page 7)", "a‛／b"]);
    }

    #[test]
    fn duplicates_are_tagged_in_id_order() {
        // Numeric order: 9 keeps the name, although "10" < "9" as text.
        let children = [
            attachment("10", "notes.txt"),
            attachment("9", "notes.txt"),
            attachment("11", "notes.txt"),
        ];
        assert_eq!(
            assign_names(&children),
            [
                "notes (attachment 10).txt",
                "notes.txt",
                "notes (attachment 11).txt"
            ]
        );
        let children = [blog("5", "2024-01-15 Q4"), blog("4", "2024-01-15 Q4")];
        assert_eq!(
            assign_names(&children),
            ["2024-01-15 Q4 (blog 5)", "2024-01-15 Q4"]
        );
        let children = [page("2", "Home"), page("1", "Home")];
        assert_eq!(assign_names(&children), ["Home (page 2)", "Home"]);
    }

    #[test]
    fn names_do_not_depend_on_listing_order() {
        let long = "x".repeat(300);
        let children = vec![
            page("1", "report"),
            attachment("2", "report"),
            attachment("3", "report"),
            page("4", "report (page 1)"),
            attachment("5", &long),
            page("6", &long),
            page("7", ""),
            attachment("8", "‛"),
        ];
        let expected: Vec<(Child, String)> = children
            .iter()
            .copied()
            .zip(assign_names(&children))
            .collect();
        let mut rng = StdRng::seed_from_u64(1);
        for _ in 0..50 {
            let mut shuffled = expected.clone();
            shuffled.shuffle(&mut rng);
            let (input, names): (Vec<Child>, Vec<String>) = shuffled.into_iter().unzip();
            assert_eq!(assign_names(&input), names);
        }
    }

    #[test]
    fn a_tagged_name_wins_over_a_lookalike_title() {
        // Page 1 must become "report (page 1)"; page 4 really has that title and gives way.
        let children = [
            page("1", "report"),
            attachment("2", "report"),
            page("4", "report (page 1)"),
        ];
        assert_eq!(
            assign_names(&children),
            ["report (page 1)", "report", "report (page 1) (page 4)"]
        );
        // Without the collision, the lookalike title is its plain self.
        let children = [page("4", "report (page 1)")];
        assert_eq!(assign_names(&children), ["report (page 1)"]);
    }

    #[test]
    fn long_names_are_cut_and_tagged() {
        let long_title = "t".repeat(300);
        let long_file = format!("{}.pdf", "f".repeat(300));
        let long_ext = format!("{}.{}", "g".repeat(300), "e".repeat(17));
        let children = [
            page("123", &long_title),
            attachment("456", &long_file),
            attachment("789", &long_ext),
            blog("42", &long_title),
        ];
        let names = assign_names(&children);
        assert_eq!(names[0], format!("{} (page 123)", "t".repeat(255 - 11)));
        assert_eq!(
            names[1],
            format!("{} (attachment 456).pdf", "f".repeat(255 - 21))
        );
        // An "extension" over 16 bytes is not kept apart: it is cut with the rest.
        assert_eq!(
            names[2],
            format!("{} (attachment 789)", "g".repeat(255 - 17))
        );
        assert_eq!(names[3], format!("{} (blog 42)", "t".repeat(255 - 10)));
        for name in &names {
            assert_eq!(name.len(), 255, "{name}");
        }
        // 255 bytes exactly is not long.
        let just_fits = "j".repeat(255);
        assert_eq!(assign_names(&[page("1", &just_fits)]), [just_fits]);
    }

    #[test]
    fn cutting_respects_characters_and_quoted_pairs() {
        // "é" is 2 bytes, "／" 3 and a literal "／" 6 once quoted: a cut never splits them.
        // The leading "a" puts the 246-byte budget in the middle of a quoted pair.
        for raw in [
            "é".repeat(200),
            "/".repeat(100),
            "／".repeat(60),
            format!("a{}", "／".repeat(60)),
            format!("a{}", "‛".repeat(60)),
        ] {
            let name = tagged_name(EntryKind::Page, "1", &raw);
            assert!(name.len() <= NAME_MAX, "{name}");
            assert!(name.len() > NAME_MAX - 6, "{name}");
            let stem = name.strip_suffix(" (page 1)").unwrap();
            let decoded = decode(stem).expect("a cut stays decodable up to its tag");
            assert!(raw.starts_with(&decoded));
        }
    }

    #[test]
    fn long_names_in_collision_stay_unique() {
        let long = format!("{}.txt", "L".repeat(400));
        let same_prefix = format!("{}.txt", "L".repeat(401));
        let children = [
            attachment("1", &long),
            attachment("2", &same_prefix),
            page("1", &long),
            attachment("3", &long),
        ];
        let names = assign_names(&children);
        let unique: HashSet<&String> = names.iter().collect();
        assert_eq!(unique.len(), names.len(), "{names:?}");
        assert!(names.iter().all(|n| n.len() <= NAME_MAX));
        assert!(names[0].ends_with(" (attachment 1).txt"));
        assert!(names[2].ends_with(" (page 1)"));
    }

    #[test]
    fn ids_that_are_not_digits_are_written_safely() {
        for id in ["a/b", "1 2)", "x.y", "%41", "é", "a\0b"] {
            let name = tagged_name(EntryKind::Attachment, id, "f.txt");
            assert!(!name.contains(['/', '\0']), "{name}");
            assert!(
                parse(&name).contains(&NameQuery::ById(EntryKind::Attachment, id.to_string())),
                "{name}"
            );
        }
    }

    #[test]
    fn parse_offers_the_plain_name_first_then_the_tag() {
        assert_eq!(
            parse("report (page 123)"),
            [
                NameQuery::Plain("report (page 123)".into()),
                NameQuery::ById(EntryKind::Page, "123".into()),
            ]
        );
        assert_eq!(parse("a／b"), [NameQuery::Plain("a/b".into())]);
        assert_eq!(parse("‛@versions"), [NameQuery::Plain("@versions".into())]);
        assert_eq!(
            parse("notes (attachment 10).txt"),
            [
                NameQuery::Plain("notes (attachment 10).txt".into()),
                NameQuery::ById(EntryKind::Attachment, "10".into()),
            ]
        );
        assert_eq!(
            parse("2024-01-15 Q4 (blog 5)")[1],
            NameQuery::ById(EntryKind::BlogPost, "5".into())
        );
        // A tag on a name that does not decode: only the id is left.
        assert_eq!(
            parse("‛.. (page 9)"),
            [NameQuery::ById(EntryKind::Page, "9".into())]
        );
    }

    #[test]
    fn parse_finds_no_tag_where_none_was_written() {
        for name in [
            "report",
            "report (page )",
            "report (page 1",
            "report (folder 1)",
            "report(page 1)",
            "report (page 1).pdf",
            "report (blog 1).pdf",
            "report (attachment 1).",
            "report (attachment 1).pdf.gz",
            "report (attachment 1)x",
            "report (page %31)",
            "report (page %2e)",
            "report (page 1 2)",
            "(page 1)",
        ] {
            assert!(
                !parse(name).iter().any(|q| matches!(q, NameQuery::ById(..))),
                "{name:?}"
            );
        }
        assert_eq!(parse("‛"), [NameQuery::Plain(String::new())]);
        assert_eq!(parse("a‛"), []);
        assert_eq!(parse(".."), []);
    }

    #[test]
    fn random_directories_get_unique_reachable_names_in_any_order() {
        let mut rng = StdRng::seed_from_u64(0x0064_6972);
        let kinds = [EntryKind::Page, EntryKind::Attachment, EntryKind::BlogPost];
        let long = "y".repeat(260);
        let mut lookalikes_demoted = 0;
        for _ in 0..2_000 {
            let count = rng.random_range(1..12);
            let mut owned: Vec<(EntryKind, String, String)> = Vec::new();
            for n in 0..count {
                let kind = kinds[rng.random_range(0..kinds.len())];
                // Unique per kind, as in Confluence: the position keeps them apart.
                let id = format!("{}{n}", rng.random_range(1..4));
                let mut name = random_name(&mut rng, &TRICKY, 3);
                match rng.random_range(0..6) {
                    // A title that reads like an earlier child's tagged name.
                    0 if n > 0 => {
                        let (kind, id, earlier) = &owned[rng.random_range(0..n)];
                        name = decode(&tagged_name(*kind, id, earlier)).unwrap_or(name);
                    }
                    1 => name = format!("{name}.txt"),
                    2 => name = format!("{long}{name}"),
                    _ => {}
                }
                owned.push((kind, id, name));
            }
            let children: Vec<Child> = owned
                .iter()
                .map(|(kind, id, name)| Child {
                    kind: *kind,
                    id,
                    name,
                })
                .collect();
            let names = assign_names(&children);

            let unique: HashSet<&String> = names.iter().collect();
            assert_eq!(unique.len(), names.len(), "{children:?} → {names:?}");
            let tagged = |c: &Child| tagged_name(c.kind, c.id, c.name);
            lookalikes_demoted += children
                .iter()
                .zip(&names)
                .filter(|(c, name)| {
                    **name == tagged(c)
                        && children.iter().any(|other| tagged(other) == encode(c.name))
                })
                .count();
            for (child, name) in children.iter().zip(&names) {
                assert!(name.len() <= NAME_MAX && !name.is_empty(), "{name:?}");
                assert!(
                    !name.contains(['/', '\0']) && !is_reserved(name),
                    "{name:?}"
                );
                let found = parse(name).into_iter().any(|query| match query {
                    NameQuery::Plain(raw) => raw == child.name,
                    NameQuery::ById(kind, id) => kind == child.kind && id == child.id,
                });
                assert!(found, "{child:?} is not reachable as {name:?}");
            }

            let mut pairs: Vec<(Child, String)> = children.iter().copied().zip(names).collect();
            pairs.shuffle(&mut rng);
            let (input, expected): (Vec<Child>, Vec<String>) = pairs.into_iter().unzip();
            assert_eq!(assign_names(&input), expected);
        }
        assert!(
            lookalikes_demoted > 20,
            "lookalikes demoted: {lookalikes_demoted}"
        );
    }

    fn at(seconds: i64) -> SystemTime {
        if seconds >= 0 {
            UNIX_EPOCH + Duration::from_secs(seconds as u64)
        } else {
            UNIX_EPOCH - Duration::from_secs(seconds.unsigned_abs())
        }
    }

    #[test]
    fn blog_post_names_start_with_the_utc_date() {
        assert_eq!(
            blog_post_name(Some(at(1_705_312_800)), "Q4 results"),
            "2024-01-15 Q4 results"
        );
        assert_eq!(blog_post_name(Some(at(0)), "Epoch"), "1970-01-01 Epoch");
        // 2024-02-29T23:59:59Z, a leap day, one second before March.
        assert_eq!(blog_post_name(Some(at(1_709_251_199)), "x"), "2024-02-29 x");
        assert_eq!(blog_post_name(Some(at(1_709_251_200)), "x"), "2024-03-01 x");
        assert_eq!(blog_post_name(Some(at(951_782_400)), "x"), "2000-02-29 x");
        assert_eq!(blog_post_name(Some(at(-1)), "x"), "1969-12-31 x");
        assert_eq!(
            blog_post_name(Some(UNIX_EPOCH - Duration::from_millis(500)), "x"),
            "1969-12-31 x"
        );
        assert_eq!(blog_post_name(None, "Undated"), "0000-00-00 Undated");
        // The title is escaped with the rest, when the directory is named.
        let raw = blog_post_name(Some(at(1_705_312_800)), "Plans 2024/2025");
        assert_eq!(
            assign_names(&[blog("9", &raw)]),
            ["2024-01-15 Plans 2024／2025"]
        );
    }

    #[test]
    fn version_file_names_keep_the_extension() {
        assert_eq!(version_file_name("report.pdf", 2), "2.pdf");
        assert_eq!(version_file_name("Makefile", 3), "3");
        assert_eq!(version_file_name(".bashrc", 1), "1");
        assert_eq!(version_file_name("archive.tar.gz", 4), "4.gz");
        assert_eq!(version_file_name("file.", 5), "5");
        assert_eq!(version_file_name("notes.old copy", 6), "6");
        assert_eq!(
            version_file_name("data.abcdefghijklmnop", 7),
            "7.abcdefghijklmnop"
        );
        assert_eq!(version_file_name("data.abcdefghijklmnopq", 7), "7");
        assert_eq!(version_file_name("a.b/c", 8), "8.b／c");
        assert_eq!(version_file_name("..", 9), "9");
        assert_eq!(version_file_name("x.PDF", 10), "10.PDF");
    }

    #[test]
    fn version_file_names_parse_back_in_one_spelling() {
        for (filename, version) in [
            ("report.pdf", 2),
            ("Makefile", 3),
            ("a.b/c", 12),
            (".bashrc", 1),
            ("big.bin", u64::MAX),
        ] {
            let name = version_file_name(filename, version);
            assert_eq!(parse_version_file_name(&name, filename), Some(version));
        }
        for name in [
            "02.pdf",
            "0.pdf",
            "2",
            "2.PDF",
            "x.pdf",
            ".pdf",
            "+2.pdf",
            "2.pdf.pdf",
            "2 .pdf",
            "18446744073709551616.pdf",
        ] {
            assert_eq!(parse_version_file_name(name, "report.pdf"), None, "{name}");
        }
        assert_eq!(parse_version_file_name("3.pdf", "Makefile"), None);
        assert_eq!(parse_version_file_name("", "Makefile"), None);
    }

    #[test]
    fn space_keys_follow_the_name_rules() {
        let long = "K".repeat(300);
        let children = [
            Child {
                kind: EntryKind::Space,
                id: "1",
                name: "DOCS",
            },
            Child {
                kind: EntryKind::Space,
                id: "2",
                name: "DOCS",
            },
            Child {
                kind: EntryKind::Space,
                id: "3",
                name: &long,
            },
            Child {
                kind: EntryKind::Space,
                id: "4",
                name: "a/b",
            },
        ];
        let names = assign_names(&children);
        assert_eq!(names[0], "DOCS");
        assert_ne!(names[1], "DOCS");
        assert!(names.iter().all(|n| n.len() <= NAME_MAX), "{names:?}");
        assert!(names.iter().all(|n| !n.contains('/')), "{names:?}");
        let unique: HashSet<&String> = names.iter().collect();
        assert_eq!(unique.len(), names.len(), "{names:?}");
    }
}
