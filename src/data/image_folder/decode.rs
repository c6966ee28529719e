//! One file to stored pixels: decoded by content (a PNG named .jpg still reads), turned
//! upright by its EXIF orientation, checked against the data set's colour, and resized
//! so that its shorter side is the stored size.

use std::path::Path;

use image::DynamicImage;
use image::imageops::FilterType;

use super::exif;
use crate::config::Colour;
use crate::data::DataError;

/// What every image is turned into.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Target {
    pub colour: Colour,
    pub convert_grey: bool,
    /// The shorter side after resizing.
    pub shorter: u32,
}

/// An image as stored: `height x width x channels`, interleaved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decoded {
    pub height: u32,
    pub width: u32,
    pub pixels: Vec<u8>,
}

/// Decodes `bytes`, read from `path`.
pub fn decode(path: &Path, bytes: &[u8], target: Target) -> Result<Decoded, DataError> {
    let bad = |what: String| DataError::Format {
        path: path.to_path_buf(),
        what,
    };
    let img = image::load_from_memory(bytes)
        .map_err(|e| bad(format!("cannot be decoded as a JPEG or PNG image ({e})")))?;
    let img = match jpeg_orientation(bytes) {
        Some(o) => exif::apply(img, o),
        None => img,
    };
    let colour = img.color().has_color();
    let img = match (target.colour, colour) {
        (Colour::Rgb, true) => DynamicImage::ImageRgb8(img.to_rgb8()),
        (Colour::Rgb, false) if target.convert_grey => DynamicImage::ImageRgb8(img.to_rgb8()),
        (Colour::Rgb, false) => {
            return Err(bad(
                "a greyscale image in a colour data set: convert it to RGB, or set \
                 `image.convert_grey: true` to replicate greyscale images to three channels, \
                 or `image.colour: grey` if the data set is greyscale"
                    .into(),
            ));
        }
        (Colour::Grey, false) => DynamicImage::ImageLuma8(img.to_luma8()),
        (Colour::Grey, true) => {
            return Err(bad(
                "a colour image in a greyscale data set (`image.colour: grey`): convert it to \
                 greyscale, or set `image.colour: rgb`"
                    .into(),
            ));
        }
    };
    let (w, h) = resized(img.width(), img.height(), target.shorter);
    let img = if (w, h) == (img.width(), img.height()) {
        img
    } else {
        // The triangle filter widens with the scale factor: antialiased bilinear, as PIL's.
        img.resize_exact(w, h, FilterType::Triangle)
    };
    Ok(Decoded {
        height: h,
        width: w,
        pixels: img.into_bytes(),
    })
}

/// The size with the shorter side at `shorter` and the aspect ratio kept, the longer side
/// truncated as torchvision's `Resize(int)` does.
pub fn resized(width: u32, height: u32, shorter: u32) -> (u32, u32) {
    let long = |long: u32, short: u32| -> u32 {
        let scaled = u64::from(shorter) * u64::from(long) / u64::from(short.max(1));
        u32::try_from(scaled).unwrap_or(u32::MAX).max(1)
    };
    if width <= height {
        (shorter, long(height, width))
    } else {
        (long(width, height), shorter)
    }
}

/// The EXIF orientation of a JPEG (headers only); `None` for other formats.
fn jpeg_orientation(bytes: &[u8]) -> Option<exif::Orientation> {
    if !bytes.starts_with(&[0xFF, 0xD8, 0xFF]) {
        return None;
    }
    let mut decoder = jpeg_decoder::Decoder::new(bytes);
    // A header that does not read is the full decode's to report; this only looks.
    decoder.read_info().ok()?;
    exif::orientation(decoder.exif_data()?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resized_keeps_the_aspect_ratio_and_truncates() {
        assert_eq!(resized(500, 375, 256), (341, 256));
        assert_eq!(resized(375, 500, 256), (256, 341));
        assert_eq!(resized(28, 28, 28), (28, 28));
        assert_eq!(resized(10, 30, 5), (5, 15));
    }
}
