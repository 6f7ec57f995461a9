//! Page text through a real mount: `<name>.md` in every page directory, `@storage.xhtml`, saves
//! by the tools people use (`echo >>`, `sed -i`, vim, a program's `O_TRUNC` write), the
//! stale-version conflict, `@pages` links, `@search`, and the request budgets of reading.
//! What reached the server is checked through REST, never only through the mount.

use std::process::Command;

use confluencefs::confluence::{Client, Flavor, Page};
use confluencefs::markdown;

use crate::mount_tree::seed_tree;
use crate::mount_write::both;
use crate::mounted::Mounted;
use crate::support::{page_by_title, Server};

const GUIDE_DIR: &str = "DOCS/DOCS Home/Guide";
const GUIDE_MD: &str = "DOCS/DOCS Home/Guide/Guide.md";

/// A body with constructs of several kinds, as a page edited in the browser has.
const BODY: &str = "<h1>Guide</h1><p>The <strong>budget</strong> for 2024 is set.</p>\
<ul><li><p>one</p></li><li><p>two</p></li></ul>\
<ac:structured-macro ac:name=\"code\" ac:schema-version=\"1\"><ac:parameter ac:name=\"language\">rust</ac:parameter>\
<ac:plain-text-body><![CDATA[fn main() {}]]></ac:plain-text-body></ac:structured-macro>\
<p>See <ac:link><ri:page ri:content-title=\"Chapter One\" /></ac:link>.</p>";

struct Rest {
    rt: tokio::runtime::Runtime,
    client: Client,
}

impl Rest {
    fn new(server: &Server) -> Rest {
        let rt = tokio::runtime::Runtime::new().unwrap();
        let client = rt.block_on(server.client());
        Rest { rt, client }
    }

    fn page(&self, title: &str) -> Page {
        let page = self.rt.block_on(page_by_title(&self.client, "DOCS", title));
        self.rt.block_on(self.client.get_page(&page.id)).unwrap()
    }

    fn body(&self, title: &str) -> (u64, String) {
        let page = self.page(title);
        (
            page.version,
            page.body.as_deref().unwrap_or_default().to_string(),
        )
    }

    /// Saves `body` as someone in the browser would.
    fn edit(&self, title: &str, body: &str) {
        let page = self.page(title);
        self.rt
            .block_on(
                self.client
                    .update_page_body(&page, page.version, body, "browser", false),
            )
            .unwrap();
    }
}

fn seeded(flavor: Flavor) -> (Server, Rest) {
    let server = Server::start_seeded(flavor, seed_tree);
    let rest = Rest::new(&server);
    rest.edit("Guide", BODY);
    (server, rest)
}

#[test]
fn page_text_is_listed_with_its_exact_size_and_reads_without_a_request() {
    both(|flavor| {
        let (server, rest) = seeded(flavor);
        let rt = tokio::runtime::Runtime::new().unwrap();
        let mount = Mounted::new(&server, &[]);
        let listing = mount.sh_ok(&format!("ls '{GUIDE_DIR}'"));
        assert!(listing.lines().any(|l| l == "Guide.md"), "{listing}");
        // Hidden names stay out of listings.
        assert!(!listing.contains("@storage"), "{listing}");
        rt.block_on(server.clear_requests());
        let size = std::fs::metadata(mount.join(GUIDE_MD)).unwrap().len();
        let text = std::fs::read_to_string(mount.join(GUIDE_MD)).unwrap();
        let log = rt.block_on(server.requests());
        assert_eq!(size, text.len() as u64, "{flavor:?}: stat size is exact");
        assert!(
            log.is_empty(),
            "{flavor:?}: reading a listed page's text costs nothing: {log:?}"
        );
        // The Markdown stands for the body exactly.
        let (_, body) = rest.body("Guide");
        let context = markdown::PageContext {
            space_key: "DOCS".into(),
            depth: 3,
            encode: confluencefs::fs::names::encode,
            decode: confluencefs::fs::names::decode,
        };
        let back = markdown::to_storage(&text, &context).unwrap();
        assert!(
            markdown::equivalent(&back, &body),
            "{flavor:?}: {text}\n→ {back}\n≠ {body}"
        );
        // The raw form is reachable, not listed, and byte-exact.
        let raw =
            std::fs::read_to_string(mount.join(&format!("{GUIDE_DIR}/@storage.xhtml"))).unwrap();
        assert_eq!(raw, body, "{flavor:?}");
        // A grep of the space finds the words of the page's text, on a fresh mount for the
        // price of the listings: no request per page.
        drop(mount);
        let fresh = Mounted::new(&server, &[]);
        rt.block_on(server.clear_requests());
        let hits = fresh.sh_ok("grep -rl budget DOCS || true");
        assert!(hits.contains("Guide/Guide.md"), "{flavor:?}: {hits}");
        let log = rt.block_on(server.requests());
        let per_page: Vec<_> = log
            .iter()
            .filter(|r| {
                let last = r.path.rsplit('/').next().unwrap_or_default();
                r.path.contains("/content/") && last.bytes().all(|b| b.is_ascii_digit())
            })
            .collect();
        assert!(per_page.is_empty(), "{flavor:?}: {per_page:?}");
    });
}

