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

/// The Markdown has no raw block.
fn no_raw(storage: &str) -> String {
    let md = to_markdown(storage, &ctx());
    assert!(!md.contains(RAW_OPEN), "{storage} went raw:\n{md}");
    round_trip(storage);
    md
}

#[test]
fn inline_marks() {
    check("<p>a<br/>b</p>", "a\\\nb");
    check(
        "<p><s>gone</s> and <code>x*y</code></p>",
        "~~gone~~ and `x*y`",
    );
    check("<p>under <u>line</u> here</p>", "under <u>line</u> here");
    check("<p><del>old</del></p>", "<del>old</del>");
    check(
        "<p>code with `tick`: <code>a`b</code></p>",
        "code with \\`tick\\`: ``a`b``",
    );
    check(
        "<p>Stars * and _under_ and [brackets] &lt;tag&gt; 1 &amp; 2 &amp;amp;</p>",
        "Stars \\* and \\_under\\_ and \\[brackets\\] \\<tag> 1 & 2 &amp;amp;",
    );
    check("<p>snake_case_name</p>", "snake_case_name");
}

#[test]
fn line_starts_are_escaped() {
    for text in [
        "- not a list",
        "1. not a list",
        "# not a heading",
        "&gt; not a quote",
        "+ plus",
        "    four spaces",
        "trailing  ",
    ] {
        no_raw(&format!("<p>{text}</p>"));
    }
    no_raw("<p>one\n2. two\n- three</p>");
    // Whitespace at a block's edge does not show, in storage or in Markdown.
    assert_eq!(no_raw("<p> leading</p>").trim_end(), "leading");
    assert_eq!(no_raw("<p>a\n b</p>").trim_end(), "a\n&#32;b");
}

#[test]
fn entities_and_unicode() {
    let md = no_raw("<p>caf&eacute;&nbsp;&rsquo;x&#8212;&#x1F600; 日本語</p>");
    assert!(
        md.contains("café\u{a0}\u{2019}x\u{2014}\u{1F600} 日本語"),
        "{md}"
    );
}

#[test]
fn horizontal_rule_and_blockquote() {
    check("<hr/>", "---");
    check(
        "<blockquote><p>quoted</p><p>twice</p></blockquote>",
        "> quoted\n>\n> twice",
    );
}

#[test]
fn lists() {
    check(
        "<ul><li>a</li><li>b<ul><li>c</li></ul></li></ul>",
        "- a\n- b\n  - c",
    );
    check(
        "<ol start=\"3\"><li>three</li><li>four</li></ol>",
        "3. three\n4. four",
    );
    check("<ol><li>x<ol><li>y</li></ol></li></ol>", "1. x\n   1. y");
    check(
        "<ul><li><p>loose</p></li><li><p>items</p></li></ul>",
        "- loose\n\n- items",
    );
    // Adjacent lists stay apart.
    check("<ul><li>a</li></ul><ul><li>b</li></ul>", "- a\n\n* b");
    check("<ol><li>a</li></ol><ol><li>b</li></ol>", "1. a\n\n1) b");
}

#[test]
fn tables() {
    check(
        "<table><tbody><tr><th>Name</th><th>Value</th></tr><tr><td>a|b</td><td><strong>x</strong></td></tr></tbody></table>",
        "| Name | Value |\n| --- | --- |\n| a\\|b | **x** |",
    );
    // Merged cells and block content stay raw.
    let md = to_markdown(
        "<table><tbody><tr><th colspan=\"2\">x</th></tr></tbody></table>",
        &ctx(),
    );
    assert!(md.starts_with(RAW_OPEN));
    round_trip("<table><tbody><tr><th colspan=\"2\">x</th></tr></tbody></table>");
    round_trip("<table><tbody><tr><th><p>x</p></th></tr></tbody></table>");
}

