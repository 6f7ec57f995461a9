//! The storage-format bodies of the demo pages: the engineering wiki of a made-up team (the
//! Harbor Tools team, who build `harborfs`, a FUSE filesystem).
//!
//! The bodies use the storage format the way pages written in Confluence's editor do —
//! headings, emphasis, nested lists, tables (one with a header row and a merged cell), code
//! macros with a language, info/note/warning/tip panels, task lists, expand and toc macros,
//! user mentions, status lozenges, links to pages in the same and in another space, images of
//! attachments the page really has, an external link and a page layout — so that a client
//! turning pages into Markdown meets every construct on the demo site. The element shapes follow
//! Atlassian's "Confluence Storage Format" documentation; the words are our own. They are built
//! by small helpers, not written out by hand, so every macro is well formed.

use crate::config::Flavor;

/// Who a mention points at: the demo's one user, as Cloud (`ri:account-id`) or Data Center
/// (`ri:userkey`) writes it.
pub(crate) struct Who {
    mention: String,
}

impl Who {
    pub(crate) fn new(flavor: Flavor) -> Who {
        let user = match flavor {
            Flavor::Cloud => format!(
                r#"<ri:user ri:account-id="{}" />"#,
                crate::api::render::ACCOUNT_ID
            ),
            Flavor::Datacenter => {
                format!(
                    r#"<ri:user ri:userkey="{}" />"#,
                    crate::api::render::USER_KEY
                )
            }
        };
        Who {
            mention: format!("<ac:link>{user}</ac:link>"),
        }
    }
}

fn cat(parts: &[&str]) -> String {
    parts.concat()
}

