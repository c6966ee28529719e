//! A split of audio clips served as normalised log-mel features from the cache.

use std::path::PathBuf;
use std::sync::Arc;

use candle_core::{Device, Tensor};
use rand::Rng;
use rand_chacha::ChaCha8Rng;
use rayon::prelude::*;

use crate::config::{AudioNormalisation, Limits};
use crate::data::frontend::FrontEnd;
use crate::data::logmel::Features;
use crate::data::{Batch, DataError, Split};

/// Frames of one second (hop 10 ms, centred frames): the width of a model input.
pub const SECOND_FRAMES: usize = 101;

/// The one-second windows an evaluated clip of `frames` frames is cut into, as the
/// reference cuts them (`utils/data/common.py`): windows of 101 frames end at 101, 202,
/// ... while the end stays below `frames`, so the incomplete tail is dropped and a 10 s
/// clip (1,001 frames) gives 9. A clip of one second or less is one window, zero-padded
/// (the reference has no window for exactly 101 frames; one is the useful answer).
pub fn eval_windows(frames: usize) -> usize {
    (frames.saturating_sub(1) / SECOND_FRAMES).max(1)
}

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
    /// Evaluation of each clip whole in one input, a batch's shorter clips padded with
    /// zeros after normalisation (the reference's pruning evaluation).
    WholeClip,
}

/// Scalar normalisation `(x - mean) / std` from the training features.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Stats {
    pub mean: f32,
    pub std: f32,
}

impl Stats {
    /// Frames `start..start + len` of `f`, normalised, into `out`; frames outside the
    /// clip are 0 after normalisation, as the reference pads.
    fn window(&self, f: &Features, start: isize, len: usize, out: &mut Vec<f32>) {
        for m in 0..f.n_mels {
            let row = &f.data[m * f.frames..(m + 1) * f.frames];
            for t in start..start + len as isize {
                let v = usize::try_from(t).ok().and_then(|t| row.get(t));
                out.push(v.map_or(0.0, |&v| (v - self.mean) / self.std));
            }
        }
    }
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

/// A clip's feature values summarised: count, mean and sum of squared deviations.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Moments {
    pub n: usize,
    pub mean: f64,
    pub m2: f64,
}

impl Moments {
    /// Two passes, in f64: exact enough to match the reference's statistics.
    pub fn of(values: &[f32]) -> Moments {
        let n = values.len();
        let mean = values.iter().map(|&v| f64::from(v)).sum::<f64>() / n.max(1) as f64;
        let m2 = values.iter().map(|&v| (f64::from(v) - mean).powi(2)).sum();
        Moments { n, mean, m2 }
    }
}

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
            Ok((CachedClip { clip, key }, Moments::of(&f.data)))
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

/// The normalisation statistics of the training clips.
pub fn stats(moments: &[Moments], how: AudioNormalisation) -> Stats {
    let clips: Vec<&Moments> = moments.iter().filter(|m| m.n > 0).collect();
    if clips.is_empty() {
        return Stats {
            mean: 0.0,
            std: 1.0,
        };
    }
    let (mean, std) = match how {
        AudioNormalisation::PerClip => {
            // AverageMeter over clips of `feats.mean()` and `feats.std()` (n - 1).
            let k = clips.len() as f64;
            let mean = clips.iter().map(|m| m.mean).sum::<f64>() / k;
            let std = clips
                .iter()
                .map(|m| (m.m2 / (m.n.max(2) - 1) as f64).sqrt())
                .sum::<f64>()
                / k;
            (mean, std)
        }
        AudioNormalisation::Global => {
            let n: usize = clips.iter().map(|m| m.n).sum();
            let mean = clips.iter().map(|m| m.mean * m.n as f64).sum::<f64>() / n as f64;
            // Each clip's squared deviations, moved from its own mean to the global one.
            let m2: f64 = clips
                .iter()
                .map(|m| m.m2 + m.n as f64 * (m.mean - mean).powi(2))
                .sum();
            (mean, (m2 / n as f64).sqrt())
        }
    };
    // A constant training set (all silent) would divide by zero.
    let std = if std > 0.0 { std } else { 1.0 };
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

    pub fn stats(&self) -> Stats {
        self.stats
    }
}

