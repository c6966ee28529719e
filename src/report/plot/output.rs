//! Rendering a figure in memory and writing it atomically as PNG and SVG.

use std::path::{Path, PathBuf};

use plotters::prelude::*;

use super::draw::{draw_figure, figure_size};
use super::{GlyphText, LineFigure, ensure_fonts};
use crate::report::ReportError;
use crate::results::write_atomic;

/// Writes `stem.png` and `stem.svg`; returns both paths.
pub fn write_figure(figure: &LineFigure, stem: &Path) -> Result<Vec<PathBuf>, ReportError> {
    let (w, h) = figure_size(figure);
    let png = stem.with_extension("png");
    let plot_err = |path: &Path, message: String| ReportError::Plot {
        path: path.to_path_buf(),
        message,
    };
    ensure_fonts().map_err(|e| plot_err(&png, e.to_string()))?;

    let mut rgb = vec![0u8; w as usize * h as usize * 3];
    {
        let root = GlyphText(BitMapBackend::with_buffer(&mut rgb, (w, h))).into_drawing_area();
        draw_figure(root, figure).map_err(|m| plot_err(&png, m))?;
    }
    let bytes = encode_png(&rgb, w, h).map_err(|m| plot_err(&png, m))?;
    write_atomic(&png, &bytes)?;

    let svg = stem.with_extension("svg");
    let mut text = String::new();
    {
        let root = SVGBackend::with_string(&mut text, (w, h)).into_drawing_area();
        draw_figure(root, figure).map_err(|m| plot_err(&svg, m))?;
    }
    write_atomic(&svg, text.as_bytes())?;
    Ok(vec![png, svg])
}

fn encode_png(rgb: &[u8], w: u32, h: u32) -> Result<Vec<u8>, String> {
    let mut out = Vec::new();
    let mut encoder = png::Encoder::new(&mut out, w, h);
    encoder.set_color(png::ColorType::Rgb);
    encoder.set_depth(png::BitDepth::Eight);
    let mut writer = encoder.write_header().map_err(|e| e.to_string())?;
    writer.write_image_data(rgb).map_err(|e| e.to_string())?;
    writer.finish().map_err(|e| e.to_string())?;
    Ok(out)
}
