//! The Markdown form of our storage corpus (`tests/corpus/storage/*.xhtml`): every body comes
//! back equivalent, converting twice changes nothing, and each body keeps as much real
//! Markdown as it had when the numbers below were pinned (so a change that sends blocks to raw
//! XHTML fails here).

use std::path::PathBuf;

use confluencefs::markdown::{
    equivalent, is_well_formed, to_markdown, to_storage, PageContext, RAW_OPEN,
};

fn encode(s: &str) -> String {
    s.replace('/', "\u{FF0F}")
}

fn decode(s: &str) -> Option<String> {
    Some(s.replace('\u{FF0F}', "/"))
}

fn ctx() -> PageContext {
    PageContext {
        space_key: "DOCS".into(),
        depth: 3,
        encode,
        decode,
    }
}

fn corpus() -> Vec<(String, String)> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/corpus/storage");
    let mut files: Vec<(String, String)> = std::fs::read_dir(&dir)
        .expect("the corpus directory")
        .map(|e| e.expect("a corpus entry").path())
        .filter(|p| p.extension().is_some_and(|x| x == "xhtml"))
        .map(|p| {
            let name = p.file_stem().unwrap().to_string_lossy().into_owned();
            (name, std::fs::read_to_string(&p).expect("a corpus file"))
        })
        .collect();
    files.sort();
    files
}

/// Lines that open a raw block (a code block quoting the fence line counts too).
fn raw_blocks(markdown: &str) -> usize {
    markdown
        .lines()
        .filter(|l| l.starts_with(&RAW_OPEN[..RAW_OPEN.len() - 4]))
        .count()
}

/// Top-level blocks written as Markdown: paragraphs separated by blank lines, outside raw.
fn markdown_blocks(markdown: &str) -> usize {
    let mut count = 0;
    let mut in_raw = false;
    let mut in_block = false;
    for line in markdown.lines() {
        if line.starts_with("<!-- confluence:raw") {
            in_raw = true;
            in_block = false;
            continue;
        }
        if line.starts_with("<!-- /confluence:raw") {
            in_raw = false;
            continue;
        }
        if in_raw {
            continue;
        }
        if line.trim().is_empty() {
            in_block = false;
        } else if !in_block {
            count += 1;
            in_block = true;
        } else {
            in_block = true;
        }
    }
    count
}

/// (corpus file, raw blocks, Markdown blocks at least), pinned from the converter's output.
const EXPECTED: &[(&str, usize, usize)] = &[
    ("01-headings-paragraphs", 0, 11),
    ("02-inline-marks", 0, 7),
    ("03-lists-nested", 0, 7),
    ("04-tables", 1, 2),
    ("05-code-macros", 1, 6),
    ("06-panels", 1, 4),
    ("07-tasks", 0, 3),
    ("08-expand", 1, 10),
    ("09-mentions-status", 0, 4),
    ("10-page-links", 0, 7),
    ("11-images-attachments", 0, 6),
    ("12-layouts-macros", 5, 4),
    ("13-entities-unicode", 0, 6),
    ("14-cdata-splitting", 1, 3),
    ("15-whitespace-quirks", 0, 9),
    ("16-empty", 0, 0),
    ("17-cloud-style", 1, 6),
    ("18-nesting", 0, 8),
    ("19-server-style", 0, 5),
];

#[test]
fn markdown_corpus_round_trips() {
    let files = corpus();
    assert!(files.len() >= 15, "the corpus has {} files", files.len());
    let mut report = Vec::new();
    for (name, storage) in &files {
        let md = to_markdown(storage, &ctx());
        let back = to_storage(&md, &ctx()).unwrap_or_else(|e| panic!("{name}: {e}\n{md}"));
        assert!(is_well_formed(&back), "{name}: not well-formed:\n{back}");
        assert!(
            equivalent(&back, storage),
            "{name}: not equivalent\nmarkdown:\n{md}\nback:\n{back}"
        );
        let again = to_markdown(&back, &ctx());
        assert_eq!(again, md, "{name}: Markdown → storage → Markdown changed");
        report.push((name.clone(), raw_blocks(&md), markdown_blocks(&md)));
    }
    let shown = format!("{report:?}");
    for (name, raw, rich) in &report {
        let Some((_, want_raw, want_rich)) = EXPECTED.iter().find(|(n, _, _)| n == name) else {
            panic!("{name} has no pinned numbers; measured {shown}");
        };
        assert!(
            raw <= want_raw && rich >= want_rich,
            "{name}: {raw} raw and {rich} Markdown blocks, pinned {want_raw} and {want_rich}; all: {shown}"
        );
    }
}

/// A 2 MB body made of the corpus, repeated: converts both ways, equivalent, in one piece.
#[test]
fn markdown_huge_body_round_trips() {
    let files = corpus();
    let mut storage = String::new();
    while storage.len() < 2 * 1024 * 1024 {
        for (_, body) in &files {
            storage.push_str(body);
        }
    }
    let md = to_markdown(&storage, &ctx());
    assert!(raw_blocks(&md) < markdown_blocks(&md), "mostly Markdown");
    let back = to_storage(&md, &ctx()).unwrap();
    assert!(equivalent(&back, &storage));
}