impl Split for AudioSplit {
    fn input_format(&self) -> crate::data::stimuli::InputFormat<'_> {
        crate::data::stimuli::InputFormat::Audio {
            logmel: self.front.logmel(),
            stats: self.stats,
        }
    }

    fn labels(&self) -> Vec<u32> {
        self.clips.iter().map(|c| c.clip.label).collect()
    }

    fn len(&self) -> usize {
        self.clips.len()
    }

    fn source_indices(&self) -> Option<&[usize]> {
        None
    }

    fn whole_clips(&self) -> Option<Box<dyn Split>> {
        (self.framing == Framing::Windows).then(|| {
            Box::new(AudioSplit {
                front: Arc::clone(&self.front),
                clips: self.clips.clone(),
                stats: self.stats,
                framing: Framing::WholeClip,
            }) as Box<dyn Split>
        })
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
        // Whole clips: where each clip's features start in `data`, and its frames.
        let mut whole = Vec::new();
        let mut n_mels = 0;
        for &i in indices {
            let c = self.clips.get(i).ok_or(DataError::Index {
                index: i,
                len: self.clips.len(),
            })?;
            let f = self.front.cached_or_compute(&c.key, &c.clip.path)?;
            n_mels = f.n_mels;
            labels.push(c.clip.label);
            let stats = self.stats;
            match (self.framing, augment.as_deref_mut()) {
                (Framing::WholeClip, _) => {
                    whole.push((data.len(), f.frames));
                    stats.window(&f, 0, f.frames, &mut data);
                    windows.push(1);
                }
                (Framing::Whole, _) => {
                    stats.window(&f, 0, SECOND_FRAMES, &mut data);
                    windows.push(1);
                }
                (Framing::Windows, Some(rng)) => {
                    // RandomCrop as the reference uses it: a random one-second crop; a
                    // shorter clip at a random place in a zero-padded second.
                    let start = if f.frames >= SECOND_FRAMES {
                        rng.random_range(0..=f.frames - SECOND_FRAMES) as isize
                    } else {
                        -(rng.random_range(0..=SECOND_FRAMES - f.frames) as isize)
                    };
                    stats.window(&f, start, SECOND_FRAMES, &mut data);
                    windows.push(1);
                }
                (Framing::Windows, None) => {
                    let count = eval_windows(f.frames);
                    for k in 0..count {
                        stats.window(&f, (k * SECOND_FRAMES) as isize, SECOND_FRAMES, &mut data);
                    }
                    windows.push(count);
                }
            }
        }
        let n: usize = windows.iter().sum();
        let evaluating_windows = self.framing == Framing::Windows && augment.is_none();
        if self.framing == Framing::WholeClip {
            let frames = whole.iter().map(|&(_, f)| f).max().unwrap_or(0);
            let data = pad_frames(&data, &whole, n_mels, frames);
            return Ok(Batch {
                inputs: Tensor::from_vec(data, (n, 1, n_mels, frames), device)?,
                labels: Tensor::from_vec(labels, indices.len(), device)?,
                windows: None,
            });
        }
        Ok(Batch {
            inputs: Tensor::from_vec(data, (n, 1, n_mels, SECOND_FRAMES), device)?,
            labels: Tensor::from_vec(labels, indices.len(), device)?,
            windows: evaluating_windows.then_some(windows),
        })
    }
}

/// Clips of `frames[i].1` frames each (`n_mels` rows, starting at `frames[i].0` in
/// `data`), each padded with zeros to `frames` columns.
fn pad_frames(data: &[f32], clips: &[(usize, usize)], n_mels: usize, frames: usize) -> Vec<f32> {
    let mut out = vec![0f32; clips.len() * n_mels * frames];
    for (i, &(start, len)) in clips.iter().enumerate() {
        for m in 0..n_mels {
            let from = start + m * len;
            let to = (i * n_mels + m) * frames;
            out[to..to + len].copy_from_slice(&data[from..from + len]);
        }
    }
    out
}