#[test]
fn code_macros() {
    check(
        "<ac:structured-macro ac:name=\"code\"><ac:parameter ac:name=\"language\">rust</ac:parameter><ac:plain-text-body><![CDATA[fn main() {\n\n    println!(\"]]]]><![CDATA[>\");\n}]]></ac:plain-text-body></ac:structured-macro>",
        "```rust\nfn main() {\n\n    println!(\"]]>\");\n}\n```",
    );
    check(
        "<ac:structured-macro ac:name=\"code\" ac:schema-version=\"1\" ac:macro-id=\"a-1\"><ac:parameter ac:name=\"language\">py</ac:parameter><ac:parameter ac:name=\"title\">A title</ac:parameter><ac:plain-text-body><![CDATA[x = 1]]></ac:plain-text-body></ac:structured-macro>",
        "```py ac:schema-version=1 ac:macro-id=a-1 title=\"A title\"\nx = 1\n```",
    );
    check(
        "<ac:structured-macro ac:name=\"noformat\"><ac:plain-text-body><![CDATA[plain ```text```]]></ac:plain-text-body></ac:structured-macro>",
        "````ac:name=noformat\nplain ```text```\n````",
    );
    check(
        "<ac:structured-macro ac:name=\"code\"><ac:plain-text-body><![CDATA[]]></ac:plain-text-body></ac:structured-macro>",
        "```\n```",
    );
}

#[test]
fn panels() {
    check(
        "<ac:structured-macro ac:name=\"info\"><ac:rich-text-body><p>Read this.</p></ac:rich-text-body></ac:structured-macro>",
        "> [!NOTE]\n> Read this.",
    );
    check(
        "<ac:structured-macro ac:name=\"warning\"><ac:parameter ac:name=\"title\">Careful</ac:parameter><ac:rich-text-body><p>Hot.</p><ul><li>a</li></ul></ac:rich-text-body></ac:structured-macro>",
        "> [!CAUTION]\n> <!-- title=Careful -->\n> Hot.\n>\n> - a",
    );
    no_raw("<ac:structured-macro ac:name=\"tip\"><ac:rich-text-body><p>t</p></ac:rich-text-body></ac:structured-macro>");
    no_raw("<ac:structured-macro ac:name=\"note\" ac:macro-id=\"m\"><ac:rich-text-body><p>n</p></ac:rich-text-body></ac:structured-macro>");
}

#[test]
fn task_lists() {
    let storage = "<ac:task-list><ac:task><ac:task-id>7</ac:task-id><ac:task-status>complete</ac:task-status><ac:task-body>Done <em>it</em></ac:task-body></ac:task><ac:task><ac:task-id>9</ac:task-id><ac:task-status>incomplete</ac:task-status><ac:task-body>Todo</ac:task-body></ac:task></ac:task-list>";
    check(
        storage,
        "- [x] Done *it* <!-- id=7 -->\n- [ ] Todo <!-- id=9 -->",
    );
    // A new task gets the next id after the largest.
    let md = format!("{}- [ ] New one\n", to_markdown(storage, &ctx()));
    let back = to_storage(&md, &ctx()).unwrap();
    assert!(back.contains("<ac:task-id>10</ac:task-id>"), "{back}");
    assert!(
        back.contains("<ac:task-id>7</ac:task-id>") && back.contains("<ac:task-id>9</ac:task-id>")
    );
}

#[test]
fn expand() {
    check(
        "<ac:structured-macro ac:name=\"expand\"><ac:parameter ac:name=\"title\">More &lt;here&gt;</ac:parameter><ac:rich-text-body><p>Inside <strong>it</strong></p><ac:structured-macro ac:name=\"toc\"/></ac:rich-text-body></ac:structured-macro>",
        "<details>\n<summary>More &lt;here&gt;</summary>\n\nInside **it**\n\n<!-- confluence:raw -->\n<ac:structured-macro ac:name=\"toc\"/>\n<!-- /confluence:raw -->\n\n</details>",
    );
    no_raw("<ac:structured-macro ac:name=\"expand\"><ac:rich-text-body><p>x</p></ac:rich-text-body></ac:structured-macro>");
}

