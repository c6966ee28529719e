//! `topo splits FILE --dataset NAME`: which examples of a data set's files each split
//! takes, as JSON, so that another framework (the PyTorch side of `just parity`) trains,
//! validates and tests on exactly the examples `topo` does.

use serde::Serialize;

use crate::config::DatasetKind;
use crate::data::{self, DataError};

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

/// An image folder's splits: each example's file and class.
#[derive(Serialize)]
struct FolderSplitsJson<'a> {
    dataset: &'a str,
    kind: DatasetKind,
    root: String,
    /// Class names; an example's class is its position here.
    classes: &'a [String],
    train: Vec<(String, u32)>,
    validation: Vec<(String, u32)>,
    test: Vec<(String, u32)>,
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
    if let (DatasetKind::ImageFolder, Some(image)) = (spec.kind, &spec.image) {
        let root = spec.root_or_default();
        let mut plan = data::image_folder::plan(&root, image, spec.limits())
            .map_err(|e| CliError::Failed(e.into()))?;
        if !plan.problems.is_empty() {
            let problems = std::mem::take(&mut plan.problems);
            return Err(CliError::Failed(DataError::from_each(problems).into()));
        }
        let files = |entries: &[data::image_folder::tree::Entry]| {
            entries
                .iter()
                .map(|e| (e.path.display().to_string(), e.class))
                .collect()
        };
        return print_json(&FolderSplitsJson {
            dataset: &args.dataset,
            kind: spec.kind,
            root: root.display().to_string(),
            classes: &plan.classes,
            train: files(&plan.train),
            validation: files(&plan.validation),
            test: files(&plan.test),
        });
    }
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
    print_json(&SplitsJson {
        dataset: &args.dataset,
        kind: spec.kind,
        root: spec.root_or_default().display().to_string(),
        train,
        validation,
        test,
    })
}

fn print_json(out: &impl Serialize) -> Result<(), CliError> {
    let json = serde_json::to_string(out)
        .map_err(|e| CliError::Failed(anyhow::anyhow!("cannot write the splits as JSON: {e}")))?;
    println!("{json}");
    Ok(())
}
