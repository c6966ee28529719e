//! The image tree `root/<split>/<class>/...`: which files there are, their classes and
//! splits. Indexing reads directories only; every problem of the tree is found in one
//! walk and reported together.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, UNIX_EPOCH};

use crate::data::DataError;

/// The extensions read (any case); other files are skipped, as torchvision does, and counted.
pub const EXTENSIONS: [&str; 3] = ["jpg", "jpeg", "png"];
const SOURCE: &str =
    "your own images, laid out as root/train/<class>/*.jpg|png (ImageNet's layout)";

/// One image file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub path: PathBuf,
    pub class: u32,
    /// Size and modification time: what the decoded cache is keyed on.
    pub bytes: u64,
    pub modified_ns: u128,
}

/// The tree as found: classes from `train/`, and the files of each split folder present.
#[derive(Debug)]
pub struct Tree {
    pub classes: Vec<String>,
    pub train: Vec<Entry>,
    /// `val/` or `validation/`.
    pub validation: Option<Vec<Entry>>,
    pub test: Option<Vec<Entry>>,
    /// Files skipped for their extension.
    pub skipped: usize,
    /// What is wrong with the tree short of its missing: empty classes, classes unknown to
    /// train/, unreadable entries. Reported with the files that do not decode.
    pub problems: Vec<DataError>,
}

/// Indexes `root`, logging progress on large trees. Fails only where there is no tree to
/// speak of (no folder, no train/, no class); other problems are in [`Tree::problems`].
pub fn index(root: &Path) -> Result<Tree, DataError> {
    if !root.is_dir() {
        return Err(missing(root, "the folder"));
    }
    let train_dir = root.join("train");
    if !train_dir.is_dir() {
        return Err(no_train(root));
    }
    let validation_dirs: Vec<PathBuf> = ["val", "validation"]
        .iter()
        .map(|n| root.join(n))
        .filter(|p| p.is_dir())
        .collect();
    if validation_dirs.len() > 1 {
        return Err(DataError::Format {
            path: root.to_path_buf(),
            what: "holds both val/ and validation/: keep one as the validation split".into(),
        });
    }
    let classes = subfolders(&train_dir)?;
    if classes.is_empty() {
        return Err(DataError::Format {
            path: train_dir,
            what: "has no class folders: put each class's images in train/<class>/".into(),
        });
    }
    let mut progress = Progress::new();
    let mut errors = Vec::new();
    let mut skipped = 0;
    let mut split = |dir: &Path, errors: &mut Vec<DataError>| -> Vec<Entry> {
        let mut entries = Vec::new();
        match subfolders(dir) {
            Ok(found) => {
                for name in found.iter().filter(|n| !classes.contains(n)) {
                    errors.push(DataError::Format {
                        path: dir.join(name),
                        what: format!(
                            "a class folder that train/ does not have (its classes: {}); \
                             rename it after a training class or add it to train/",
                            preview(&classes)
                        ),
                    });
                }
                for name in &found {
                    let Some(class) = classes.iter().position(|c| c == name) else {
                        continue;
                    };
                    let folder = dir.join(name);
                    let before = entries.len();
                    walk(
                        &folder,
                        class as u32,
                        &mut entries,
                        &mut skipped,
                        errors,
                        &mut progress,
                    );
                    if entries.len() == before {
                        errors.push(DataError::EmptyClass {
                            folder,
                            expected: "no .jpg, .jpeg or .png file",
                        });
                    }
                }
            }
            Err(e) => errors.push(e),
        }
        entries
    };
    let train = split(&train_dir, &mut errors);
    let validation = validation_dirs.first().map(|d| split(d, &mut errors));
    let test_dir = root.join("test");
    let test = test_dir.is_dir().then(|| split(&test_dir, &mut errors));
    progress.done();
    Ok(Tree {
        classes,
        train,
        validation,
        test,
        skipped,
        problems: errors,
    })
}

/// The classes, `train/`'s folders in name order, without walking their files.
pub fn classes(root: &Path) -> Result<Vec<String>, DataError> {
    subfolders(&root.join("train"))
}

