//! The experiment language: typed YAML, loaded with `extends`, environment and
//! `--set` overrides, checked against the JSON schema and by meaning.
//!
//! Precedence, lowest first: the base of an `extends` chain, each file extending it,
//! `TOPO_SECTION__FIELD` environment variables, then `--set section.field=value`.

mod analyses;
mod check;
mod dataset;
mod diagnostic;
mod experiment;
mod image_folder;
mod lambda;
mod lambda_schedule;
mod layer_weights;
mod layers;
mod load;
mod locate;
mod loss;
mod model;
mod names;
mod objective;
mod pruning;
mod report;
mod resolve;
mod schema;
mod semantic;
mod slurm;
mod source;
mod tap;
mod topography;
mod training;
mod value;
mod yaml;

pub use analyses::{AnalysesSpec, Measure, ProbeSpec, ResponsePoint};
pub use dataset::{AudioNormalisation, DatasetKind, DatasetSpec, Limit, Limits, SplitLimits};
pub use diagnostic::{Diagnostic, Diagnostics, Origin, did_you_mean, edit_distance};
pub use experiment::{ExcludeRule, Experiment, Grid, PAPER_LAMBDAS};
pub use image_folder::{
    Colour, IMAGENET_MEAN, IMAGENET_STD, ImageAugment, ImageFolderSpec, ImageNormalisation,
    NamedNormalisation,
};
pub use lambda::{Lambda, NotALambda};
pub use lambda_schedule::LambdaSchedule;
pub use layer_weights::{LayerWeightProblem, LayerWeights};
pub use load::{ENV_PREFIX, LoadOptions, Loaded, load};
pub use loss::{
    AllChannels, Factor, LossForm, LossMethod, LossName, LossProblem, LossSpec, Neighbourhood,
    NeighbourhoodSize,
};
pub use model::{InitSpec, ModelKind, ModelSpec, Stem};
pub use names::{is_safe_char, safe_file_name};
pub use objective::{Objective, ObjectiveError};
pub use pruning::{ClipEvaluation, ProportionRange, Proportions, PruneMethod, PruningSpec};
pub use report::{FigureKind, PaperTable, ReportSpec, StdKind, TableSpec};
pub use resolve::{Named, ResolveProblem, Resolved, Unresolved, resolve, topography_of};
pub use schema::{
    EXPERIMENT_SCHEMA_FILE, SchemaCheck, check_schemas, experiment_schema, experiment_schema_text,
};
pub use slurm::SlurmSpec;
pub use source::{MAX_DEPTH, MAX_FILE_BYTES};
pub use tap::TapPoint;
pub use topography::{
    LayoutFile, LayoutSource, Placement, Topography, TopographyKind, TopographyProblem,
    TopographySpec,
};
pub use training::{
    OptimizerKind, OptimizerSpec, ScheduleKind, ScheduleSpec, TopographicLossSpec, TrainingSpec,
};
pub use yaml::{from_yaml, to_yaml};
