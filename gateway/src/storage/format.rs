//! The storage format of a data directory, kept in a small text file beside RocksDB's own
//! (`perdure-format`), so that it can be read before RocksDB opens anything: a perdure that
//! finds a newer format refuses the directory without writing a byte to it.
//!
//! | format | written by | layout |
//! |---|---|---|
//! | 1 | perdure up to commit 3d2a799 (no format file) | a column family per table, records in postcard |
//! | 2 | perdure of 2026-12-02 (commits 4cf9f9c to 9f2c24b) | a column family per table per partition (`pN-invocation`, …, `pN-log`), tagged keys, records in `pack` with field counts |
//! | 3 | perdure of 2026-12-04 to 2026-12-06 (up to commit 9e3a63f) | format 2 plus each partition's drain counters and pinned index (`pN-pinned`); records gain fields (pin revision, terminal failures, settings from the revision started on) |
//! | 4 | this perdure | format 3; records gain trace contexts (invocations, new invocations, calls) |
//!
//! Older formats are upgraded in place at open by [`super::upgrade`].

use std::io::Write as _;
use std::path::Path;

use super::StorageError;

/// The format this build writes.
pub const CURRENT: u32 = 4;
/// The oldest format this build can upgrade.
pub const OLDEST: u32 = 1;

pub const FILE: &str = "perdure-format";

/// What a data directory holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Found {
    /// Nothing yet.
    Empty,
    Format(u32),
}

/// Reads the format of the data directory at `dir` without touching it.
pub fn read(dir: &Path) -> Result<Found, StorageError> {
    let path = dir.join(FILE);
    match std::fs::read_to_string(&path) {
        Ok(text) => {
            let version = text
                .lines()
                .find_map(|l| l.strip_prefix("format ").map(str::trim).map(str::to_owned))
                .and_then(|v| v.parse::<u32>().ok())
                .ok_or_else(|| StorageError::DataDir {
                    path: path.clone(),
                    reason: format!("unreadable storage format file (expected a line 'format N'): {text:?}"),
                })?;
            Ok(Found::Format(version))
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            // Format 1 had no format file; its RocksDB files are there all the same.
            if dir.join("CURRENT").exists() { Ok(Found::Format(1)) } else { Ok(Found::Empty) }
        }
        Err(e) => Err(StorageError::DataDir { path, reason: e.to_string() }),
    }
}

/// Refuses formats this build cannot read.
pub fn check(dir: &Path, found: Found) -> Result<(), StorageError> {
    match found {
        Found::Format(v) if v > CURRENT => Err(StorageError::NewerFormat { path: dir.to_owned(), found: v }),
        Found::Format(v) if v < OLDEST => Err(StorageError::DataDir {
            path: dir.to_owned(),
            reason: format!(
                "storage format {v} is older than any this perdure can upgrade (formats {OLDEST} to {CURRENT})"
            ),
        }),
        _ => Ok(()),
    }
}

/// Records `version` durably: a temporary file, fsynced, renamed over the old one, and the
/// directory fsynced.
pub fn write(dir: &Path, version: u32) -> Result<(), StorageError> {
    let io = |e: std::io::Error| StorageError::DataDir { path: dir.join(FILE), reason: e.to_string() };
    let tmp = dir.join(format!("{FILE}.tmp"));
    let mut f = std::fs::File::create(&tmp).map_err(io)?;
    writeln!(f, "perdure data directory: do not edit").map_err(io)?;
    writeln!(f, "format {version}").map_err(io)?;
    f.sync_all().map_err(io)?;
    drop(f);
    std::fs::rename(&tmp, dir.join(FILE)).map_err(io)?;
    std::fs::File::open(dir).and_then(|d| d.sync_all()).map_err(io)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_what_it_writes_and_refuses_newer_formats() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(read(dir.path()).unwrap(), Found::Empty);
        std::fs::write(dir.path().join("CURRENT"), "MANIFEST-000001\n").unwrap();
        assert_eq!(read(dir.path()).unwrap(), Found::Format(1), "RocksDB files without a format file are format 1");
        write(dir.path(), CURRENT).unwrap();
        assert_eq!(read(dir.path()).unwrap(), Found::Format(CURRENT));
        check(dir.path(), Found::Format(CURRENT)).unwrap();
        let err = check(dir.path(), Found::Format(CURRENT + 1)).unwrap_err().to_string();
        assert!(err.contains(&format!("format {}", CURRENT + 1)) && err.contains(&format!("{CURRENT}")), "{err}");
        std::fs::write(dir.path().join(FILE), "garbage").unwrap();
        assert!(read(dir.path()).is_err());
    }
}
