//! `topo splits FILE --dataset NAME`: which examples of a data set's files each split
//! takes, as JSON, so that another framework (the PyTorch side of `just parity`) trains,
//! validates and tests on exactly the examples `topo` does.

use serde::Serialize;

use crate::config::DatasetKind;
use crate::data;

use super::validate::load_experiment;
use super::{CliError, ExperimentArgs};

#[derive(Debug, clap::Args)]
pub struct SplitsArgs {
    #[command(flatten)]
    pub experiment: ExperimentArgs,
    /// The data set, by its name in the experiment's `datasets`.
    #[arg(long, value_name = "NAME")]
    pub dataset: String,
}

#[derive(Serialize)]
struct SplitsJson<'a> {
    dataset: &'a str,
    kind: DatasetKind,
    root: String,
    /// Indices into the training files, in the order `topo` holds them.
    train: &'a [usize],
    /// Indices into the training files: the held-out examples.
    validation: &'a [usize],
    /// Indices into the test files.
    test: &'a [usize],
}

pub fn run(args: &SplitsArgs) -> Result<(), CliError> {
    let loaded = load_experiment(&args.experiment)?;
    let file = args.experiment.file.display();
    let spec = loaded
        .experiment
        .defined_dataset(&args.dataset)
        .ok_or_else(|| {
            let names: Vec<&str> = loaded
                .experiment
                .experiment
                .datasets
                .keys()
                .map(String::as_str)
                .collect();
            CliError::Usage(format!(
                "no data set `{}` in {file}; it names: {}",
                args.dataset,
                names.join(", ")
            ))
        })?;
    let audio = || {
        CliError::Usage(format!(
            "`{}` is {}, whose examples are audio files named in its own lists, not positions \
             in one file: `topo splits` serves the image data sets",
            args.dataset,
            spec.kind.name()
        ))
    };
    // Refused before loading: an audio data set's load decodes every clip.
    if spec.kind.is_audio() {
        return Err(audio());
    }
    let cache_dir = crate::results::cache_dir(&args.experiment.results);
    let dataset = data::load(&spec, &cache_dir).map_err(|e| CliError::Failed(e.into()))?;
    let (Some(train), Some(validation), Some(test)) = (
        dataset.train.source_indices(),
        dataset.validation.source_indices(),
        dataset.test.source_indices(),
    ) else {
        return Err(audio());
    };
    let out = SplitsJson {
        dataset: &args.dataset,
        kind: spec.kind,
        root: spec.root_or_default().display().to_string(),
        train,
        validation,
        test,
    };
    let json = serde_json::to_string(&out)
        .map_err(|e| CliError::Failed(anyhow::anyhow!("cannot write the splits as JSON: {e}")))?;
    println!("{json}");
    Ok(())
}
