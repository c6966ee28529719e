//! A split of audio clips served as normalised log-mel features from the cache.

use std::path::PathBuf;
use std::sync::Arc;

use candle_core::{Device, Tensor};
use rand::Rng;
use rand_chacha::ChaCha8Rng;
use rayon::prelude::*;

use crate::config::Limits;
use crate::data::frontend::FrontEnd;
use crate::data::{Batch, DataError, Split};

/// Frames of one second (hop 10 ms, centred frames).
pub const SECOND_FRAMES: usize = 101;
/// Frames between the starts of two one-second windows (100 hops = 16000 samples).
const WINDOW_STEP: usize = 100;

/// One clip of a split.
#[derive(Debug, Clone, PartialEq)]
pub struct Clip {
    pub path: PathBuf,
    pub label: u32,
}

/// How the frames of a clip become inputs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Framing {
    /// The whole (one-second) clip is one input.
    Whole,
    /// Training: one random one-second crop; evaluation: every non-overlapping
    /// one-second window, reported in `Batch::windows`.
    Windows,
}

/// Scalar normalisation `(x - mean) / std` from the training features.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Stats {
    pub mean: f32,
    pub std: f32,
}

/// Clips with their cache keys, computed and cached once when the split is built.
pub struct AudioSplit {
    front: Arc<FrontEnd>,
    clips: Vec<CachedClip>,
    stats: Stats,
    framing: Framing,
}

/// A clip whose features are in the cache under `key`.
#[derive(Debug, Clone, PartialEq)]
pub struct CachedClip {
    pub clip: Clip,
    pub key: String,
}

/// Sum, sum of squares and count of a clip's feature values.
pub type Moments = (f64, f64, usize);

/// Caches the features of every clip (in parallel); returns the clips with their keys
/// and the moments of each clip's values.
///
/// Every clip is tried: the error names each clip that could not be read, not only
/// the first.
pub fn prepare(
    front: &FrontEnd,
    clips: Vec<Clip>,
) -> Result<(Vec<CachedClip>, Vec<Moments>), DataError> {
    let done: Vec<Result<_, DataError>> = clips
        .into_par_iter()
        .map(|clip| {
            let (key, f) = front.features(&clip.path)?;
            let s: f64 = f.data.iter().map(|&v| f64::from(v)).sum();
            let s2: f64 = f.data.iter().map(|&v| f64::from(v) * f64::from(v)).sum();
            Ok((CachedClip { clip, key }, (s, s2, f.data.len())))
        })
        .collect();
    let mut ok = Vec::with_capacity(done.len());
    let mut errors = Vec::new();
    for r in done {
        match r {
            Ok(v) => ok.push(v),
            Err(e) => errors.push(e),
        }
    }
    DataError::all(errors)?;
    Ok(ok.into_iter().unzip())
}

/// Mean and standard deviation over all values of all clips.
pub fn stats(moments: &[Moments]) -> Stats {
    let (s, s2, n) = moments
        .iter()
        .fold((0.0, 0.0, 0usize), |a, m| (a.0 + m.0, a.1 + m.1, a.2 + m.2));
    if n == 0 {
        return Stats {
            mean: 0.0,
            std: 1.0,
        };
    }
    let mean = s / n as f64;
    let var = (s2 / n as f64 - mean * mean).max(0.0);
    // A constant training set (all silent) would divide by zero.
    let std = if var > 0.0 { var.sqrt() } else { 1.0 };
    Stats {
        mean: mean as f32,
        std: std as f32,
    }
}

impl AudioSplit {
    pub fn new(
        front: Arc<FrontEnd>,
        clips: Vec<CachedClip>,
        stats: Stats,
        framing: Framing,
    ) -> AudioSplit {
        AudioSplit {
            front,
            clips,
            stats,
            framing,
        }
    }

    pub fn labels(&self) -> Vec<u32> {
        self.clips.iter().map(|c| c.clip.label).collect()
    }

    pub fn stats(&self) -> Stats {
        self.stats
    }
}

impl Split for AudioSplit {
    fn len(&self) -> usize {
        self.clips.len()
    }

    fn batch(
        &self,
        indices: &[usize],
        mut augment: Option<&mut ChaCha8Rng>,
        device: &Device,
    ) -> Result<Batch, DataError> {
        let mut data = Vec::new();
        let mut labels = Vec::with_capacity(indices.len());
        let mut windows = Vec::with_capacity(indices.len());
        let mut n_mels = 0;
        for &i in indices {
            let c = self.clips.get(i).ok_or(DataError::Index {
                index: i,
                len: self.clips.len(),
            })?;
            let f = self.front.cached_or_compute(&c.key, &c.clip.path)?;
            n_mels = f.n_mels;
            labels.push(c.clip.label);
            let spare = f.frames.saturating_sub(SECOND_FRAMES);
            match (self.framing, augment.as_deref_mut()) {
                (Framing::Whole, _) => {
                    f.crop(0, SECOND_FRAMES, &mut data);
                    windows.push(1);
                }
                (Framing::Windows, Some(rng)) => {
                    f.crop(rng.random_range(0..=spare), SECOND_FRAMES, &mut data);
                    windows.push(1);
                }
                (Framing::Windows, None) => {
                    let count = spare / WINDOW_STEP + 1;
                    for k in 0..count {
                        f.crop(k * WINDOW_STEP, SECOND_FRAMES, &mut data);
                    }
                    windows.push(count);
                }
            }
        }
        let Stats { mean, std } = self.stats;
        for v in &mut data {
            *v = (*v - mean) / std;
        }
        let n: usize = windows.iter().sum();
        let evaluating_windows = self.framing == Framing::Windows && augment.is_none();
        Ok(Batch {
            inputs: Tensor::from_vec(data, (n, 1, n_mels, SECOND_FRAMES), device)?,
            labels: Tensor::from_vec(labels, indices.len(), device)?,
            windows: evaluating_windows.then_some(windows),
        })
    }
}

/// The three splits of an audio data set, `limits` applied, features cached, normalised
/// by the training features' mean and standard deviation.
pub fn build_dataset(
    front: FrontEnd,
    splits: [Vec<Clip>; 3],
    limits: Limits,
    framing: Framing,
    class_names: Vec<String>,
) -> Result<crate::data::Dataset, DataError> {
    let front = Arc::new(front);
    let [train, validation, test] = splits;
    let pick =
        |clips: Vec<Clip>, limit| crate::data::subset::limit_balanced(&clips, |c| c.label, limit);
    let (train, validation, test) = (
        pick(train, limits.train),
        pick(validation, limits.validation),
        pick(test, limits.test),
    );
    // All three splits are read before failing, so one pass names every bad clip.
    let prepared = (
        prepare(&front, train),
        prepare(&front, validation),
        prepare(&front, test),
    );
    let ((train, moments), (validation, _), (test, _)) = match prepared {
        (Ok(train), Ok(validation), Ok(test)) => (train, validation, test),
        (train, validation, test) => {
            let errors = [train.err(), validation.err(), test.err()]
                .into_iter()
                .flatten()
                .flat_map(DataError::into_each)
                .collect();
            return Err(DataError::from_each(errors));
        }
    };
    let stats = stats(&moments);
    Ok(crate::data::Dataset {
        train: Box::new(AudioSplit::new(front.clone(), train, stats, framing)),
        validation: Box::new(AudioSplit::new(front.clone(), validation, stats, framing)),
        test: Box::new(AudioSplit::new(front, test, stats, framing)),
        num_classes: class_names.len(),
        in_channels: 1,
        class_names,
    })
}