/// The three splits of an audio data set, `limits` applied, features cached, normalised
/// by the training features' mean and standard deviation.
pub fn build_dataset(
    front: FrontEnd,
    splits: [Vec<Clip>; 3],
    limits: Limits,
    normalisation: AudioNormalisation,
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
    let stats = stats(&moments, normalisation);
    Ok(crate::data::Dataset {
        train: Box::new(AudioSplit::new(front.clone(), train, stats, framing)),
        validation: Box::new(AudioSplit::new(front.clone(), validation, stats, framing)),
        test: Box::new(AudioSplit::new(front, test, stats, framing)),
        num_classes: class_names.len(),
        in_channels: 1,
        class_names,
    })
}

#[cfg(test)]
mod tests {
    #[test]
    fn whole_clips_are_padded_with_zeros_to_the_longest() {
        // Two clips of 2 mel bands: 3 frames and 1 frame, row-major per clip.
        let data = [1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0];
        let out = super::pad_frames(&data, &[(0, 3), (6, 1)], 2, 3);
        assert_eq!(
            out,
            [1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 0.0, 0.0, 8.0, 0.0, 0.0]
        );
    }

    use super::*;

    #[test]
    fn windows_are_cut_as_the_reference_cuts_them() {
        // `range(101, T, 101)`: 10 s (1,001 frames) gives 9, 3 s (301) gives 2.
        assert_eq!(eval_windows(1001), 9);
        assert_eq!(eval_windows(301), 2);
        assert_eq!(eval_windows(202), 1);
        assert_eq!(eval_windows(203), 2);
        assert_eq!(eval_windows(101), 1);
        assert_eq!(eval_windows(40), 1);
    }

    #[test]
    fn normalisation_statistics_follow_the_reference_formulas() {
        // Two clips: [1, 2, 3, 4] and [10, 10, 10, 14].
        let clips = [
            Moments::of(&[1.0, 2.0, 3.0, 4.0]),
            Moments::of(&[10.0, 10.0, 10.0, 14.0]),
        ];
        // The reference: mean of the clips' means, mean of their unbiased stds:
        // (2.5 + 11) / 2 and (sqrt(5/3) + sqrt(12/3)) / 2.
        let s = stats(&clips, AudioNormalisation::PerClip);
        assert_eq!(s.mean, 6.75);
        assert!(
            (f64::from(s.std) - ((5.0f64 / 3.0).sqrt() + 2.0) / 2.0).abs() < 1e-6,
            "{s:?}"
        );
        // Global: all eight values, population std.
        let all = [1.0f64, 2.0, 3.0, 4.0, 10.0, 10.0, 10.0, 14.0];
        let var = all.iter().map(|v| (v - 6.75).powi(2)).sum::<f64>() / 8.0;
        let g = stats(&clips, AudioNormalisation::Global);
        assert_eq!(g.mean, 6.75);
        assert!((f64::from(g.std) - var.sqrt()).abs() < 1e-6, "{g:?}");
        // Silence alone does not divide by zero.
        let silent = stats(&[Moments::of(&[-100.0; 8])], AudioNormalisation::PerClip);
        assert_eq!((silent.mean, silent.std), (-100.0, 1.0));
    }

    #[test]
    fn frames_outside_a_clip_are_zero_after_normalisation() {
        let f = Features {
            n_mels: 1,
            frames: 2,
            data: vec![3.0, 5.0],
        };
        let mut out = Vec::new();
        Stats {
            mean: 1.0,
            std: 2.0,
        }
        .window(&f, -1, 4, &mut out);
        assert_eq!(out, [0.0, 1.0, 2.0, 0.0]);
    }
}