/// A small deterministic generator (xorshift), so failures replay from the seed.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn pick<'a>(&mut self, items: &[&'a str]) -> &'a str {
        items[(self.next() % items.len() as u64) as usize]
    }
}

const WORDS: &[&str] = &[
    "plain",
    "a*b",
    "_x_",
    "`t`",
    "[l]",
    "&lt;b&gt;",
    "&amp;",
    "&nbsp;",
    "#1",
    "1.",
    "- x",
    "\\",
    "~",
    "|",
    "!",
    "<!-- c -->",
    "é",
    "🚀",
    " ",
    "\n",
    "  ",
    "]]&gt;",
    "%20",
];

const INLINE: &[&str] = &[
    "<strong>{}</strong>",
    "<em>{}</em>",
    "<s>{}</s>",
    "<u>{}</u>",
    "<code>{}</code>",
    "<a href=\"https://example.org/x\">{}</a>",
    "<ac:link><ri:page ri:content-title=\"P {}\"/></ac:link>",
    "<ac:link><ri:attachment ri:filename=\"f.png\"/><ac:plain-text-link-body><![CDATA[{}]]></ac:plain-text-link-body></ac:link>",
    "<ac:structured-macro ac:name=\"status\"><ac:parameter ac:name=\"colour\">Red</ac:parameter><ac:parameter ac:name=\"title\">{}</ac:parameter></ac:structured-macro>",
    "{}<br/>{}",
    "<ac:emoticon ac:name=\"smile\"/>{}",
];

const BLOCKS: &[&str] = &[
    "<p>{}</p>",
    "<h2>{}</h2>",
    "<ul><li>{}</li><li>{}</li></ul>",
    "<ol start=\"2\"><li>{}</li></ol>",
    "<blockquote><p>{}</p></blockquote>",
    "<table><tbody><tr><th>{}</th></tr><tr><td>{}</td></tr></tbody></table>",
    "<ac:structured-macro ac:name=\"info\"><ac:rich-text-body><p>{}</p></ac:rich-text-body></ac:structured-macro>",
    "<ac:structured-macro ac:name=\"expand\"><ac:rich-text-body><p>{}</p></ac:rich-text-body></ac:structured-macro>",
    "<ac:structured-macro ac:name=\"code\"><ac:parameter ac:name=\"language\">sh</ac:parameter><ac:plain-text-body><![CDATA[{}]]></ac:plain-text-body></ac:structured-macro>",
    "<ac:task-list><ac:task><ac:task-id>3</ac:task-id><ac:task-status>complete</ac:task-status><ac:task-body>{}</ac:task-body></ac:task></ac:task-list>",
    "<hr/>",
];

fn fill(rng: &mut Rng, template: &str, depth: u32) -> String {
    let mut out = String::new();
    for (i, part) in template.split("{}").enumerate() {
        if i > 0 {
            if depth < 2 && rng.next() % 3 == 0 {
                let inner = rng.pick(INLINE);
                out.push_str(&fill(rng, inner, depth + 1));
            } else {
                let n = 1 + rng.next() % 3;
                for _ in 0..n {
                    out.push_str(&rng.pick(WORDS).replace("\\n", "\n"));
                }
            }
        }
        out.push_str(part);
    }
    out
}

/// Random bodies built from the constructs: every one comes back equivalent and well-formed,
/// and converting twice is stable.
#[test]
fn markdown_random_bodies_round_trip() {
    let mut rng = Rng(0x5eed_1234_abcd_0001);
    let mut tried = 0;
    for case in 0..300 {
        let blocks = 1 + rng.next() % 5;
        let mut storage = String::new();
        for _ in 0..blocks {
            let template = rng.pick(BLOCKS);
            // Text in CDATA must not close it; code bodies get plain words.
            let block = fill(&mut rng, template, 0);
            if template.contains("CDATA") && block.matches("]]>").count() > 2 {
                continue;
            }
            storage.push_str(&block);
        }
        if !is_well_formed(&storage) {
            continue;
        }
        tried += 1;
        let md = to_markdown(&storage, &ctx());
        let back = to_storage(&md, &ctx()).unwrap_or_else(|e| panic!("case {case}: {e}\n{md}"));
        assert!(is_well_formed(&back), "case {case}");
        assert!(
            equivalent(&back, &storage),
            "case {case}\nstorage: {storage}\nmarkdown:\n{md}\nback: {back}"
        );
        assert_eq!(to_markdown(&back, &ctx()), md, "case {case}: not stable");
    }
    assert!(tried > 250, "only {tried} bodies were well-formed");
}

/// Markdown nobody wrote for us (random punctuation soup) still gives well-formed storage.
#[test]
fn markdown_random_text_gives_well_formed_storage() {
    let alphabet: Vec<char> = "ab *_`[]()<>!#-+=|~&;:/\\\"'\n\n  1.>xyz<u></u><br><!---->\u{a0}é"
        .chars()
        .collect();
    let mut rng = Rng(42);
    for case in 0..500 {
        let len = rng.next() % 80;
        let text: String = (0..len)
            .map(|_| alphabet[(rng.next() % alphabet.len() as u64) as usize])
            .collect();
        let storage = to_storage(&text, &ctx()).unwrap_or_else(|e| panic!("case {case}: {e}"));
        assert!(
            is_well_formed(&storage),
            "case {case}: {text:?} gave {storage}"
        );
    }
}
