//! Positions for each tapped layer of a run, from its placement (and, for TopoLoss,
//! its sheet).

use std::path::Path;

use crate::config::{LossMethod, Placement};
use crate::topography::{Layout, Norm, Positions, positions, read_positions_csv, sheet_positions};

use crate::train::EngineError;

/// The positions of each layer's channels and the norm to compare them with. Custom
/// layout files are relative to `config_dir`. TopoLoss's channels sit on its `h x w`
/// sheet (the 2D grid, which the configuration requires with it, when `C` is a square).
pub fn layer_positions(
    placement: &Placement,
    loss: LossMethod,
    channels: &[usize],
    config_dir: &Path,
) -> Result<(Vec<Positions>, Norm), EngineError> {
    if let (LossMethod::Topoloss { .. }, Placement::Builtin { norm, .. }) = (loss, placement) {
        let p = channels
            .iter()
            .map(|&c| sheet_positions(c))
            .collect::<Result<_, _>>()?;
        return Ok((p, *norm));
    }
    match placement {
        Placement::Builtin {
            layout,
            dimension,
            norm,
        } => {
            let p = channels
                .iter()
                .map(|&c| positions(*layout, usize::from(*dimension), c))
                .collect::<Result<_, _>>()?;
            Ok((p, *norm))
        }
        Placement::Custom { file, norm } => {
            // Like the built-in layouts, a layer of `c` channels takes the first `c`
            // points, so one file serves layers of every width up to its row count.
            let path = config_dir.join(file);
            let p = read_positions_csv(&path)?;
            let mut layers = Vec::with_capacity(channels.len());
            for &c in channels {
                if p.n() < c {
                    p.check_channels(c, &path.display().to_string())?;
                }
                let first = p.coords()[..c * p.dim()].to_vec();
                layers.push(Positions::from_rows(p.dim(), first)?);
            }
            Ok((layers, *norm))
        }
    }
}

/// The layout a baseline's topography is measured against: the paper's 2D grid.
pub fn reference_positions(channels: &[usize]) -> Result<Vec<Positions>, EngineError> {
    Ok(channels
        .iter()
        .map(|&c| positions(Layout::Grid, 2, c))
        .collect::<Result<_, _>>()?)
}