#[test]
fn mentions_and_status() {
    check(
        "<p>Hi <ac:link><ri:user ri:account-id=\"557058:abc-1\"/></ac:link>!</p>",
        "Hi [@user](confluence-user:account-id:557058:abc-1)\\!",
    );
    no_raw("<p><ac:link><ri:user ri:userkey=\"8a7f\"/></ac:link></p>");
    check(
        "<p><ac:structured-macro ac:name=\"status\"><ac:parameter ac:name=\"colour\">Green</ac:parameter><ac:parameter ac:name=\"title\">DONE</ac:parameter></ac:structured-macro></p>",
        "[DONE](confluence-status:Green)",
    );
    no_raw("<p><ac:structured-macro ac:name=\"status\" ac:schema-version=\"1\"><ac:parameter ac:name=\"colour\">Red</ac:parameter><ac:parameter ac:name=\"title\">LATE</ac:parameter><ac:parameter ac:name=\"subtle\">true</ac:parameter></ac:structured-macro></p>");
}

#[test]
fn page_links() {
    check(
        "<p><ac:link><ri:page ri:content-title=\"Other page\"/><ac:plain-text-link-body><![CDATA[see (this)]]></ac:plain-text-link-body></ac:link></p>",
        "[see (this)](../@pages/Other%20page.md)",
    );
    check(
        "<p><ac:link><ri:page ri:space-key=\"ENG\" ri:content-title=\"A/B (c)\"/></ac:link></p>",
        "[A/B (c)](../../ENG/@pages/A\u{FF0F}B%20%28c%29.md 'body=none')",
    );
    no_raw("<p><ac:link><ri:page ri:content-title=\"T\" ri:version-at-save=\"3\"/><ac:link-body>rich <em>text</em></ac:link-body></ac:link></p>");
    no_raw("<p><ac:link ac:anchor=\"sec\"><ri:page ri:content-title=\"T\"/><ac:plain-text-link-body><![CDATA[x]]></ac:plain-text-link-body></ac:link></p>");
    // Deeper pages climb further.
    let deep = PageContext { depth: 4, ..ctx() };
    let md = to_markdown("<p><ac:link><ri:page ri:space-key=\"S\" ri:content-title=\"T\"/><ac:plain-text-link-body><![CDATA[t]]></ac:plain-text-link-body></ac:link></p>", &deep);
    assert_eq!(md.trim_end(), "[t](../../../../S/@pages/T.md)");
}

#[test]
fn images_and_attachments() {
    check(
        "<p><ac:image ac:alt=\"A diagram\"><ri:attachment ri:filename=\"my diagram (1).png\"/></ac:image></p>",
        "![A diagram](my%20diagram%20%281%29.png)",
    );
    check(
        "<p><ac:image ac:width=\"300\"><ri:attachment ri:filename=\"x.png\"/></ac:image></p>",
        "![](x.png 'ac:width=300')",
    );
    check(
        "<p><ac:image><ri:url ri:value=\"https://example.com/a.png\"/></ac:image></p>",
        "![](https://example.com/a.png)",
    );
    check(
        "<p><ac:link><ri:attachment ri:filename=\"report #2.pdf\"/><ac:plain-text-link-body><![CDATA[the report]]></ac:plain-text-link-body></ac:link></p>",
        "[the report](report%20%232.pdf)",
    );
    check(
        "<p><a href=\"https://example.com/a?b=c\">out</a></p>",
        "[out](https://example.com/a?b=c)",
    );
    // Another page's attachment stays raw.
    round_trip("<p><ac:image><ri:attachment ri:filename=\"x.png\"><ri:page ri:content-title=\"P\"/></ri:attachment></ac:image></p>");
}

#[test]
fn other_constructs_stay_raw() {
    for storage in [
        "<ac:layout><ac:layout-section ac:type=\"single\"><ac:layout-cell><p>x</p></ac:layout-cell></ac:layout-section></ac:layout>",
        "<ac:structured-macro ac:name=\"toc\"/>",
        "<pre>a\n\n  b</pre>",
        "<p style=\"text-align: center;\">c</p>",
        "<p></p>",
    ] {
        let md = to_markdown(storage, &ctx());
        assert!(md.starts_with(RAW_OPEN), "{md}");
        assert!(md.contains(storage), "raw blocks keep their bytes: {md}");
        round_trip(storage);
    }
    // One odd element inside a paragraph stays inline.
    check(
        "<p>Smile <ac:emoticon ac:name=\"smile\"/> please</p>",
        "Smile <ac:emoticon ac:name=\"smile\"/> please",
    );
}

