//! Unit tests of the conversion: each construct's rendering and its round trip.

use super::*;

fn encode(s: &str) -> String {
    s.replace('/', "\u{FF0F}")
}

fn decode(s: &str) -> Option<String> {
    Some(s.replace('\u{FF0F}', "/"))
}

fn ctx() -> PageContext {
    PageContext {
        space_key: "DOCS".into(),
        depth: 2,
        encode,
        decode,
    }
}

/// Renders, checks the Markdown, and checks the round trip.
fn check(storage: &str, markdown: &str) {
    let md = to_markdown(storage, &ctx());
    assert_eq!(md.trim_end(), markdown, "rendering of {storage}");
    round_trip(storage);
}

fn round_trip(storage: &str) {
    let md = to_markdown(storage, &ctx());
    let back = to_storage(&md, &ctx()).unwrap();
    assert!(
        equivalent(&back, storage),
        "round trip of {storage}\nmarkdown:\n{md}\nback:\n{back}"
    );
    assert!(is_well_formed(&back));
}

#[test]
fn headings_and_paragraphs() {
    check(
        "<h1>Title</h1><p>Hello <strong>bold</strong> and <em>it</em>.</p>",
        "# Title\n\nHello **bold** and *it*.",
    );
    check("<h3>Three</h3>", "### Three");
    check("<h6>Six #</h6>", "###### Six \\#");
}
