//! `kind: image_folder`: the researcher's own images in ImageNet's layout,
//! `root/train/<class>/*.jpg|jpeg|png`, with `val/` (or `validation/`) and `test/` when
//! they exist. Missing splits are held out of `train/` by the data seed:
//!
//! | folders           | validation             | test                    |
//! |-------------------|------------------------|-------------------------|
//! | val/ and test/    | val/                   | test/                   |
//! | val/ only         | `image.validation` of train/ | val/ (ImageNet's case) |
//! | test/ only        | `image.validation` of train/ | test/             |
//! | neither           | `image.validation` of train/ | `image.test` of train/ |
//!
//! Images are decoded once, in parallel, resized to their stored size and cached (see
//! [`store`]); batches are cropped from memory.

pub mod decode;
pub mod exif;
pub mod split;
pub mod store;
pub mod tree;

use std::path::Path;
use std::sync::Arc;

use crate::config::{
    IMAGENET_MEAN, IMAGENET_STD, ImageFolderSpec, ImageNormalisation, Limits, NamedNormalisation,
};
use crate::data::image::Normalize;
use crate::data::{DataError, Dataset, subset};
use decode::Target;
use split::FolderSplit;
use store::FolderStore;
use tree::{Entry, Tree};

/// Where each split's examples come from.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Source {
    /// Its own folder (named).
    Folder(&'static str),
    /// Held out of `train/` (this fraction).
    HeldOut(f64),
}

/// The tree's files as the three splits, limits applied: what will be decoded.
#[derive(Debug)]
pub struct Plan {
    pub classes: Vec<String>,
    pub train: Vec<Entry>,
    pub validation: Vec<Entry>,
    pub test: Vec<Entry>,
    pub sources: [Source; 2],
    pub skipped: usize,
    /// The tree's problems (see [`Tree::problems`]).
    pub problems: Vec<DataError>,
}

impl Plan {
    /// One line for the log: classes, split sizes and where they come from.
    pub fn describe(&self) -> String {
        let from = |s: Source| match s {
            Source::Folder(name) => format!("{name}/"),
            Source::HeldOut(f) => format!("{:.0}% held out of train/", f * 100.0),
        };
        let mut line = format!(
            "{} classes; train {}, validation {} ({}), test {} ({})",
            self.classes.len(),
            self.train.len(),
            self.validation.len(),
            from(self.sources[0]),
            self.test.len(),
            from(self.sources[1]),
        );
        if self.skipped > 0 {
            line.push_str(&format!(
                "; {} file(s) skipped (not .jpg, .jpeg or .png)",
                self.skipped
            ));
        }
        line
    }
}

/// Indexes the tree and assigns the splits, reading no image. Fails where there is no
/// tree; its lesser problems are in [`Plan::problems`].
pub fn plan(root: &Path, spec: &ImageFolderSpec, limits: Limits) -> Result<Plan, DataError> {
    let tree = tree::index(root)?;
    Ok(assign(tree, spec, limits))
}

fn assign(tree: Tree, spec: &ImageFolderSpec, limits: Limits) -> Plan {
    let Tree {
        classes,
        train,
        validation,
        test,
        skipped,
        problems,
    } = tree;
    let n = train.len();
    let take = |fraction: f64| (n as f64 * fraction).round() as usize;
    let pick = |entries: &[Entry], positions: &[usize]| -> Vec<Entry> {
        positions.iter().map(|&i| entries[i].clone()).collect()
    };
    let (train, validation, test, sources) = match (validation, test) {
        (Some(v), Some(t)) => (train, v, t, [Source::Folder("val"), Source::Folder("test")]),
        (v, t) => {
            let f = spec.validation_fraction();
            let (rest, held) = subset::hold_out(n, take(f));
            let validation = pick(&train, &held);
            let (train_part, test, test_source) = match (v, t) {
                (Some(v), None) => (pick(&train, &rest), v, Source::Folder("val")),
                (None, Some(t)) => (pick(&train, &rest), t, Source::Folder("test")),
                _ => {
                    let ft = spec.test_fraction();
                    // Held out of what is left, by a second fixed permutation.
                    let (rest2, held2) = subset::hold_out(rest.len(), take(ft));
                    let train_part = rest2.iter().map(|&i| train[rest[i]].clone()).collect();
                    let test = held2.iter().map(|&i| train[rest[i]].clone()).collect();
                    (train_part, test, Source::HeldOut(ft))
                }
            };
            (
                train_part,
                validation,
                test,
                [Source::HeldOut(f), test_source],
            )
        }
    };
    let limit =
        |entries: Vec<Entry>, l: Option<usize>| subset::limit_balanced(&entries, |e| e.class, l);
    Plan {
        classes,
        train: limit(train, limits.train),
        validation: limit(validation, limits.validation),
        test: limit(test, limits.test),
        sources,
        skipped,
        problems,
    }
}

