//! Figure 2 of the paper: the six channel layouts, and single-layout plots for
//! `topo positions`. Points are coloured by channel index (viridis) so the order is
//! visible; 3D layouts are drawn in a fixed oblique view with far points smaller and
//! paler. PNG or SVG, chosen by the file's extension, written atomically.

use std::f64::consts::PI;
use std::path::{Path, PathBuf};

use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::text_anchor;

use super::plot::{FAMILY, GlyphText};
use crate::results::{ResultsError, write_atomic_with};
use crate::topography::{Layout, Positions, PositionsError, positions};

/// Why a layout figure could not be written.
#[derive(Debug, thiserror::Error)]
pub enum LayoutPlotError {
    #[error("{path}: unknown image format (use .png or .svg)")]
    Format { path: PathBuf },
    #[error("{path}: cannot draw: {message}")]
    Draw { path: PathBuf, message: String },
    #[error("{path}: cannot write")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(transparent)]
    Positions(#[from] PositionsError),
}

/// The paper's six organisations, in figure 2's order.
const FIGURE2: [(Layout, usize, &str); 6] = [
    (Layout::Grid, 2, "2D grid"),
    (Layout::Nested, 2, "2D nested grid"),
    (Layout::Sphere, 2, "Circle"),
    (Layout::Grid, 3, "3D grid"),
    (Layout::Nested, 3, "3D nested grid"),
    (Layout::Sphere, 3, "Sphere"),
];

const PANEL: u32 = 480;
const LEGEND: u32 = 70;

/// What a figure shows.
enum Figure {
    /// Figure 2: six panels and the colour legend.
    Six {
        panels: Vec<(Positions, String)>,
        channels: usize,
    },
    /// One layout and the colour legend.
    One { positions: Positions, title: String },
}

/// Draws figure 2 (all six layouts for `channels` channels, 2 x 3 panels) to `path`.
pub fn draw_layouts(path: &Path, channels: usize) -> Result<(), LayoutPlotError> {
    let panels = FIGURE2
        .iter()
        .map(|&(layout, dim, title)| Ok((positions(layout, dim, channels)?, title.to_owned())))
        .collect::<Result<Vec<_>, PositionsError>>()?;
    render(
        path,
        (3 * PANEL, 2 * PANEL + LEGEND),
        &Figure::Six { panels, channels },
    )
}

/// Draws any positions (1, 2 or 3 coordinates per channel) to `path`.
pub fn draw_positions(path: &Path, p: &Positions, title: &str) -> Result<(), LayoutPlotError> {
    let side = (1.5 * PANEL as f64) as u32;
    render(
        path,
        (side, side + LEGEND),
        &Figure::One {
            positions: p.clone(),
            title: title.to_owned(),
        },
    )
}

pub(super) type DrawResult = Result<(), String>;

/// A figure drawn point by point on any plotters backend (PNG or SVG).
pub(super) trait Drawing {
    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> DrawResult;
}

impl Drawing for Figure {
    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> DrawResult {
        draw_figure(root, self)
    }
}

/// Picks the backend by extension and draws into a temporary file beside `path`, renamed
/// over it (see [`write_atomic_with`]) so a reader never sees half a figure.
pub(super) fn render(
    path: &Path,
    size: (u32, u32),
    figure: &impl Drawing,
) -> Result<(), LayoutPlotError> {
    let ext = path
        .extension()
        .and_then(|e| e.to_str())
        .map(str::to_ascii_lowercase);
    let png = match ext.as_deref() {
        Some("png") => true,
        Some("svg") => false,
        _ => {
            return Err(LayoutPlotError::Format {
                path: path.to_path_buf(),
            });
        }
    };
    let draw_error = |message: String| LayoutPlotError::Draw {
        path: path.to_path_buf(),
        message,
    };
    super::plot::ensure_fonts().map_err(|e| draw_error(e.to_string()))?;
    // The drawing's own error, kept apart from the file system's.
    let mut failed = None;
    let written = write_atomic_with(path, |tmp| {
        let drawn = if png {
            let root = GlyphText(BitMapBackend::new(tmp, size)).into_drawing_area();
            figure
                .draw(&root)
                .and_then(|()| root.present().map_err(|e| e.to_string()))
        } else {
            let root = SVGBackend::new(tmp, size).into_drawing_area();
            figure
                .draw(&root)
                .and_then(|()| root.present().map_err(|e| e.to_string()))
        };
        drawn.map_err(|message| {
            failed = Some(message);
            std::io::Error::other("drawing failed")
        })
    });
    match (written, failed) {
        (_, Some(message)) => Err(draw_error(message)),
        (Err(ResultsError::Write { source, .. }), None) => Err(LayoutPlotError::Io {
            path: path.to_path_buf(),
            source,
        }),
        (Err(other), None) => Err(draw_error(other.to_string())),
        (Ok(()), None) => Ok(()),
    }
}

fn draw_figure<DB: DrawingBackend>(root: &DrawingArea<DB, Shift>, figure: &Figure) -> DrawResult {
    root.fill(&WHITE).map_err(|e| e.to_string())?;
    let (w, h) = root.dim_in_pixel();
    let (body, legend) = root.split_vertically(h - LEGEND);
    match figure {
        Figure::Six { panels, channels } => {
            for (area, (p, title)) in body.split_evenly((2, 3)).iter().zip(panels) {
                draw_panel(area, p, title)?;
            }
            draw_legend(&legend, *channels, w)
        }
        Figure::One { positions, title } => {
            draw_panel(&body, positions, title)?;
            draw_legend(&legend, positions.n(), w)
        }
    }
}

/// Colour of channel `i` of `n`.
fn channel_colour(i: usize, n: usize) -> RGBColor {
    let h = if n > 1 {
        i as f64 / (n - 1) as f64
    } else {
        0.0
    };
    viridis(h)
}

/// Matplotlib's viridis colour map at `h` in `[0, 1]`, interpolated between eight stops.
fn viridis(h: f64) -> RGBColor {
    const STOPS: [(u8, u8, u8); 8] = [
        (68, 1, 84),
        (70, 50, 127),
        (54, 92, 141),
        (39, 127, 143),
        (31, 162, 136),
        (74, 194, 110),
        (160, 219, 57),
        (254, 232, 37),
    ];
    let x = h.clamp(0.0, 1.0) * (STOPS.len() - 1) as f64;
    let k = (x.floor() as usize).min(STOPS.len() - 2);
    let f = x - k as f64;
    let (a, b) = (STOPS[k], STOPS[k + 1]);
    let mix = |p: u8, q: u8| (p as f64 + (q as f64 - p as f64) * f).round() as u8;
    RGBColor(mix(a.0, b.0), mix(a.1, b.1), mix(a.2, b.2))
}

/// Mixes `c` with white: `pale = 0` keeps it, `1` is white.
pub(super) fn paler(c: RGBColor, pale: f64) -> RGBColor {
    let mix = |v: u8| (v as f64 + (255.0 - v as f64) * pale).round() as u8;
    RGBColor(mix(c.0), mix(c.1), mix(c.2))
}

/// A line segment in the unit square.
type Segment = ((f64, f64), (f64, f64));

/// A projected point: screen x, screen y, depth.
type Point3 = (f64, f64, f64);

/// A point on screen: position in panel units, depth (0 near .. 1 far), channel.
struct Dot {
    x: f64,
    y: f64,
    depth: f64,
    channel: usize,
}

/// One panel: its title, then the layout in a square of equal aspect.
fn draw_panel<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    p: &Positions,
    title: &str,
) -> DrawResult {
    let area = area
        .titled(title, (FAMILY, 26).into_font().color(&BLACK))
        .map_err(|e| e.to_string())?;
    let (w, h) = area.dim_in_pixel();
    let side = w.min(h) as f64 * 0.9;
    let (ox, oy) = ((w as f64 - side) / 2.0, (h as f64 - side) / 2.0);
    let (dots, frame) = project(p);
    let to_px = |x: f64, y: f64| {
        (
            (ox + x * side).round() as i32,
            (oy + (1.0 - y) * side).round() as i32,
        )
    };
    let line = |a: (f64, f64), b: (f64, f64)| {
        PathElement::new(
            vec![to_px(a.0, a.1), to_px(b.0, b.1)],
            RGBColor(200, 200, 200).stroke_width(1),
        )
    };
    for (a, b) in frame {
        area.draw(&line(a, b)).map_err(|e| e.to_string())?;
    }
    let n = p.n();
    let radius = (side * 0.2 / (n as f64).sqrt()).clamp(2.5, 10.0);
    let mut order: Vec<&Dot> = dots.iter().collect();
    // Far points first, so near ones cover them.
    order.sort_by(|a, b| b.depth.total_cmp(&a.depth));
    for d in order {
        let r = radius * (1.0 - 0.45 * d.depth);
        let colour = paler(channel_colour(d.channel, n), 0.55 * d.depth);
        let centre = to_px(d.x, d.y);
        area.draw(&Circle::new(
            centre,
            r.round().max(1.0) as i32,
            colour.filled(),
        ))
        .map_err(|e| e.to_string())?;
        area.draw(&Circle::new(
            centre,
            r.round().max(1.0) as i32,
            paler(BLACK, 0.35 + 0.5 * d.depth).stroke_width(1),
        ))
        .map_err(|e| e.to_string())?;
    }
    Ok(())
}

