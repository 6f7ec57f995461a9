//! End-to-end tests of the test server over HTTP: the command line, both flavors, seeding,
//! persistence, uploads, downloads, paging, properties, CQL and the fault hooks.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use confluence_testserver::{spawn, Config, Flavor, ServerHandle};
use reqwest::multipart::{Form, Part};
use reqwest::{Client, StatusCode};
use serde_json::{json, Value};

const USER: &str = "demo@example.com";
const TOKEN: &str = "demo-token";

fn client() -> Client {
    Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

fn demo(flavor: Flavor) -> ServerHandle {
    spawn(Config {
        flavor,
        demo: true,
        ..Config::default()
    })
    .unwrap()
}

async fn get_json(c: &Client, url: &str) -> (StatusCode, Value) {
    let r = c
        .get(url)
        .basic_auth(USER, Some(TOKEN))
        .send()
        .await
        .unwrap();
    let status = r.status();
    let v = r.json::<Value>().await.unwrap_or(Value::Null);
    (status, v)
}

/// The id of the demo page titled `title` (via the v1 title lookup).
async fn page_id(c: &Client, base: &str, space: &str, title: &str) -> String {
    let (s, v) = get_json(
        c,
        &format!(
            "{base}/rest/api/content?spaceKey={space}&title={}",
            urlencode(title)
        ),
    )
    .await;
    assert_eq!(s, 200);
    v["results"][0]["id"].as_str().unwrap().to_string()
}

fn urlencode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

fn file_part(name: &str, bytes: &[u8]) -> Part {
    Part::bytes(bytes.to_vec()).file_name(name.to_string())
}

async fn upload(c: &Client, base: &str, page: &str, form: Form) -> reqwest::Response {
    c.post(format!("{base}/rest/api/content/{page}/child/attachment"))
        .basic_auth(USER, Some(TOKEN))
        .header("X-Atlassian-Token", "no-check")
        .multipart(form)
        .send()
        .await
        .unwrap()
}

async fn faults(c: &Client, root: &str, spec: Value) {
    let r = c
        .post(format!("{root}/__testserver/faults"))
        .json(&spec)
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success());
}

fn run_binary(args: &[&str]) -> (std::process::Child, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_confluence-testserver"))
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    (child, line.trim().to_string())
}

fn sigterm_and_wait(mut child: std::process::Child) -> std::process::ExitStatus {
    let ok = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(ok.success());
    for _ in 0..100 {
        if let Some(status) = child.try_wait().unwrap() {
            return status;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let _ = child.kill();
    panic!("server did not exit after SIGTERM");
}

#[tokio::test]
async fn binary_prints_base_url_first_and_exits_on_sigterm() {
    let c = client();
    let (child, url) = run_binary(&["--demo"]);
    assert!(
        url.starts_with("http://127.0.0.1:") && url.ends_with("/wiki"),
        "{url}"
    );
    let (s, v) = get_json(&c, &format!("{url}/rest/api/user/current")).await;
    assert_eq!(s, 200);
    assert_eq!(v["email"], USER);
    let status = sigterm_and_wait(child);
    assert!(status.success(), "{status:?}");

    let (child, url) = run_binary(&[
        "--flavor",
        "datacenter",
        "--context-path",
        "/confluence",
        "--user",
        "admin",
        "--token",
        "pat",
    ]);
    assert!(
        url.starts_with("http://127.0.0.1:") && url.ends_with("/confluence"),
        "{url}"
    );
    let r = c
        .get(format!("{url}/rest/api/user/current"))
        .bearer_auth("pat")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.json::<Value>().await.unwrap()["username"], "admin");
    let status = sigterm_and_wait(child);
    assert!(status.success(), "{status:?}");
}

#[tokio::test]
async fn auth_failures_follow_each_flavor() {
    let c = client();
    let cloud = demo(Flavor::Cloud);
    let b = cloud.base_url();
    let r = c
        .get(format!("{b}/rest/api/user/current"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    assert_eq!(
        r.json::<Value>().await.unwrap()["message"],
        "caller cannot access Confluence"
    );
    let r = c
        .get(format!("{b}/rest/api/space"))
        .basic_auth(USER, Some("wrong"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    let r = c.get(format!("{b}/api/v2/spaces")).send().await.unwrap();
    assert_eq!(r.status(), 404);
    assert_eq!(
        r.json::<Value>().await.unwrap()["errors"][0]["title"],
        "Not Found"
    );

    let dc = demo(Flavor::Datacenter);
    let b = dc.base_url();
    let r = c.get(format!("{b}/rest/api/space")).send().await.unwrap();
    assert_eq!(r.status(), 401);
    let r = c
        .get(format!("{b}/rest/api/space"))
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let (s, _) = get_json(&c, &format!("{b}/api/v2/spaces")).await;
    assert_eq!(s, 404, "v2 does not exist on Datacenter");
}

#[tokio::test]
async fn uploads_enforce_xsrf_duplicates_charsets_and_basenames() {
    let c = client();
    let s = demo(Flavor::Cloud);
    let b = s.base_url();
    let page = page_id(&c, b, "DOCS", "Installation").await;

    let r = c
        .post(format!("{b}/rest/api/content/{page}/child/attachment"))
        .basic_auth(USER, Some(TOKEN))
        .multipart(Form::new().part("file", file_part("x.txt", b"x")))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    assert!(r.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/plain"));
    assert_eq!(r.text().await.unwrap(), "XSRF check failed");

    let form = Form::new()
        .part("file", file_part("dir/sub/a.txt", b"one"))
        .part("file", file_part("Übersicht.txt", b"two"))
        .text("comment", "caf\u{e9}")
        .part(
            "comment",
            Part::text("caf\u{e9}")
                .mime_str("text/plain; charset=utf-8")
                .unwrap(),
        )
        .text("minorEdit", "true")
        .text("fileName", "ignored");
    let r = upload(&c, b, &page, form).await;
    assert_eq!(r.status(), 200);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["size"], 2);
    assert!(
        v.get("start").is_none(),
        "the upload response has no start/limit"
    );
    assert_eq!(v["results"][0]["title"], "a.txt");
    assert_eq!(v["results"][1]["title"], "Übersicht.txt");
    // An unlabelled text part is read as ISO-8859-1.
    assert_eq!(v["results"][0]["metadata"]["comment"], "caf\u{c3}\u{a9}");
    assert_eq!(v["results"][1]["metadata"]["comment"], "café");
    assert_eq!(v["results"][0]["version"]["minorEdit"], true);
    assert!(v["results"][0]["id"].as_str().unwrap().starts_with("att"));

    let r = upload(
        &c,
        b,
        &page,
        Form::new().part("file", file_part("other/a.txt", b"dup")),
    )
    .await;
    assert_eq!(r.status(), 400);
    assert_eq!(
        r.json::<Value>().await.unwrap()["message"],
        "com.atlassian.confluence.api.service.exceptions.BadRequestException: Cannot add a new attachment with same file name as an existing attachment: a.txt"
    );

    // PUT upserts on Cloud: same id, version 2.
    let id = v["results"][0]["id"].as_str().unwrap().to_string();
    let r = c
        .put(format!("{b}/rest/api/content/{page}/child/attachment"))
        .basic_auth(USER, Some(TOKEN))
        .header("X-Atlassian-Token", "nocheck")
        .multipart(Form::new().part("file", file_part("a.txt", b"version two")))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["results"][0]["id"], id.as_str());
    assert_eq!(v["results"][0]["version"]["number"], 2);
    assert_eq!(v["results"][0]["extensions"]["fileSize"], 11);

    // `/data` makes version 3 and answers a single Content.
    let r = c
        .post(format!(
            "{b}/rest/api/content/{page}/child/attachment/{id}/data"
        ))
        .basic_auth(USER, Some(TOKEN))
        .header("X-Atlassian-Token", "no-check")
        .multipart(Form::new().part("file", file_part("a.txt", b"three")))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["id"], id.as_str());
    assert_eq!(v["version"]["number"], 3);

    // Rename with a stale version: 409; with the current one: 200.
    for (number, want) in [(2, 409), (3, 200)] {
        let r = c
            .put(format!("{b}/rest/api/content/{page}/child/attachment/{id}"))
            .basic_auth(USER, Some(TOKEN))
            .json(&json!({"id": id, "type": "attachment", "version": {"number": number}, "title": "renamed.txt"}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), want);
    }
    let (_, v) = get_json(&c, &format!("{b}/rest/api/content/{id}?expand=version")).await;
    assert_eq!(v["title"], "renamed.txt");
    assert_eq!(v["version"]["number"], 3);
}

#[tokio::test]
async fn datacenter_refuses_put_upsert_and_serves_ranges_from_the_servlet() {
    let c = client();
    let s = demo(Flavor::Datacenter);
    let b = s.base_url();
    let page = page_id(&c, b, "DOCS", "Installation").await;
    let r = c
        .put(format!("{b}/rest/api/content/{page}/child/attachment"))
        .basic_auth(USER, Some(TOKEN))
        .header("X-Atlassian-Token", "no-check")
        .multipart(Form::new().part("file", file_part("a.txt", b"x")))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 405);

    let (_, v) = get_json(&c, &format!("{b}/rest/api/content/{page}/child/attachment?filename=install-steps.txt&expand=version")).await;
    let att = &v["results"][0];
    assert!(att["id"]
        .as_str()
        .unwrap()
        .chars()
        .all(|c| c.is_ascii_digit()));
    assert!(att["version"]["when"].as_str().unwrap().ends_with("+00:00"));
    let link = att["_links"]["download"].as_str().unwrap();
    assert!(link.starts_with(&format!(
        "/download/attachments/{page}/install-steps.txt?version=1"
    )));
    let url = format!("{b}{link}");
    let r = c
        .get(&url)
        .basic_auth(USER, Some(TOKEN))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["content-length"], "32");
    assert_eq!(
        r.text().await.unwrap(),
        "1. Download\n2. Install\n3. Mount\n"
    );
    for (range, status, body, content_range) in [
        ("bytes=0-1", 206, "1.", "bytes 0-1/32"),
        ("bytes=26-", 206, "Mount\n", "bytes 26-31/32"),
        ("bytes=-2", 206, "t\n", "bytes 30-31/32"),
        ("bytes=32-", 416, "", "bytes */32"),
    ] {
        let r = c
            .get(&url)
            .basic_auth(USER, Some(TOKEN))
            .header("Range", range)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), status, "{range}");
        assert_eq!(r.headers()["content-range"], content_range);
        if status == 206 {
            assert_eq!(r.text().await.unwrap(), body);
        }
    }
    let r = c.get(&url).send().await.unwrap();
    assert_eq!(r.status(), 401, "the DC servlet needs credentials");
    let (_, v) = get_json(
        &c,
        &format!("{b}/rest/api/content/{page}/child/attachment?limit=1"),
    )
    .await;
    assert_eq!(
        v["_links"]["next"],
        format!("/rest/api/content/{page}/child/attachment?limit=1&start=1")
    );
}

