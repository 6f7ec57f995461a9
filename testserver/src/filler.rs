//! Generated page bodies for large seeded sites (`--seed-page-bodies`): a few KiB of storage
//! format per page, different for every title but the same on every run, so a full-text
//! benchmark (`grep -r` over 2,000 rendered pages, CQL `text ~`) has realistic text to search.
//!
//! Bodies mix what real pages hold — headings, paragraphs with emphasis, lists, a code macro,
//! a table, an info panel — from a small vocabulary, sized between 2 and 6 KiB by a generator
//! seeded from the title.

const WORDS: &[&str] = &[
    "account",
    "agent",
    "alert",
    "archive",
    "backup",
    "balance",
    "batch",
    "billing",
    "branch",
    "budget",
    "build",
    "cache",
    "capacity",
    "certificate",
    "change",
    "cluster",
    "config",
    "contract",
    "cursor",
    "customer",
    "dashboard",
    "database",
    "deadline",
    "deploy",
    "design",
    "disk",
    "domain",
    "draft",
    "error",
    "estimate",
    "export",
    "failover",
    "feature",
    "feedback",
    "firewall",
    "forecast",
    "gateway",
    "handover",
    "incident",
    "index",
    "invoice",
    "journal",
    "latency",
    "ledger",
    "license",
    "limit",
    "metric",
    "migration",
    "milestone",
    "mirror",
    "network",
    "onboarding",
    "outage",
    "owner",
    "partner",
    "patch",
    "payload",
    "pipeline",
    "policy",
    "priority",
    "proxy",
    "quota",
    "queue",
    "release",
    "replica",
    "report",
    "request",
    "review",
    "roadmap",
    "rollback",
    "router",
    "runbook",
    "schedule",
    "schema",
    "secret",
    "server",
    "service",
    "shard",
    "snapshot",
    "sprint",
    "storage",
    "supplier",
    "support",
    "survey",
    "template",
    "tenant",
    "ticket",
    "timeline",
    "token",
    "traffic",
    "upgrade",
    "vendor",
    "version",
    "volume",
    "warehouse",
    "webhook",
    "workflow",
    "zone",
];

const VERBS: &[&str] = &[
    "checks",
    "updates",
    "tracks",
    "moves",
    "reviews",
    "blocks",
    "replaces",
    "documents",
    "measures",
    "splits",
    "merges",
    "approves",
    "rotates",
    "restores",
    "limits",
    "ships",
];

/// SplitMix64: small, fast, deterministic.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    fn word(&mut self) -> &'static str {
        WORDS[self.below(WORDS.len())]
    }
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

fn sentence(r: &mut Rng) -> String {
    let n = 6 + r.below(10);
    let mut s = String::new();
    for i in 0..n {
        if i > 0 {
            s.push(' ');
        }
        let w = if i == 2 {
            VERBS[r.below(VERBS.len())]
        } else {
            r.word()
        };
        match (i, r.below(12)) {
            (0, _) => {
                let mut c = w.chars();
                if let Some(f) = c.next() {
                    s.extend(f.to_uppercase());
                    s.push_str(c.as_str());
                }
            }
            (_, 0) => s.push_str(&format!("<strong>{w}</strong>")),
            (_, 1) => s.push_str(&format!("<em>{w}</em>")),
            (_, 2) => s.push_str(&format!("<code>{w}-{}</code>", r.below(100))),
            _ => s.push_str(w),
        }
    }
    s.push('.');
    s
}

/// A storage-format body of 2–6 KiB for the page titled `title`.
pub(crate) fn page_body(title: &str) -> String {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in title.bytes() {
        h = (h ^ b as u64).wrapping_mul(0x0100_0000_01b3);
    }
    let mut r = Rng(h);
    let target = 2048 + r.below(4096);
    let mut out = format!(
        "<p>This page covers <strong>{}</strong>: what the team {} and who owns it.</p>",
        escape(title),
        VERBS[r.below(VERBS.len())]
    );
    let mut section = 0;
    while out.len() < target {
        section += 1;
        out.push_str(&format!(
            "<h2>{} {} {section}</h2>",
            escape(title),
            r.word()
        ));
        for _ in 0..1 + r.below(3) {
            out.push_str("<p>");
            for i in 0..2 + r.below(4) {
                if i > 0 {
                    out.push(' ');
                }
                out.push_str(&sentence(&mut r));
            }
            out.push_str("</p>");
        }
        match r.below(5) {
            0 => {
                out.push_str("<ul>");
                for _ in 0..2 + r.below(4) {
                    out.push_str(&format!("<li>{}</li>", sentence(&mut r)));
                }
                out.push_str("</ul>");
            }
            1 => out.push_str(&format!(
                "<ac:structured-macro ac:name=\"code\" ac:schema-version=\"1\"><ac:parameter ac:name=\"language\">bash</ac:parameter><ac:plain-text-body><![CDATA[{} --{} {}\n{} status {}]]></ac:plain-text-body></ac:structured-macro>",
                r.word(),
                r.word(),
                r.below(1000),
                r.word(),
                r.word()
            )),
            2 => {
                out.push_str("<table><tbody><tr><th><p>Item</p></th><th><p>Owner</p></th><th><p>Count</p></th></tr>");
                for _ in 0..2 + r.below(4) {
                    out.push_str(&format!(
                        "<tr><td><p>{}</p></td><td><p>{}</p></td><td><p>{}</p></td></tr>",
                        r.word(),
                        r.word(),
                        r.below(500)
                    ));
                }
                out.push_str("</tbody></table>");
            }
            3 => out.push_str(&format!(
                "<ac:structured-macro ac:name=\"info\" ac:schema-version=\"1\"><ac:rich-text-body><p>{}</p></ac:rich-text-body></ac:structured-macro>",
                sentence(&mut r)
            )),
            _ => {}
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bodies_are_sized_varied_and_stable() {
        let a = page_body("page-001-002");
        let b = page_body("page-001-003");
        assert_eq!(a, page_body("page-001-002"));
        assert_ne!(a, b);
        for t in ["x", "section-000", "A & B <c>", "page-042-017"] {
            let body = page_body(t);
            assert!((2048..8192).contains(&body.len()), "{t}: {}", body.len());
            assert!(body.contains("<h2>") && !body.contains("A & B"));
        }
        let text = crate::storage::plain_text(&a);
        assert!(text.split_whitespace().count() > 200);
    }
}
