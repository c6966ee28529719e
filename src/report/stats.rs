//! Mean and standard deviation over seeds, with polars. Keys are interned to integer
//! group ids by the caller, so the frame has no string columns and the typed keys never
//! leave Rust; values go in as columns and come out as typed [`GroupStats`].

use std::collections::HashMap;
use std::hash::Hash;

use polars::prelude::*;

use crate::config::StdKind;

/// Mean and standard deviation of one value over a group.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct MeanStd {
    pub mean: f64,
    /// `None` when undefined (one sample with the sample standard deviation).
    pub std: Option<f64>,
}

/// The statistics of one group, one entry per value column.
#[derive(Debug, Clone, PartialEq)]
pub struct GroupStats {
    pub group: u32,
    pub n: usize,
    pub values: Vec<MeanStd>,
}

/// Gives each distinct key a dense id, in order of first appearance.
#[derive(Debug)]
pub struct Interner<K> {
    ids: HashMap<K, u32>,
    keys: Vec<K>,
}

impl<K: Hash + Eq + Clone> Interner<K> {
    pub fn new() -> Interner<K> {
        Interner {
            ids: HashMap::new(),
            keys: Vec::new(),
        }
    }

    pub fn id(&mut self, key: K) -> u32 {
        if let Some(&id) = self.ids.get(&key) {
            return id;
        }
        let id = self.keys.len() as u32;
        self.ids.insert(key.clone(), id);
        self.keys.push(key);
        id
    }

    pub fn key(&self, id: u32) -> Option<&K> {
        self.keys.get(id as usize)
    }
}

/// The columns of one aggregation: a group id per sample and the sample's values.
#[derive(Debug, Default)]
pub struct Samples {
    groups: Vec<u32>,
    values: Vec<Vec<f64>>,
}

impl Samples {
    pub fn new(columns: usize) -> Samples {
        Samples {
            groups: Vec::new(),
            values: vec![Vec::new(); columns],
        }
    }

    pub fn push(&mut self, group: u32, values: &[f64]) {
        self.groups.push(group);
        for (column, &v) in self.values.iter_mut().zip(values) {
            column.push(v);
        }
    }

    pub fn is_empty(&self) -> bool {
        self.groups.is_empty()
    }
}

const GROUP: &str = "group";
const COUNT: &str = "n";

fn value_name(i: usize) -> String {
    format!("v{i}")
}
fn mean_name(i: usize) -> String {
    format!("mean{i}")
}
fn std_name(i: usize) -> String {
    format!("std{i}")
}

/// Mean and standard deviation (sample: n - 1, or population: n) of every value
/// column within each group, sorted by group id.
pub fn mean_std_by_group(samples: Samples, std: StdKind) -> PolarsResult<Vec<GroupStats>> {
    if samples.is_empty() {
        return Ok(Vec::new());
    }
    let width = samples.values.len();
    let mut columns = vec![Column::new(GROUP.into(), samples.groups)];
    for (i, values) in samples.values.into_iter().enumerate() {
        columns.push(Column::new(value_name(i).into(), values));
    }
    let ddof = match std {
        StdKind::Sample => 1,
        StdKind::Population => 0,
    };
    let mut aggs = vec![len().cast(DataType::UInt64).alias(COUNT)];
    for i in 0..width {
        aggs.push(col(value_name(i)).mean().alias(mean_name(i)));
        aggs.push(col(value_name(i)).std(ddof).alias(std_name(i)));
    }
    let out = DataFrame::new_infer_height(columns)?
        .lazy()
        .group_by([col(GROUP)])
        .agg(aggs)
        .sort([GROUP], SortMultipleOptions::default())
        .collect()?;

    let groups = out.column(GROUP)?.u32()?;
    let counts = out.column(COUNT)?.u64()?;
    let mut means = Vec::with_capacity(width);
    let mut stds = Vec::with_capacity(width);
    for i in 0..width {
        means.push(out.column(&mean_name(i))?.f64()?);
        stds.push(out.column(&std_name(i))?.f64()?);
    }
    let mut rows = Vec::with_capacity(out.height());
    for r in 0..out.height() {
        let (Some(group), Some(n)) = (groups.get(r), counts.get(r)) else {
            continue;
        };
        let values = (0..width)
            .map(|i| MeanStd {
                mean: means[i].get(r).unwrap_or(f64::NAN),
                std: stds[i].get(r).filter(|s| s.is_finite()),
            })
            .collect();
        rows.push(GroupStats {
            group,
            n: n as usize,
            values,
        });
    }
    Ok(rows)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() < 1e-12
    }

    #[test]
    fn sample_and_population_std() {
        let mut s = Samples::new(2);
        for (g, x, y) in [
            (1, 90.0, 1.0),
            (0, 5.0, 2.0),
            (1, 92.0, 1.0),
            (1, 94.0, 1.0),
        ] {
            s.push(g, &[x, y]);
        }
        let rows = mean_std_by_group(s, StdKind::Sample).unwrap();
        assert_eq!(rows.len(), 2);
        assert_eq!((rows[0].group, rows[0].n), (0, 1));
        assert_eq!(
            rows[0].values[0],
            MeanStd {
                mean: 5.0,
                std: None
            }
        );
        assert_eq!((rows[1].group, rows[1].n), (1, 3));
        assert!(close(rows[1].values[0].mean, 92.0));
        // deviations -2, 0, 2: sum of squares 8; 8 / 2 = 4.
        assert!(close(rows[1].values[0].std.unwrap(), 2.0));
        assert!(close(rows[1].values[1].std.unwrap(), 0.0));

        let mut s = Samples::new(1);
        for (g, x) in [(0, 5.0), (1, 90.0), (1, 92.0), (1, 94.0)] {
            s.push(g, &[x]);
        }
        let rows = mean_std_by_group(s, StdKind::Population).unwrap();
        assert_eq!(rows[0].values[0].std, Some(0.0));
        assert!(close(rows[1].values[0].std.unwrap(), (8.0f64 / 3.0).sqrt()));
    }

    #[test]
    fn interner_is_dense_and_stable() {
        let mut i = Interner::new();
        assert_eq!((i.id("b"), i.id("a"), i.id("b")), (0, 1, 0));
        assert_eq!(i.key(1), Some(&"a"));
        assert_eq!(i.key(2), None);
    }
}