#[tokio::test]
async fn cloud_downloads_redirect_to_a_media_origin_that_refuses_authorization() {
    let c = client();
    let s = demo(Flavor::Cloud);
    let b = s.base_url();
    let page = page_id(&c, b, "DOCS", "Getting Started").await;
    let (_, v) = get_json(
        &c,
        &format!(
            "{b}/rest/api/content/{page}/child/attachment?filename=changelog.md&expand=version"
        ),
    )
    .await;
    let att = &v["results"][0];
    assert_eq!(att["version"]["number"], 3);
    let link = att["_links"]["download"].as_str().unwrap();
    assert_eq!(
        link,
        format!(
            "/rest/api/content/{page}/child/attachment/{}/download",
            att["id"].as_str().unwrap()
        )
    );

    let r = c
        .get(format!("{b}{link}?version=1"))
        .basic_auth(USER, Some(TOKEN))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 302);
    let location = r.headers()["location"].to_str().unwrap().to_string();
    assert!(
        location.starts_with(&format!("{}/file/", s.media_url().unwrap())),
        "{location}"
    );
    assert!(location.contains("token=") && location.contains("client="));

    let r = c
        .get(&location)
        .basic_auth(USER, Some(TOKEN))
        .send()
        .await
        .unwrap();
    assert_eq!(
        r.status(),
        401,
        "Authorization must not reach the media origin"
    );
    let r = c.get(&location).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(
        r.text().await.unwrap(),
        "# Changelog\n\n## 1.0\n- First release\n"
    );
    let bad = location.replace("token=", "token=x");
    assert_eq!(c.get(&bad).send().await.unwrap().status(), 401);
    let r = c
        .get(&location)
        .header("Range", "bytes=2-10")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 206);
    assert_eq!(r.text().await.unwrap(), "Changelog");

    // Versions beyond the latest are a 400; the legacy servlet refuses API tokens.
    let r = c
        .get(format!("{b}{link}?version=9"))
        .basic_auth(USER, Some(TOKEN))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    let r = c
        .get(format!(
            "{b}/download/attachments/{page}/changelog.md?version=3&api=v2"
        ))
        .basic_auth(USER, Some(TOKEN))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);

    // Each version has its own file id; the version list is newest first.
    let id = att["id"].as_str().unwrap();
    let (s1, vers) = get_json(
        &c,
        &format!("{b}/rest/api/content/{id}/version?expand=content"),
    )
    .await;
    assert_eq!(s1, 200);
    let numbers: Vec<i64> = vers["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["number"].as_i64().unwrap())
        .collect();
    assert_eq!(numbers, vec![3, 2, 1]);
    let f3 = vers["results"][0]["content"]["extensions"]["fileId"].clone();
    let f1 = vers["results"][2]["content"]["extensions"]["fileId"].clone();
    assert_ne!(f3, f1);
    let (_, v2) = get_json(&c, &format!("{b}/api/v2/attachments/{id}/versions")).await;
    assert_eq!(v2["results"].as_array().unwrap().len(), 3);

    // The request log saw the media fetches with their byte counts.
    let log: Value = c
        .get(format!("{}/__testserver/requests", s.root_url()))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let media: Vec<&Value> = log
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["origin"] == "media" && e["status"] == 200)
        .collect();
    assert!(!media.is_empty());
    assert_eq!(media[0]["bytes"], 36);
}