/// Maps positions into the unit square (2D as they are; 3D through an oblique view) and
/// returns the frame to draw behind them (the unit box, or the sphere's outline).
fn project(p: &Positions) -> (Vec<Dot>, Vec<Segment>) {
    let n = p.n();
    match p.dim() {
        1 => {
            let (lo, hi) = bounds(p, 0);
            let span = if hi > lo { hi - lo } else { 1.0 };
            let dots = p.iter().enumerate().map(|(i, c)| Dot {
                x: 0.05 + 0.9 * (c[0] - lo) / span,
                y: 0.5,
                depth: 0.0,
                channel: i,
            });
            (dots.collect(), vec![((0.05, 0.5), (0.95, 0.5))])
        }
        2 => {
            let ((lx, hx), (ly, hy)) = (bounds(p, 0), bounds(p, 1));
            let span = (hx - lx).max(hy - ly).max(1e-12);
            let (cx, cy) = ((lx + hx) / 2.0, (ly + hy) / 2.0);
            let f = |x: f64, y: f64| (0.5 + 0.9 * (x - cx) / span, 0.5 + 0.9 * (y - cy) / span);
            let dots = p.iter().enumerate().map(|(i, c)| {
                let (x, y) = f(c[0], c[1]);
                Dot {
                    x,
                    y,
                    depth: 0.0,
                    channel: i,
                }
            });
            (dots.collect(), Vec::new())
        }
        _ => {
            // Centre on the bounding box, view from azimuth -40 deg, elevation 20 deg
            // (close to the reference's own figure script).
            let ((lx, hx), (ly, hy), (lz, hz)) = (bounds(p, 0), bounds(p, 1), bounds(p, 2));
            let centre = [(lx + hx) / 2.0, (ly + hy) / 2.0, (lz + hz) / 2.0];
            let half = [(hx - lx) / 2.0, (hy - ly) / 2.0, (hz - lz) / 2.0];
            let sphere = is_sphere(p);
            let view = View::new(-40.0, 20.0);
            let raw: Vec<(f64, f64, f64)> = p
                .iter()
                .map(|c| view.apply([c[0] - centre[0], c[1] - centre[1], c[2] - centre[2]]))
                .collect();
            let frame3: Vec<([f64; 3], [f64; 3])> = if sphere {
                circle_frame(half[0].max(half[1]).max(half[2]))
            } else {
                box_frame(half)
            };
            let frame_raw: Vec<(Point3, Point3)> = frame3
                .iter()
                .map(|(a, b)| (view.apply(*a), view.apply(*b)))
                .collect();
            let all = raw.iter().chain(frame_raw.iter().flat_map(|(a, b)| [a, b]));
            let (mut x0, mut x1, mut y0, mut y1, mut z0, mut z1) =
                (f64::MAX, f64::MIN, f64::MAX, f64::MIN, f64::MAX, f64::MIN);
            for &(x, y, z) in all {
                (x0, x1, y0, y1, z0, z1) = (
                    x0.min(x),
                    x1.max(x),
                    y0.min(y),
                    y1.max(y),
                    z0.min(z),
                    z1.max(z),
                );
            }
            let span = (x1 - x0).max(y1 - y0).max(1e-12);
            let depth_span = (z1 - z0).max(1e-12);
            let fit = |(x, y, _): (f64, f64, f64)| {
                (
                    0.5 + 0.95 * (x - (x0 + x1) / 2.0) / span,
                    0.5 + 0.95 * (y - (y0 + y1) / 2.0) / span,
                )
            };
            let dots = raw.iter().enumerate().map(|(i, &r)| {
                let (x, y) = fit(r);
                Dot {
                    x,
                    y,
                    depth: if n > 1 { (r.2 - z0) / depth_span } else { 0.0 },
                    channel: i,
                }
            });
            let frame = frame_raw
                .into_iter()
                .map(|(a, b)| (fit(a), fit(b)))
                .collect();
            (dots.collect(), frame)
        }
    }
}

