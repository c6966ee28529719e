//! A split of an image folder: its images cropped to the model's square input (the
//! centre for evaluation; a random resized crop and flip for training, as declared),
//! normalised per channel, as a batch.

use std::sync::Arc;

use candle_core::{Device, Tensor};
use image::DynamicImage;
use image::imageops::FilterType;
use rand::Rng;
use rand_chacha::ChaCha8Rng;

use super::store::FolderStore;
use crate::config::ImageAugment;
use crate::data::image::Normalize;
use crate::data::{Batch, DataError, Split};

/// torchvision's `RandomResizedCrop` defaults: area fraction and aspect ratio ranges.
const SCALE: (f64, f64) = (0.08, 1.0);
const RATIO: (f64, f64) = (3.0 / 4.0, 4.0 / 3.0);

/// Some images of a store, served at `size x size`.
pub struct FolderSplit {
    store: Arc<FolderStore>,
    indices: Vec<usize>,
    size: u32,
    norm: Normalize,
    augment: Vec<ImageAugment>,
}

/// A crop: top, left, height, width.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Crop {
    top: u32,
    left: u32,
    height: u32,
    width: u32,
}

impl FolderSplit {
    pub fn new(
        store: Arc<FolderStore>,
        indices: Vec<usize>,
        size: u32,
        norm: Normalize,
        augment: Vec<ImageAugment>,
    ) -> Self {
        FolderSplit {
            store,
            indices,
            size,
            norm,
            augment,
        }
    }

    /// One image as `size x size x channels` bytes, and whether to mirror it.
    fn crop(&self, k: usize, rng: Option<&mut ChaCha8Rng>) -> Result<(Vec<u8>, bool), DataError> {
        let (pixels, h, w) = self.store.image(k);
        let c = self.store.channels;
        let Some(rng) = rng else {
            return Ok((cut(pixels, w, c, centre(h, w, self.size)), false));
        };
        let mut out = None;
        let mut flip = false;
        for a in &self.augment {
            match a {
                ImageAugment::RandomResizedCrop => {
                    let crop = random_crop(h, w, rng);
                    out = Some(resize(cut(pixels, w, c, crop), crop, c, self.size)?);
                }
                ImageAugment::HorizontalFlip => flip = rng.random_bool(0.5),
            }
        }
        let out = out.unwrap_or_else(|| cut(pixels, w, c, centre(h, w, self.size)));
        Ok((out, flip))
    }
}

impl Split for FolderSplit {
    fn len(&self) -> usize {
        self.indices.len()
    }

    fn batch(
        &self,
        indices: &[usize],
        mut augment: Option<&mut ChaCha8Rng>,
        device: &Device,
    ) -> Result<Batch, DataError> {
        let (c, s) = (self.store.channels, self.size as usize);
        let mut out = Vec::with_capacity(indices.len() * c * s * s);
        let mut labels = Vec::with_capacity(indices.len());
        for &i in indices {
            let &k = self.indices.get(i).ok_or(DataError::Index {
                index: i,
                len: self.indices.len(),
            })?;
            labels.push(self.store.labels[k]);
            let (hwc, flip) = self.crop(k, augment.as_deref_mut())?;
            for ch in 0..c {
                let (mean, std) = (self.norm.mean[ch], self.norm.std[ch]);
                for y in 0..s {
                    for x in 0..s {
                        let sx = if flip { s - 1 - x } else { x };
                        let raw = hwc[(y * s + sx) * c + ch];
                        out.push((f32::from(raw) / 255.0 - mean) / std);
                    }
                }
            }
        }
        let n = labels.len();
        Ok(Batch {
            inputs: Tensor::from_vec(out, (n, c, s, s), device)?,
            labels: Tensor::from_vec(labels, n, device)?,
            windows: None,
        })
    }

    /// Image folders are their own files: other frameworks read the tree itself.
    fn source_indices(&self) -> Option<&[usize]> {
        None
    }

    fn labels(&self) -> Vec<u32> {
        self.indices.iter().map(|&i| self.store.labels[i]).collect()
    }

    fn input_format(&self) -> crate::data::stimuli::InputFormat<'_> {
        crate::data::stimuli::InputFormat::Image {
            channels: self.store.channels,
            height: self.size as usize,
            width: self.size as usize,
            norm: &self.norm,
        }
    }
}