#[tokio::test]
async fn v1_pages_clamp_limits_and_link_next_only_when_more_remain() {
    let c = client();
    let s = spawn(Config {
        demo: true,
        v1_limit_cap: 3,
        ..Config::default()
    })
    .unwrap();
    let b = s.base_url();
    let page = page_id(&c, b, "DOCS", "Getting Started").await;
    let (_, v) = get_json(
        &c,
        &format!("{b}/rest/api/content/{page}/child/attachment?limit=100"),
    )
    .await;
    assert_eq!(v["limit"], 3);
    assert_eq!(v["size"], 3);
    assert_eq!(v["_links"]["context"], "/wiki");
    assert_eq!(v["_links"]["base"], b);
    let next = v["_links"]["next"].as_str().unwrap();
    assert_eq!(
        next,
        format!("/rest/api/content/{page}/child/attachment?next=true&limit=3&start=3")
    );
    assert!(
        v["results"][0]["metadata"]["mediaType"].is_string(),
        "metadata is expanded by default"
    );
    assert!(v["results"][0].get("version").is_none());
    let (_, v) = get_json(&c, &format!("{b}{next}")).await;
    assert_eq!(v["size"], 2);
    assert!(v["_links"].get("next").is_none());

    // v2: Link header and _links.next only while more remain.
    let r = c
        .get(format!("{b}/api/v2/pages/{page}/attachments?limit=4"))
        .basic_auth(USER, Some(TOKEN))
        .send()
        .await
        .unwrap();
    let link = r.headers()["link"].to_str().unwrap().to_string();
    let v: Value = r.json().await.unwrap();
    let next = v["_links"]["next"].as_str().unwrap().to_string();
    assert!(
        next.starts_with("/wiki/api/v2/pages/")
            && link.contains(&next)
            && link.contains("rel=\"next\"")
    );
    let r = c
        .get(format!("{}{next}", s.root_url()))
        .basic_auth(USER, Some(TOKEN))
        .send()
        .await
        .unwrap();
    assert!(r.headers().get("link").is_none());
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["results"].as_array().unwrap().len(), 1);
    assert!(v["_links"].get("next").is_none());
}

#[tokio::test]
async fn content_properties_follow_the_version_rules() {
    let c = client();
    let s = demo(Flavor::Cloud);
    let b = s.base_url();
    let page = page_id(&c, b, "DOCS", "Installation").await;
    let url = format!("{b}/rest/api/content/{page}/property/color");
    let put = |number: u32, value: Value| {
        c.put(&url)
            .basic_auth(USER, Some(TOKEN))
            .json(&json!({"value": value, "version": {"number": number}}))
            .send()
    };
    assert_eq!(put(2, json!("red")).await.unwrap().status(), 404);
    assert_eq!(put(1, json!("red")).await.unwrap().status(), 200);
    assert_eq!(put(1, json!("blue")).await.unwrap().status(), 409);
    let r = put(2, json!({"shade": "blue"})).await.unwrap();
    assert_eq!(r.status(), 200);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["version"]["number"], 2);
    assert_eq!(v["value"]["shade"], "blue");
    let (_, list) = get_json(&c, &format!("{b}/rest/api/content/{page}/property")).await;
    assert_eq!(list["limit"], 10);
    assert_eq!(list["results"][0]["key"], "color");
    let r = c
        .delete(&url)
        .basic_auth(USER, Some(TOKEN))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);
    let (st, _) = get_json(&c, &url).await;
    assert_eq!(st, 404);
}

#[tokio::test]
async fn faults_fail_cut_and_rate_limit_requests() {
    let c = client();
    let s = demo(Flavor::Cloud);
    let b = s.base_url();
    let root = s.root_url();
    faults(
        &c,
        &root,
        json!({"fail_next": [503, 500], "retry_after": 7}),
    )
    .await;
    let r = c
        .get(format!("{b}/rest/api/space"))
        .basic_auth(USER, Some(TOKEN))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 503);
    assert_eq!(r.headers()["retry-after"], "7");
    assert_eq!(r.json::<Value>().await.unwrap()["statusCode"], 503);
    let r = c
        .get(format!("{b}/api/v2/spaces"))
        .basic_auth(USER, Some(TOKEN))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 500);
    assert_eq!(r.json::<Value>().await.unwrap()["errors"][0]["status"], 500);
    let (st, _) = get_json(&c, &format!("{b}/rest/api/space")).await;
    assert_eq!(st, 200);

    faults(&c, &root, json!({"reset_next": 1})).await;
    let r = c
        .get(format!("{b}/rest/api/space?expand=homepage"))
        .basic_auth(USER, Some(TOKEN))
        .send()
        .await
        .unwrap();
    assert!(r.bytes().await.is_err(), "the body must be cut");
    let (st, _) = get_json(&c, &format!("{b}/rest/api/space")).await;
    assert_eq!(st, 200);

    faults(&c, &root, json!({"rate_limit_per_s": 2})).await;
    let mut statuses = Vec::new();
    for _ in 0..6 {
        let r = c
            .get(format!("{b}/rest/api/user/current"))
            .basic_auth(USER, Some(TOKEN))
            .send()
            .await
            .unwrap();
        if r.status() == 429 {
            assert_eq!(r.headers()["x-ratelimit-limit"], "2");
            assert!(r.headers().contains_key("retry-after"));
            assert!(r.headers().contains_key("x-ratelimit-reset"));
        }
        statuses.push(r.status().as_u16());
    }
    // The window is one second: however slow this machine, the first two pass and a third
    // within the same second does not.
    assert_eq!(&statuses[..2], &[200, 200], "{statuses:?}");
    assert!(statuses.contains(&429), "{statuses:?}");
    faults(&c, &root, json!({})).await;
    let (st, _) = get_json(&c, &format!("{b}/rest/api/space")).await;
    assert_eq!(st, 200);
}

