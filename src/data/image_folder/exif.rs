//! The orientation a camera recorded in a JPEG's EXIF block, so that a photo taken
//! sideways is trained upright, as every image viewer shows it.

/// EXIF orientations 2 to 8: how the stored pixels map to the upright image.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Orientation {
    FlipH,
    Rotate180,
    FlipV,
    /// Transposed: mirrored about the main diagonal.
    Transpose,
    Rotate90,
    Transverse,
    Rotate270,
}

const ORIENTATION_TAG: u16 = 0x0112;

/// The orientation in `tiff` (EXIF data from its TIFF header on), or `None` for
/// upright images, missing tags and EXIF too malformed to read (shown as stored, as
/// viewers do).
pub fn orientation(tiff: &[u8]) -> Option<Orientation> {
    let little = match tiff.get(..2)? {
        b"II" => true,
        b"MM" => false,
        _ => return None,
    };
    // Big-endian bytes of the field at `at`, `n` long, as a number.
    let read = |at: usize, n: usize| -> Option<u32> {
        let bytes = tiff.get(at..at + n)?;
        let ordered = |acc: u32, &b: &u8| (acc << 8) | u32::from(b);
        Some(if little {
            bytes.iter().rev().fold(0, ordered)
        } else {
            bytes.iter().fold(0, ordered)
        })
    };
    let u16_at = |at: usize| read(at, 2).map(|v| v as u16);
    let ifd = read(4, 4)? as usize;
    let entries = usize::from(u16_at(ifd)?);
    // Each entry: tag, type, count (12 bytes); a SHORT value sits in the first bytes of
    // the value field.
    let value = (0..entries)
        .map(|i| ifd + 2 + 12 * i)
        .find(|&at| u16_at(at) == Some(ORIENTATION_TAG))
        .and_then(|at| u16_at(at + 8))?;
    match value {
        2 => Some(Orientation::FlipH),
        3 => Some(Orientation::Rotate180),
        4 => Some(Orientation::FlipV),
        5 => Some(Orientation::Transpose),
        6 => Some(Orientation::Rotate90),
        7 => Some(Orientation::Transverse),
        8 => Some(Orientation::Rotate270),
        _ => None,
    }
}

/// Turns `img` upright.
pub fn apply(img: image::DynamicImage, o: Orientation) -> image::DynamicImage {
    match o {
        Orientation::FlipH => img.fliph(),
        Orientation::Rotate180 => img.rotate180(),
        Orientation::FlipV => img.flipv(),
        Orientation::Transpose => img.rotate90().fliph(),
        Orientation::Rotate90 => img.rotate90(),
        Orientation::Transverse => img.rotate270().fliph(),
        Orientation::Rotate270 => img.rotate270(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A TIFF header with one IFD entry: the orientation tag with `value`.
    pub fn tiff(value: u16, little: bool) -> Vec<u8> {
        let mut t = Vec::new();
        let u16b = |v: u16| {
            if little {
                v.to_le_bytes()
            } else {
                v.to_be_bytes()
            }
        };
        let u32b = |v: u32| {
            if little {
                v.to_le_bytes()
            } else {
                v.to_be_bytes()
            }
        };
        t.extend_from_slice(if little { b"II" } else { b"MM" });
        t.extend_from_slice(&u16b(42));
        t.extend_from_slice(&u32b(8));
        t.extend_from_slice(&u16b(1));
        t.extend_from_slice(&u16b(ORIENTATION_TAG));
        t.extend_from_slice(&u16b(3));
        t.extend_from_slice(&u32b(1));
        t.extend_from_slice(&u16b(value));
        t.extend_from_slice(&[0, 0]);
        t.extend_from_slice(&u32b(0));
        t
    }

    #[test]
    fn reads_both_byte_orders() {
        assert_eq!(orientation(&tiff(6, true)), Some(Orientation::Rotate90));
        assert_eq!(orientation(&tiff(8, false)), Some(Orientation::Rotate270));
        assert_eq!(orientation(&tiff(1, true)), None);
        assert_eq!(orientation(b"II*"), None);
        assert_eq!(orientation(&tiff(3, false)[..12]), None);
    }

    #[test]
    fn rotation_6_turns_a_sideways_photo_upright() {
        // Stored 2 wide x 1 high: [a, b]. Orientation 6 means "rotate 90° clockwise to view".
        let img = image::DynamicImage::ImageLuma8(
            image::GrayImage::from_raw(2, 1, vec![10, 20]).unwrap(),
        );
        let up = apply(img, Orientation::Rotate90).to_luma8();
        assert_eq!((up.width(), up.height()), (1, 2));
        assert_eq!(up.into_raw(), vec![10, 20]);
    }
}