/// A stable macro id derived from what the macro holds (Cloud gives every macro a UUID).
fn macro_id(name: &str, inner: &str) -> String {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in name.bytes().chain(inner.bytes()) {
        h ^= b as u64;
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    let g = h.rotate_left(29) ^ 0x9e37_79b9_7f4a_7c15;
    format!(
        "{:08x}-{:04x}-4{:03x}-a{:03x}-{:012x}",
        h >> 32,
        (h >> 16) & 0xffff,
        h & 0xfff,
        g & 0xfff,
        g >> 16
    )
}

fn structured(name: &str, params: &[(&str, &str)], inner: &str) -> String {
    let mut s = format!(
        r#"<ac:structured-macro ac:name="{name}" ac:schema-version="1" ac:macro-id="{}">"#,
        macro_id(name, inner)
    );
    for (k, v) in params {
        s.push_str(&format!(
            r#"<ac:parameter ac:name="{k}">{v}</ac:parameter>"#
        ));
    }
    s.push_str(inner);
    s.push_str("</ac:structured-macro>");
    s
}

fn code(language: &str, text: &str) -> String {
    structured(
        "code",
        &[("language", language)],
        &format!("<ac:plain-text-body><![CDATA[{text}]]></ac:plain-text-body>"),
    )
}

/// `info`, `note`, `warning` or `tip`.
fn panel(kind: &str, title: Option<&str>, body: &str) -> String {
    let params: Vec<(&str, &str)> = title.map(|t| ("title", t)).into_iter().collect();
    structured(
        kind,
        &params,
        &format!("<ac:rich-text-body>{body}</ac:rich-text-body>"),
    )
}

fn expand(title: &str, body: &str) -> String {
    structured(
        "expand",
        &[("title", title)],
        &format!("<ac:rich-text-body>{body}</ac:rich-text-body>"),
    )
}

fn toc() -> String {
    structured("toc", &[("maxLevel", "3"), ("minLevel", "1")], "")
}

/// A status lozenge; `colour` is one of Grey, Red, Yellow, Green, Blue, Purple.
fn status(colour: &str, title: &str) -> String {
    structured("status", &[("colour", colour), ("title", title)], "")
}

/// A link to a page by title, in this space (`space` None) or another one.
fn page_link(title: &str, space: Option<&str>, text: Option<&str>) -> String {
    let space = space
        .map(|k| format!(r#" ri:space-key="{k}""#))
        .unwrap_or_default();
    let body = text
        .map(|t| format!("<ac:plain-text-link-body><![CDATA[{t}]]></ac:plain-text-link-body>"))
        .unwrap_or_default();
    format!(r#"<ac:link><ri:page{space} ri:content-title="{title}" />{body}</ac:link>"#)
}

fn attachment_link(filename: &str, text: &str) -> String {
    format!(
        r#"<ac:link><ri:attachment ri:filename="{filename}" /><ac:plain-text-link-body><![CDATA[{text}]]></ac:plain-text-link-body></ac:link>"#
    )
}

fn image(filename: &str, width: u32) -> String {
    format!(
        r#"<ac:image ac:align="center" ac:layout="center" ac:width="{width}"><ri:attachment ri:filename="{filename}" /></ac:image>"#
    )
}

/// A task list: (id, done, body).
fn tasks(items: &[(u32, bool, &str)]) -> String {
    let mut s = String::from("<ac:task-list>");
    for (id, done, body) in items {
        let st = if *done { "complete" } else { "incomplete" };
        s.push_str(&format!(
            "<ac:task><ac:task-id>{id}</ac:task-id><ac:task-status>{st}</ac:task-status><ac:task-body>{body}</ac:task-body></ac:task>"
        ));
    }
    s.push_str("</ac:task-list>");
    s
}

pub(crate) fn docs_home(who: &Who) -> String {
    cat(&[
        "<p>This space holds the user documentation of <strong>harborfs</strong>, the filesystem the Harbor Tools team builds. ",
        "It mounts a wiki as a directory tree, so that the tools people already use on files work on pages and attachments too.</p>",
        &panel("info", None, "<p>New here? Start with the getting-started guide, then read how the pieces fit together in the engineering space.</p>"),
        "<h2>Where to go next</h2><ul><li>",
        &page_link("Getting Started", None, None),
        " &ndash; install, mount, first steps</li><li>",
        &page_link("Architecture", Some("ENG"), Some("How harborfs is built")),
        " (engineering space)</li><li>The project on the web: <a href=\"https://example.com/harborfs\">example.com/harborfs</a></li></ul>",
        "<p>Questions about this space go to ", &who.mention, ".</p>",
    ])
}

pub(crate) fn getting_started(who: &Who) -> String {
    cat(&[
        &toc(),
        "<h1>Getting started with harborfs</h1>",
        "<p>harborfs shows every space you can read as a folder. Pages become folders, attachments become files, ",
        "and writing a file uploads a new version. This guide takes about <em>ten minutes</em> and needs no admin rights.</p>",
        &image("logo.png", 64),
        "<h2>Before you begin</h2>",
        "<ol><li>Check that your system has FUSE:<ul><li>Linux: the <code>fuse3</code> package</li><li>macOS: macFUSE 4 or later",
        "<ul><li>allow the system extension when asked</li></ul></li></ul></li>",
        "<li>Create an API token in your account settings.</li><li>Pick an empty directory to mount on.</li></ol>",
        &panel("tip", Some("Keep the token out of your shell history"), "<p>Put it in the config file rather than on the command line; harborfs reads <code>~/.config/harborfs/config.toml</code> first.</p>"),
        "<h2>Mount your first site</h2>",
        &code("bash", "mkdir -p ~/wiki\nharborfs mount https://example.atlassian.net ~/wiki\nls ~/wiki\n# DOCS  ENG  HR"),
        "<p>Unmount with <code>harborfs unmount ~/wiki</code> or <code>fusermount3 -u ~/wiki</code>. ",
        "The full walkthrough is in the ", &attachment_link("guide.pdf", "printable guide"), ".</p>",
        "<h2>Checklist</h2>",
        &tasks(&[
            (1, true, "Install the package for your system"),
            (2, true, "Create an API token"),
            (3, false, "Mount a test space and open a page"),
            (4, false, &format!("Tell {} how it went", who.mention)),
        ]),
        "<p>Status of this guide: ", &status("Green", "Reviewed"), "</p>",
        "<h2>Next steps</h2><p>Read ", &page_link("Installation", None, Some("the installation notes")),
        " for packaging details, or the ", &page_link("Install / Upgrade FAQ", None, None), ".</p>",
    ])
}

pub(crate) fn installation() -> String {
    cat(&[
        "<h1>Installation</h1>",
        "<p>harborfs ships as a single binary. Packages exist for the systems below; anything else builds from source with a stable Rust toolchain.</p>",
        "<table data-layout=\"default\"><colgroup><col style=\"width: 200.0px;\" /><col style=\"width: 300.0px;\" /></colgroup><tbody>",
        "<tr><td><p>Debian, Ubuntu</p></td><td><p><code>apt install harborfs</code></p></td></tr>",
        "<tr><td><p>Fedora</p></td><td><p><code>dnf install harborfs</code></p></td></tr>",
        "<tr><td><p>macOS</p></td><td><p><code>brew install harborfs</code></p></td></tr>",
        "</tbody></table>",
        "<h2>From source</h2>",
        &code("bash", "git clone https://example.com/harborfs.git\ncd harborfs\ncargo build --release\nsudo install -m 755 target/release/harborfs /usr/local/bin/"),
        &panel("note", Some("Upgrades"), "<p>Unmount every harborfs mount before replacing the binary: a running mount keeps the old one open until it exits.</p>"),
        "<p>After installing, the first mount looks like this:</p>",
        &image("screenshot.png", 400),
        "<p>Distribution-specific notes are on ", &page_link("Linux", None, None), ".</p>",
    ])
}

pub(crate) fn linux() -> String {
    cat(&[
        "<h1>Linux notes</h1>",
        "<p>harborfs needs <strong>FUSE 3</strong>. The versions we test on are:</p>",
        "<table data-layout=\"default\"><tbody>",
        "<tr><th><p>Distribution</p></th><th><p>Package</p></th><th><p>Version</p></th></tr>",
        "<tr><td><p>Debian 12</p></td><td rowspan=\"2\"><p><code>fuse3</code></p></td><td><p>3.14</p></td></tr>",
        "<tr><td><p>Fedora 40</p></td><td><p>3.16</p></td></tr>",
        "<tr><td colspan=\"2\"><p><em>Any other distribution</em></p></td><td><p>3.10 or later</p></td></tr>",
        "</tbody></table>",
        &panel("warning", Some("user_allow_other"), "<p>Sharing a mount with other users needs <code>user_allow_other</code> in <code>/etc/fuse.conf</code>. Only turn it on if you mean it: everyone on the machine then reads the wiki as you.</p>"),
        "<h2>Mount at login</h2>",
        &code("ini", "[Unit]\nDescription=harborfs wiki mount\n\n[Service]\nExecStart=/usr/local/bin/harborfs mount --foreground https://example.atlassian.net %h/wiki\nRestart=on-failure\n\n[Install]\nWantedBy=default.target"),
        "<p>Save it as <code>~/.config/systemd/user/harborfs.service</code> and run <code>systemctl --user enable --now harborfs</code>.</p>",
    ])
}

pub(crate) fn faq() -> String {
    cat(&[
        &toc(),
        "<h2>Installing</h2>",
        &expand("Do I need root to install?", "<p>No. The binary can live in <code>~/.local/bin</code>; only the FUSE package itself needs the system package manager.</p>"),
        &expand("Which FUSE version is required?", "<p>FUSE 3.10 or later on Linux, macFUSE 4 on macOS.</p>"),
        "<h2>Upgrading</h2>",
        &expand("Does an upgrade lose my cache?", "<p>No. The cache format carries a version; an incompatible one is dropped and rebuilt on the next read.</p>"),
        "<p>Something missing? Ask on the ", &page_link("Getting Started", None, Some("getting-started page")), ".</p>",
    ])
}

pub(crate) fn eng_home() -> String {
    cat(&[
        "<p>The engineering space of the Harbor Tools team: design notes, measurements and runbooks.</p>",
        "<ul><li>", &page_link("Architecture", None, None), "</li><li>",
        &page_link("Runbooks", None, None), "</li><li>User-facing docs live in ",
        &page_link("DOCS Home", Some("DOCS"), Some("the documentation space")), "</li></ul>",
    ])
}

pub(crate) fn architecture(who: &Who) -> String {
    cat(&[
        "<ac:layout>",
        "<ac:layout-section ac:type=\"fixed-width\" ac:breakout-mode=\"default\"><ac:layout-cell>",
        &toc(),
        "<h1>Architecture</h1><p>harborfs is five layers, each talking only to the one below it. Owner: ", &who.mention, ".</p>",
        "</ac:layout-cell></ac:layout-section>",
        "<ac:layout-section ac:type=\"two_equal\" ac:breakout-mode=\"default\"><ac:layout-cell>",
        "<h2>Layers</h2><ol><li><strong>cli</strong> parses the command line</li><li><strong>fuse</strong> speaks the kernel protocol</li>",
        "<li><strong>fs</strong> maps pages to folders<ol><li>names</li><li>modes and times</li></ol></li>",
        "<li><strong>cache</strong> keeps blocks on disk</li><li><strong>client</strong> talks REST</li></ol>",
        "</ac:layout-cell><ac:layout-cell>",
        &image("diagram.png", 300),
        &panel("info", None, "<p>The full design is in the attached <em>design.pdf</em>; the storage layer has its own page.</p>"),
        "</ac:layout-cell></ac:layout-section>",
        "<ac:layout-section ac:type=\"single\" ac:breakout-mode=\"default\"><ac:layout-cell>",
        "<h2>Read path</h2><p>A read first asks the cache; a miss fetches the block range from the server and keeps it. See ",
        &page_link("Storage Layer", None, None), " for the details, and ",
        &page_link("Installation", Some("DOCS"), Some("the installation notes")), " for what users see.</p>",
        "</ac:layout-cell></ac:layout-section>",
        "</ac:layout>",
    ])
}

pub(crate) fn storage_layer() -> String {
    cat(&[
        "<h1>Storage layer</h1>",
        "<p>The cache stores attachment bytes in fixed <strong>1 MiB blocks</strong>, keyed by file id and block number. ",
        "A file id changes with every version, so a new version never reads stale blocks.</p>",
        &code("rust", "/// One cached block: which file, which block, and its bytes.\npub struct Block {\n    pub file_id: String,\n    pub index: u64,\n    pub bytes: Vec<u8>,\n}\n\nfn block_of(offset: u64) -> u64 {\n    offset / (1 << 20)\n}"),
        "<h2>Budgets</h2>",
        "<table data-layout=\"default\"><tbody>",
        "<tr><th><p>Setting</p></th><th><p>Default</p></th><th><p>Meaning</p></th></tr>",
        "<tr><td><p><code>cache.max_bytes</code></p></td><td><p>2 GiB</p></td><td><p>evict least recently used blocks above this</p></td></tr>",
        "<tr><td><p><code>cache.dir</code></p></td><td colspan=\"2\"><p>the user cache directory</p></td></tr>",
        "</tbody></table>",
        &expand("Why not cache whole files?", "<p>Large attachments are often read in part (previews, <code>file</code>, <code>head</code>). Blocks keep those reads cheap.</p>"),
        "<p>Measurements are on ", &page_link("Benchmarks 2024", None, None), ".</p>",
    ])
}

pub(crate) fn benchmarks() -> String {
    cat(&[
        "<h1>Benchmarks 2024</h1>",
        "<p>Three runs of a cold read of a 1 GiB file over a 20&nbsp;ms link. Status: ",
        &status("Blue", "In progress"),
        "</p>",
        "<table data-layout=\"default\"><tbody>",
        "<tr><th><p>Run</p></th><th><p>Seconds</p></th><th><p>Verdict</p></th></tr>",
        "<tr><td><p>1</p></td><td><p>1.21</p></td><td><p>",
        &status("Green", "Pass"),
        "</p></td></tr>",
        "<tr><td><p>2</p></td><td><p>1.19</p></td><td><p>",
        &status("Green", "Pass"),
        "</p></td></tr>",
        "<tr><td><p>3</p></td><td><p>1.24</p></td><td><p>",
        &status("Yellow", "Slow"),
        "</p></td></tr>",
        "</tbody></table>",
        &image("chart.png", 320),
        "<p>The raw numbers are in <em>results.csv</em>. How to reproduce them for yourself: ",
        &page_link("Installation", Some("DOCS"), None),
        ", then run <code>scripts/bench</code>.</p>",
    ])
}

pub(crate) fn runbooks(who: &Who) -> String {
    cat(&[
        "<h1>Runbooks</h1>",
        &panel("warning", Some("Before you start"), &format!("<p>Announce any production change in the team channel and page {} if the site is down.</p>", who.mention)),
        "<h2>A mount hangs</h2>",
        "<ol><li>Find the process: <code>pgrep -a harborfs</code></li><li>Collect a trace:",
        &code("bash", "kill -USR1 \"$(pgrep -o harborfs)\"\ntail -n 200 ~/.local/state/harborfs/harborfs.log"),
        "</li><li>Unmount lazily if it does not recover: <code>fusermount3 -uz ~/wiki</code></li></ol>",
        "<h2>Weekly checks</h2>",
        &tasks(&[
            (11, true, "Rotate the test site's API token"),
            (12, false, "Check the error budget dashboard"),
            (13, false, &format!("Review open incidents with {}", who.mention)),
        ]),
        &expand("Escalation contacts", "<p>Storage: the storage rota. Client: whoever is on call this week.</p>"),
    ])
}

pub(crate) fn q4_results(who: &Who) -> String {
    cat(&[
        "<p>The fourth quarter closed <strong>on plan</strong>. Cold reads got twice as fast, and the client survived a week of fault injection without a data loss bug.</p>",
        "<h2>Highlights</h2><ul><li>Block cache shipped ", &status("Green", "Done"), "</li>",
        "<li>Extended attributes ", &status("Yellow", "Beta"), "</li></ul>",
        "<p>Thanks to ", &who.mention, " for the release work. Slides are attached.</p>",
    ])
}

pub(crate) fn hr_home() -> String {
    cat(&[
        "<p>People matters for the Harbor Tools team. Start with ",
        &page_link("Onboarding", None, None),
        ".</p>",
    ])
}

pub(crate) fn policies() -> String {
    cat(&[
        "<h1>Policies</h1>",
        "<p>The short version: <em>be kind, write things down, ask early</em>.</p>",
        "<h2>Working hours</h2><ul><li>Core hours 11:00&ndash;15:00 local time<ul><li>meetings only inside them</li><li>no meetings on Fridays</li></ul></li>",
        "<li>Holidays follow the attached calendar</li></ul>",
        &panel("note", None, "<p>The handbook PDF is the reference; this page is a summary.</p>"),
        "<p>Company-wide rules are on <a href=\"https://example.com/handbook\">the public handbook site</a>.</p>",
    ])
}

pub(crate) fn onboarding(who: &Who) -> String {
    cat(&[
        "<h1>Onboarding</h1><p>Welcome aboard! Your buddy for the first weeks is ",
        &who.mention,
        ".</p>",
        "<h2>First week</h2>",
        &tasks(&[
            (21, false, "Get a laptop and accounts"),
            (22, false, "Read the team policies"),
            (23, false, "Mount the wiki with harborfs"),
        ]),
        &panel(
            "tip",
            None,
            &cat(&[
                "<p>The quickest way in is the ",
                &page_link("Getting Started", Some("DOCS"), None),
                " guide.</p>",
            ]),
        ),
    ])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn macros_are_balanced_and_mentions_follow_the_flavor() {
        let cloud = Who::new(Flavor::Cloud);
        let dc = Who::new(Flavor::Datacenter);
        let body = getting_started(&cloud);
        assert_eq!(
            body.matches("<ac:structured-macro").count(),
            body.matches("</ac:structured-macro>").count()
        );
        assert!(body.contains("ri:account-id="));
        assert!(getting_started(&dc).contains("ri:userkey="));
        assert_ne!(macro_id("code", "a"), macro_id("code", "b"));
    }
}
