//! Write-then-rename output files.
//!
//! A quantization run can take minutes; a crash or Ctrl-C halfway must never leave a truncated
//! model where a good one (or nothing) was before. Output goes to a hidden temp file in the
//! destination's own directory (rename is only atomic within one filesystem) and is renamed into
//! place after an fsync. Dropping an [`AtomicFile`] without [`AtomicFile::commit`] deletes it.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use tempfile::NamedTempFile;

use crate::error::{FileError, Result};

/// Temporary outputs still being written, so a signal handler can delete them: destructors do
/// not run when the process is killed by Ctrl-C.
static UNFINISHED: Mutex<Vec<PathBuf>> = Mutex::new(Vec::new());

/// Registers a temporary file or folder as unfinished until the guard drops.
pub struct UnfinishedGuard(PathBuf);

impl UnfinishedGuard {
    pub fn new(path: &Path) -> UnfinishedGuard {
        if let Ok(mut v) = UNFINISHED.lock() {
            v.push(path.to_owned());
        }
        UnfinishedGuard(path.to_owned())
    }
}

impl Drop for UnfinishedGuard {
    fn drop(&mut self) {
        if let Ok(mut v) = UNFINISHED.lock() {
            v.retain(|p| p != &self.0);
        }
    }
}

/// Deletes every temporary output still being written. Call it from a SIGINT/SIGTERM handler
/// just before exiting; the final outputs were never created, so nothing else is left behind.
pub fn remove_unfinished_outputs() {
    let paths = match UNFINISHED.lock() {
        Ok(mut v) => std::mem::take(&mut *v),
        Err(_) => return,
    };
    for p in paths {
        if p.is_dir() {
            let _ = std::fs::remove_dir_all(&p);
        } else {
            let _ = std::fs::remove_file(&p);
        }
    }
}

pub struct AtomicFile {
    path: PathBuf,
    out: BufWriter<NamedTempFile>,
    written: u64,
    _unfinished: UnfinishedGuard,
}

impl AtomicFile {
    pub fn create(path: &Path) -> Result<AtomicFile> {
        let dir = match path.parent() {
            Some(p) if !p.as_os_str().is_empty() => p,
            _ => Path::new("."),
        };
        let stem = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let prefix = format!(".{stem}.");
        let mut builder = tempfile::Builder::new();
        builder.prefix(&prefix).suffix(".tmp");
        // tempfile defaults to 0600; a model file should get the usual umask-filtered mode.
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            builder.permissions(std::fs::Permissions::from_mode(0o666));
        }
        let tmp = builder
            .tempfile_in(dir)
            .map_err(|e| FileError::io(path, "creating temporary file", e))?;
        let guard = UnfinishedGuard::new(tmp.path());
        Ok(AtomicFile {
            path: path.to_owned(),
            out: BufWriter::with_capacity(1 << 20, tmp),
            written: 0,
            _unfinished: guard,
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Bytes written so far, i.e. the current file offset.
    pub fn position(&self) -> u64 {
        self.written
    }

    pub fn write_all(&mut self, bytes: &[u8]) -> Result<()> {
        self.out
            .write_all(bytes)
            .map_err(|e| FileError::io(&self.path, "writing", e))?;
        self.written += bytes.len() as u64;
        Ok(())
    }

    /// Zero-pads up to the next multiple of `align`.
    pub fn pad_to(&mut self, align: u64) -> Result<()> {
        const ZEROS: [u8; 64] = [0; 64];
        let mut pad = (align - self.written % align) % align;
        while pad > 0 {
            let n = pad.min(ZEROS.len() as u64) as usize;
            self.write_all(&ZEROS[..n])?;
            pad -= n as u64;
        }
        Ok(())
    }

    /// Flushes, fsyncs and renames into place, then fsyncs the directory so the rename itself
    /// survives a power cut.
    pub fn commit(self) -> Result<()> {
        let path = self.path;
        let tmp = self
            .out
            .into_inner()
            .map_err(|e| FileError::io(&path, "flushing", e.into_error()))?;
        tmp.as_file()
            .sync_all()
            .map_err(|e| FileError::io(&path, "syncing", e))?;
        tmp.persist(&path)
            .map_err(|e| FileError::io(&path, "renaming temporary file into place", e.error))?;
        if let Some(dir) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            // Directory fsync is best effort: some filesystems refuse it, and the data is already
            // safely in place.
            if let Ok(d) = File::open(dir) {
                let _ = d.sync_all();
            }
        }
        Ok(())
    }
}

/// Whether two paths name the same existing file, so a writer can refuse to overwrite an input
/// that is still memory-mapped (truncating a mapped file makes later reads fault).
pub fn same_file(a: &Path, b: &Path) -> bool {
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt;
        if let (Ok(ma), Ok(mb)) = (std::fs::metadata(a), std::fs::metadata(b)) {
            return ma.dev() == mb.dev() && ma.ino() == mb.ino();
        }
        false
    }
    #[cfg(not(unix))]
    {
        match (std::fs::canonicalize(a), std::fs::canonicalize(b)) {
            (Ok(ca), Ok(cb)) => ca == cb,
            _ => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commit_replaces_and_drop_leaves_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("out.bin");
        let mut f = AtomicFile::create(&p).unwrap();
        f.write_all(b"abc").unwrap();
        f.pad_to(8).unwrap();
        assert_eq!(f.position(), 8);
        f.commit().unwrap();
        assert_eq!(std::fs::read(&p).unwrap(), b"abc\0\0\0\0\0");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&p).unwrap().permissions().mode();
            assert_ne!(
                mode & 0o044,
                0,
                "output must not be private to the owner: {mode:o}"
            );
        }

        let mut f = AtomicFile::create(&p).unwrap();
        f.write_all(b"zzz").unwrap();
        drop(f);
        assert_eq!(
            std::fs::read(&p).unwrap(),
            b"abc\0\0\0\0\0",
            "unfinished write must not clobber"
        );
        assert_eq!(
            std::fs::read_dir(dir.path()).unwrap().count(),
            1,
            "temp file must be removed"
        );
    }

    #[test]
    fn same_file_sees_links_and_differences() {
        let dir = tempfile::tempdir().unwrap();
        let a = dir.path().join("a");
        let b = dir.path().join("b");
        std::fs::write(&a, b"x").unwrap();
        std::fs::write(&b, b"x").unwrap();
        assert!(same_file(&a, &dir.path().join(".").join("a")));
        assert!(!same_file(&a, &b));
        assert!(!same_file(&a, &dir.path().join("missing")));
        #[cfg(unix)]
        {
            let l = dir.path().join("l");
            std::os::unix::fs::symlink(&a, &l).unwrap();
            assert!(same_file(&a, &l));
        }
    }
}