#[test]
fn raw_fence_with_the_closing_line_inside() {
    let storage = "<pre>&lt;!-- /confluence:raw --&gt;\n<!-- /confluence:raw -->\n</pre>";
    let md = to_markdown(storage, &ctx());
    assert!(md.contains("<!-- confluence:raw 1 -->"), "{md}");
    let back = to_storage(&md, &ctx()).unwrap();
    assert_eq!(back, storage);
}

#[test]
fn empty_and_blank_bodies() {
    assert_eq!(to_markdown("", &ctx()), "");
    assert_eq!(to_storage("", &ctx()).unwrap(), "");
    round_trip("  \n ");
}

#[test]
fn malformed_storage_is_kept_raw() {
    let md = to_markdown("<p>unclosed", &ctx());
    assert!(md.contains("<p>unclosed"));
    assert!(matches!(
        to_storage(&md, &ctx()),
        Err(MarkdownError::MalformedRaw { .. })
    ));
}

#[test]
fn user_markdown_converts() {
    let md = "# Plan\n\nSome *text* with [a link](https://example.com) and ![pic](shot%201.png).\n\n\
```python\nprint(1)\n```\n\n> [!TIP]\n> Be nice.\n\n- [ ] first\n- [x] second\n\n\
| a | b |\n|---|---|\n| 1 | 2 |\n\n[Other](../../ENG/@pages/Other.md) and [Same](../@pages/Same%20space.md)\n\n\
Inline <u>html</u> and <b>bad html and a < sign.\n\n<details>\n<summary>More</summary>\n\nHidden\n\n</details>\n";
    let s = to_storage(md, &ctx()).unwrap();
    for expected in [
        "<h1>Plan</h1>",
        "<em>text</em>",
        "<a href=\"https://example.com\">a link</a>",
        "<ac:image ac:alt=\"pic\"><ri:attachment ri:filename=\"shot 1.png\"/></ac:image>",
        "<ac:structured-macro ac:name=\"code\"><ac:parameter ac:name=\"language\">python</ac:parameter><ac:plain-text-body><![CDATA[print(1)]]></ac:plain-text-body></ac:structured-macro>",
        "<ac:structured-macro ac:name=\"tip\"><ac:rich-text-body><p>Be nice.</p></ac:rich-text-body></ac:structured-macro>",
        "<ac:task-id>1</ac:task-id><ac:task-status>incomplete</ac:task-status><ac:task-body>first</ac:task-body>",
        "<ac:task-id>2</ac:task-id><ac:task-status>complete</ac:task-status>",
        "<table><tbody><tr><th>a</th><th>b</th></tr><tr><td>1</td><td>2</td></tr></tbody></table>",
        "<ri:page ri:space-key=\"ENG\" ri:content-title=\"Other\"/>",
        "<ri:page ri:content-title=\"Same space\"/>",
        "<u>html</u>",
        "&lt;b&gt;bad html and a &lt; sign.",
        "<ac:structured-macro ac:name=\"expand\"><ac:parameter ac:name=\"title\">More</ac:parameter><ac:rich-text-body><p>Hidden</p></ac:rich-text-body></ac:structured-macro>",
    ] {
        assert!(s.contains(expected), "missing {expected}\nin {s}");
    }
    assert!(is_well_formed(&s));
}

#[test]
fn equivalence_is_canonical() {
    assert!(equivalent(
        "<p a=\"1\" b=\"2\">x</p>\n<hr></hr>",
        "<p b=\"2\" a=\"1\">x</p><hr/>"
    ));
    assert!(equivalent(
        "<p>&nbsp;&lt;</p>",
        "<p>\u{a0}<![CDATA[<]]></p>"
    ));
    assert!(!equivalent("<p>x</p>", "<p>y</p>"));
    assert!(!equivalent(
        "<p><em>a</em> <em>b</em></p>",
        "<p><em>a</em><em>b</em></p>"
    ));
}