/// True when every point is at the same distance from the centroid (a sphere layout).
fn is_sphere(p: &Positions) -> bool {
    let n = p.n() as f64;
    let c: Vec<f64> = (0..p.dim())
        .map(|a| p.iter().map(|x| x[a]).sum::<f64>() / n)
        .collect();
    let r: Vec<f64> = p
        .iter()
        .map(|x| {
            x.iter()
                .zip(&c)
                .map(|(v, m)| (v - m) * (v - m))
                .sum::<f64>()
                .sqrt()
        })
        .collect();
    let (lo, hi) = r
        .iter()
        .fold((f64::MAX, f64::MIN), |(a, b), &v| (a.min(v), b.max(v)));
    p.n() > 4 && hi - lo < 0.05 * hi
}

fn bounds(p: &Positions, axis: usize) -> (f64, f64) {
    p.iter().fold((f64::MAX, f64::MIN), |(lo, hi), c| {
        (lo.min(c[axis]), hi.max(c[axis]))
    })
}

/// An oblique view: rotation about the vertical axis, then a tilt towards the viewer.
/// The third coordinate is drawn up, as in the reference's 3D figures.
struct View {
    az: f64,
    el: f64,
}

impl View {
    fn new(azimuth_deg: f64, elevation_deg: f64) -> Self {
        Self {
            az: azimuth_deg * PI / 180.0,
            el: elevation_deg * PI / 180.0,
        }
    }

