//! Reading a local file into upload chunks with one copy.
//!
//! An upload body read through `tokio::fs::File` costs two copies per byte before the socket:
//! the kernel's into tokio's own buffer (on a blocking thread), then that buffer into ours; and
//! each 256 KiB read was a hop to a blocking thread and back. Measured while a 1 GiB file was
//! uploaded, the copy between the two buffers was 14 % of the mount's CPU and the task
//! switches 6 %. Here each chunk is read by `pread(2)` straight into memory that becomes the
//! chunk (not zeroed first), 1 MiB at a time, and the next chunk is read while the current one
//! is sent. The disk cache reads its blocks with the same function ([`read_at_most`]).

use std::fs::File;
use std::io;
use std::os::fd::AsRawFd;
use std::sync::Arc;

use bytes::Bytes;
use futures_util::stream::{self, Stream, StreamExt};

/// Bytes per chunk of an upload body.
pub(crate) const CHUNK: u64 = 1 << 20;

/// Chunks read at once ahead of the one being sent.
const AHEAD: usize = 2;

/// Up to `len` bytes at `offset`: fewer only where the file ends. Read into memory that is not
/// zeroed first (zeroing would cost a pass over every byte). Blocking.
pub(crate) fn read_at_most(file: &File, offset: u64, len: usize) -> io::Result<Vec<u8>> {
    let mut data: Vec<u8> = Vec::with_capacity(len);
    while data.len() < len {
        let filled = data.len();
        let at = libc::off_t::try_from(offset + filled as u64)
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?;
        // SAFETY: the destination is the vector's spare capacity past `filled`, at least
        // `len - filled` bytes, which pread writes at most.
        let n = unsafe {
            libc::pread(
                file.as_raw_fd(),
                data.as_mut_ptr().add(filled).cast(),
                len - filled,
                at,
            )
        };
        if n < 0 {
            let e = io::Error::last_os_error();
            if e.kind() == io::ErrorKind::Interrupted {
                continue;
            }
            return Err(e);
        }
        if n == 0 {
            break;
        }
        // SAFETY: pread initialised the `n` bytes past `filled`.
        unsafe { data.set_len(filled + n as usize) };
    }
    Ok(data)
}

/// [`read_at_most`] on a blocking thread.
pub(crate) async fn read_chunk(file: Arc<File>, offset: u64, len: usize) -> io::Result<Bytes> {
    tokio::task::spawn_blocking(move || read_at_most(&file, offset, len).map(Bytes::from))
        .await
        .map_err(io::Error::other)?
}

/// The `len` bytes of `file` from the start, in chunks, for a body declared `len` long. A file
/// that turns out shorter ends the stream early and one that turns out longer ends it in an
/// error: either way the body is not what was declared, and the request fails rather than
/// sending something else than the file.
pub(crate) fn chunks(file: File, len: u64) -> impl Stream<Item = io::Result<Bytes>> + Send {
    let file = Arc::new(file);
    // One byte more than the file should have in the last chunk: if it is there, the file grew.
    let offsets = (0..=len / CHUNK).map(move |k| {
        let offset = k * CHUNK;
        let want = (len - offset).min(CHUNK) + u64::from(offset + CHUNK > len);
        (offset, want)
    });
    stream::iter(offsets)
        .map(move |(offset, want)| {
            let file = file.clone();
            async move {
                let chunk = read_chunk(file, offset, want as usize).await?;
                if offset + chunk.len() as u64 > len {
                    return Err(io::Error::other(format!(
                        "the file grew past the {len} bytes being sent"
                    )));
                }
                Ok(chunk)
            }
        })
        .buffered(AHEAD)
        .filter(|chunk| std::future::ready(!matches!(chunk, Ok(c) if c.is_empty())))
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures_util::TryStreamExt;
    use std::io::Write;

    fn file_of(bytes: &[u8]) -> (tempfile::NamedTempFile, File) {
        let mut tmp = tempfile::NamedTempFile::new().unwrap();
        tmp.write_all(bytes).unwrap();
        let file = File::open(tmp.path()).unwrap();
        (tmp, file)
    }

    #[tokio::test]
    async fn a_file_comes_out_whole_in_chunks_of_its_size() {
        for len in [0u64, 1, CHUNK - 1, CHUNK, CHUNK + 1, 3 * CHUNK + 17] {
            let bytes: Vec<u8> = (0..len).map(|i| (i % 251) as u8).collect();
            let (_tmp, file) = file_of(&bytes);
            let got: Vec<Bytes> = chunks(file, len).try_collect().await.unwrap();
            assert!(got.iter().all(|c| !c.is_empty() && c.len() as u64 <= CHUNK));
            assert_eq!(got.concat(), bytes, "len {len}");
        }
    }

    #[tokio::test]
    async fn a_file_shorter_or_longer_than_declared_is_not_sent_as_declared() {
        let bytes = vec![7u8; (2 * CHUNK + 5) as usize];
        let (_tmp, file) = file_of(&bytes);
        let got: Vec<Bytes> = chunks(file, 3 * CHUNK).try_collect().await.unwrap();
        assert_eq!(
            got.concat().len() as u64,
            2 * CHUNK + 5,
            "ends where the file does"
        );

        for declared in [2 * CHUNK + 4, 2 * CHUNK, CHUNK + 3] {
            let (_tmp, file) = file_of(&bytes);
            let result: io::Result<Vec<Bytes>> = chunks(file, declared).try_collect().await;
            assert!(
                result.is_err(),
                "declared {declared}: {:?}",
                result.map(|c| c.len())
            );
        }
    }

    #[test]
    fn read_at_most_stops_at_the_end_of_the_file() {
        let (_tmp, file) = file_of(b"0123456789");
        assert_eq!(read_at_most(&file, 2, 4).unwrap(), b"2345");
        assert_eq!(read_at_most(&file, 8, 4).unwrap(), b"89");
        assert!(read_at_most(&file, 12, 4).unwrap().is_empty());
    }
}