#[tokio::test]
async fn cql_filters_and_refuses_unknown_fields() {
    let c = client();
    let s = demo(Flavor::Cloud);
    let b = s.base_url();
    let q = |cql: &str| format!("{b}/rest/api/content/search?cql={}&limit=2", urlencode(cql));
    let (st, v) = get_json(
        &c,
        &q(r#"type=attachment AND space="ENG" AND title ~ "CSV""#),
    )
    .await;
    assert_eq!(st, 200);
    let titles: Vec<&str> = v["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["title"].as_str().unwrap())
        .collect();
    assert_eq!(titles, vec!["benchmarks.csv", "results.csv"]);
    assert!(v["_links"].get("next").is_none());
    let (_, v) = get_json(&c, &q("type=page AND space=DOCS")).await;
    let next = v["_links"]["next"].as_str().unwrap();
    assert!(next.contains("cursor="));
    let (_, v2) = get_json(&c, &format!("{b}{next}")).await;
    assert_ne!(v["results"][0]["id"], v2["results"][0]["id"]);
    let (_, v) = get_json(
        &c,
        &q(r#"type = blogpost and lastmodified >= "2024-01-15" and lastmodified < "2024-01-16""#),
    )
    .await;
    assert_eq!(v["results"][0]["title"], "Q4 results");
    let (st, v) = get_json(&c, &q("status = current")).await;
    assert_eq!(st, 400);
    assert_eq!(v["message"], "No field exists with the name: 'status'");
    let (st, v) = get_json(
        &c,
        &format!(
            "{b}/rest/api/search?cql={}",
            urlencode(r#"title="Runbooks""#)
        ),
    )
    .await;
    assert_eq!(st, 200);
    assert_eq!(v["results"][0]["content"]["title"], "Runbooks");
    assert!(v["totalSize"].is_number() && v["cqlQuery"].is_string());
}

fn write(path: &Path, bytes: &[u8]) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, bytes).unwrap();
}

#[tokio::test]
async fn seeding_imports_spaces_pages_blogs_and_properties() {
    let c = client();
    let tree = tempfile::tempdir().unwrap();
    let t = tree.path();
    write(&t.join("KB/top.txt"), b"top");
    write(&t.join("KB/Guides/intro.md"), b"# intro");
    write(
        &t.join("KB/Guides/intro.md.properties.json"),
        br#"{"lang": "en"}"#,
    );
    write(
        &t.join("KB/Guides/@page.properties.json"),
        br#"{"owner": {"team": "kb"}}"#,
    );
    write(&t.join("KB/Guides/Deep/deeper.bin"), &[0u8; 1000]);
    write(&t.join("KB/@blog/2024-03-01 Launch/poster.png"), b"png");
    let s = spawn(Config {
        seed_dir: Some(t.to_path_buf()),
        ..Config::default()
    })
    .unwrap();
    let b = s.base_url();
    let (_, v) = get_json(&c, &format!("{b}/rest/api/space/KB?expand=homepage")).await;
    assert_eq!(v["homepage"]["title"], "KB Home");
    let home = v["homepage"]["id"].as_str().unwrap().to_string();
    let (_, v) = get_json(&c, &format!("{b}/rest/api/content/{home}/child/attachment")).await;
    assert_eq!(v["results"][0]["title"], "top.txt");
    let (_, v) = get_json(&c, &format!("{b}/rest/api/content/{home}/child/page")).await;
    assert_eq!(v["results"][0]["title"], "Guides");
    let guides = v["results"][0]["id"].as_str().unwrap().to_string();
    let (_, v) = get_json(
        &c,
        &format!("{b}/rest/api/content/{guides}/child/attachment"),
    )
    .await;
    assert_eq!(v["size"], 1, "side files are properties, not attachments");
    let intro = v["results"][0]["id"].as_str().unwrap().to_string();
    let (_, v) = get_json(&c, &format!("{b}/rest/api/content/{intro}/property/lang")).await;
    assert_eq!(v["value"], "en");
    let (_, v) = get_json(&c, &format!("{b}/rest/api/content/{guides}/property/owner")).await;
    assert_eq!(v["value"]["team"], "kb");
    let deep = page_id(&c, b, "KB", "Deep").await;
    let (_, v) = get_json(&c, &format!("{b}/rest/api/content/{deep}?expand=ancestors")).await;
    let anc: Vec<&str> = v["ancestors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["title"].as_str().unwrap())
        .collect();
    assert_eq!(anc, vec!["KB Home", "Guides"]);
    let (_, v) = get_json(
        &c,
        &format!("{b}/rest/api/space/KB/content/blogpost?expand=history"),
    )
    .await;
    assert_eq!(v["results"][0]["title"], "Launch");
    assert!(v["results"][0]["history"]["createdDate"]
        .as_str()
        .unwrap()
        .starts_with("2024-03-01T"));
}

#[tokio::test]
async fn seeding_twenty_thousand_attachments_takes_seconds() {
    let tree = tempfile::tempdir().unwrap();
    // Hard links to one file: creating 20,000 real files would measure the disk, not the seed.
    let one = tree.path().join("one.txt");
    std::fs::write(&one, b"x").unwrap();
    for p in 0..200 {
        let dir = tree.path().join(format!("BIG/Page {p}"));
        std::fs::create_dir_all(&dir).unwrap();
        for f in 0..100 {
            std::fs::hard_link(&one, dir.join(format!("f{f}.txt"))).unwrap();
        }
    }
    let started = std::time::Instant::now();
    let s = spawn(Config {
        seed_dir: Some(tree.path().to_path_buf()),
        ..Config::default()
    })
    .unwrap();
    let took = started.elapsed();
    assert!(took < Duration::from_secs(20), "seeding took {took:?}");
    let c = client();
    let (_, v) = get_json(
        &c,
        &format!(
            "{}/rest/api/search?cql={}&limit=1",
            s.base_url(),
            urlencode("type=attachment and space=BIG")
        ),
    )
    .await;
    assert_eq!(v["totalSize"], 20_000);
    assert_eq!(v["size"], 1);
}

#[tokio::test]
async fn data_dir_survives_a_restart_on_the_same_address() {
    let c = client();
    let data = tempfile::tempdir().unwrap();
    let config = Config {
        data_dir: Some(data.path().to_path_buf()),
        demo: true,
        flavor: Flavor::Datacenter,
        ..Config::default()
    };
    let first = spawn(config.clone()).unwrap();
    let b = first.base_url().to_string();
    let page = page_id(&c, &b, "HR", "Policies").await;
    let r = upload(
        &c,
        &b,
        &page,
        Form::new().part("file", file_part("kept.txt", b"still here")),
    )
    .await;
    assert_eq!(r.status(), 200);
    let r = c
        .post(format!("{b}/rest/api/content"))
        .basic_auth(USER, Some(TOKEN))
        .json(&json!({"type": "page", "title": "New page", "space": {"key": "HR"}, "ancestors": [{"id": page}]}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let addr: std::net::SocketAddr = b.trim_start_matches("http://").parse().unwrap();
    first.shutdown();

    let second = spawn(Config {
        listen: addr,
        demo: false,
        ..config
    })
    .unwrap();
    assert_eq!(second.base_url(), b);
    // The old connections died with the old server.
    let c = client();
    let r = c
        .get(format!("{b}/download/attachments/{page}/kept.txt"))
        .basic_auth(USER, Some(TOKEN))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.text().await.unwrap(), "still here");
    let (_, v) = get_json(&c, &format!("{b}/rest/api/content/{page}/child/page")).await;
    assert_eq!(v["results"][0]["title"], "New page");
}

#[tokio::test]
async fn oversize_uploads_are_refused_with_413() {
    let c = client();
    let s = spawn(Config {
        demo: true,
        max_attachment_size: Some(1000),
        ..Config::default()
    })
    .unwrap();
    let b = s.base_url();
    let page = page_id(&c, b, "HR", "Policies").await;
    let r = upload(
        &c,
        b,
        &page,
        Form::new().part("file", file_part("big.bin", &[7u8; 5000])),
    )
    .await;
    assert_eq!(r.status(), 413);
    assert_eq!(r.json::<Value>().await.unwrap()["statusCode"], 413);
    let r = upload(
        &c,
        b,
        &page,
        Form::new().part("file", file_part("small.bin", &[7u8; 1000])),
    )
    .await;
    assert_eq!(r.status(), 200);
}

#[tokio::test]
async fn pages_are_created_renamed_moved_trashed_and_purged() {
    let c = client();
    let s = demo(Flavor::Cloud);
    let b = s.base_url();
    let parent = page_id(&c, b, "ENG", "Runbooks").await;
    let create = |title: &str| {
        c.post(format!("{b}/rest/api/content"))
            .basic_auth(USER, Some(TOKEN))
            .json(&json!({"type": "page", "title": title, "space": {"key": "ENG"}, "ancestors": [{"id": parent}]}))
            .send()
    };
    let r = create("Disk full").await.unwrap();
    assert_eq!(r.status(), 200);
    let id = r.json::<Value>().await.unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string();
    let r = create("Disk full").await.unwrap();
    assert_eq!(r.status(), 400);
    assert!(r.json::<Value>().await.unwrap()["message"]
        .as_str()
        .unwrap()
        .starts_with("A page with this title already exists"));
    let arch = page_id(&c, b, "ENG", "Architecture").await;
    let update = |n: u32| {
        c.put(format!("{b}/rest/api/content/{id}"))
            .basic_auth(USER, Some(TOKEN))
            .json(&json!({"type": "page", "title": "Disk full / quota", "version": {"number": n}, "ancestors": [{"id": arch}]}))
            .send()
    };
    assert_eq!(update(1).await.unwrap().status(), 409);
    assert_eq!(update(2).await.unwrap().status(), 200);
    let (_, v) = get_json(
        &c,
        &format!("{b}/rest/api/content/{id}?expand=ancestors,version"),
    )
    .await;
    assert_eq!(v["title"], "Disk full / quota");
    assert_eq!(
        v["ancestors"].as_array().unwrap().last().unwrap()["id"],
        arch.as_str()
    );
    let r = c
        .delete(format!("{b}/rest/api/content/{id}"))
        .basic_auth(USER, Some(TOKEN))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);
    let (st, _) = get_json(&c, &format!("{b}/rest/api/content/{id}")).await;
    assert_eq!(st, 404);
    let (st, v) = get_json(&c, &format!("{b}/rest/api/content/{id}?status=trashed")).await;
    assert_eq!(st, 200);
    assert_eq!(v["status"], "trashed");
    let r = c
        .delete(format!("{b}/rest/api/content/{id}?status=trashed"))
        .basic_auth(USER, Some(TOKEN))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);
    let (st, _) = get_json(&c, &format!("{b}/rest/api/content/{id}?status=trashed")).await;
    assert_eq!(st, 404);
}

#[tokio::test]
async fn datacenter_fails_xsrf_for_browser_agents_and_oversize_can_answer_404() {
    let c = client();
    let s = spawn(Config {
        flavor: Flavor::Datacenter,
        demo: true,
        max_attachment_size: Some(10),
        oversize_status: 404,
        ..Config::default()
    })
    .unwrap();
    let b = s.base_url();
    let page = page_id(&c, b, "HR", "Policies").await;
    let r = c
        .post(format!("{b}/rest/api/content/{page}/child/attachment"))
        .basic_auth(USER, Some(TOKEN))
        .header("X-Atlassian-Token", "no-check")
        .header("User-Agent", "Mozilla/5.0 (X11; Linux x86_64)")
        .multipart(Form::new().part("file", file_part("ua.txt", b"x")))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    assert_eq!(r.text().await.unwrap(), "XSRF check failed");
    let r = upload(
        &c,
        b,
        &page,
        Form::new().part("file", file_part("big.txt", &[b'x'; 11])),
    )
    .await;
    assert_eq!(r.status(), 404);
    let r = upload(
        &c,
        b,
        &page,
        Form::new().part("file", file_part("ok.txt", &[b'x'; 10])),
    )
    .await;
    assert_eq!(r.status(), 200);
}

#[tokio::test]
async fn the_request_log_counts_bytes_and_can_be_cleared() {
    let c = client();
    let s = demo(Flavor::Cloud);
    let (b, root) = (s.base_url(), s.root_url());
    let log = || async {
        c.get(format!("{root}/__testserver/requests"))
            .send()
            .await
            .unwrap()
            .json::<Value>()
            .await
            .unwrap()
    };
    let r = c
        .delete(format!("{root}/__testserver/requests"))
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success());
    let r = c
        .get(format!("{b}/rest/api/space?limit=1"))
        .basic_auth(USER, Some(TOKEN))
        .send()
        .await
        .unwrap();
    let len = r.bytes().await.unwrap().len() as u64;
    let page = page_id(&c, b, "HR", "Policies").await;
    let body = vec![b'z'; 10_000];
    let r = upload(
        &c,
        b,
        &page,
        Form::new().part("file", file_part("z.bin", &body)),
    )
    .await;
    assert_eq!(r.status(), 200);
    let entries = log().await;
    let entries = entries.as_array().unwrap();
    assert_eq!(
        entries.len(),
        3,
        "hook requests are not logged: {entries:?}"
    );
    assert_eq!(entries[0]["path"], "/wiki/rest/api/space");
    assert_eq!(entries[0]["query"], "limit=1");
    assert_eq!(entries[0]["origin"], "api");
    assert_eq!(entries[0]["status"], 200);
    assert_eq!(entries[0]["bytes"], len);
    assert!(entries[2]["request_bytes"].as_u64().unwrap() > 10_000);
    assert_eq!(entries[2]["method"], "POST");

    faults(&c, &root, json!({"latency_ms": 300})).await;
    let started = std::time::Instant::now();
    let (st, _) = get_json(&c, &format!("{b}/rest/api/space")).await;
    assert_eq!(st, 200);
    assert!(started.elapsed() >= Duration::from_millis(300));
    faults(&c, &root, json!({})).await;
    c.delete(format!("{root}/__testserver/requests"))
        .send()
        .await
        .unwrap();
    assert_eq!(log().await.as_array().unwrap().len(), 0);
}

#[tokio::test]
async fn v2_properties_by_id_and_attachment_trash_then_purge() {
    let c = client();
    let s = demo(Flavor::Cloud);
    let b = s.base_url();
    let page = page_id(&c, b, "DOCS", "Getting Started").await;
    let (_, v) = get_json(
        &c,
        &format!("{b}/rest/api/content/{page}/child/attachment?filename=guide.pdf"),
    )
    .await;
    let att = v["results"][0]["id"].as_str().unwrap().to_string();
    let (st, v) = get_json(&c, &format!("{b}/api/v2/attachments/{att}/properties")).await;
    assert_eq!(st, 200);
    let keys: Vec<&str> = v["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["key"].as_str().unwrap())
        .collect();
    assert_eq!(keys, vec!["classification", "reviewers"]);
    let pid = v["results"][0]["id"].as_str().unwrap().to_string();
    let (_, one) = get_json(
        &c,
        &format!("{b}/api/v2/attachments/{att}?include-properties=true&include-versions=true"),
    )
    .await;
    assert_eq!(one["properties"]["results"].as_array().unwrap().len(), 2);
    assert_eq!(one["versions"]["results"][0]["number"], 1);
    assert_eq!(one["versions"]["meta"]["hasMore"], false);
    let put = |n: u32| {
        c.put(format!("{b}/api/v2/attachments/{att}/properties/{pid}"))
            .basic_auth(USER, Some(TOKEN))
            .json(&json!({"key": "classification", "value": "internal", "version": {"number": n}}))
            .send()
    };
    assert_eq!(put(1).await.unwrap().status(), 409);
    let r = put(2).await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.json::<Value>().await.unwrap()["value"], "internal");

    // Purging needs the trash first; afterwards the id is gone for good.
    let del = |purge: bool| {
        let url = if purge {
            format!("{b}/api/v2/attachments/{att}?purge=true")
        } else {
            format!("{b}/api/v2/attachments/{att}")
        };
        c.delete(url).basic_auth(USER, Some(TOKEN)).send()
    };
    assert_eq!(del(true).await.unwrap().status(), 400);
    assert_eq!(del(false).await.unwrap().status(), 204);
    let (_, v) = get_json(
        &c,
        &format!("{b}/rest/api/content/{page}/child/attachment?filename=guide.pdf"),
    )
    .await;
    assert_eq!(v["size"], 0, "trashed attachments are hidden from lists");
    let (st, v) = get_json(&c, &format!("{b}/api/v2/attachments/{att}")).await;
    assert_eq!(st, 200);
    assert_eq!(v["status"], "trashed");
    assert_eq!(del(true).await.unwrap().status(), 204);
    let (st, v) = get_json(&c, &format!("{b}/api/v2/attachments/{att}")).await;
    assert_eq!(st, 404);
    assert_eq!(v["errors"][0]["code"], "NOT_FOUND");
}

#[tokio::test]
async fn datacenter_allow_duplicated_makes_a_new_version() {
    let c = client();
    let s = demo(Flavor::Datacenter);
    let b = s.base_url();
    let page = page_id(&c, b, "HR", "Onboarding").await;
    let r = upload(
        &c,
        b,
        &page,
        Form::new().part("file", file_part("welcome-letter.txt", b"y")),
    )
    .await;
    assert_eq!(r.status(), 400);
    let r = c
        .post(format!(
            "{b}/rest/api/content/{page}/child/attachment?allowDuplicated=true"
        ))
        .basic_auth(USER, Some(TOKEN))
        .header("X-Atlassian-Token", "no-check")
        .multipart(Form::new().part("file", file_part("welcome-letter.txt", b"y")))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["results"][0]["version"]["number"], 2);
    assert_eq!(v["results"][0]["extensions"]["fileSize"], 1);
}

