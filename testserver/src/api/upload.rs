//! Reading an attachment upload: a `multipart/form-data` body with `file` parts, optional
//! `comment` parts and a `minorEdit` flag, the way Confluence reads it.
//!
//! File parts are streamed to `incoming/` chunk by chunk and counted, so memory stays flat
//! and an oversize upload stops as soon as it crosses the limit. Filenames are read as UTF-8
//! (including RFC 5987 `filename*=`) and reduced to their basename; text parts honour their
//! `charset` and default to ISO-8859-1, which is what double-encodes careless UTF-8 comments
//! on a real site. Unknown fields are drained and ignored.

use std::path::PathBuf;

use axum::body::Body;
use axum::http::{header, HeaderMap};
use percent_encoding::percent_decode;
use tokio::io::AsyncWriteExt;

use super::errors::ApiError;
use super::multipart::{boundary, MultipartError, MultipartReader};
use crate::blobs::BlobDir;

/// A received file part, sitting in `incoming/` until it is committed. Dropping it deletes
/// the temporary file if it was not committed.
pub(crate) struct IncomingFile {
    pub name: String,
    pub path: PathBuf,
    pub size: u64,
    pub media_type: String,
}

impl Drop for IncomingFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

pub(crate) struct Upload {
    pub files: Vec<IncomingFile>,
    pub comments: Vec<String>,
    pub minor_edit: bool,
}

impl Upload {
    pub(crate) fn comment(&self, i: usize) -> &str {
        self.comments.get(i).map(String::as_str).unwrap_or("")
    }
}

