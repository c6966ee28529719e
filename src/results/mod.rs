//! Results on disk: the layout of `results/<experiment>/` and its records. This is the
//! only interface between training and the report (README.md, "Results on disk").

mod analyses;
mod atomic;
mod error;
mod io;
mod layout;
pub mod lock;
mod provenance;
mod records;
pub mod tensorboard;

pub use analyses::{AnalysesRecord, GratingsRecord, LayerAnalyses, MapKind, MapRecord};
pub use atomic::{create_new_atomic, write_atomic, write_atomic_with};
pub use error::ResultsError;
pub use io::{read_json, read_jsonl, read_pruning_csv, write_json, write_jsonl, write_pruning_csv};
pub use layout::{ExperimentDir, RunDir, RunState, cache_dir};
pub use provenance::{GitState, Isa, Provenance, host, rfc3339};
pub use records::{
    AxisNames, ChannelPositions, EpochRecord, Failure, LayerRecord, PruningRow, RunAxes,
    RunIdentity, RunStatus, SplitKind, Summary, TopographyRecord, Versions,
};