/// The centre `size` square, placed as torchvision's `CenterCrop` places it.
fn centre(h: u32, w: u32, size: u32) -> Crop {
    // Python's `round`: halves go to the even neighbour.
    let offset = |len: u32| (f64::from(len.saturating_sub(size)) / 2.0).round_ties_even() as u32;
    Crop {
        top: offset(h),
        left: offset(w),
        height: size.min(h),
        width: size.min(w),
    }
}

/// torchvision's `RandomResizedCrop.get_params`: ten tries at a random area and aspect
/// ratio, then the centre crop at the nearest allowed ratio.
fn random_crop(h: u32, w: u32, rng: &mut ChaCha8Rng) -> Crop {
    let area = f64::from(h) * f64::from(w);
    let (lo, hi) = (RATIO.0.ln(), RATIO.1.ln());
    for _ in 0..10 {
        let target = area * rng.random_range(SCALE.0..SCALE.1);
        let ratio = rng.random_range(lo..hi).exp();
        let cw = (target * ratio).sqrt().round() as u32;
        let ch = (target / ratio).sqrt().round() as u32;
        if 0 < cw && cw <= w && 0 < ch && ch <= h {
            return Crop {
                top: rng.random_range(0..=h - ch),
                left: rng.random_range(0..=w - cw),
                height: ch,
                width: cw,
            };
        }
    }
    let in_ratio = f64::from(w) / f64::from(h);
    let (ch, cw) = if in_ratio < RATIO.0 {
        ((f64::from(w) / RATIO.0).round() as u32, w)
    } else if in_ratio > RATIO.1 {
        (h, (f64::from(h) * RATIO.1).round() as u32)
    } else {
        (h, w)
    };
    Crop {
        top: (h - ch.min(h)) / 2,
        left: (w - cw.min(w)) / 2,
        height: ch.min(h),
        width: cw.min(w),
    }
}

/// The pixels of `crop` in an image `w` wide with `c` channels.
fn cut(pixels: &[u8], w: u32, c: usize, crop: Crop) -> Vec<u8> {
    let (w, cw) = (w as usize, crop.width as usize);
    let mut out = Vec::with_capacity(crop.height as usize * cw * c);
    for y in crop.top as usize..(crop.top + crop.height) as usize {
        let start = (y * w + crop.left as usize) * c;
        out.extend_from_slice(&pixels[start..start + cw * c]);
    }
    out
}

/// A crop resized to `size x size` (antialiased bilinear).
fn resize(hwc: Vec<u8>, crop: Crop, c: usize, size: u32) -> Result<Vec<u8>, DataError> {
    if (crop.height, crop.width) == (size, size) {
        return Ok(hwc);
    }
    let len = hwc.len();
    let bad = || DataError::Format {
        path: "<a random resized crop>".into(),
        what: format!("{len} bytes for a {}x{}x{c} crop", crop.height, crop.width),
    };
    let img = match c {
        1 => image::GrayImage::from_raw(crop.width, crop.height, hwc).map(DynamicImage::ImageLuma8),
        _ => image::RgbImage::from_raw(crop.width, crop.height, hwc).map(DynamicImage::ImageRgb8),
    }
    .ok_or_else(bad)?;
    Ok(img
        .resize_exact(size, size, FilterType::Triangle)
        .into_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    #[test]
    fn the_centre_crop_is_torchvisions() {
        assert_eq!(
            centre(256, 341, 224),
            Crop {
                top: 16,
                left: 58,
                height: 224,
                width: 224
            }
        );
        // (341 - 224) / 2 = 58.5 rounds to the even 58; (343 - 224) / 2 = 59.5 to 60.
        assert_eq!(centre(343, 256, 224).top, 60);
        assert_eq!(centre(28, 28, 28).top, 0);
    }

    #[test]
    fn random_crops_stay_inside_with_allowed_shapes() {
        let mut rng = ChaCha8Rng::seed_from_u64(1);
        for (h, w) in [(256, 341), (32, 32), (500, 40), (3, 3)] {
            for _ in 0..200 {
                let c = random_crop(h, w, &mut rng);
                assert!(c.height > 0 && c.width > 0);
                assert!(
                    c.top + c.height <= h && c.left + c.width <= w,
                    "{c:?} in {h}x{w}"
                );
            }
        }
    }

    #[test]
    fn cut_takes_the_rows_of_the_crop() {
        // 3 wide, 2 high, 1 channel: 0 1 2 / 3 4 5.
        let px: Vec<u8> = (0..6).collect();
        let crop = Crop {
            top: 1,
            left: 1,
            height: 1,
            width: 2,
        };
        assert_eq!(cut(&px, 3, 1, crop), vec![4, 5]);
    }
}
