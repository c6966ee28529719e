//! Speech Commands v0.02: one folder per word (labels in alphabetical order,
//! `_background_noise_` excluded), the official split from `validation_list.txt` and
//! `testing_list.txt`, everything else training. Clips are zero-padded to one second;
//! the rare longer clip is truncated with a warning (see [`ClipLength::OneSecond`]).

use std::collections::HashSet;
use std::path::Path;

use crate::config::{AudioNormalisation, Limits};
use crate::data::audio::{Clip, Framing, build_dataset};
use crate::data::frontend::{ClipLength, FrontEnd};
use crate::data::logmel::LogMelParams;
use crate::data::{DataError, Dataset};

const SOURCE: &str =
    "http://download.tensorflow.org/data/speech_commands_v0.02.tar.gz (unpack into the folder)";
const LISTS: [&str; 2] = ["validation_list.txt", "testing_list.txt"];
const NOISE: &str = "_background_noise_";

fn missing(root: &Path, what: String) -> DataError {
    DataError::Missing {
        dataset: "SpeechCommands",
        root: root.to_path_buf(),
        missing: what,
        expected: format!(
            "one folder of .wav files per word (e.g. `yes/`, `no/`), {}",
            LISTS.join(", ")
        ),
        source_hint: SOURCE,
    }
}

fn wavs_in(dir: &Path) -> Result<Vec<String>, DataError> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).map_err(|e| DataError::io(dir, e))? {
        let e = e.map_err(|e| DataError::io(dir, e))?;
        let name = e.file_name().to_string_lossy().into_owned();
        if name.ends_with(".wav") && e.path().is_file() {
            out.push(name);
        }
    }
    out.sort();
    Ok(out)
}

/// Reads a split list: relative paths `word/file.wav`, each checked to exist.
fn read_list(root: &Path, name: &str) -> Result<Vec<String>, DataError> {
    let path = root.join(name);
    let text = std::fs::read_to_string(&path).map_err(|e| DataError::io(&path, e))?;
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let entry = line.trim();
        if entry.is_empty() {
            continue;
        }
        let file = root.join(entry);
        if !file.is_file() {
            return Err(DataError::MissingEntry {
                list: path,
                line: i + 1,
                entry: entry.into(),
                missing: file,
            });
        }
        out.push(entry.to_string());
    }
    Ok(out)
}

/// Lists the classes and the three splits (train, validation, test) without reading audio.
pub fn scan(root: &Path) -> Result<(Vec<String>, [Vec<Clip>; 3]), DataError> {
    if !root.is_dir() {
        return Err(missing(root, "the folder".into()));
    }
    let absent: Vec<&str> = LISTS
        .iter()
        .copied()
        .filter(|l| !root.join(l).is_file())
        .collect();
    if !absent.is_empty() {
        return Err(missing(root, absent.join(", ")));
    }
    let mut classes = Vec::new();
    for e in std::fs::read_dir(root).map_err(|e| DataError::io(root, e))? {
        let e = e.map_err(|e| DataError::io(root, e))?;
        let name = e.file_name().to_string_lossy().into_owned();
        if e.path().is_dir() && name != NOISE && !name.starts_with('.') {
            classes.push(name);
        }
    }
    classes.sort();
    if classes.is_empty() {
        return Err(missing(root, "word folders".into()));
    }
    let validation: HashSet<String> = read_list(root, LISTS[0])?.into_iter().collect();
    let testing: HashSet<String> = read_list(root, LISTS[1])?.into_iter().collect();
    let mut splits: [Vec<Clip>; 3] = Default::default();
    for (label, word) in classes.iter().enumerate() {
        let dir = root.join(word);
        let files = wavs_in(&dir)?;
        if files.is_empty() {
            return Err(DataError::EmptyClass {
                folder: dir,
                expected: "no .wav file",
            });
        }
        for f in files {
            let rel = format!("{word}/{f}");
            let which = if testing.contains(&rel) {
                2
            } else if validation.contains(&rel) {
                1
            } else {
                0
            };
            splits[which].push(Clip {
                path: dir.join(&f),
                label: label as u32,
            });
        }
    }
    Ok((classes, splits))
}

/// Loads SpeechCommands from `root`, caching features under `cache_dir`.
pub fn load(
    root: &Path,
    cache_dir: &Path,
    limits: Limits,
    normalisation: AudioNormalisation,
) -> Result<Dataset, DataError> {
    let (classes, splits) = scan(root)?;
    let front = FrontEnd::new(LogMelParams::default(), ClipLength::OneSecond, cache_dir);
    build_dataset(
        front,
        splits,
        limits,
        normalisation,
        Framing::Whole,
        classes,
    )
}
