//! Which file names are an application's scratch files, kept local instead of uploaded.
//!
//! Editors and sync tools save by writing a temporary file and renaming it over the target
//! (docs/FUSE-NOTES.md §4). Uploading those temporaries would leave stray attachments on the server
//! and a version per save attempt, so a file whose name matches one of the patterns below
//! lives only on this machine: it can be written, read, renamed and deleted, and reaches
//! Confluence only when it is renamed to an ordinary name — as the target's new version.
//! The patterns are the ones the common tools really use; docs/SEMANTICS.md lists them (Scratch files stay local).

/// Whether `name` is a scratch file of a known tool.
pub fn is_temporary(name: &str) -> bool {
    rsync_temp(name)
        || name.starts_with(".goutputstream-")
        || vim_file(name)
        || name.starts_with(".~lock.")
        || name.starts_with(".fuse_hidden")
        || (name.starts_with('#') && name.ends_with('#') && name.len() > 2)
        || name.starts_with(".#")
        || sqlite_side_file(name)
        || (name.starts_with("~$") && name.len() > 2)
        || sed_temp(name)
}

/// GNU `sed -i`'s `sedXXXXXX` in the file's directory: six random letters or digits, taken
/// as random (like rsync's) unless all lowercase.
fn sed_temp(name: &str) -> bool {
    name.strip_prefix("sed").is_some_and(|suffix| {
        suffix.len() == 6
            && suffix.bytes().all(|b| b.is_ascii_alphanumeric())
            && !suffix.bytes().all(|b| b.is_ascii_lowercase())
    })
}

/// sqlite's rollback journal and write-ahead log beside a database (`app.db-journal`,
/// `app.db-wal`, `app.db-shm`): rewritten on every transaction and deleted or reset after it,
/// they are the database's working state on this machine, not documents.
fn sqlite_side_file(name: &str) -> bool {
    ["-journal", "-wal", "-shm"]
        .iter()
        .any(|suffix| name.len() > suffix.len() && name.ends_with(suffix))
}

/// rsync's `.NAME.XXXXXX`: six random letters or digits after the last dot. A suffix of
/// lowercase letters only (`.bashrc.backup`) is taken for a real name: rsync's random suffix
/// is all-lowercase only once in ~200 files, and then the save still ends right (as an
/// upload and a rename), just with one extra version.
fn rsync_temp(name: &str) -> bool {
    let Some(rest) = name.strip_prefix('.') else {
        return false;
    };
    match rest.rsplit_once('.') {
        Some((stem, suffix)) => {
            !stem.is_empty()
                && suffix.len() == 6
                && suffix.bytes().all(|b| b.is_ascii_alphanumeric())
                && !suffix.bytes().all(|b| b.is_ascii_lowercase())
        }
        None => false,
    }
}

/// vim's write probe (`4913`, then steps of 123), backups (`NAME~`) and swap files
/// (`.NAME.swp`, `.swo`, … `.swa`, and `.swx`).
fn vim_file(name: &str) -> bool {
    if name.ends_with('~') && name.len() > 1 {
        return true;
    }
    if let Ok(n) = name.parse::<u32>() {
        if n >= 4913 && (n - 4913) % 123 == 0 && n < 4913 + 123 * 100 {
            return true;
        }
    }
    if let Some(rest) = name.strip_prefix('.') {
        if let Some((stem, ext)) = rest.rsplit_once('.') {
            let ext = ext.as_bytes();
            return !stem.is_empty()
                && ext.len() == 3
                && ext[0] == b's'
                && ext[1] == b'w'
                && (ext[2].is_ascii_lowercase());
        }
    }
    false
}

#[cfg(test)]
mod tests {
    use super::is_temporary;

    #[test]
    fn the_tools_scratch_files_are_temporary() {
        for name in [
            ".report.pdf.eX79VB",
            ".r.txt.A1b2C3",
            ".goutputstream-ABC123",
            "4913",
            "5036",
            "notes.txt~",
            ".notes.txt.swp",
            ".notes.txt.swx",
            ".notes.txt.swo",
            ".~lock.budget.ods#",
            ".fuse_hidden0000000a00000001",
            "#draft.org#",
            ".#draft.org",
            "app.db-journal",
            "app.db-wal",
            "app.db-shm",
            "~$budget.docx",
        ] {
            assert!(is_temporary(name), "{name}");
        }
    }

    #[test]
    fn ordinary_names_are_not() {
        for name in [
            "report.pdf",
            ".hidden",
            ".bashrc",
            ".config.backup",
            ".bashrc.origin",
            ".tar.gz",
            "4912",
            "4914",
            "~",
            "a.swp",
            ".swp",
            "notes.txt",
            "#",
            "data.123456",
            ".report.pdf.toolong7",
            ".report.pdf.sh-rt",
            "-journal",
            "app.db",
            "~$",
            "budget~draft.docx",
        ] {
            assert!(!is_temporary(name), "{name}");
        }
    }
}
