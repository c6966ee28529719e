//! Text on bitmaps, drawn with ab_glyph directly. plotters' own ab_glyph path places each
//! glyph without its left side bearing and on whole pixels, so words come out with
//! uneven gaps ("Tr aining"); this wrapper lays glyphs out in fractional pixels with
//! kerning, at the size and baseline plotters' freetype path used, and leaves every
//! other drawing call to the backend it wraps. SVG needs none of it: its text is text.

use ab_glyph::{Font, FontRef, PxScale, ScaleFont, point};
use plotters_backend::text_anchor::{HPos, VPos};
use plotters_backend::{
    BackendColor, BackendCoord, BackendStyle, BackendTextStyle, DrawingBackend, DrawingErrorKind,
};

use super::fonts::face;

/// Pixels per em for a plotters font size (plotters' convention: the size includes
/// line spacing of a quarter em).
fn em_of(size: f64) -> f32 {
    (size / 1.24) as f32
}

/// The face's scale for `em` pixels per em (ab_glyph scales by ascent minus descent).
fn scale_for(font: &FontRef<'static>, em: f32) -> PxScale {
    let upem = font.units_per_em().unwrap_or(1.0);
    PxScale::from(em * font.height_unscaled() / upem)
}

/// Width in pixels of `text`: advances plus kerning.
fn advance_width(font: &FontRef<'static>, scale: PxScale, text: &str) -> f32 {
    let scaled = font.as_scaled(scale);
    let mut x = 0.0;
    let mut prev = None;
    for c in text.chars() {
        let id = scaled.glyph_id(c);
        if let Some(p) = prev {
            x += scaled.kern(p, id);
        }
        x += scaled.h_advance(id);
        prev = Some(id);
    }
    x
}

/// The face of `style`, its pixels per em and its scale.
fn sized<S: BackendTextStyle, E: std::error::Error + Send + Sync>(
    style: &S,
) -> Result<(&'static FontRef<'static>, f32, PxScale), DrawingErrorKind<E>> {
    let font = face(style.style()).map_err(|e| DrawingErrorKind::FontError(Box::new(e)))?;
    let em = em_of(style.size());
    Ok((font, em, scale_for(font, em)))
}

/// A backend whose text is drawn by [`draw_text`](DrawingBackend::draw_text) here.
pub struct GlyphText<B>(pub B);

impl<B: DrawingBackend> DrawingBackend for GlyphText<B> {
    type ErrorType = B::ErrorType;

    fn get_size(&self) -> (u32, u32) {
        self.0.get_size()
    }

    fn ensure_prepared(&mut self) -> Result<(), DrawingErrorKind<B::ErrorType>> {
        self.0.ensure_prepared()
    }

    fn present(&mut self) -> Result<(), DrawingErrorKind<B::ErrorType>> {
        self.0.present()
    }

    fn draw_pixel(
        &mut self,
        point: BackendCoord,
        color: BackendColor,
    ) -> Result<(), DrawingErrorKind<B::ErrorType>> {
        self.0.draw_pixel(point, color)
    }

    fn draw_line<S: BackendStyle>(
        &mut self,
        from: BackendCoord,
        to: BackendCoord,
        style: &S,
    ) -> Result<(), DrawingErrorKind<B::ErrorType>> {
        self.0.draw_line(from, to, style)
    }

    fn draw_rect<S: BackendStyle>(
        &mut self,
        upper_left: BackendCoord,
        bottom_right: BackendCoord,
        style: &S,
        fill: bool,
    ) -> Result<(), DrawingErrorKind<B::ErrorType>> {
        self.0.draw_rect(upper_left, bottom_right, style, fill)
    }

    fn draw_path<S: BackendStyle, I: IntoIterator<Item = BackendCoord>>(
        &mut self,
        path: I,
        style: &S,
    ) -> Result<(), DrawingErrorKind<B::ErrorType>> {
        self.0.draw_path(path, style)
    }

    fn draw_circle<S: BackendStyle>(
        &mut self,
        center: BackendCoord,
        radius: u32,
        style: &S,
        fill: bool,
    ) -> Result<(), DrawingErrorKind<B::ErrorType>> {
        self.0.draw_circle(center, radius, style, fill)
    }

    fn fill_polygon<S: BackendStyle, I: IntoIterator<Item = BackendCoord>>(
        &mut self,
        vert: I,
        style: &S,
    ) -> Result<(), DrawingErrorKind<B::ErrorType>> {
        self.0.fill_polygon(vert, style)
    }

    fn estimate_text_size<S: BackendTextStyle>(
        &self,
        text: &str,
        style: &S,
    ) -> Result<(u32, u32), DrawingErrorKind<B::ErrorType>> {
        let (font, em, scale) = sized(style)?;
        let width = advance_width(font, scale, text);
        Ok((width.max(0.0) as u32, em as u32))
    }

    fn draw_text<S: BackendTextStyle>(
        &mut self,
        text: &str,
        style: &S,
        pos: BackendCoord,
    ) -> Result<(), DrawingErrorKind<B::ErrorType>> {
        let color = style.color();
        if color.alpha == 0.0 {
            return Ok(());
        }
        let (font, em, scale) = sized(style)?;
        let (width, height) = (advance_width(font, scale, text) as i32, em as i32);
        let dx = match style.anchor().h_pos {
            HPos::Left => 0,
            HPos::Right => -width,
            HPos::Center => -width / 2,
        };
        let dy = match style.anchor().v_pos {
            VPos::Top => 0,
            VPos::Center => -height / 2,
            VPos::Bottom => -height,
        };
        let transform = style.transform();
        let (w, h) = self.get_size();
        // The baseline sits 0.76 em below the top of the text's box, as in plotters.
        let baseline = 0.76 * em;
        let scaled = font.as_scaled(scale);
        let mut x = 0.0;
        let mut prev = None;
        for c in text.chars() {
            let id = scaled.glyph_id(c);
            if let Some(p) = prev {
                x += scaled.kern(p, id);
            }
            let glyph = id.with_scale_and_position(scale, point(x, baseline));
            if let Some(outline) = font.outline_glyph(glyph) {
                let bounds = outline.px_bounds();
                let mut first_error = None;
                outline.draw(|gx, gy, coverage| {
                    if coverage <= 0.0 || first_error.is_some() {
                        return;
                    }
                    let (px, py) = transform.transform(
                        bounds.min.x as i32 + gx as i32 + dx,
                        bounds.min.y as i32 + gy as i32 + dy,
                    );
                    let (px, py) = (pos.0 + px, pos.1 + py);
                    if px >= 0 && py >= 0 && (px as u32) < w && (py as u32) < h {
                        let ink = BackendColor {
                            alpha: color.alpha * f64::from(coverage.min(1.0)),
                            rgb: color.rgb,
                        };
                        if let Err(e) = self.0.draw_pixel((px, py), ink) {
                            first_error = Some(e);
                        }
                    }
                });
                if let Some(e) = first_error {
                    return Err(e);
                }
            }
            x += scaled.h_advance(id);
            prev = Some(id);
        }
        Ok(())
    }
}
