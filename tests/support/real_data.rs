//! Where the real models and WikiText-2 are, for the integration tests of every crate (included
//! with `#[path]`). A missing one fails the test — CI fetches the models, so absence is a broken
//! setup, not a pass — unless `LOWBIT_OFFLINE=1` says this machine cannot fetch them, in which
//! case the test is skipped with a note.
#![allow(dead_code)]

use std::path::{Path, PathBuf};

/// `$LOWBIT_MODELS`, else `~/.cache/lowbit/models` (scripts/fetch-models.sh's cache).
pub fn models_dir() -> PathBuf {
    match std::env::var_os("LOWBIT_MODELS") {
        Some(d) => PathBuf::from(d),
        None => {
            PathBuf::from(std::env::var_os("HOME").unwrap_or_default()).join(".cache/lowbit/models")
        }
    }
}

/// `p` when it exists; otherwise a skip under `LOWBIT_OFFLINE=1`, a failure without.
pub fn present(p: PathBuf, what: &str) -> Option<PathBuf> {
    if p.exists() {
        return Some(p);
    }
    if std::env::var("LOWBIT_OFFLINE").as_deref() == Ok("1") {
        eprintln!("skipping (LOWBIT_OFFLINE=1): {what} absent at {}", p.display());
        return None;
    }
    panic!(
        "{what} absent at {}: run scripts/fetch-models.sh (or set LOWBIT_OFFLINE=1 to skip the \
         real-model tests)",
        p.display()
    );
}

/// A model fetched by scripts/fetch-models.sh.
pub fn real_model(name: &str) -> Option<PathBuf> {
    present(models_dir().join(name), "the real model")
}

/// A WikiText-2 split (`test` or `valid`): beside `$LOWBIT_WIKITEXT` when set, else in the
/// repository's sibling folder `shared/data`.
pub fn wikitext(split: &str) -> Option<PathBuf> {
    let dir = match std::env::var_os("LOWBIT_WIKITEXT") {
        Some(t) => PathBuf::from(t)
            .parent()
            .map(Path::to_path_buf)
            .unwrap_or_default(),
        None => Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/data"),
    };
    present(dir.join(format!("wikitext2-{split}.txt")), "WikiText-2")
}