#[tokio::test]
async fn trailing_slashes_and_unknown_paths_answer_like_confluence() {
    let c = client();
    let s = demo(Flavor::Cloud);
    let b = s.base_url();
    let (st, v) = get_json(&c, &format!("{b}/rest/api/space/DOCS/")).await;
    assert_eq!(st, 200);
    assert_eq!(v["key"], "DOCS");
    let (st, v) = get_json(&c, &format!("{b}/rest/api/nope")).await;
    assert_eq!(st, 404);
    assert!(v["message"].as_str().unwrap().starts_with("null for uri: "));
    let (st, v) = get_json(&c, &format!("{b}/api/v2/nope")).await;
    assert_eq!(st, 404);
    assert_eq!(v["errors"][0]["status"], 404);
}

#[tokio::test]
async fn faults_can_target_one_path_and_method() {
    let c = client();
    let s = demo(Flavor::Cloud);
    let (b, root) = (s.base_url(), s.root_url());
    faults(
        &c,
        &root,
        json!({"path_contains": "/child/attachment", "method": "GET", "fail_next": [503]}),
    )
    .await;
    let (st, _) = get_json(&c, &format!("{b}/rest/api/space")).await;
    assert_eq!(st, 200, "other paths are untouched");
    let page = page_id(&c, b, "HR", "Policies").await;
    let (st, _) = get_json(&c, &format!("{b}/rest/api/content/{page}/child/attachment")).await;
    assert_eq!(st, 503);
    let (st, _) = get_json(&c, &format!("{b}/rest/api/content/{page}/child/attachment")).await;
    assert_eq!(st, 200);
}