/// The folders in `dir` (not hidden), sorted by name as torchvision sorts classes.
fn subfolders(dir: &Path) -> Result<Vec<String>, DataError> {
    let mut names = Vec::new();
    for item in std::fs::read_dir(dir).map_err(|e| DataError::io(dir, e))? {
        let item = item.map_err(|e| DataError::io(dir, e))?;
        let name = item.file_name().to_string_lossy().into_owned();
        if !name.starts_with('.') && item.path().is_dir() {
            names.push(name);
        }
    }
    names.sort();
    Ok(names)
}

/// Every image under `dir`, recursively, in name order.
fn walk(
    dir: &Path,
    class: u32,
    out: &mut Vec<Entry>,
    skipped: &mut usize,
    errors: &mut Vec<DataError>,
    progress: &mut Progress,
) {
    let listing = match std::fs::read_dir(dir) {
        Ok(l) => l,
        Err(e) => return errors.push(DataError::io(dir, e)),
    };
    let mut items: Vec<PathBuf> = Vec::new();
    for item in listing {
        match item {
            Ok(item) => items.push(item.path()),
            Err(e) => errors.push(DataError::io(dir, e)),
        }
    }
    items.sort();
    for path in items {
        let hidden = path
            .file_name()
            .is_some_and(|n| n.to_string_lossy().starts_with('.'));
        if hidden {
            continue;
        }
        if path.is_dir() {
            walk(&path, class, out, skipped, errors, progress);
            continue;
        }
        let wanted = path
            .extension()
            .map(|e| e.to_string_lossy().to_lowercase())
            .is_some_and(|e| EXTENSIONS.contains(&e.as_str()));
        if !wanted {
            *skipped += 1;
            continue;
        }
        match std::fs::metadata(&path) {
            Ok(meta) => {
                // A file system without modification times keys the cache on path and
                // size alone.
                let modified_ns = match meta.modified().map(|t| t.duration_since(UNIX_EPOCH)) {
                    Ok(Ok(since)) => since.as_nanos(),
                    Ok(Err(_)) | Err(_) => 0,
                };
                out.push(Entry {
                    path,
                    class,
                    bytes: meta.len(),
                    modified_ns,
                });
                progress.tick();
            }
            Err(e) => errors.push(DataError::io(&path, e)),
        }
    }
}

fn missing(root: &Path, what: &str) -> DataError {
    DataError::Missing {
        dataset: "image folder",
        root: root.to_path_buf(),
        missing: what.into(),
        expected: "train/<class>/*.jpg|jpeg|png, and optionally val/ and test/ alike".into(),
        source_hint: SOURCE,
    }
}

/// No `train/`: says so, and whether the folders there look like classes.
fn no_train(root: &Path) -> DataError {
    // Only a hint for the message: a root that cannot be listed gets the plain one.
    let found = subfolders(root).unwrap_or_default();
    if found.is_empty() {
        return missing(root, "train/");
    }
    DataError::Format {
        path: root.to_path_buf(),
        what: format!(
            "has no train/ folder; it holds {}: if these are classes, move them into {}/train/",
            preview(&found),
            root.display()
        ),
    }
}

/// The first few names, and how many more.
fn preview(names: &[String]) -> String {
    const SHOWN: usize = 5;
    let head = names[..names.len().min(SHOWN)].join(", ");
    if names.len() > SHOWN {
        format!("{head} and {} more", names.len() - SHOWN)
    } else {
        head
    }
}

/// A log line every few seconds while a large tree is indexed.
struct Progress {
    count: usize,
    started: Instant,
    last: Instant,
}

impl Progress {
    const EVERY: Duration = Duration::from_secs(3);

    fn new() -> Progress {
        let now = Instant::now();
        Progress {
            count: 0,
            started: now,
            last: now,
        }
    }

    fn tick(&mut self) {
        self.count += 1;
        if self.count.is_multiple_of(1024) && self.last.elapsed() >= Self::EVERY {
            self.last = Instant::now();
            crate::log::log(&format!("  indexing images: {} files so far", self.count));
        }
    }

    fn done(&self) {
        if self.started.elapsed() >= Self::EVERY {
            crate::log::log(&format!(
                "  indexed {} images in {:.1} s",
                self.count,
                self.started.elapsed().as_secs_f64()
            ));
        }
    }
}