#[test]
fn saves_by_ordinary_tools_become_one_version_each() {
    both(|flavor| {
        let (server, rest) = seeded(flavor);
        let mount = Mounted::new(&server, &[]);
        let (v0, _) = rest.body("Guide");
        let steps: [(&str, &str); 4] = [
            ("append", "printf '\\nAPPENDED-LINE\\n' >> Guide.md"),
            ("sed -i", "sed -i 's/APPENDED-LINE/SED-EDITED/' Guide.md"),
            ("vim", "vim -u NONE -es -c 'normal GoVIM-LINE' -c 'wq' Guide.md"),
            (
                "rewrite",
                "python3 -c \"import sys; t=open('Guide.md').read(); open('Guide.md','w').write(t.replace('VIM-LINE','PY-LINE'))\"",
            ),
        ];
        let expect_in_body = ["APPENDED-LINE", "SED-EDITED", "VIM-LINE", "PY-LINE"];
        for (i, (what, script)) in steps.iter().enumerate() {
            let out = Command::new("sh")
                .arg("-c")
                .arg(script)
                .current_dir(mount.join(GUIDE_DIR))
                .output()
                .unwrap();
            assert!(
                out.status.success(),
                "{flavor:?} {what}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
            let (version, body) = rest.body("Guide");
            assert_eq!(
                version,
                v0 + i as u64 + 1,
                "{flavor:?} {what}: one version per save"
            );
            assert!(
                body.contains(expect_in_body[i]),
                "{flavor:?} {what}: {body}"
            );
            // The mount shows what the server has.
            let text = std::fs::read_to_string(mount.join(GUIDE_MD)).unwrap();
            assert!(
                text.contains(expect_in_body[i]),
                "{flavor:?} {what}: {text}"
            );
        }
        // No attachment was left behind by any of the tools.
        let names = mount.sh_ok(&format!("ls -a '{GUIDE_DIR}'"));
        assert!(
            !names.contains(".md~") && !names.contains("sed") && !names.contains(".swp"),
            "{flavor:?}: {names}"
        );
        drop(mount);
        // A fresh mount reads the saved text.
        let fresh = Mounted::new(&server, &[]);
        let text = std::fs::read_to_string(fresh.join(GUIDE_MD)).unwrap();
        assert!(text.contains("PY-LINE"), "{flavor:?}: {text}");
    });
}

#[test]
fn a_save_over_someone_elses_edit_is_refused_and_kept() {
    both(|flavor| {
        let (server, rest) = seeded(flavor);
        let mount = Mounted::new(&server, &[]);
        let before = std::fs::read_to_string(mount.join(GUIDE_MD)).unwrap();
        assert!(before.contains("budget"));
        rest.edit("Guide", "<p>Edited in the browser meanwhile.</p>");
        let (version, _) = rest.body("Guide");
        let out = mount.python(&format!(
            r#"
p = os.path.join(m, {GUIDE_MD:?})
fd = os.open(p, os.O_WRONLY | os.O_APPEND)
os.write(fd, b"\nMY-OWN-LINE\n")
try:
    os.close(fd)
    print("closed")
except OSError as e:
    print("refused", e.errno)
"#
        ));
        assert_eq!(
            out.trim(),
            format!("refused {}", libc::ESTALE),
            "{flavor:?}"
        );
        // The other edit stands, untouched.
        let (after, body) = rest.body("Guide");
        assert_eq!(after, version, "{flavor:?}");
        assert!(body.contains("browser meanwhile"), "{flavor:?}: {body}");
        // The mount shows the page as it is now.
        let now = std::fs::read_to_string(mount.join(GUIDE_MD)).unwrap();
        assert!(now.contains("browser meanwhile"), "{flavor:?}: {now}");
        // Our text is in the spool, shown by `pending` with the page and why.
        let pending = Command::new(env!("CARGO_BIN_EXE_confluencefs"))
            .arg("pending")
            .arg("--cache-dir")
            .arg(&mount.cache_dir)
            .output()
            .unwrap();
        let listed = String::from_utf8_lossy(&pending.stdout);
        assert!(
            listed.contains("Guide.md") && listed.contains("conflict"),
            "{flavor:?}: {listed}"
        );
        let spooled = std::process::Command::new("grep")
            .args(["-rl", "MY-OWN-LINE"])
            .arg(&mount.cache_dir)
            .output()
            .unwrap();
        assert!(
            !spooled.stdout.is_empty(),
            "{flavor:?}: the user's text is kept in the spool"
        );
    });
}

#[test]
fn page_links_and_search_point_into_the_tree() {
    both(|flavor| {
        let (server, _rest) = seeded(flavor);
        let mount = Mounted::new(&server, &[]);
        // `@pages/<title>.md` is a link to the page's text, wherever the page is.
        let target = std::fs::read_link(mount.join("DOCS/@pages/Guide.md")).unwrap();
        assert_eq!(
            target.to_string_lossy(),
            "../DOCS Home/Guide/Guide.md",
            "{flavor:?}"
        );
        // Many names in a row: each is its own question, never the (empty) listing's.
        for name in ["Guide", "DOCS Home", "Chapter One", "Guide.md"] {
            let link = mount.join(&format!("DOCS/@pages/{name}"));
            assert!(std::fs::metadata(&link).is_ok(), "{flavor:?}: {name}");
        }
        let via_link = std::fs::read(mount.join("DOCS/@pages/Guide.md")).unwrap();
        assert_eq!(via_link, std::fs::read(mount.join(GUIDE_MD)).unwrap());
        // Neither is listed: a walk never triggers a search.
        let top = mount.sh_ok("ls -a DOCS");
        assert!(!top.contains("@pages") && !top.contains("@search"), "{top}");
        // A search lists its hits as links that resolve.
        let hits = mount.sh_ok("ls DOCS/@search/budget");
        assert!(hits.lines().any(|l| l == "Guide.md"), "{flavor:?}: {hits}");
        let text = std::fs::read(mount.join("DOCS/@search/budget/Guide.md")).unwrap();
        assert_eq!(text, via_link, "{flavor:?}");
        let everywhere = mount.sh_ok("ls @search/budget");
        assert!(everywhere.contains("Guide.md"), "{flavor:?}: {everywhere}");
        let none = mount.sh_ok("ls DOCS/@search/nothing-matches-this");
        assert!(none.trim().is_empty(), "{flavor:?}: {none}");
        // A name starting with `cql:` is CQL as it is.
        let by_title = mount.sh_ok("ls 'DOCS/@search/cql:title ~ \"Guide\"'");
        assert!(
            by_title.lines().any(|l| l == "Guide.md"),
            "{flavor:?}: {by_title}"
        );
    });
}

#[test]
fn a_new_page_gets_its_text_and_a_page_goes_with_rm_r() {
    both(|flavor| {
        let (server, rest) = seeded(flavor);
        let mount = Mounted::new(&server, &[]);
        mount.sh_ok(&format!(
            "mkdir '{GUIDE_DIR}/Fresh' && printf '# Fresh\\n\\nNEW-PAGE-TEXT\\n' > '{GUIDE_DIR}/Fresh/Fresh.md'"
        ));
        let (_, body) = rest.body("Fresh");
        assert!(body.contains("NEW-PAGE-TEXT"), "{flavor:?}: {body}");
        mount.sh_ok(&format!("rm -r '{GUIDE_DIR}/Fresh'"));
        let listing = mount.sh_ok(&format!("ls '{GUIDE_DIR}'"));
        assert!(!listing.contains("Fresh"), "{flavor:?}: {listing}");
        let gone = rest
            .rt
            .block_on(rest.client.find_page(
                "DOCS",
                confluencefs::confluence::ContentKind::Page,
                "Fresh",
            ))
            .unwrap();
        assert!(gone.is_none(), "{flavor:?}: the page is in the trash");
    });
}

#[test]
fn history_and_the_storage_form_are_reachable_and_the_storage_form_is_writable() {
    both(|flavor| {
        let (server, rest) = seeded(flavor);
        let mount = Mounted::new(&server, &[]);
        let (version, body) = rest.body("Guide");
        // The storage form writes through as it is.
        let storage = format!("{GUIDE_DIR}/@storage.xhtml");
        std::fs::write(mount.join(&storage), "<p>RAW-WRITE</p>").unwrap();
        let (after, now) = rest.body("Guide");
        assert_eq!(after, version + 1, "{flavor:?}");
        assert_eq!(now, "<p>RAW-WRITE</p>", "{flavor:?}");
        let text = std::fs::read_to_string(mount.join(GUIDE_MD)).unwrap();
        assert!(text.contains("RAW-WRITE"), "{flavor:?}: {text}");
        // Every version of the text, the old one with its old words.
        let listed = mount.sh_ok(&format!("ls '{GUIDE_DIR}/@versions/Guide.md'"));
        let numbers: Vec<&str> = listed.lines().collect();
        assert!(
            numbers.contains(&format!("{version}.md").as_str())
                && numbers.contains(&format!("{after}.md").as_str()),
            "{flavor:?}: {listed}"
        );
        let old = std::fs::read_to_string(
            mount.join(&format!("{GUIDE_DIR}/@versions/Guide.md/{version}.md")),
        )
        .unwrap();
        assert!(old.contains("budget"), "{flavor:?}: {old}");
        let old_size =
            std::fs::metadata(mount.join(&format!("{GUIDE_DIR}/@versions/Guide.md/{version}.md")))
                .unwrap()
                .len();
        assert_eq!(old_size, old.len() as u64, "{flavor:?}");
        assert!(!old.contains("RAW-WRITE"), "{flavor:?}");
        let _ = body;
        // History is read-only.
        let refused = std::fs::write(
            mount.join(&format!("{GUIDE_DIR}/@versions/Guide.md/{version}.md")),
            "x",
        );
        assert!(refused.is_err(), "{flavor:?}");
    });
}

#[test]
fn removing_the_text_changes_nothing_on_the_server() {
    both(|flavor| {
        let (server, rest) = seeded(flavor);
        let mount = Mounted::new(&server, &[]);
        let (version, body) = rest.body("Guide");
        mount.sh_ok(&format!("rm '{GUIDE_MD}'"));
        let listing = mount.sh_ok(&format!("ls '{GUIDE_DIR}'"));
        assert!(!listing.contains("Guide.md"), "{flavor:?}: {listing}");
        assert_eq!(rest.body("Guide"), (version, body), "{flavor:?}");
        // Renaming the text away is refused; the page keeps it.
        let fresh = Mounted::new(&server, &[]);
        let out = fresh.sh(&format!("mv '{GUIDE_MD}' '{GUIDE_DIR}/elsewhere.md'"));
        assert!(!out.status.success(), "{flavor:?}");
        assert!(fresh.join(GUIDE_MD).exists(), "{flavor:?}");
    });
}

#[test]
fn stat_of_page_text_costs_one_request_after_the_ttl_and_none_before() {
    both(|flavor| {
        let (server, rest) = seeded(flavor);
        let rt = tokio::runtime::Runtime::new().unwrap();
        let mount = Mounted::new(&server, &["--metadata-ttl", "1"]);
        let first = std::fs::metadata(mount.join(GUIDE_MD)).unwrap().len();
        rt.block_on(server.clear_requests());
        for _ in 0..5 {
            std::fs::metadata(mount.join(GUIDE_MD)).unwrap();
        }
        assert!(rt.block_on(server.requests()).is_empty(), "{flavor:?}");
        // Someone edits; after the TTL, stat shows the new size.
        rest.edit("Guide", "<p>short</p>");
        std::thread::sleep(std::time::Duration::from_millis(1200));
        rt.block_on(server.clear_requests());
        let size = std::fs::metadata(mount.join(GUIDE_MD)).unwrap().len();
        let text = std::fs::read_to_string(mount.join(GUIDE_MD)).unwrap();
        assert_ne!(size, first, "{flavor:?}");
        assert_eq!(size, text.len() as u64, "{flavor:?}: {text}");
        assert!(text.contains("short"), "{flavor:?}: {text}");
    });
}

fn demo_server(flavor: Flavor) -> Server {
    let config = confluence_testserver::Config {
        flavor: crate::support::server_flavor(flavor),
        context_path: if flavor == Flavor::DataCenter {
            crate::support::DC_CONTEXT.to_string()
        } else {
            String::new()
        },
        demo: true,
        ..Default::default()
    };
    Server::start_with(flavor, config, Vec::new())
}

/// Every page of the demo (macros, tables, panels, code, images, links, mentions, layouts):
/// its Markdown converts back to the same body — exactly, through the preserving conversion
/// a save uses, and equivalently through the plain one — and most of it is real Markdown.
#[test]
fn every_demo_page_round_trips_through_markdown() {
    both(|flavor| {
        let server = demo_server(flavor);
        let rt = tokio::runtime::Runtime::new().unwrap();
        let client = rt.block_on(server.client());
        let spaces = rt.block_on(client.list_spaces(&[])).unwrap();
        let mut checked = 0;
        let mut markdown_lines = 0;
        for space in spaces {
            let mut queue: Vec<(Page, usize)> = rt
                .block_on(client.list_top_level_pages(&space.key))
                .unwrap()
                .into_iter()
                .map(|p| (p, 2))
                .collect();
            while let Some((page, depth)) = queue.pop() {
                let body = page.body.clone().expect("listings carry bodies");
                let context = markdown::PageContext {
                    space_key: space.key.clone(),
                    depth,
                    encode: confluencefs::fs::names::encode,
                    decode: confluencefs::fs::names::decode,
                };
                let md = markdown::to_markdown(&body, &context);
                let exact = markdown::to_storage_preserving(&md, &context, &body).unwrap();
                assert_eq!(exact, *body, "{flavor:?} {}: {md}", page.title);
                let plain = markdown::to_storage(&md, &context).unwrap();
                assert!(
                    markdown::equivalent(&plain, &body),
                    "{flavor:?} {}:\n{md}\n→ {plain}\n≠ {body}",
                    page.title
                );
                markdown_lines += md
                    .lines()
                    .filter(|l| l.starts_with('#') || l.starts_with("- ") || l.starts_with("```"))
                    .count();
                checked += 1;
                queue.extend(
                    rt.block_on(client.list_child_pages(&page.id))
                        .unwrap()
                        .into_iter()
                        .map(|p| (p, depth + 1)),
                );
            }
        }
        assert!(checked >= 10, "{flavor:?}: {checked} pages");
        assert!(markdown_lines >= 30, "{flavor:?}: {markdown_lines}");
    });
}

/// A demo page through the mount: its images are links to attachment files beside it and its
/// links to other pages resolve to their text, so a previewer shows and follows them.
#[test]
fn demo_links_and_images_resolve_in_the_mount() {
    let server = demo_server(Flavor::DataCenter);
    let mount = Mounted::new(&server, &[]);
    let dir = mount.join("DOCS/DOCS Home/Getting Started");
    let text = std::fs::read_to_string(dir.join("Getting Started.md")).unwrap();
    let targets = link_targets(&text);
    let images: Vec<&String> = targets.iter().filter(|t| t.ends_with(".png")).collect();
    assert!(!images.is_empty(), "{text}");
    let pages: Vec<&String> = targets.iter().filter(|t| t.contains("@pages/")).collect();
    assert!(!pages.is_empty(), "{text}");
    for target in images.iter().chain(pages.iter()) {
        let path = dir.join(percent_decode(target));
        let bytes = std::fs::read(&path).unwrap_or_else(|e| panic!("{target}: {e}"));
        assert!(!bytes.is_empty(), "{target}");
    }
}

/// The destinations of Markdown links and images (`](…)`), up to a space or `)`.
fn link_targets(text: &str) -> Vec<String> {
    text.split("](")
        .skip(1)
        .filter_map(|rest| {
            let end = rest.find([')', ' '])?;
            Some(rest[..end].to_string())
        })
        .filter(|t| !t.contains("://") && !t.starts_with("confluence-"))
        .collect()
}

fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' && i + 2 < bytes.len() {
            if let Ok(byte) = u8::from_str_radix(&text[i + 1..i + 3], 16) {
                out.push(byte);
                i += 3;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8(out).unwrap()
}

/// `pending --retry` of a conflict: merged onto the newer version when the two edits touch
/// different blocks; left for the user, with the server untouched, when they touch the same.
#[test]
fn retry_merges_a_conflict_whose_edits_touch_different_blocks() {
    both(|flavor| {
        let server = Server::start_seeded(flavor, seed_tree);
        let rest = Rest::new(&server);
        rest.edit("Guide", "<p>ALPHA</p><p>BETA</p><p>GAMMA</p><p>DELTA</p>");
        let mount = Mounted::new(&server, &[]);
        let save = |from: &str, to: &str| {
            mount.python(&format!(
                r#"
p = os.path.join(m, {GUIDE_MD:?})
t = open(p).read()
try:
    with open(p, "w") as f:
        f.write(t.replace({from:?}, {to:?}))
    print("saved")
except OSError as e:
    print("refused", e.errno)
"#
            ))
        };
        let pending = |args: &[&str]| {
            let out = Command::new(env!("CARGO_BIN_EXE_confluencefs"))
                .arg("pending")
                .arg("--cache-dir")
                .arg(&mount.cache_dir)
                .args(args)
                .output()
                .unwrap();
            String::from_utf8_lossy(&out.stdout).into_owned()
        };
        let wait_for = |what: &dyn Fn(&str) -> bool| {
            for _ in 0..200 {
                let (_, body) = rest.body("Guide");
                if what(&body) {
                    return body;
                }
                std::thread::sleep(std::time::Duration::from_millis(100));
            }
            rest.body("Guide").1
        };

        // Disjoint: ours changes the first block, theirs the last.
        std::fs::read_to_string(mount.join(GUIDE_MD)).unwrap();
        rest.edit(
            "Guide",
            "<p>ALPHA</p><p>BETA</p><p>GAMMA</p><p>DELTA-BROWSER</p>",
        );
        assert_eq!(
            save("ALPHA", "ALPHA-MINE").trim(),
            format!("refused {}", libc::ESTALE)
        );
        let listed = pending(&[]);
        assert!(listed.contains("--retry"), "{flavor:?}: {listed}");
        pending(&["--retry", "all"]);
        let merged = wait_for(&|b: &str| b.contains("ALPHA-MINE"));
        assert!(
            merged.contains("ALPHA-MINE") && merged.contains("DELTA-BROWSER"),
            "{flavor:?}: {merged}"
        );
        let left = wait_for(&|_| pending(&[]).contains("nothing pending"));
        let _ = left;
        assert!(pending(&[]).contains("nothing pending"), "{flavor:?}");

        // Overlapping: both change the same block; nothing is merged or lost.
        let text = std::fs::read_to_string(mount.join(GUIDE_MD)).unwrap();
        assert!(text.contains("ALPHA-MINE"), "{flavor:?}: {text}");
        let (_, current) = rest.body("Guide");
        rest.edit("Guide", &current.replace("BETA", "BETA-BROWSER"));
        assert_eq!(
            save("BETA", "BETA-MINE").trim(),
            format!("refused {}", libc::ESTALE)
        );
        pending(&["--retry", "all"]);
        std::thread::sleep(std::time::Duration::from_secs(4));
        let (_, body) = rest.body("Guide");
        assert!(
            body.contains("BETA-BROWSER") && !body.contains("BETA-MINE"),
            "{flavor:?}: {body}"
        );
        let listed = pending(&[]);
        assert!(
            listed.contains("conflict") && listed.contains("merge by hand"),
            "{flavor:?}: {listed}"
        );
    });
}

/// A backup and restore of page text: copied out with rsync, edited there (a line appended
/// right after a block), copied back: one version, what was written reads back byte for byte,
/// a second rsync finds nothing to do, and after a remount a third makes no version.
#[test]
fn rsync_out_edit_and_back_is_one_version_and_then_nothing() {
    both(|flavor| {
        let server = Server::start_seeded(flavor, seed_tree);
        let rest = Rest::new(&server);
        rest.edit(
            "Guide",
            "<p>Intro.</p><ac:structured-macro ac:name=\"expand\"><ac:parameter ac:name=\"title\">More</ac:parameter><ac:rich-text-body><p>inside</p></ac:rich-text-body></ac:structured-macro>",
        );
        let (v0, _) = rest.body("Guide");
        let local = tempfile::tempdir().unwrap();
        let copy = local.path().display().to_string();
        let mount = Mounted::new(&server, &[]);
        mount.sh_ok(&format!("rsync -a DOCS/ '{copy}/'"));
        let local_md = format!("{copy}/DOCS Home/Guide/Guide.md");
        let mut text = std::fs::read_to_string(&local_md).unwrap();
        text.push_str("APPENDED\n");
        std::fs::write(&local_md, &text).unwrap();
        mount.sh_ok(&format!("rsync -a '{copy}/' DOCS/"));
        let (v1, body) = rest.body("Guide");
        assert_eq!(v1, v0 + 1, "{flavor:?}");
        assert!(
            body.ends_with("</ac:structured-macro><p>APPENDED</p>"),
            "{flavor:?}: {body}"
        );
        assert_eq!(
            std::fs::read_to_string(mount.join(GUIDE_MD)).unwrap(),
            text,
            "{flavor:?}: read back as written"
        );
        let again = mount.sh_ok(&format!("rsync -a --itemize-changes '{copy}/' DOCS/"));
        assert!(again.trim().is_empty(), "{flavor:?}: {again}");
        drop(mount);
        let fresh = Mounted::new(&server, &[]);
        fresh.sh_ok(&format!("rsync -a '{copy}/' DOCS/"));
        assert_eq!(
            rest.body("Guide").0,
            v1,
            "{flavor:?}: no version for the same text"
        );
    });
}

/// Our own rename of a page makes a version (its body sent back unchanged): the text saved
/// after it is based on that version, not refused as someone else's edit.
#[test]
fn a_save_after_renaming_the_page_is_no_conflict() {
    both(|flavor| {
        let (server, rest) = seeded(flavor);
        let mount = Mounted::new(&server, &[]);
        std::fs::read_to_string(mount.join(GUIDE_MD)).unwrap();
        let (v0, _) = rest.body("Guide");
        // The text open across the rename, written after it.
        let out = mount.python(
            r#"
d = os.path.join(m, "DOCS/DOCS Home")
fd = os.open(os.path.join(d, "Guide/Guide.md"), os.O_WRONLY | os.O_APPEND)
os.rename(os.path.join(d, "Guide"), os.path.join(d, "Handbook"))
os.write(fd, b"AFTER-RENAME\n")
try:
    os.close(fd)
    print("saved")
except OSError as e:
    print("refused", e.errno)
"#,
        );
        assert_eq!(out.trim(), "saved", "{flavor:?}");
        let (v1, body) = rest.body("Handbook");
        assert_eq!(v1, v0 + 2, "{flavor:?}: the rename and the save");
        assert!(
            body.contains("AFTER-RENAME") && body.contains("budget"),
            "{flavor:?}: {body}"
        );
    });
}

/// `confluencefs tree` shows each page's text beside its attachments, as the mount does, and
/// `--json` says how large the stored text is.
#[test]
fn tree_shows_page_text() {
    let server = demo_server(Flavor::Cloud);
    let run = |json: bool| {
        let mut command = Command::new(env!("CARGO_BIN_EXE_confluencefs"));
        command
            .args(["tree", &server.base_url(), "--space", "DOCS"])
            .env("CONFLUENCE_USER", crate::support::USER)
            .env("CONFLUENCE_TOKEN", crate::support::TOKEN)
            .env("XDG_CONFIG_HOME", "/nonexistent")
            .env("NETRC", "/nonexistent");
        if json {
            command.arg("--json");
        }
        let out = command.output().unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    };
    let text = run(false);
    assert!(text.contains("Getting Started.md  (page text"), "{text}");
    let report: serde_json::Value = serde_json::from_str(&run(true)).unwrap();
    let home = &report["spaces"][0]["pages"][0];
    assert!(home["text_bytes"].as_u64().unwrap() > 0, "{home}");
}
