//! Channel positions: one point per output channel of a topographic layer, laid out as
//! in the reference implementation (coordinates and channel order, docs/reference.md).

use std::f64::consts::PI;

use super::Layout;

/// `n` points in `dim` dimensions, row-major: channel `i` is `coords[i*dim..(i+1)*dim]`.
#[derive(Debug, Clone, PartialEq)]
pub struct Positions {
    dim: usize,
    coords: Vec<f64>,
}

/// Why positions could not be built or read.
#[derive(Debug, thiserror::Error)]
pub enum PositionsError {
    #[error("a layout needs at least one channel")]
    NoChannels,
    #[error("dimension must be 1, 2 or 3, not {0}")]
    Dimension(usize),
    #[error("a sphere needs dimension 2 (a circle) or 3, not 1")]
    SphereInOneDimension,
    #[error("a sheet is 2D, not {0}D")]
    SheetNotIn2d(usize),
    #[error("{path}: cannot read")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}: no positions (the file has no data rows)")]
    Empty { path: String },
    #[error("{path}:{line}: expected {expected} coordinates (as on the first row), found {found}")]
    Ragged {
        path: String,
        line: usize,
        expected: usize,
        found: usize,
    },
    #[error("{path}:{line}: column {column}: `{text}` is not a number")]
    NotANumber {
        path: String,
        line: usize,
        column: usize,
        text: String,
    },
    #[error("{path}:{line}: column {column}: `{text}` is not finite")]
    NotFinite {
        path: String,
        line: usize,
        column: usize,
        text: String,
    },
    #[error("{path}:{line}: empty field in column {column}")]
    EmptyField {
        path: String,
        line: usize,
        column: usize,
    },
    #[error("{path}: {found} positions, but the layer has {expected} channels")]
    ChannelCount {
        path: String,
        expected: usize,
        found: usize,
    },
}

impl Positions {
    /// Builds positions from row-major coordinates; `coords.len()` must be a non-zero
    /// multiple of `dim`.
    pub fn from_rows(dim: usize, coords: Vec<f64>) -> Result<Self, PositionsError> {
        if dim == 0 {
            return Err(PositionsError::Dimension(0));
        }
        if coords.is_empty() || !coords.len().is_multiple_of(dim) {
            return Err(PositionsError::NoChannels);
        }
        Ok(Self { dim, coords })
    }

    /// Number of channels.
    pub fn n(&self) -> usize {
        self.coords.len() / self.dim
    }

    /// Number of coordinates per channel.
    pub fn dim(&self) -> usize {
        self.dim
    }

    /// Coordinates of channel `i` (panics like a slice if `i >= n`).
    pub fn point(&self, i: usize) -> &[f64] {
        &self.coords[i * self.dim..(i + 1) * self.dim]
    }

    /// All coordinates, row-major.
    pub fn coords(&self) -> &[f64] {
        &self.coords
    }

    /// Iterates over the channels' coordinates in channel order.
    pub fn iter(&self) -> impl Iterator<Item = &[f64]> {
        self.coords.chunks_exact(self.dim)
    }

    /// Checks that there is one position per channel of a layer with `channels`
    /// outputs; `source` names where the positions came from in the error.
    pub fn check_channels(&self, channels: usize, source: &str) -> Result<(), PositionsError> {
        if self.n() == channels {
            Ok(())
        } else {
            Err(PositionsError::ChannelCount {
                path: source.to_owned(),
                expected: channels,
                found: self.n(),
            })
        }
    }
}

/// Positions of `n` channels for a built-in layout in `dimension` (1, 2 or 3).
pub fn positions(layout: Layout, dimension: usize, n: usize) -> Result<Positions, PositionsError> {
    if !(1..=3).contains(&dimension) {
        return Err(PositionsError::Dimension(dimension));
    }
    if n == 0 {
        return Err(PositionsError::NoChannels);
    }
    let coords = match layout {
        Layout::Sheet if dimension == 2 => return super::sheet_positions(n),
        Layout::Sheet => return Err(PositionsError::SheetNotIn2d(dimension)),
        Layout::Grid => grid(dimension, n),
        Layout::Nested => nested(dimension, n),
        Layout::Sphere => match dimension {
            2 => circle(n),
            3 => fibonacci_sphere(n),
            _ => return Err(PositionsError::SphereInOneDimension),
        },
    };
    Positions::from_rows(dimension, coords)
}

/// The first `n` points of a `k^d` grid over `[0, 1]^d`, `k = ceil(n^(1/d))`.
fn grid(d: usize, n: usize) -> Vec<f64> {
    // `powf` then `ceil`, as the reference computes it: for perfect powers where the
    // root rounds just below the integer, the same `k` comes out.
    let k = ((n as f64).powf(1.0 / d as f64).ceil() as usize).max(1);
    let axis: Vec<f64> = (0..k)
        .map(|i| {
            if k == 1 {
                0.0
            } else {
                i as f64 / (k - 1) as f64
            }
        })
        .collect();
    let mut coords = Vec::with_capacity(n * d);
    for t in 0..n {
        // torch.meshgrid(indexing="xy") swaps the first two axes, hence this order.
        match d {
            1 => coords.push(axis[t]),
            2 => coords.extend([axis[t % k], axis[t / k]]),
            _ => coords.extend([axis[(t / k) % k], axis[t / (k * k)], axis[t % k]]),
        }
    }
    coords
}