    /// Screen x, screen y, depth (larger is farther).
    fn apply(&self, [x, y, z]: [f64; 3]) -> (f64, f64, f64) {
        let (sa, ca) = self.az.sin_cos();
        let (se, ce) = self.el.sin_cos();
        let sx = ca * x + sa * y;
        let toward = -sa * x + ca * y;
        (sx, ce * z - se * toward, ce * toward + se * z)
    }
}

/// The 12 edges of the box `[-h, h]`.
fn box_frame(h: [f64; 3]) -> Vec<([f64; 3], [f64; 3])> {
    let corner = |i: usize| {
        [
            if i & 1 == 0 { -h[0] } else { h[0] },
            if i & 2 == 0 { -h[1] } else { h[1] },
            if i & 4 == 0 { -h[2] } else { h[2] },
        ]
    };
    let mut edges = Vec::new();
    for i in 0..8usize {
        for bit in [1, 2, 4] {
            if i & bit == 0 {
                edges.push((corner(i), corner(i | bit)));
            }
        }
    }
    edges
}

/// The sphere's equator and two meridians, as short segments.
fn circle_frame(r: f64) -> Vec<([f64; 3], [f64; 3])> {
    let steps = 72;
    let mut out = Vec::new();
    for k in 0..steps {
        let (a, b) = (
            2.0 * PI * k as f64 / steps as f64,
            2.0 * PI * (k + 1) as f64 / steps as f64,
        );
        out.push((
            [r * a.cos(), r * a.sin(), 0.0],
            [r * b.cos(), r * b.sin(), 0.0],
        ));
        out.push((
            [r * a.cos(), 0.0, r * a.sin()],
            [r * b.cos(), 0.0, r * b.sin()],
        ));
        out.push((
            [0.0, r * a.cos(), r * a.sin()],
            [0.0, r * b.cos(), r * b.sin()],
        ));
    }
    out
}

/// A horizontal colour bar: channel 0 to channel n-1.
fn draw_legend<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    n: usize,
    width: u32,
) -> DrawResult {
    let bar_w = (width as f64 * 0.4) as i32;
    let x0 = (width as i32 - bar_w) / 2;
    let (y0, y1) = (12, 30);
    let err = |e: DrawingAreaErrorKind<DB::ErrorType>| e.to_string();
    for k in 0..bar_w {
        let c = viridis(k as f64 / (bar_w - 1).max(1) as f64);
        area.draw(&Rectangle::new(
            [(x0 + k, y0), (x0 + k + 1, y1)],
            c.filled(),
        ))
        .map_err(err)?;
    }
    area.draw(&Rectangle::new(
        [(x0, y0), (x0 + bar_w, y1)],
        BLACK.stroke_width(1),
    ))
    .map_err(err)?;
    let font = (FAMILY, 20).into_font().color(&BLACK);
    let left = font.pos(text_anchor::Pos::new(
        text_anchor::HPos::Right,
        text_anchor::VPos::Center,
    ));
    let right = font.pos(text_anchor::Pos::new(
        text_anchor::HPos::Left,
        text_anchor::VPos::Center,
    ));
    area.draw(&Text::new(
        "channel 0".to_owned(),
        (x0 - 10, (y0 + y1) / 2),
        left,
    ))
    .map_err(err)?;
    area.draw(&Text::new(
        format!("channel {}", n.saturating_sub(1)),
        (x0 + bar_w + 10, (y0 + y1) / 2),
        right,
    ))
    .map_err(err)?;
    Ok(())
}