#[test]
fn merge_disjoint_edits() {
    let base = "<p>one</p><p>two</p><p>three</p><p>four</p>";
    let theirs = "<p>ONE</p><p>two</p><p>three</p><p>four</p>";
    let ours = "<p>one</p><p>two</p><p>three</p><p>FOUR</p><p>five</p>";
    assert_eq!(
        merge(base, theirs, ours).unwrap(),
        "<p>ONE</p><p>two</p><p>three</p><p>FOUR</p><p>five</p>"
    );
    // The same change on both sides is one change.
    assert_eq!(merge(base, theirs, theirs).unwrap(), theirs);
}

#[test]
fn merge_refuses_touching_edits() {
    let base = "<p>one</p><p>two</p><p>three</p>";
    // Same block.
    assert!(merge(
        base,
        "<p>one</p><p>2</p><p>three</p>",
        "<p>one</p><p>II</p><p>three</p>"
    )
    .is_none());
    // Insertions at the same place.
    assert!(merge(
        base,
        "<p>one</p><p>a</p><p>two</p><p>three</p>",
        "<p>one</p><p>b</p><p>two</p><p>three</p>"
    )
    .is_none());
    // Adjoining blocks.
    assert!(merge(
        base,
        "<p>ONE</p><p>two</p><p>three</p>",
        "<p>one</p><p>TWO</p><p>three</p>"
    )
    .is_none());
    // Unparseable input.
    assert!(merge("<p>", base, base).is_none());
}

#[test]
fn preserving_keeps_original_bytes() {
    let original = "<p>one&nbsp;x</p>\n<p>two</p>\n<ul>\n<li>three</li>\n</ul>";
    let md = to_markdown(original, &ctx());
    assert_eq!(
        to_storage_preserving(&md, &ctx(), original).unwrap(),
        original
    );
    let edited = md.replace("two", "TWO");
    let back = to_storage_preserving(&edited, &ctx(), original).unwrap();
    assert!(back.starts_with("<p>one&nbsp;x</p>"), "{back}");
    assert!(
        back.contains("<p>TWO</p>") && back.contains("<ul>\n<li>three</li>\n</ul>"),
        "{back}"
    );
}

#[test]
fn block_attributes_ride_in_a_comment() {
    check("<p local-id=\"a1\">text</p>", "text <!-- local-id=a1 -->");
    check("<h2 id=\"x\">Title</h2>", "## Title <!-- id=x -->");
    no_raw("<ac:structured-macro ac:name=\"code\" data-layout=\"wide\"><ac:plain-text-body><![CDATA[x]]></ac:plain-text-body></ac:structured-macro>");
}

#[test]
fn an_image_on_its_own_line_is_a_markdown_image_and_stays_top_level() {
    check(
        "<ac:image ac:align=\"center\" ac:width=\"64\"><ri:attachment ri:filename=\"logo.png\" /></ac:image><p>after</p>",
        "![](logo.png 'block=1 ac:align=center ac:width=64')\n\nafter",
    );
    // Inside a paragraph it stays inline.
    check(
        "<p>see <ac:image><ri:attachment ri:filename=\"a b.png\" /></ac:image></p>",
        "see ![](a%20b.png)",
    );
}

/// `echo line >> page.md`: a line appended right after a closing tag or a raw block is a
/// paragraph of its own, and the block before it is unchanged.
#[test]
fn a_line_appended_after_a_block_is_a_paragraph_of_its_own() {
    let details = "<ac:structured-macro ac:name=\"expand\"><ac:parameter ac:name=\"title\">More</ac:parameter><ac:rich-text-body><p>inside</p></ac:rich-text-body></ac:structured-macro>";
    let raw = "<ac:layout><ac:layout-section ac:type=\"single\"><ac:layout-cell><p>cell</p></ac:layout-cell></ac:layout-section></ac:layout>";
    for body in [details, raw] {
        let md = to_markdown(body, &ctx());
        let appended = format!("{}\nextra line\n", md.trim_end());
        let back = to_storage_preserving(&appended, &ctx(), body).unwrap();
        assert_eq!(back, format!("{body}<p>extra line</p>"), "{appended}");
    }
}
