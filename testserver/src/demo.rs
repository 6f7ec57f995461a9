//! The built-in demo site (`--demo`), generated deterministically in code.
//!
//! Three spaces with pages nested up to three deep, real (tiny but valid) PNG images and PDF
//! documents, text/CSV/markdown files, a blog post with an attachment, a file with three
//! versions, content properties on attachments and a page, a non-ASCII filename and a page
//! title containing '/'. Everything — ids, file ids, times, bytes — is the same on every run,
//! so screenshots and recorded demos stay stable.

use std::io;

use crate::blobs::{uuid_from_bytes, BlobDir};
use crate::clock;
use crate::config::Flavor;
use crate::demo_pages as pages;
use crate::model::{Blob, ContentKind, FileVersion};
use crate::store::{Store, StoreError};

fn err(e: StoreError) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, e.to_string())
}

fn crc32(data: &[u8]) -> u32 {
    let mut crc = 0xffff_ffffu32;
    for &b in data {
        crc ^= b as u32;
        for _ in 0..8 {
            crc = if crc & 1 != 0 {
                (crc >> 1) ^ 0xedb8_8320
            } else {
                crc >> 1
            };
        }
    }
    !crc
}

fn adler32(data: &[u8]) -> u32 {
    let (mut a, mut b) = (1u32, 0u32);
    for &x in data {
        a = (a + x as u32) % 65_521;
        b = (b + a) % 65_521;
    }
    (b << 16) | a
}

fn png_chunk(out: &mut Vec<u8>, kind: &[u8; 4], data: &[u8]) {
    out.extend_from_slice(&(data.len() as u32).to_be_bytes());
    let mut body = kind.to_vec();
    body.extend_from_slice(data);
    out.extend_from_slice(&body);
    out.extend_from_slice(&crc32(&body).to_be_bytes());
}

/// A valid RGB PNG of a two-colour gradient, stored (uncompressed) deflate.
pub(crate) fn png(width: u32, height: u32, from: [u8; 3], to: [u8; 3]) -> Vec<u8> {
    let mut raw = Vec::new();
    for y in 0..height {
        raw.push(0); // filter: none
        for x in 0..width {
            let t = (x + y) as f32 / (width + height).max(1) as f32;
            for c in 0..3 {
                let v = from[c] as f32 + (to[c] as f32 - from[c] as f32) * t;
                raw.push(v as u8);
            }
        }
    }
    let mut z = vec![0x78, 0x01];
    let chunks: Vec<&[u8]> = raw.chunks(65_535).collect();
    for (i, block) in chunks.iter().enumerate() {
        z.push(u8::from(i + 1 == chunks.len()));
        let len = block.len() as u16;
        z.extend_from_slice(&len.to_le_bytes());
        z.extend_from_slice(&(!len).to_le_bytes());
        z.extend_from_slice(block);
    }
    z.extend_from_slice(&adler32(&raw).to_be_bytes());
    let mut ihdr = Vec::new();
    ihdr.extend_from_slice(&width.to_be_bytes());
    ihdr.extend_from_slice(&height.to_be_bytes());
    ihdr.extend_from_slice(&[8, 2, 0, 0, 0]);
    let mut out = vec![0x89, b'P', b'N', b'G', 0x0d, 0x0a, 0x1a, 0x0a];
    png_chunk(&mut out, b"IHDR", &ihdr);
    png_chunk(&mut out, b"IDAT", &z);
    png_chunk(&mut out, b"IEND", &[]);
    out
}

