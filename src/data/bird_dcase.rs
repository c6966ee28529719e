//! BirdDCASE (DCASE 2018 task 3, bird audio detection): the three development sets,
//! each a folder of WAVs (directly or under `wav/`) with a labels file of
//! `itemid,datasetid,hasbird` rows: `labels.csv` or the challenge's own file name. Each
//! set is split 80/10/10 by the fixed data permutation; training uses random one-second
//! crops, evaluation every non-overlapping one-second window.

use std::path::{Path, PathBuf};

use crate::config::{AudioNormalisation, Limits};
use crate::data::audio::{Clip, Framing, build_dataset};
use crate::data::frontend::{ClipLength, FrontEnd};
use crate::data::logmel::LogMelParams;
use crate::data::{DataError, Dataset, subset};

/// The development sets, as folders of `root`, with the challenge's labels file names.
pub const SETS: [(&str, &[&str]); 3] = [
    (
        "BirdVox-DCASE-20k",
        &["labels.csv", "BirdVoxDCASE20k_csvpublic.csv"],
    ),
    (
        "warblrb10k",
        &[
            "labels.csv",
            "warblrb10k_public_metadata_2018.csv",
            "warblrb10k_public_metadata.csv",
        ],
    ),
    (
        "ff1010bird",
        &[
            "labels.csv",
            "ff1010bird_metadata_2018.csv",
            "ff1010bird_metadata.csv",
        ],
    ),
];
pub const CLASS_NAMES: [&str; 2] = ["no_bird", "bird"];
const SOURCE: &str = "https://dcase.community/challenge2018/task-bird-audio-detection (the three development sets: \
    BirdVox-DCASE-20k, warblrb10k, ff1010bird, with their metadata CSVs)";

fn expected() -> String {
    SETS.iter()
        .map(|(d, files)| format!("{d}/{{{}}} and {d}/[wav/]<itemid>.wav", files.join(" | ")))
        .collect::<Vec<_>>()
        .join("; ")
}

/// Reads one set's labels file into clips.
fn read_set(root: &Path, set: &str, names: &[&str]) -> Result<Vec<Clip>, DataError> {
    let dir = root.join(set);
    let missing = |what: String| DataError::Missing {
        dataset: "BirdDCASE",
        root: root.to_path_buf(),
        missing: what,
        expected: expected(),
        source_hint: SOURCE,
    };
    if !dir.is_dir() {
        return Err(missing(format!("{set}/")));
    }
    let csv_path = names
        .iter()
        .map(|n| dir.join(n))
        .find(|p| p.is_file())
        .ok_or_else(|| missing(format!("{set}/{}", names.join(" or "))))?;
    let mut reader = csv::Reader::from_path(&csv_path).map_err(|e| DataError::Csv {
        path: csv_path.clone(),
        line: 1,
        what: e.to_string(),
    })?;
    let headers = reader
        .headers()
        .map_err(|e| DataError::Csv {
            path: csv_path.clone(),
            line: 1,
            what: e.to_string(),
        })?
        .clone();
    let col = |name: &str| {
        headers
            .iter()
            .position(|h| h.trim() == name)
            .ok_or_else(|| DataError::Csv {
                path: csv_path.clone(),
                line: 1,
                what: format!("no `{name}` column (expected a header `itemid,datasetid,hasbird`)"),
            })
    };
    let (item_col, bird_col) = (col("itemid")?, col("hasbird")?);
    let wav_dir = if dir.join("wav").is_dir() {
        dir.join("wav")
    } else {
        dir.clone()
    };
    let mut clips = Vec::new();
    for (i, rec) in reader.records().enumerate() {
        let line = i + 2;
        let rec = rec.map_err(|e| DataError::Csv {
            path: csv_path.clone(),
            line,
            what: e.to_string(),
        })?;
        let item = rec.get(item_col).unwrap_or("").trim().to_string();
        let label = match rec.get(bird_col).map(str::trim) {
            Some("0") => 0,
            Some("1") => 1,
            other => {
                return Err(DataError::Csv {
                    path: csv_path.clone(),
                    line,
                    what: format!("hasbird is {other:?}, expected 0 or 1"),
                });
            }
        };
        let path: PathBuf = wav_dir.join(format!("{item}.wav"));
        if item.is_empty() || !path.is_file() {
            return Err(DataError::MissingEntry {
                list: csv_path.clone(),
                line,
                entry: item,
                missing: path,
            });
        }
        clips.push(Clip { path, label });
    }
    Ok(clips)
}

/// Lists the three splits (train, validation, test) without reading audio.
pub fn scan(root: &Path) -> Result<[Vec<Clip>; 3], DataError> {
    if !root.is_dir() {
        return Err(DataError::Missing {
            dataset: "BirdDCASE",
            root: root.to_path_buf(),
            missing: "the folder".into(),
            expected: expected(),
            source_hint: SOURCE,
        });
    }
    let mut splits: [Vec<Clip>; 3] = Default::default();
    for (set, names) in SETS {
        let clips = read_set(root, set, names)?;
        let n = clips.len();
        let perm = subset::permutation(n, subset::DATA_SEED);
        let (n_train, n_val) = (
            (n as f64 * 0.8).round() as usize,
            (n as f64 * 0.1).round() as usize,
        );
        for (rank, &i) in perm.iter().enumerate() {
            let which = if rank < n_train {
                0
            } else if rank < n_train + n_val {
                1
            } else {
                2
            };
            splits[which].push(clips[i].clone());
        }
    }
    Ok(splits)
}

/// Loads BirdDCASE from `root`, caching features under `cache_dir`.
pub fn load(
    root: &Path,
    cache_dir: &Path,
    limits: Limits,
    normalisation: AudioNormalisation,
) -> Result<Dataset, DataError> {
    let splits = scan(root)?;
    let front = FrontEnd::new(LogMelParams::default(), ClipLength::Whole, cache_dir);
    build_dataset(
        front,
        splits,
        limits,
        normalisation,
        Framing::Windows,
        CLASS_NAMES.iter().map(|s| s.to_string()).collect(),
    )
}