async fn put_json(c: &Client, url: &str, body: &Value) -> (StatusCode, Value) {
    let r = c
        .put(url)
        .basic_auth(USER, Some(TOKEN))
        .json(body)
        .send()
        .await
        .unwrap();
    let status = r.status();
    (status, r.json::<Value>().await.unwrap_or(Value::Null))
}

/// Every `attr="…"` value in `text`.
fn attr_values(text: &str, attr: &str) -> Vec<String> {
    let needle = format!("{attr}=\"");
    text.match_indices(&needle)
        .map(|(i, _)| {
            let rest = &text[i + needle.len()..];
            rest[..rest.find('"').unwrap()].to_string()
        })
        .collect()
}

#[tokio::test]
async fn demo_bodies_use_the_storage_format_and_point_at_real_things() {
    let c = client();
    for flavor in [Flavor::Cloud, Flavor::Datacenter] {
        let s = demo(flavor);
        let b = s.base_url();
        let mut seen = String::new();
        for key in ["DOCS", "ENG", "HR"] {
            let (_, v) = get_json(
                &c,
                &format!("{b}/rest/api/space/{key}/content?limit=100&expand=body.storage"),
            )
            .await;
            let items: Vec<Value> = ["page", "blogpost"]
                .iter()
                .flat_map(|t| v[*t]["results"].as_array().unwrap().clone())
                .collect();
            for item in items {
                let id = item["id"].as_str().unwrap();
                let body = item["body"]["storage"]["value"].as_str().unwrap();
                assert!(!body.is_empty(), "{} has a body", item["title"]);
                // Images and attachment links name attachments of this very page.
                let (_, atts) = get_json(
                    &c,
                    &format!("{b}/rest/api/content/{id}/child/attachment?limit=100"),
                )
                .await;
                let names: Vec<&str> = atts["results"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|a| a["title"].as_str().unwrap())
                    .collect();
                for f in attr_values(body, "ri:filename") {
                    assert!(names.contains(&f.as_str()), "{f} on {}", item["title"]);
                }
                // Page links name pages that exist (in this space unless a key is given).
                for link in body.split("<ri:page ").skip(1) {
                    let key = attr_values(link, "ri:space-key")
                        .into_iter()
                        .next()
                        .filter(|_| link.find("ri:space-key") < link.find("/>"))
                        .unwrap_or_else(|| key.to_string());
                    let title = &attr_values(link, "ri:content-title")[0];
                    page_id(&c, b, &key, title).await;
                }
                seen.push_str(body);
            }
        }
        for construct in [
            "<h1>",
            "<h2>",
            "<strong>",
            "<em>",
            "<ul><li>",
            "<ol>",
            "<th>",
            "colspan=",
            "rowspan=",
            r#"ac:name="code""#,
            r#"<ac:parameter ac:name="language">"#,
            "<ac:plain-text-body><![CDATA[",
            r#"ac:name="info""#,
            r#"ac:name="note""#,
            r#"ac:name="warning""#,
            r#"ac:name="tip""#,
            "<ac:task-list>",
            "<ac:task-id>",
            "<ac:task-status>complete</ac:task-status>",
            "<ac:task-status>incomplete</ac:task-status>",
            r#"ac:name="expand""#,
            r#"ac:name="toc""#,
            r#"ac:name="status""#,
            "<ac:image",
            r#"<a href="https://"#,
            "<ac:layout>",
            "<ac:layout-section",
            "<ac:layout-cell>",
            "ri:space-key=",
        ] {
            assert!(seen.contains(construct), "{flavor:?}: no {construct}");
        }
        let (mention, other) = match flavor {
            Flavor::Cloud => ("ri:account-id=", "ri:userkey="),
            Flavor::Datacenter => ("ri:userkey=", "ri:account-id="),
        };
        assert!(seen.contains(mention) && !seen.contains(other));
        let (_, me) = get_json(&c, &format!("{b}/rest/api/user/current")).await;
        let mine = me["accountId"].as_str().or(me["userKey"].as_str()).unwrap();
        assert!(attr_values(&seen, mention.trim_end_matches('='))
            .iter()
            .all(|u| u == mine));
    }
}

#[tokio::test]
async fn page_updates_need_the_next_version_and_keep_message_and_id() {
    let c = client();
    let s = demo(Flavor::Cloud);
    let b = s.base_url();
    let id = page_id(&c, b, "ENG", "Runbooks").await;
    let url = format!("{b}/rest/api/content/{id}");
    let stale = json!({"version": {"number": 1}, "title": "Runbooks", "type": "page",
                       "body": {"storage": {"value": "<p>x</p>", "representation": "storage"}}});
    let (st, v) = put_json(&c, &url, &stale).await;
    assert_eq!(st, 409);
    assert_eq!(
        v,
        json!({"statusCode": 409,
               "data": {"authorized": true, "valid": true, "errors": [], "successful": false},
               "message": "com.atlassian.confluence.api.service.exceptions.ConflictException: Version must be incremented on update. Current version is: 1"})
    );
    let (st, v) = put_json(
        &c,
        &url,
        &json!({"version": {"number": 2}, "type": "page",
                "body": {"storage": {"value": "<p>x</p>", "representation": "storage"}}}),
    )
    .await;
    assert_eq!(st, 400, "a title is required: {v}");
    let (st, v) = put_json(
        &c,
        &url,
        &json!({"version": {"number": 2, "message": "Shorter steps", "minorEdit": true},
                "title": "Runbooks", "type": "page",
                "body": {"storage": {"value": "<p>New steps</p>", "representation": "storage"}}}),
    )
    .await;
    assert_eq!(st, 200, "{v}");
    assert_eq!(v["id"], id.as_str());
    assert_eq!(v["version"]["number"], 2);
    assert_eq!(v["version"]["message"], "Shorter steps");
    assert_eq!(v["version"]["minorEdit"], true);
    assert_eq!(v["body"]["storage"]["value"], "<p>New steps</p>");
    // Without a body the body stays.
    let (st, _) = put_json(
        &c,
        &url,
        &json!({"version": {"number": 3}, "title": "Runbooks (renamed)", "type": "page"}),
    )
    .await;
    assert_eq!(st, 200);
    let (_, v) = get_json(&c, &format!("{url}?expand=body.storage,version")).await;
    assert_eq!(v["body"]["storage"]["value"], "<p>New steps</p>");
    assert_eq!(v["version"]["number"], 3);
    // v2: the same rule, the v2 error shape, the message kept.
    let v2 = format!("{b}/api/v2/pages/{id}");
    let (st, v) = put_json(
        &c,
        &v2,
        &json!({"id": id, "status": "current", "title": "Runbooks", "version": {"number": 3},
                "body": {"representation": "storage", "value": "<p>v2</p>"}}),
    )
    .await;
    assert_eq!(st, 409);
    assert_eq!(v["errors"][0]["status"], 409);
    assert_eq!(v["errors"][0]["code"], "CONFLICT");
    let (st, v) = put_json(
        &c,
        &v2,
        &json!({"id": id, "status": "current", "title": "Runbooks", "version": {"number": 4, "message": "via v2"},
                "body": {"representation": "storage", "value": "<p>v2</p>"}}),
    )
    .await;
    assert_eq!(st, 200, "{v}");
    assert_eq!(v["version"]["message"], "via v2");
    assert_eq!(v["body"]["storage"]["value"], "<p>v2</p>");
}

