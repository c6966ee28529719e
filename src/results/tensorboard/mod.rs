//! TensorBoard event files, one per run (`runs/<id>/events.out.tfevents.topo`), so that
//! `tensorboard --logdir results/<experiment>` shows every run of an experiment. A small
//! writer of the record format rather than a crate: the maintained ones pull old
//! protobuf runtimes.
//!
//! The file follows the records: [`rewrite`] makes it hold exactly the epochs a run
//! keeps (when a session starts, so a resumed run never shows an epoch twice), and
//! [`append`] adds what each epoch commits.

mod crc32c;
mod proto;

use std::fs::OpenOptions;
use std::io::Write;
use std::path::Path;

use proto::{Value, What};

use super::{EpochRecord, ResultsError, SplitKind, write_atomic};

/// The event file's name in a run folder; TensorBoard reads files whose name holds
/// `tfevents`.
pub const FILE_NAME: &str = "events.out.tfevents.topo";

/// The tag of the run's resolved configuration (text plugin).
pub const CONFIG_TAG: &str = "config";

/// Rewrites the event file at `path` atomically: the file version, the configuration as
/// text, then one event per record.
pub fn rewrite(path: &Path, config: &str, records: &[EpochRecord]) -> Result<(), ResultsError> {
    let start = records
        .first()
        .map_or_else(now, |r| wall_time(r) - r.seconds);
    let mut bytes = framed(&proto::event(start, 0, &What::FileVersion));
    let config = format!("```yaml\n{config}\n```");
    let text = [Value::Text {
        tag: CONFIG_TAG,
        text: &config,
    }];
    bytes.extend(framed(&proto::event(start, 0, &What::Summary(&text))));
    for record in records {
        bytes.extend(framed(&epoch_event(record)));
    }
    write_atomic(path, &bytes)
}

/// Appends the events of `records` to the file at `path`, in one write (a kill mid-way
/// leaves at most a torn last record, which the next session's [`rewrite`] replaces).
pub fn append(path: &Path, records: &[EpochRecord]) -> Result<(), ResultsError> {
    let bytes: Vec<u8> = records
        .iter()
        .flat_map(|r| framed(&epoch_event(r)))
        .collect();
    let write = || -> std::io::Result<()> {
        let mut file = OpenOptions::new().append(true).open(path)?;
        file.write_all(&bytes)?;
        file.sync_data()
    };
    write().map_err(|source| ResultsError::Write {
        path: path.to_path_buf(),
        source,
    })
}

/// The scalars of one record, tagged `<split>/<quantity>`, at step = its epoch.
fn epoch_event(r: &EpochRecord) -> Vec<u8> {
    let split = match r.split {
        SplitKind::Train => "train",
        SplitKind::Validation => "validation",
        SplitKind::Test => "test",
    };
    let mut named: Vec<(String, f64)> = vec![
        ("loss".into(), r.loss),
        ("cross_entropy".into(), r.ce),
        ("accuracy".into(), r.accuracy),
        ("images_per_second".into(), r.images_per_second),
    ];
    named.extend(r.topo.map(|t| ("topographic".into(), t)));
    named.extend(
        r.topo_layers
            .iter()
            .map(|(layer, v)| (format!("topographic/{layer}"), *v)),
    );
    named.extend(r.lr.map(|lr| ("learning_rate".into(), lr)));
    named.extend(r.lambda.map(|l| ("lambda".into(), l)));
    named.extend(r.roc_auc.map(|a| ("roc_auc".into(), a)));
    let tags: Vec<String> = named.iter().map(|(n, _)| format!("{split}/{n}")).collect();
    let values: Vec<Value> = tags
        .iter()
        .zip(&named)
        .map(|(tag, (_, v))| Value::Scalar {
            tag,
            value: *v as f32,
        })
        .collect();
    proto::event(wall_time(r), u64::from(r.epoch), &What::Summary(&values))
}

/// When the record's epoch ended; records written before this was kept get the time now.
fn wall_time(r: &EpochRecord) -> f64 {
    r.wall_time.unwrap_or_else(now)
}

/// Seconds since the Unix epoch.
pub fn now() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}

/// One record of the TFRecord format: length, its masked CRC-32C, the data, its masked
/// CRC-32C (all little-endian).
fn framed(data: &[u8]) -> Vec<u8> {
    let len = (data.len() as u64).to_le_bytes();
    let mut out = Vec::with_capacity(data.len() + 16);
    out.extend_from_slice(&len);
    out.extend_from_slice(&crc32c::masked_crc32c(&len).to_le_bytes());
    out.extend_from_slice(data);
    out.extend_from_slice(&crc32c::masked_crc32c(data).to_le_bytes());
    out
}