/// A valid one-page PDF showing `lines` of text, with a correct xref table.
pub(crate) fn pdf(lines: &[&str]) -> Vec<u8> {
    let escape = |s: &str| {
        s.replace('\\', "\\\\")
            .replace('(', "\\(")
            .replace(')', "\\)")
    };
    let mut text = String::from("BT /F1 18 Tf 72 720 Td 22 TL\n");
    for l in lines {
        text.push_str(&format!("({}) Tj T*\n", escape(l)));
    }
    text.push_str("ET");
    let objects = [
        "<< /Type /Catalog /Pages 2 0 R >>".to_string(),
        "<< /Type /Pages /Kids [3 0 R] /Count 1 >>".to_string(),
        "<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R /Resources << /Font << /F1 5 0 R >> >> >>".to_string(),
        format!("<< /Length {} >>\nstream\n{text}\nendstream", text.len()),
        "<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>".to_string(),
    ];
    let mut out = b"%PDF-1.4\n".to_vec();
    let mut offsets = Vec::new();
    for (i, o) in objects.iter().enumerate() {
        offsets.push(out.len());
        out.extend_from_slice(format!("{} 0 obj\n{o}\nendobj\n", i + 1).as_bytes());
    }
    let xref = out.len();
    out.extend_from_slice(
        format!("xref\n0 {}\n0000000000 65535 f \n", objects.len() + 1).as_bytes(),
    );
    for off in offsets {
        out.extend_from_slice(format!("{off:010} 00000 n \n").as_bytes());
    }
    out.extend_from_slice(
        format!(
            "trailer\n<< /Size {} /Root 1 0 R >>\nstartxref\n{xref}\n%%EOF\n",
            objects.len() + 1
        )
        .as_bytes(),
    );
    out
}

struct Builder<'a> {
    store: &'a mut Store,
    blobs: &'a BlobDir,
    seq: u64,
}

/// 2024-01-15T10:30:00.000Z: every demo time is an offset from this.
fn t0() -> i64 {
    clock::days_from_civil(2024, 1, 15) * 86_400_000 + 10 * 3_600_000 + 30 * 60_000
}

const HOUR: i64 = 3_600_000;

impl Builder<'_> {
    fn file_id(&mut self) -> String {
        // SplitMix64: deterministic, well-spread ids.
        self.seq = self.seq.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.seq;
        let mut next = || {
            z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
            z ^ (z >> 31)
        };
        let mut b = [0u8; 16];
        b[..8].copy_from_slice(&next().to_le_bytes());
        b[8..].copy_from_slice(&next().to_le_bytes());
        uuid_from_bytes(b)
    }

    fn stored(&mut self, name: &str, bytes: &[u8]) -> io::Result<FileVersion> {
        let file_id = self.file_id();
        self.blobs.write(&file_id, bytes)?;
        Ok(FileVersion {
            file_id,
            size: bytes.len() as u64,
            media_type: crate::api::upload::guess_media_type(name).to_string(),
            blob: Blob::Stored,
        })
    }

    fn page(
        &mut self,
        space: &str,
        title: &str,
        parent: u64,
        body: String,
        when: i64,
    ) -> io::Result<u64> {
        self.store
            .create_content(ContentKind::Page, space, title, Some(parent), body, when)
            .map_err(err)
    }

    fn attach(&mut self, container: u64, name: &str, bytes: &[u8], when: i64) -> io::Result<u64> {
        let f = self.stored(name, bytes)?;
        self.store
            .add_attachment(container, name, f, "", false, when)
            .map_err(err)
    }

    fn prop(&mut self, id: u64, key: &str, value: serde_json::Value) -> io::Result<()> {
        self.store
            .put_property(id, key, value, 1, false, t0())
            .map(|_| ())
            .map_err(err)
    }
}

