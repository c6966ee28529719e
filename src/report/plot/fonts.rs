//! The font every figure draws its text with: DejaVu Sans, built into the binary (the
//! `dejavu` crate), so drawing needs no system font and no C library to find one.

use std::sync::OnceLock;

use ab_glyph::FontRef;
use plotters::style::{FontStyle, register_font};

/// The family name the figures ask for.
pub const FAMILY: &str = "sans-serif";

/// The built-in font could not be parsed (a broken build of the `dejavu` crate).
#[derive(Debug, Clone, thiserror::Error)]
#[error("the built-in DejaVu Sans ({0}) is not a readable font")]
pub struct FontError(&'static str);

struct Faces {
    regular: FontRef<'static>,
    bold: FontRef<'static>,
}

/// Parses the faces and registers them with plotters (which sizes text with them),
/// once per process.
fn faces() -> Result<&'static Faces, FontError> {
    static FACES: OnceLock<Result<Faces, FontError>> = OnceLock::new();
    FACES
        .get_or_init(|| {
            let parse = |style: FontStyle, name: &'static str, bytes: &'static [u8]| {
                register_font(FAMILY, style, bytes).map_err(|_invalid| FontError(name))?;
                FontRef::try_from_slice(bytes).map_err(|_invalid| FontError(name))
            };
            Ok(Faces {
                regular: parse(FontStyle::Normal, "regular", dejavu::sans::regular())?,
                bold: parse(FontStyle::Bold, "bold", dejavu::sans::bold())?,
            })
        })
        .as_ref()
        .map_err(Clone::clone)
}

/// Makes the font ready; every drawing function calls this first.
pub fn ensure_fonts() -> Result<(), FontError> {
    faces().map(|_| ())
}

/// The face for `style` (bold, or regular for every other style).
pub fn face(style: FontStyle) -> Result<&'static FontRef<'static>, FontError> {
    let faces = faces()?;
    Ok(match style {
        FontStyle::Bold => &faces.bold,
        _ => &faces.regular,
    })
}