#[derive(Debug, thiserror::Error)]
pub(crate) enum UploadError {
    #[error("the attachment exceeds the maximum configured attachment size of {0} bytes")]
    TooLarge(u64),
    #[error("malformed multipart body: {0}")]
    Malformed(String),
    #[error("{0}")]
    Multipart(#[from] MultipartError),
    #[error("no file part named 'file' in the request")]
    NoFile,
    #[error("writing the upload: {0}")]
    Io(#[from] std::io::Error),
}

impl From<UploadError> for ApiError {
    fn from(e: UploadError) -> ApiError {
        match &e {
            UploadError::TooLarge(_) => ApiError::v1(
                413,
                format!("com.atlassian.confluence.api.service.exceptions.ServiceException: {e}"),
            ),
            UploadError::Io(_) => ApiError::v1(500, e.to_string()),
            UploadError::Multipart(MultipartError::NotMultipart) => {
                ApiError::v1(415, e.to_string())
            }
            _ => ApiError::v1(400, e.to_string()),
        }
    }
}

/// The parameters of a `Content-Disposition` header, read as UTF-8 bytes.
#[derive(Debug, Default, PartialEq)]
pub(crate) struct Disposition {
    pub name: Option<String>,
    pub filename: Option<String>,
}

fn unquote(v: &str) -> String {
    let v = v.trim();
    if v.len() >= 2 && v.starts_with('"') && v.ends_with('"') {
        let inner = &v[1..v.len() - 1];
        let mut out = String::with_capacity(inner.len());
        let mut chars = inner.chars();
        while let Some(c) = chars.next() {
            if c == '\\' {
                if let Some(n) = chars.next() {
                    out.push(n);
                }
            } else {
                out.push(c);
            }
        }
        out
    } else {
        v.to_string()
    }
}

/// Splits on `;` outside quotes.
fn split_params(s: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let mut in_quotes = false;
    let mut escaped = false;
    let mut start = 0;
    for (i, c) in s.char_indices() {
        match c {
            _ if escaped => escaped = false,
            '\\' if in_quotes => escaped = true,
            '"' => in_quotes = !in_quotes,
            ';' if !in_quotes => {
                out.push(&s[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    out.push(&s[start..]);
    out
}

/// RFC 5987 `charset'lang'pct-encoded`.
fn ext_value(v: &str) -> Option<String> {
    let mut parts = v.trim().splitn(3, '\'');
    let charset = parts.next()?.to_ascii_lowercase();
    let _lang = parts.next()?;
    let encoded = parts.next()?;
    let bytes: Vec<u8> = percent_decode(encoded.as_bytes()).collect();
    Some(decode_text(&bytes, Some(&charset)))
}

pub(crate) fn parse_disposition(raw: &[u8]) -> Disposition {
    let s = String::from_utf8_lossy(raw);
    let mut d = Disposition::default();
    let mut ext_filename = None;
    for part in split_params(&s).into_iter().skip(1) {
        let Some((k, v)) = part.split_once('=') else {
            continue;
        };
        match k.trim().to_ascii_lowercase().as_str() {
            "name" => d.name = Some(unquote(v)),
            "filename" => d.filename = Some(unquote(v)),
            "filename*" => ext_filename = ext_value(&unquote(v)),
            _ => {}
        }
    }
    if ext_filename.is_some() {
        d.filename = ext_filename;
    }
    d
}

/// Text in a declared charset; ISO-8859-1 when none is declared (as Confluence reads parts).
pub(crate) fn decode_text(bytes: &[u8], charset: Option<&str>) -> String {
    match charset.map(|c| c.trim().trim_matches('"').to_ascii_lowercase()) {
        Some(c) if c == "utf-8" || c == "utf8" => String::from_utf8_lossy(bytes).into_owned(),
        Some(c) if c != "iso-8859-1" && c != "latin1" && c != "us-ascii" && c != "ascii" => {
            String::from_utf8_lossy(bytes).into_owned()
        }
        _ => bytes.iter().map(|&b| b as char).collect(),
    }
}

fn charset_of(headers: &HeaderMap) -> Option<String> {
    let ct = headers.get(header::CONTENT_TYPE)?.to_str().ok()?;
    ct.split(';').skip(1).find_map(|p| {
        let (k, v) = p.split_once('=')?;
        (k.trim().eq_ignore_ascii_case("charset")).then(|| v.trim().to_string())
    })
}

/// `my/path/to/file.png` → `file.png` (both separators), as Confluence does.
pub(crate) fn basename(name: &str) -> &str {
    name.rsplit(['/', '\\']).next().unwrap_or(name)
}

pub(crate) fn guess_media_type(name: &str) -> &'static str {
    let ext = name
        .rsplit_once('.')
        .map(|(_, e)| e.to_ascii_lowercase())
        .unwrap_or_default();
    match ext.as_str() {
        "png" => "image/png",
        "jpg" | "jpeg" => "image/jpeg",
        "gif" => "image/gif",
        "svg" => "image/svg+xml",
        "pdf" => "application/pdf",
        "txt" | "log" => "text/plain",
        "csv" => "text/csv",
        "md" | "markdown" => "text/markdown",
        "json" => "application/json",
        "html" | "htm" => "text/html",
        "xml" => "application/xml",
        "zip" => "application/zip",
        "docx" => "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
        "xlsx" => "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
        "pptx" => "application/vnd.openxmlformats-officedocument.presentationml.presentation",
        _ => "application/octet-stream",
    }
}

async fn small_part(mp: &mut MultipartReader) -> Result<Vec<u8>, UploadError> {
    let mut out = Vec::new();
    while let Some(chunk) = mp.chunk().await? {
        if out.len() + chunk.len() > 1 << 20 {
            return Err(UploadError::Malformed("text part larger than 1 MiB".into()));
        }
        out.extend_from_slice(&chunk);
    }
    Ok(out)
}

async fn file_part(
    mp: &mut MultipartReader,
    headers: &HeaderMap,
    blobs: &BlobDir,
    name: String,
    max: Option<u64>,
) -> Result<IncomingFile, UploadError> {
    let media_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(|ct| ct.split(';').next().unwrap_or("").trim().to_string())
        .filter(|ct| !ct.is_empty())
        .unwrap_or_else(|| guess_media_type(&name).to_string());
    let path = blobs.incoming_path();
    let mut incoming = IncomingFile {
        name,
        path,
        size: 0,
        media_type,
    };
    let file = tokio::fs::File::create(&incoming.path).await?;
    let mut out = tokio::io::BufWriter::with_capacity(1 << 20, file);
    while let Some(chunk) = mp.chunk().await? {
        incoming.size += chunk.len() as u64;
        if let Some(limit) = max {
            if incoming.size > limit {
                return Err(UploadError::TooLarge(limit));
            }
        }
        out.write_all(&chunk).await?;
    }
    out.flush().await?;
    Ok(incoming)
}

/// Reads an upload request body: files to `incoming/`, comments decoded, flags parsed.
pub(crate) async fn read_upload(
    content_type: Option<&str>,
    body: Body,
    blobs: &BlobDir,
    max: Option<u64>,
) -> Result<Upload, UploadError> {
    let boundary = content_type
        .and_then(boundary)
        .ok_or(MultipartError::NotMultipart)?;
    let mut mp = MultipartReader::new(body, &boundary);
    let mut upload = Upload {
        files: Vec::new(),
        comments: Vec::new(),
        minor_edit: false,
    };
    while let Some(headers) = mp.next_part().await? {
        let d = headers
            .get(header::CONTENT_DISPOSITION)
            .map(|v| parse_disposition(v.as_bytes()))
            .unwrap_or_default();
        match d.name.as_deref() {
            Some("file") => {
                let raw = d.filename.clone().unwrap_or_default();
                let name = basename(&raw).to_string();
                if name.is_empty() {
                    return Err(UploadError::Malformed(
                        "file part without a file name".into(),
                    ));
                }
                upload
                    .files
                    .push(file_part(&mut mp, &headers, blobs, name, max).await?);
            }
            Some("comment") => {
                let charset = charset_of(&headers);
                let bytes = small_part(&mut mp).await?;
                upload
                    .comments
                    .push(decode_text(&bytes, charset.as_deref()));
            }
            Some("minorEdit") => {
                let bytes = small_part(&mut mp).await?;
                upload.minor_edit = String::from_utf8_lossy(&bytes)
                    .trim()
                    .eq_ignore_ascii_case("true");
            }
            _ => {
                small_part(&mut mp).await?;
            }
        }
    }
    if upload.files.is_empty() {
        return Err(UploadError::NoFile);
    }
    Ok(upload)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_plain_and_extended_filenames() {
        let d = parse_disposition(br#"form-data; name="file"; filename="a \"b\".txt""#);
        assert_eq!(d.name.as_deref(), Some("file"));
        assert_eq!(d.filename.as_deref(), Some("a \"b\".txt"));
        let d = parse_disposition(
            "form-data; name=\"file\"; filename=\"x\"; filename*=utf-8''%C3%9Cbersicht%20r%C3%A9sum%C3%A9.txt".as_bytes(),
        );
        assert_eq!(d.filename.as_deref(), Some("Übersicht résumé.txt"));
        let d = parse_disposition("form-data; name=\"file\"; filename=\"Ünïcode.txt\"".as_bytes());
        assert_eq!(d.filename.as_deref(), Some("Ünïcode.txt"));
    }

    #[test]
    fn unlabelled_text_is_latin1() {
        let utf8 = "résumé".as_bytes();
        assert_eq!(decode_text(utf8, Some("utf-8")), "résumé");
        assert_eq!(decode_text(utf8, None), "rÃ©sumÃ©");
    }

    #[test]
    fn paths_collapse_to_basename() {
        assert_eq!(basename("my/path/to/file.png"), "file.png");
        assert_eq!(basename("C:\\x\\y.txt"), "y.txt");
        assert_eq!(basename("plain"), "plain");
    }
}
