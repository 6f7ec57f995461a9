//! The small textual encodings the Markdown form carries details in.
//!
//! Markdown has no place for a macro's id or a link's `ri:version-at-save`, yet dropping them
//! would make every real page fall back to raw XHTML. So such details ride along as a list of
//! `key=value` pairs in the spots Markdown leaves free and previewers hide or ignore: a fence's
//! info string, a link's title, an HTML comment. Values avoid every character that Markdown
//! would reinterpret there (backslash, `&`, quotes, backticks, `--`), by percent-encoding them,
//! so what we read back is exactly what we wrote. Paths get the same care: link destinations are
//! percent-encoded so previewers resolve them, and decoding gives back the exact name.

use super::{RAW_CLOSE, RAW_OPEN};

/// Key/value pairs in their order.
pub(crate) type Pairs = Vec<(String, String)>;

fn value_needs_escape(c: char, prev: Option<char>) -> bool {
    c.is_control()
        || matches!(
            c,
            '"' | '\'' | '\\' | '&' | '`' | '%' | '<' | '>' | '(' | ')' | '[' | ']'
        )
        || (c == '-' && prev == Some('-'))
}

fn push_escaped(c: char, out: &mut String) {
    let mut buf = [0u8; 4];
    for b in c.encode_utf8(&mut buf).bytes() {
        out.push_str(&format!("%{b:02X}"));
    }
}

/// Encodes pairs as `key=value key2="value with spaces"`.
pub(crate) fn encode_pairs(pairs: &[(String, String)]) -> String {
    let mut out = String::new();
    for (k, v) in pairs {
        if !out.is_empty() {
            out.push(' ');
        }
        out.push_str(k);
        out.push('=');
        let bare = !v.is_empty() && !v.chars().any(|c| c.is_whitespace());
        if !bare {
            out.push('"');
        }
        let mut prev = None;
        for c in v.chars() {
            if value_needs_escape(c, prev) || (c == ' ' && bare) {
                push_escaped(c, &mut out);
            } else {
                out.push(c);
            }
            prev = Some(c);
        }
        if !bare {
            out.push('"');
        }
    }
    out
}

fn valid_key(k: &str) -> bool {
    !k.is_empty()
        && k.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | ':' | '.' | '@'))
}

/// Decodes what [`encode_pairs`] wrote; None for anything else.
pub(crate) fn decode_pairs(text: &str) -> Option<Pairs> {
    let mut out = Vec::new();
    let mut rest = text.trim();
    while !rest.is_empty() {
        let eq = rest.find('=')?;
        let key = &rest[..eq];
        if !valid_key(key) {
            return None;
        }
        rest = &rest[eq + 1..];
        let raw;
        if let Some(quoted) = rest.strip_prefix('"') {
            let end = quoted.find('"')?;
            raw = &quoted[..end];
            rest = &quoted[end + 1..];
            if !(rest.is_empty() || rest.starts_with(' ')) {
                return None;
            }
        } else {
            let end = rest.find(' ').unwrap_or(rest.len());
            raw = &rest[..end];
            rest = &rest[end..];
            if raw.is_empty() {
                return None;
            }
        }
        rest = rest.trim_start();
        out.push((key.to_string(), percent_decode(raw)?));
    }
    Some(out)
}

/// Decodes `%XX` sequences; None when they do not make UTF-8.
pub(crate) fn percent_decode(text: &str) -> Option<String> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' && i + 2 < bytes.len() {
            let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).ok()?;
            match u8::from_str_radix(hex, 16) {
                Ok(b) => {
                    out.push(b);
                    i += 3;
                    continue;
                }
                Err(_) => out.push(b'%'),
            }
        } else {
            out.push(bytes[i]);
        }
        i += 1;
    }
    String::from_utf8(out).ok()
}

/// Percent-encodes one path component for a Markdown link destination: ASCII characters that
/// Markdown or a URL would read specially, controls and whitespace; other Unicode stays readable.
pub(crate) fn encode_path_component(name: &str) -> String {
    encode_component(name, false)
}

/// Like [`encode_path_component`], keeping `:` (for the value after a `confluence-…:` scheme).
pub(crate) fn encode_opaque(name: &str) -> String {
    encode_component(name, true)
}

fn encode_component(name: &str, keep_colon: bool) -> String {
    let mut out = String::new();
    for c in name.chars() {
        if keep_colon && c == ':' {
            out.push(c);
            continue;
        }
        let special = c.is_control()
            || c.is_whitespace()
            || matches!(
                c,
                '%' | '#'
                    | '?'
                    | '('
                    | ')'
                    | '<'
                    | '>'
                    | '['
                    | ']'
                    | '\\'
                    | '"'
                    | '\''
                    | '`'
                    | '{'
                    | '}'
                    | '|'
                    | '^'
                    | '&'
                    | '*'
                    | '_'
                    | '/'
                    | ':'
            );
        if special {
            push_escaped(c, &mut out);
        } else {
            out.push(c);
        }
    }
    out
}

/// Takes one `key` out of `pairs`.
pub(crate) fn take(pairs: &mut Pairs, key: &str) -> Option<String> {
    let i = pairs.iter().position(|(k, _)| k == key)?;
    Some(pairs.remove(i).1)
}

/// The fence lines with number `n` (0 is the plain pair).
pub(crate) fn raw_markers(n: usize) -> (String, String) {
    if n == 0 {
        (RAW_OPEN.to_string(), RAW_CLOSE.to_string())
    } else {
        (
            format!("<!-- confluence:raw {n} -->"),
            format!("<!-- /confluence:raw {n} -->"),
        )
    }
}

/// Panel macros and the alert each maps to.
pub(crate) const ALERTS: [(&str, &str); 4] = [
    ("info", "NOTE"),
    ("tip", "TIP"),
    ("note", "WARNING"),
    ("warning", "CAUTION"),
];

/// True for `scheme:…`.
pub(crate) fn has_scheme(dest: &str) -> bool {
    let Some(colon) = dest.find(':') else {
        return false;
    };
    let scheme = &dest[..colon];
    scheme
        .chars()
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic())
        && scheme
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pairs_round_trip() {
        let pairs: Pairs = vec![
            ("title".into(), "It's \"quoted\" -- & 100% <b>".into()),
            ("ac:macro-id".into(), "a1b2-c3".into()),
            ("empty".into(), String::new()),
            ("spaces".into(), "  two  ".into()),
            ("uni".into(), "ünï／".into()),
        ];
        let text = encode_pairs(&pairs);
        assert!(!text.contains("--"), "{text}");
        assert!(!text.contains('\\') && !text.contains('&') && !text.contains('\''));
        assert_eq!(decode_pairs(&text).unwrap(), pairs);
    }

    #[test]
    fn junk_is_not_pairs() {
        for junk in ["hello", "=x", "a=\"x", "a=\"x\"y", "a b=c"] {
            assert!(decode_pairs(junk).is_none(), "{junk}");
        }
        assert_eq!(decode_pairs("").unwrap(), vec![]);
    }

    #[test]
    fn paths_round_trip() {
        for name in [
            "plain.png",
            "a b (1).pdf",
            "100% #1?.md",
            "ünï／code.rs",
            "x%41",
        ] {
            let enc = encode_path_component(name);
            assert!(!enc.contains(' ') && !enc.contains('(') && !enc.contains('#'));
            assert_eq!(percent_decode(&enc).unwrap(), name);
        }
    }
}