/// Loads the data set: the plan, its images decoded (or read from the cache in
/// `cache_dir`), and the normalisation.
pub fn load(
    root: &Path,
    spec: &ImageFolderSpec,
    limits: Limits,
    cache_dir: &Path,
) -> Result<Dataset, DataError> {
    let mut plan = plan(root, spec, limits)?;
    let target = Target {
        colour: spec.colour,
        convert_grey: spec.convert_grey,
        shorter: spec.resize_or_size(),
    };
    let all: Vec<Entry> = [&plan.train, &plan.validation, &plan.test]
        .into_iter()
        .flatten()
        .cloned()
        .collect();
    // The tree's problems and the files that do not decode, all in one report.
    let store = match store::decoded(&all, target, cache_dir) {
        Ok(store) if plan.problems.is_empty() => Arc::new(store),
        Ok(_) => return Err(DataError::from_each(plan.problems)),
        Err(e) => {
            plan.problems.extend(e.into_each());
            return Err(DataError::from_each(plan.problems));
        }
    };
    let (nt, nv) = (plan.train.len(), plan.validation.len());
    let train_idx: Vec<usize> = (0..nt).collect();
    let norm = normalisation(spec, &store, &train_idx, &all, target, cache_dir)?;
    let size = spec.size.get();
    let split = |indices: Vec<usize>, augment: Vec<crate::config::ImageAugment>| {
        Box::new(FolderSplit::new(
            store.clone(),
            indices,
            size,
            norm.clone(),
            augment,
        ))
    };
    Ok(Dataset {
        train: split(train_idx, spec.augment.clone()),
        validation: split((nt..nt + nv).collect(), Vec::new()),
        test: split((nt + nv..all.len()).collect(), Vec::new()),
        num_classes: plan.classes.len(),
        in_channels: spec.channels(),
        class_names: plan.classes,
    })
}

/// The declared statistics, or the training images' own, computed once and cached.
fn normalisation(
    spec: &ImageFolderSpec,
    store: &FolderStore,
    train: &[usize],
    all: &[Entry],
    target: Target,
    cache_dir: &Path,
) -> Result<Normalize, DataError> {
    match &spec.normalisation {
        ImageNormalisation::Given { mean, std } => Ok(Normalize {
            mean: mean.clone(),
            std: std.clone(),
        }),
        ImageNormalisation::Named(NamedNormalisation::Imagenet) => Ok(match spec.channels() {
            1 => Normalize {
                // A greyscale data set takes the channels' averages.
                mean: vec![IMAGENET_MEAN.iter().sum::<f32>() / 3.0],
                std: vec![IMAGENET_STD.iter().sum::<f32>() / 3.0],
            },
            _ => Normalize {
                mean: IMAGENET_MEAN.to_vec(),
                std: IMAGENET_STD.to_vec(),
            },
        }),
        ImageNormalisation::Named(NamedNormalisation::Computed) => {
            // Keyed by the training images alone: other splits do not change them.
            let key = store::key(&all[..train.len()], target);
            let path = cache_dir.join("images").join(format!("{key}.stats.json"));
            // A missing or torn statistics file is a cache miss: computed again below.
            if let Ok(text) = std::fs::read_to_string(&path)
                && let Ok(stats) = serde_json::from_str::<Stats>(&text)
                && stats.mean.len() == store.channels
            {
                return Ok(Normalize {
                    mean: stats.mean,
                    std: stats.std,
                });
            }
            let stats = compute(store, train);
            let text = serde_json::to_string(&stats).map_err(|e| DataError::Format {
                path: path.clone(),
                what: e.to_string(),
            })?;
            crate::data::write_cache(&path, text.as_bytes())?;
            Ok(Normalize {
                mean: stats.mean,
                std: stats.std,
            })
        }
    }
}

#[derive(Debug, serde::Serialize, serde::Deserialize)]
struct Stats {
    mean: Vec<f32>,
    std: Vec<f32>,
}

/// Per channel, the mean and population standard deviation of the pixels (scaled to
/// [0, 1]) of the training images as stored. A constant channel gets a std of 1.
fn compute(store: &FolderStore, train: &[usize]) -> Stats {
    let c = store.channels;
    let mut sum = vec![0f64; c];
    let mut sq = vec![0f64; c];
    let mut count = 0u64;
    for &i in train {
        let (pixels, _, _) = store.image(i);
        for px in pixels.chunks_exact(c) {
            for (ch, &v) in px.iter().enumerate() {
                let v = f64::from(v) / 255.0;
                sum[ch] += v;
                sq[ch] += v * v;
            }
        }
        count += (pixels.len() / c) as u64;
    }
    let n = count.max(1) as f64;
    let mean: Vec<f64> = sum.iter().map(|s| s / n).collect();
    let std: Vec<f32> = sq
        .iter()
        .zip(&mean)
        .map(|(q, m)| {
            let s = (q / n - m * m).max(0.0).sqrt() as f32;
            if s > 0.0 { s } else { 1.0 }
        })
        .collect();
    Stats {
        mean: mean.iter().map(|&m| m as f32).collect(),
        std,
    }
}