#[tokio::test]
async fn bodies_render_as_html_and_adf_in_v1_and_v2() {
    let c = client();
    let s = demo(Flavor::Cloud);
    let b = s.base_url();
    let id = page_id(&c, b, "DOCS", "Getting Started").await;
    let (_, v) = get_json(
        &c,
        &format!("{b}/rest/api/content/{id}?expand=body.storage,body.view,body.export_view,body.styled_view,body.atlas_doc_format"),
    )
    .await;
    let body = &v["body"];
    assert!(body["storage"]["value"]
        .as_str()
        .unwrap()
        .contains("<ac:structured-macro"));
    for rep in ["view", "export_view", "styled_view"] {
        let html = body[rep]["value"].as_str().unwrap();
        assert_eq!(body[rep]["representation"], rep);
        assert!(
            !html.contains("<ac:") && !html.contains("<ri:"),
            "{rep}: {html}"
        );
        assert!(html.contains("<pre") && html.contains("<img") && html.contains("<a href="));
        assert!(html.contains("data-inline-task-id="));
    }
    let view = body["view"]["value"].as_str().unwrap();
    assert!(view.contains(&format!(
        "src=\"/wiki/download/attachments/{id}/logo.png?version=1"
    )));
    assert!(view.contains("<a href=\"/wiki/display/DOCS/Installation\""));
    assert!(view.contains("mkdir -p ~/wiki"));
    let export = body["export_view"]["value"].as_str().unwrap();
    assert!(export.contains(&format!("src=\"{b}/download/attachments/{id}/logo.png")));
    let adf: Value =
        serde_json::from_str(body["atlas_doc_format"]["value"].as_str().unwrap()).unwrap();
    assert_eq!(adf["type"], "doc");
    assert_eq!(adf["version"], 1);
    assert!(adf["content"]
        .as_array()
        .unwrap()
        .iter()
        .any(|n| n["type"] == "codeBlock" && n["attrs"]["language"] == "bash"));

    let v2 = format!("{b}/api/v2");
    let (st, v) = get_json(&c, &format!("{v2}/pages/{id}?body-format=view")).await;
    assert_eq!(st, 200);
    assert_eq!(v["body"]["view"]["value"], view);
    let (_, v) = get_json(&c, &format!("{v2}/pages/{id}?body-format=atlas_doc_format")).await;
    let doc: Value =
        serde_json::from_str(v["body"]["atlas_doc_format"]["value"].as_str().unwrap()).unwrap();
    assert_eq!(doc["type"], "doc");
    let (_, v) = get_json(&c, &format!("{v2}/pages?body-format=storage&limit=250")).await;
    assert!(v["results"]
        .as_array()
        .unwrap()
        .iter()
        .any(|p| p["body"]["storage"]["value"]
            .as_str()
            .unwrap()
            .contains("<ac:task-list>")));
    let (st, v) = get_json(&c, &format!("{v2}/pages?body-format=view")).await;
    assert_eq!(
        st, 400,
        "listings offer storage and atlas_doc_format only: {v}"
    );
    let (_, sp) = get_json(&c, &format!("{v2}/spaces?keys=ENG")).await;
    let eng = sp["results"][0]["id"].as_str().unwrap().to_string();
    let (st, v) = get_json(
        &c,
        &format!("{v2}/spaces/{eng}/pages?body-format=atlas_doc_format"),
    )
    .await;
    assert_eq!(st, 200);
    let doc: Value = serde_json::from_str(
        v["results"][0]["body"]["atlas_doc_format"]["value"]
            .as_str()
            .unwrap(),
    )
    .unwrap();
    assert_eq!(doc["type"], "doc");
    let (_, v) = get_json(&c, &format!("{v2}/blogposts?body-format=storage")).await;
    assert!(v["results"][0]["body"]["storage"]["value"]
        .as_str()
        .unwrap()
        .contains("ac:name=\"status\""));
}

#[tokio::test]
async fn old_versions_are_readable_in_v1_and_v2() {
    let c = client();
    for flavor in [Flavor::Cloud, Flavor::Datacenter] {
        let s = demo(flavor);
        let b = s.base_url();
        let id = page_id(&c, b, "HR", "Policies").await;
        let (_, v) = get_json(
            &c,
            &format!("{b}/rest/api/content/{id}?expand=body.storage"),
        )
        .await;
        let first = v["body"]["storage"]["value"].as_str().unwrap().to_string();
        let (st, _) = put_json(
            &c,
            &format!("{b}/rest/api/content/{id}"),
            &json!({"version": {"number": 2, "message": "Shorter"}, "title": "Policies", "type": "page",
                    "body": {"storage": {"value": "<p>Be kind.</p>", "representation": "storage"}}}),
        )
        .await;
        assert_eq!(st, 200);
        let (st, v) = get_json(
            &c,
            &format!(
                "{b}/rest/api/content/{id}?status=historical&version=1&expand=body.storage,version"
            ),
        )
        .await;
        assert_eq!(st, 200, "{v}");
        assert_eq!(v["status"], "historical");
        assert_eq!(v["id"], id.as_str());
        assert_eq!(v["version"]["number"], 1);
        assert_eq!(v["body"]["storage"]["value"], first.as_str());
        let (_, v) = get_json(
            &c,
            &format!("{b}/rest/api/content/{id}?expand=body.storage,version"),
        )
        .await;
        assert_eq!(v["status"], "current");
        assert_eq!(v["body"]["storage"]["value"], "<p>Be kind.</p>");
        let list = match flavor {
            Flavor::Cloud => format!("{b}/rest/api/content/{id}/version"),
            Flavor::Datacenter => format!("{b}/rest/experimental/content/{id}/version"),
        };
        let (st, v) = get_json(&c, &list).await;
        assert_eq!(st, 200);
        let rows = v["results"].as_array().unwrap();
        assert_eq!(rows.len(), 2);
        assert_eq!(rows[0]["number"], 2);
        assert_eq!(rows[0]["message"], "Shorter");
        assert!(rows[0]["when"].is_string() && rows[0]["by"]["type"] == "known");
        if flavor == Flavor::Cloud {
            let (_, v) = get_json(&c, &format!("{b}/api/v2/pages/{id}/versions")).await;
            assert_eq!(v["results"][0]["number"], 2);
            assert_eq!(v["results"][0]["message"], "Shorter");
            assert_eq!(v["results"][1]["page"]["id"], id.as_str());
            let (st, v) = get_json(
                &c,
                &format!("{b}/api/v2/pages/{id}?version=1&body-format=storage"),
            )
            .await;
            assert_eq!(st, 200);
            assert_eq!(v["version"]["number"], 1);
            assert_eq!(v["body"]["storage"]["value"], first.as_str());
            let (st, _) = get_json(&c, &format!("{b}/api/v2/pages/{id}?version=9")).await;
            assert_eq!(st, 404);
        }
    }
}

