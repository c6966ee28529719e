//! A split of small images held in memory as bytes (CIFAR, Fashion-MNIST), normalised
//! per channel and optionally augmented when a batch is built.

use std::sync::Arc;

use candle_core::{Device, Tensor};
use rand::Rng;
use rand_chacha::ChaCha8Rng;

use crate::data::{Batch, DataError, Split};

/// The pixels of every image of a file set, `C x H x W` planes per image, and labels.
#[derive(Debug)]
pub struct ImageStore {
    pub channels: usize,
    pub height: usize,
    pub width: usize,
    pub pixels: Vec<u8>,
    pub labels: Vec<u32>,
}

impl ImageStore {
    pub fn len(&self) -> usize {
        self.labels.len()
    }

    pub fn is_empty(&self) -> bool {
        self.labels.is_empty()
    }

    fn image_size(&self) -> usize {
        self.channels * self.height * self.width
    }
}

/// Training-time augmentation of an image split.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Augment {
    None,
    /// Random crop of the original size from the image zero-padded by `pad` on each
    /// side, then a horizontal flip with probability 1/2 (torchvision's `RandomCrop`
    /// then `RandomHorizontalFlip`, before `Normalize`).
    CropFlip {
        pad: usize,
    },
}

/// Per-channel normalisation `(x / 255 - mean) / std`.
#[derive(Debug, Clone, PartialEq)]
pub struct Normalize {
    pub mean: Vec<f32>,
    pub std: Vec<f32>,
}

/// Some images of a store.
pub struct ImageSplit {
    store: Arc<ImageStore>,
    indices: Vec<usize>,
    norm: Normalize,
    augment: Augment,
}

impl ImageSplit {
    pub fn new(
        store: Arc<ImageStore>,
        indices: Vec<usize>,
        norm: Normalize,
        augment: Augment,
    ) -> Self {
        ImageSplit {
            store,
            indices,
            norm,
            augment,
        }
    }
}

impl Split for ImageSplit {
    fn input_format(&self) -> crate::data::stimuli::InputFormat<'_> {
        crate::data::stimuli::InputFormat::Image {
            channels: self.store.channels,
            height: self.store.height,
            width: self.store.width,
            norm: &self.norm,
        }
    }

    fn labels(&self) -> Vec<u32> {
        self.indices.iter().map(|&i| self.store.labels[i]).collect()
    }

    fn len(&self) -> usize {
        self.indices.len()
    }

    fn source_indices(&self) -> Option<&[usize]> {
        Some(&self.indices)
    }

    fn batch(
        &self,
        indices: &[usize],
        mut augment: Option<&mut ChaCha8Rng>,
        device: &Device,
    ) -> Result<Batch, DataError> {
        let s = &*self.store;
        let (c, h, w) = (s.channels, s.height, s.width);
        let size = s.image_size();
        let mut out = Vec::with_capacity(indices.len() * size);
        let mut labels = Vec::with_capacity(indices.len());
        for &i in indices {
            let &k = self.indices.get(i).ok_or(DataError::Index {
                index: i,
                len: self.indices.len(),
            })?;
            let img = &s.pixels[k * size..(k + 1) * size];
            labels.push(s.labels[k]);
            // (dy, dx) of the crop in the padded image and the flip; identity without augmentation.
            let (pad, dy, dx, flip) = match (self.augment, augment.as_deref_mut()) {
                (Augment::CropFlip { pad }, Some(rng)) => {
                    let dy = rng.random_range(0..=2 * pad);
                    let dx = rng.random_range(0..=2 * pad);
                    (pad, dy, dx, rng.random_bool(0.5))
                }
                _ => (0, 0, 0, false),
            };
            for ch in 0..c {
                let (mean, std) = (self.norm.mean[ch], self.norm.std[ch]);
                let plane = &img[ch * h * w..(ch + 1) * h * w];
                for y in 0..h {
                    let sy = (y + dy).checked_sub(pad).filter(|&v| v < h);
                    for x in 0..w {
                        let xc = if flip { w - 1 - x } else { x };
                        let sx = (xc + dx).checked_sub(pad).filter(|&v| v < w);
                        // Padding is a raw 0 pixel, normalised like any other.
                        let raw = match (sy, sx) {
                            (Some(sy), Some(sx)) => plane[sy * w + sx],
                            _ => 0,
                        };
                        out.push((raw as f32 / 255.0 - mean) / std);
                    }
                }
            }
        }
        let n = labels.len();
        Ok(Batch {
            inputs: Tensor::from_vec(out, (n, c, h, w), device)?,
            labels: Tensor::from_vec(labels, n, device)?,
            windows: None,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    fn store() -> Arc<ImageStore> {
        // One 1x3x3 image with pixels 1..9 (times 10), label 4.
        Arc::new(ImageStore {
            channels: 1,
            height: 3,
            width: 3,
            pixels: (1..=9).map(|v| v * 10).collect(),
            labels: vec![4],
        })
    }

    #[test]
    fn normalises_without_augmentation() {
        let norm = Normalize {
            mean: vec![0.5],
            std: vec![0.25],
        };
        let split = ImageSplit::new(store(), vec![0], norm, Augment::CropFlip { pad: 1 });
        let mut rng = ChaCha8Rng::seed_from_u64(0);
        // Evaluation ignores the augmentation.
        let b = split.batch(&[0], None, &Device::Cpu).unwrap();
        let v: Vec<f32> = b.inputs.flatten_all().unwrap().to_vec1().unwrap();
        assert!((v[0] - (10.0 / 255.0 - 0.5) / 0.25).abs() < 1e-6);
        assert_eq!(b.labels.to_vec1::<u32>().unwrap(), vec![4]);
        assert!(split.batch(&[1], Some(&mut rng), &Device::Cpu).is_err());
    }

    #[test]
    fn crops_and_flips_are_shifts_of_the_padded_image() {
        let norm = Normalize {
            mean: vec![0.0],
            std: vec![1.0 / 255.0],
        };
        let split = ImageSplit::new(store(), vec![0], norm, Augment::CropFlip { pad: 1 });
        let mut rng = ChaCha8Rng::seed_from_u64(3);
        let mut seen = std::collections::BTreeSet::new();
        for _ in 0..200 {
            let b = split.batch(&[0], Some(&mut rng), &Device::Cpu).unwrap();
            let v: Vec<i64> = b
                .inputs
                .flatten_all()
                .unwrap()
                .to_vec1::<f32>()
                .unwrap()
                .iter()
                .map(|x| x.round() as i64)
                .collect();
            // Every output is a 3x3 window of the zero-padded 5x5 image, maybe mirrored.
            let padded = |y: i64, x: i64| {
                if (0..3).contains(&y) && (0..3).contains(&x) {
                    (y * 3 + x + 1) * 10
                } else {
                    0
                }
            };
            let ok = (0..3).any(|dy| {
                (0..3).any(|dx| {
                    [false, true].iter().any(|&f| {
                        (0..9).all(|k| {
                            let (y, x) = (k / 3, k % 3);
                            let xc = if f { 2 - x } else { x };
                            v[k as usize] == padded(y + dy - 1, xc + dx - 1)
                        })
                    })
                })
            });
            assert!(ok, "{v:?}");
            seen.insert(v);
        }
        // 9 crops x 2 flips, with coincidences only for all-zero corners: most are seen.
        assert!(seen.len() >= 15, "{}", seen.len());
    }
}
