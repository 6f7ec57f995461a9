//! `--json` on `check`, `tree` and `pending`: the output parses, and its documented fields
//! (docs/CONFIGURATION.md, `--json`) hold what the text form shows.

use confluencefs::confluence::{ContainerRef, Flavor};
use confluencefs::spool::{EntryState, Spool, UploadRecord, UploadTarget};
use serde_json::Value;

use crate::cli_sites::{stderr, stdout, Home};
use crate::support::{Server, TOKEN, USER};

fn parse(output: &std::process::Output) -> Value {
    assert!(output.status.success(), "{}", stderr(output));
    serde_json::from_str(&stdout(output)).unwrap_or_else(|e| panic!("{e}: {}", stdout(output)))
}

#[tokio::test]
async fn check_json_names_site_flavor_user_and_spaces() {
    for (flavor, name) in [(Flavor::Cloud, "cloud"), (Flavor::DataCenter, "datacenter")] {
        let server = Server::start(flavor);
        let home = Home::new();
        let env = [("CONFLUENCE_USER", USER), ("CONFLUENCE_TOKEN", TOKEN)];
        let report = parse(&home.run(&["check", &server.base_url(), "--json"], &env));
        assert_eq!(report["flavor"], name);
        assert!(
            report["site"]
                .as_str()
                .unwrap()
                .starts_with(&server.root_url()),
            "{report}"
        );
        assert!(report["user"].as_str().is_some_and(|u| !u.is_empty()));
        let keys: Vec<&str> = report["spaces"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| s["key"].as_str().unwrap())
            .collect();
        assert_eq!(keys, ["DOCS", "ENG"], "{report}");
    }
}

#[tokio::test]
async fn tree_json_nests_pages_attachments_and_blog_posts() {
    let server = Server::start(Flavor::Cloud);
    let home = Home::new();
    let env = [("CONFLUENCE_USER", USER), ("CONFLUENCE_TOKEN", TOKEN)];
    let args = ["tree", &server.base_url(), "--space", "DOCS", "--json"];
    let report = parse(&home.run(&args, &env));
    let spaces = report["spaces"].as_array().unwrap();
    assert_eq!(spaces.len(), 1);
    let docs = &spaces[0];
    assert_eq!(docs["key"], "DOCS");
    let home_page = &docs["pages"][0];
    assert_eq!(home_page["title"], "DOCS Home");
    let guide = home_page["children"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["title"] == "Guide")
        .expect("Guide under DOCS Home");
    let chapter = guide["children"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["title"] == "Chapter One")
        .unwrap();
    let ch1 = &chapter["attachments"][0];
    assert_eq!(ch1["title"], "ch1.txt");
    assert_eq!(ch1["size"], 12);
    assert_eq!(ch1["version"], 1);
    assert_eq!(docs["blog"][0]["title"], "Launch Notes", "{report}");
    assert_eq!(docs["blog"][0]["attachments"][0]["title"], "launch.txt");
}

#[test]
fn pending_json_lists_entries_and_totals() {
    let cache = tempfile::tempdir().unwrap();
    let spool = Spool::open(&cache.path().join("127.0.0.1-0123456789abcdef/spool")).unwrap();
    let staged = cache.path().join("staged");
    std::fs::write(&staged, vec![7u8; 3000]).unwrap();
    let record = UploadRecord {
        target: UploadTarget::New {
            container: ContainerRef::page("42"),
        },
        filename: "report.pdf".into(),
        comment: String::new(),
        minor_edit: true,
        size: 0,
        display_path: "DOCS/Home/report.pdf".into(),
        site: "http://127.0.0.1:9/confluence".into(),
        created_unix_ms: 1_000,
        attempts: 3,
        last_error: Some("Confluence answered 413".into()),
        state: EntryState::Failed {
            errno: libc::EFBIG,
            reason: "too large".into(),
        },
    };
    let failed = spool.admit(&staged, record).unwrap();
    let home = Home::new();
    let cache_dir = cache.path().to_str().unwrap();
    let report = parse(&home.run(&["pending", "--cache-dir", cache_dir, "--json"], &[]));
    assert_eq!(report["pending"], 0);
    assert_eq!(report["failed"], 1);
    assert_eq!(report["bytes"], 3000);
    let entry = &report["spools"][0]["entries"][0];
    assert_eq!(entry["id"], failed.id.as_str());
    assert_eq!(entry["state"], "failed");
    assert_eq!(entry["errno"], "EFBIG");
    assert_eq!(entry["reason"], "too large");
    assert_eq!(entry["path"], "DOCS/Home/report.pdf");
    assert_eq!(entry["attempts"], 3);
    // --site keeps the spools of that site's host only.
    let only = |site: &str| {
        let args = [
            "pending",
            "--cache-dir",
            cache_dir,
            "--site",
            site,
            "--json",
        ];
        parse(&home.run(&args, &[]))["spools"]
            .as_array()
            .unwrap()
            .len()
    };
    assert_eq!(only("http://127.0.0.1:9/confluence"), 1);
    assert_eq!(only("https://elsewhere.example"), 0);
    let empty = tempfile::tempdir().unwrap();
    let args = [
        "pending",
        "--cache-dir",
        empty.path().to_str().unwrap(),
        "--json",
    ];
    let report = parse(&home.run(&args, &[]));
    assert_eq!(report["spools"].as_array().unwrap().len(), 0);
    assert_eq!(report["pending"], 0);
}
