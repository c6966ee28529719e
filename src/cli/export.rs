//! `topo export RUN --to DIR`: a finished run's best model for PyTorch (`python/topo_torch`).

use std::path::PathBuf;

use anyhow::Context;

use crate::results::RunDir;
use crate::train::export::export;

#[derive(Debug, clap::Args)]
pub struct ExportArgs {
    /// The run's folder (`results/<experiment>/runs/<run-id>`).
    pub run: PathBuf,
    /// Where to write `model.safetensors` (torchvision's names), `config.json` and
    /// `positions.json`.
    #[arg(long, value_name = "DIR")]
    pub to: PathBuf,
}

pub fn run(args: &ExportArgs) -> anyhow::Result<()> {
    // The results root holds the audio feature cache: <root>/<experiment>/runs/<id>.
    let root = args
        .run
        .ancestors()
        .nth(3)
        .map_or_else(|| PathBuf::from("results"), PathBuf::from);
    let exported = export(
        &RunDir::at(&args.run),
        &args.to,
        &crate::results::cache_dir(&root),
    )
    .with_context(|| format!("cannot export {}", args.run.display()))?;
    println!(
        "{}: {} tensors; load it with `topo_torch.load(\"{}\")` (pip install ./python)",
        args.to.display(),
        exported.tensors,
        args.to.display()
    );
    for f in &exported.files {
        println!("  {}", f.display());
    }
    Ok(())
}