#[tokio::test]
async fn cql_text_search_with_or_not_and_expansions() {
    let c = client();
    for flavor in [Flavor::Cloud, Flavor::Datacenter] {
        let s = demo(flavor);
        let b = s.base_url();
        let titles = |v: &Value, key: &str| -> Vec<String> {
            let mut t: Vec<String> = v["results"]
                .as_array()
                .unwrap()
                .iter()
                .map(|r| {
                    if key.is_empty() {
                        r["title"].as_str().unwrap().to_string()
                    } else {
                        r[key]["title"].as_str().unwrap().to_string()
                    }
                })
                .collect();
            t.sort();
            t
        };
        let search = |route: &str, cql: &str, extra: &str| {
            format!("{b}/rest/api/{route}?cql={}{extra}", urlencode(cql))
        };
        // Body text (the code macro's CDATA), case-insensitive, whole words.
        let (st, v) = get_json(&c, &search("search", r#"text ~ "FUSERMOUNT3""#, "")).await;
        assert_eq!(st, 200, "{v}");
        assert_eq!(titles(&v, "content"), vec!["Getting Started", "Runbooks"]);
        assert!(v["results"][0]["excerpt"].as_str().unwrap().len() > 10);
        let (_, v) = get_json(&c, &search("search", r#"text ~ "fusermount""#, "")).await;
        assert!(
            v["results"].as_array().unwrap().is_empty(),
            "whole words only"
        );
        let (_, v) = get_json(&c, &search("search", r#"text ~ "fusermount*""#, "")).await;
        assert_eq!(v["size"], 2);
        // Several words: all required; OR, NOT and parentheses.
        let (_, v) = get_json(
            &c,
            &search(
                "content/search",
                r#"type = page AND (text ~ "cache blocks" OR title ~ "Onboarding") AND NOT space = DOCS"#,
                "",
            ),
        )
        .await;
        assert_eq!(
            titles(&v, ""),
            vec!["Architecture", "Onboarding", "Storage Layer"]
        );
        // Attachment names; siteSearch; space in (…).
        let (_, v) = get_json(
            &c,
            &search("search", r#"type = attachment AND text ~ "chart""#, ""),
        )
        .await;
        assert_eq!(titles(&v, "content"), vec!["chart.png"]);
        let (_, v) = get_json(
            &c,
            &search(
                "search",
                r#"siteSearch ~ "fault injection" AND space in (HR, ENG) AND type = blogpost"#,
                "",
            ),
        )
        .await;
        assert_eq!(titles(&v, "content"), vec!["Q4 results"]);
        // Expansions of the hits.
        let (_, v) = get_json(
            &c,
            &search(
                "search",
                r#"title = "Linux""#,
                "&expand=content.ancestors,content.space",
            ),
        )
        .await;
        let hit = &v["results"][0]["content"];
        assert_eq!(hit["space"]["key"], "DOCS");
        let anc: Vec<&str> = hit["ancestors"]
            .as_array()
            .unwrap()
            .iter()
            .map(|a| a["title"].as_str().unwrap())
            .collect();
        assert_eq!(anc, vec!["DOCS Home", "Getting Started", "Installation"]);
        let (_, v) = get_json(
            &c,
            &search(
                "content/search",
                r#"type = attachment AND title = "chart.png""#,
                "&expand=ancestors,space,container",
            ),
        )
        .await;
        let hit = &v["results"][0];
        assert_eq!(hit["container"]["title"], "Benchmarks 2024");
        assert_eq!(hit["space"]["key"], "ENG");
        assert!(hit["ancestors"].as_array().unwrap().len() >= 2);
        // Paging: follow next to the end; Cloud by cursor, Data Center by start.
        for route in ["search", "content/search"] {
            let mut url = search(route, r#"text ~ "harborfs""#, "&limit=2");
            let mut seen = Vec::new();
            for _ in 0..20 {
                let (st, v) = get_json(&c, &url).await;
                assert_eq!(st, 200);
                seen.extend(titles(&v, if route == "search" { "content" } else { "" }));
                let Some(next) = v["_links"]["next"].as_str() else {
                    break;
                };
                match flavor {
                    Flavor::Cloud => assert!(next.contains("cursor="), "{next}"),
                    Flavor::Datacenter => assert!(next.contains("start="), "{next}"),
                }
                url = format!("{b}{next}");
            }
            let n = seen.len();
            seen.sort();
            seen.dedup();
            assert_eq!(seen.len(), n, "no duplicates");
            assert!(n >= 5, "{route}: {seen:?}");
        }
        if flavor == Flavor::Datacenter {
            let (_, v) = get_json(
                &c,
                &search("search", r#"text ~ "harborfs""#, "&limit=2&start=2"),
            )
            .await;
            assert_eq!(v["start"], 2);
        }
    }
}

#[tokio::test]
async fn seeded_pages_can_get_generated_or_given_bodies() {
    let c = client();
    let tree = tempfile::tempdir().unwrap();
    let t = tree.path();
    for p in 0..20 {
        std::fs::create_dir_all(t.join(format!("BENCH/page-{p:03}"))).unwrap();
    }
    write(
        &t.join("BENCH/page-000/@page.storage.xml"),
        b"<p>Given body with needle</p>",
    );
    let s = spawn(Config {
        seed_dir: Some(t.to_path_buf()),
        seed_page_bodies: true,
        ..Config::default()
    })
    .unwrap();
    let b = s.base_url();
    let (_, v) = get_json(
        &c,
        &format!("{b}/rest/api/space/BENCH/content/page?limit=100&expand=body.storage"),
    )
    .await;
    let mut sizes = Vec::new();
    for p in v["results"].as_array().unwrap() {
        let body = p["body"]["storage"]["value"].as_str().unwrap();
        match p["title"].as_str().unwrap() {
            "BENCH Home" => {}
            "page-000" => assert_eq!(body, "<p>Given body with needle</p>"),
            _ => sizes.push(body.len()),
        }
    }
    assert_eq!(sizes.len(), 19);
    assert!(sizes.iter().all(|n| (2048..8192).contains(n)), "{sizes:?}");
    sizes.sort_unstable();
    sizes.dedup();
    assert!(sizes.len() > 10, "sizes vary");
    let (_, v) = get_json(
        &c,
        &format!(
            "{b}/rest/api/search?cql={}",
            urlencode(r#"space = BENCH AND text ~ "needle""#)
        ),
    )
    .await;
    assert_eq!(v["totalSize"], 1);
    let (_, att) = get_json(
        &c,
        &format!(
            "{b}/rest/api/search?cql={}",
            urlencode("type = attachment AND space = BENCH")
        ),
    )
    .await;
    assert_eq!(att["totalSize"], 0, "the body file is not an attachment");
}