/// Nested boxes shrinking about the centre, each contributing its vertices and edge
/// midpoints, until `n` points are placed.
fn nested(d: usize, n: usize) -> Vec<f64> {
    const FACTOR: f64 = 0.5;
    let mut bottom = vec![0.0; d];
    let mut top = vec![1.0; d];
    let mut coords = Vec::with_capacity(n * d);
    while coords.len() < n * d {
        coords.extend(box_points(&bottom, &top));
        for a in 0..d {
            let step = (1.0 - FACTOR) * (top[a] - bottom[a]) / 2.0;
            bottom[a] += step;
            top[a] -= step;
        }
    }
    coords.truncate(n * d);
    coords
}

/// The points of one box, in the reference's order.
fn box_points(b: &[f64], u: &[f64]) -> Vec<f64> {
    let mid = |a: usize| b[a] + (u[a] - b[a]) / 2.0;
    let face = |z: Option<f64>| {
        let (m0, m1) = (mid(0), mid(1));
        let xy = [
            (b[0], b[1]),
            (m0, b[1]),
            (u[0], b[1]),
            (b[0], m1),
            (u[0], m1),
            (b[0], u[1]),
            (m0, u[1]),
            (u[0], u[1]),
        ];
        xy.iter()
            .flat_map(move |&(x, y)| [Some(x), Some(y), z].into_iter().flatten())
            .collect::<Vec<_>>()
    };
    match b.len() {
        1 => vec![b[0], u[0]],
        2 => face(None),
        _ => {
            let mut pts = face(Some(b[2]));
            let m2 = mid(2);
            for (x, y) in [(b[0], b[1]), (u[0], b[1]), (b[0], u[1]), (u[0], u[1])] {
                pts.extend([x, y, m2]);
            }
            pts.extend(face(Some(u[2])));
            pts
        }
    }
}

/// `n` points evenly spaced on a circle of radius 0.5 centred at the origin.
fn circle(n: usize) -> Vec<f64> {
    (0..n)
        .flat_map(|t| {
            let angle = 2.0 * PI * t as f64 / n as f64;
            [0.5 * angle.cos(), 0.5 * angle.sin()]
        })
        .collect()
}

/// The Fibonacci sphere of radius 0.5: `y` runs from 1 down to -1 while the angle turns
/// by the golden angle.
fn fibonacci_sphere(n: usize) -> Vec<f64> {
    let golden = PI * (3.0 - 5f64.sqrt());
    (0..n)
        .flat_map(|t| {
            // A single channel sits at the pole where every larger sphere starts (the
            // reference divides 0 by 0 there).
            let y = if n == 1 {
                1.0
            } else {
                1.0 - 2.0 * t as f64 / (n - 1) as f64
            };
            let r = (1.0 - y * y).max(0.0).sqrt();
            let theta = golden * t as f64;
            [0.5 * theta.cos() * r, 0.5 * y, 0.5 * theta.sin() * r]
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grid_2d_of_nine_matches_the_reference_test() {
        let p = positions(Layout::Grid, 2, 9).unwrap();
        let expected = [
            0.0, 0.0, 0.5, 0.0, 1.0, 0.0, 0.0, 0.5, 0.5, 0.5, 1.0, 0.5, 0.0, 1.0, 0.5, 1.0, 1.0,
            1.0,
        ];
        assert_eq!(p.coords(), &expected);
    }

    #[test]
    fn grid_prefixes_agree() {
        // The reference's own property: fewer points are a prefix of the full grid.
        for d in 1..=3 {
            let full = positions(Layout::Grid, d, 10usize.pow(d as u32)).unwrap();
            let part = positions(Layout::Grid, d, 10usize.pow(d as u32) - 9).unwrap();
            assert_eq!(&full.coords()[..part.coords().len()], part.coords());
        }
    }

    #[test]
    fn nested_3d_first_box_has_twenty_points_on_its_edges() {
        let p = positions(Layout::Nested, 3, 21).unwrap();
        assert_eq!(p.point(8), &[0.0, 0.0, 0.5]);
        assert_eq!(p.point(19), &[1.0, 1.0, 1.0]);
        assert_eq!(p.point(20), &[0.25, 0.25, 0.25]);
    }

    #[test]
    fn errors() {
        assert!(matches!(
            positions(Layout::Grid, 2, 0),
            Err(PositionsError::NoChannels)
        ));
        assert!(matches!(
            positions(Layout::Sphere, 1, 4),
            Err(PositionsError::SphereInOneDimension)
        ));
        assert!(matches!(
            positions(Layout::Nested, 4, 4),
            Err(PositionsError::Dimension(4))
        ));
        assert_eq!(
            positions(Layout::Sphere, 3, 1).unwrap().coords(),
            &[0.0, 0.5, 0.0]
        );
    }
}