pub(crate) fn load(store: &mut Store, blobs: &BlobDir, flavor: Flavor) -> io::Result<()> {
    let who = pages::Who::new(flavor);
    let mut b = Builder {
        store,
        blobs,
        seq: 0x00c0_ffee,
    };
    let t = t0();
    let docs = b
        .store
        .create_space("DOCS", "Documentation", t)
        .map_err(err)?;
    let eng = b.store.create_space("ENG", "Engineering", t).map_err(err)?;
    let hr = b
        .store
        .create_space("HR", "Human Resources", t)
        .map_err(err)?;
    for (home, body) in [
        (docs, pages::docs_home(&who)),
        (eng, pages::eng_home()),
        (hr, pages::hr_home()),
    ] {
        b.store.set_initial_body(home, body).map_err(err)?;
    }

    // DOCS
    b.attach(
        docs,
        "welcome.txt",
        b"Welcome to the documentation space.\n",
        t,
    )?;
    let start = b.page(
        "DOCS",
        "Getting Started",
        docs,
        pages::getting_started(&who),
        t + HOUR,
    )?;
    b.attach(
        start,
        "logo.png",
        &png(64, 64, [0, 82, 204], [101, 186, 67]),
        t + HOUR,
    )?;
    let guide = b.attach(
        start,
        "guide.pdf",
        &pdf(&[
            "confluencefs demo guide",
            "Mount Confluence as a filesystem.",
        ]),
        t + HOUR,
    )?;
    b.attach(
        start,
        "checklist.md",
        b"# Checklist\n\n- [x] Install\n- [ ] Mount\n- [ ] Enjoy\n",
        t + HOUR,
    )?;
    b.attach(
        start,
        "Übersicht – résumé.txt",
        "Ein Dateiname mit Umlauten und einem Gedankenstrich.\n".as_bytes(),
        t + HOUR,
    )?;
    let changelog = b.attach(
        start,
        "changelog.md",
        b"# Changelog\n\n## 1.0\n- First release\n",
        t + 2 * HOUR,
    )?;
    for (i, text) in [
        "# Changelog\n\n## 1.1\n- Faster listings\n\n## 1.0\n- First release\n",
        "# Changelog\n\n## 1.2\n- Extended attributes\n\n## 1.1\n- Faster listings\n\n## 1.0\n- First release\n",
    ]
    .iter()
    .enumerate()
    {
        let f = b.stored("changelog.md", text.as_bytes())?;
        b.store
            .add_attachment_version(
                changelog,
                f,
                &format!("Release 1.{}", i + 1),
                false,
                t + (i as i64 + 1) * 24 * HOUR,
            )
            .map_err(err)?;
    }
    b.prop(
        start,
        "confluencefs.demo",
        serde_json::json!({"reviewed": true, "owner": "docs-team"}),
    )?;
    b.prop(guide, "classification", serde_json::json!("public"))?;
    b.prop(guide, "reviewers", serde_json::json!(["ann", "bob"]))?;
    let install = b.page(
        "DOCS",
        "Installation",
        start,
        pages::installation(),
        t + 3 * HOUR,
    )?;
    b.attach(
        install,
        "install-steps.txt",
        b"1. Download\n2. Install\n3. Mount\n",
        t + 3 * HOUR,
    )?;
    b.attach(
        install,
        "screenshot.png",
        &png(48, 32, [240, 240, 240], [30, 30, 30]),
        t + 3 * HOUR,
    )?;
    let linux = b.page("DOCS", "Linux", install, pages::linux(), t + 4 * HOUR)?;
    b.attach(
        linux,
        "packages.csv",
        b"distro,package,version\ndebian,fuse3,3.14\nfedora,fuse3,3.16\n",
        t + 4 * HOUR,
    )?;
    let faq = b.page(
        "DOCS",
        "Install / Upgrade FAQ",
        start,
        pages::faq(),
        t + 5 * HOUR,
    )?;
    b.attach(
        faq,
        "faq.md",
        b"# FAQ\n\n**Q:** Does it work?\n**A:** Yes.\n",
        t + 5 * HOUR,
    )?;

    // ENG
    let arch = b.page(
        "ENG",
        "Architecture",
        eng,
        pages::architecture(&who),
        t + 6 * HOUR,
    )?;
    let diagram = b.attach(
        arch,
        "diagram.png",
        &png(96, 64, [23, 43, 77], [0, 184, 217]),
        t + 6 * HOUR,
    )?;
    b.prop(
        diagram,
        "source",
        serde_json::json!({"tool": "demo", "editable": false}),
    )?;
    b.attach(
        arch,
        "design.pdf",
        &pdf(&["Design", "Layers: cli, fuse, fs, cache, client"]),
        t + 6 * HOUR,
    )?;
    let storage = b.page(
        "ENG",
        "Storage Layer",
        arch,
        pages::storage_layer(),
        t + 7 * HOUR,
    )?;
    b.attach(
        storage,
        "benchmarks.csv",
        b"case,mb_per_s\nsequential read,820\nrandom read,310\n",
        t + 7 * HOUR,
    )?;
    let bench = b.page(
        "ENG",
        "Benchmarks 2024",
        storage,
        pages::benchmarks(),
        t + 8 * HOUR,
    )?;
    b.attach(
        bench,
        "results.csv",
        b"run,seconds\n1,1.21\n2,1.19\n3,1.24\n",
        t + 8 * HOUR,
    )?;
    b.attach(
        bench,
        "chart.png",
        &png(80, 40, [255, 171, 0], [222, 53, 11]),
        t + 8 * HOUR,
    )?;
    let runbooks = b.page("ENG", "Runbooks", eng, pages::runbooks(&who), t + 9 * HOUR)?;
    b.attach(
        runbooks,
        "oncall.md",
        b"# On-call\n\nPage the storage team first.\n",
        t + 9 * HOUR,
    )?;
    let post = b
        .store
        .create_content(
            ContentKind::Blogpost,
            "ENG",
            "Q4 results",
            None,
            pages::q4_results(&who),
            t,
        )
        .map_err(err)?;
    b.attach(
        post,
        "slides.pdf",
        &pdf(&["Q4 results", "Everything is up and to the right."]),
        t,
    )?;

    // HR
    let policies = b.page("HR", "Policies", hr, pages::policies(), t + 10 * HOUR)?;
    b.attach(
        policies,
        "handbook.pdf",
        &pdf(&["Employee handbook", "Be kind."]),
        t + 10 * HOUR,
    )?;
    b.attach(
        policies,
        "holidays.csv",
        b"date,name\n2024-01-01,New Year\n2024-12-25,Christmas\n",
        t + 10 * HOUR,
    )?;
    let onboarding = b.page(
        "HR",
        "Onboarding",
        hr,
        pages::onboarding(&who),
        t + 11 * HOUR,
    )?;
    b.attach(
        onboarding,
        "welcome-letter.txt",
        b"Dear new colleague, welcome!\n",
        t + 11 * HOUR,
    )?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn png_has_signature_and_valid_crc() {
        let p = png(4, 4, [0, 0, 0], [255, 255, 255]);
        assert_eq!(&p[..8], &[0x89, b'P', b'N', b'G', 0x0d, 0x0a, 0x1a, 0x0a]);
        // IHDR chunk CRC covers type + data (bytes 12..29), stored at 29..33.
        let crc = u32::from_be_bytes([p[29], p[30], p[31], p[32]]);
        assert_eq!(crc, crc32(&p[12..29]));
        assert_eq!(crc32(b"123456789"), 0xcbf4_3926);
    }

    #[test]
    fn pdf_xref_points_at_objects() {
        let p = pdf(&["hello (world)"]);
        let s = String::from_utf8(p.clone()).unwrap();
        let startxref: usize = s
            .rsplit("startxref\n")
            .next()
            .unwrap()
            .lines()
            .next()
            .unwrap()
            .parse()
            .unwrap();
        assert!(s[startxref..].starts_with("xref"));
        let first = s[startxref..].lines().nth(3).unwrap();
        let off: usize = first[..10].parse().unwrap();
        assert!(s[off..].starts_with("1 0 obj"));
    }
}
