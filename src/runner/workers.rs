//! Scheduling runs: a stable shard of the plan (`--shard I/N`), N workers on one machine
//! (`--jobs N`) that share the cores (their log lines carry the run's id, see [`crate::log`]).
//!
//! Threads. candle 0.11 runs its CPU kernels in three places: convolutions and other
//! `par_iter` loops on the *current* rayon pool; matrix products through `gemm`, which
//! splits into `RAYON_NUM_THREADS` (default: the physical cores) tasks, also on the
//! current rayon pool; and large element-wise maps on one process-wide barrier pool
//! (`CANDLE_NUM_THREADS`) that serialises its callers behind a lock. So each worker runs
//! inside its own rayon pool of `cores / jobs` threads: convolutions and products of N
//! workers then use the cores once, and the element-wise pool is taken by one worker at
//! a time.

use std::fmt;
use std::str::FromStr;
use std::sync::Mutex;

use crate::sync::lock;

/// `--shard I/N`: the runs whose position in plan order, modulo N, is I-1.
///
/// Plan order is the grid's expansion order, fixed by the experiment file, so every
/// machine given the same file and the same I/N takes the same slice, and the N shards
/// cover the plan exactly once, their sizes differing by at most one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shard {
    /// 1-based.
    index: u32,
    count: u32,
}

/// Why a `--shard` value is not one.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ShardError {
    #[error("`{0}` is not a shard: expected I/N with 1 <= I <= N, e.g. 2/4")]
    Syntax(String),
    #[error("shard {index}/{count}: I must be between 1 and N")]
    OutOfRange { index: u32, count: u32 },
}

impl Shard {
    pub fn new(index: u32, count: u32) -> Result<Shard, ShardError> {
        if count == 0 || index == 0 || index > count {
            return Err(ShardError::OutOfRange { index, count });
        }
        Ok(Shard { index, count })
    }

    pub fn index(&self) -> u32 {
        self.index
    }

    pub fn count(&self) -> u32 {
        self.count
    }

    /// Whether the run at `position` (0-based, in plan order) belongs to this shard.
    pub fn contains(&self, position: usize) -> bool {
        position % self.count as usize == (self.index - 1) as usize
    }

    /// The items of this shard, in their order.
    pub fn select<T: Copy>(&self, items: &[T]) -> Vec<T> {
        items
            .iter()
            .enumerate()
            .filter(|(i, _)| self.contains(*i))
            .map(|(_, t)| *t)
            .collect()
    }
}

impl FromStr for Shard {
    type Err = ShardError;

    fn from_str(s: &str) -> Result<Shard, ShardError> {
        let syntax = || ShardError::Syntax(s.to_string());
        let (i, n) = s.split_once('/').ok_or_else(syntax)?;
        let index = i.trim().parse().map_err(|_| syntax())?;
        let count = n.trim().parse().map_err(|_| syntax())?;
        Shard::new(index, count)
    }
}

impl fmt::Display for Shard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.index, self.count)
    }
}

/// The cores candle would use: `RAYON_NUM_THREADS` if set (candle reads it too), else
/// what the OS grants this process.
pub fn available_cores() -> usize {
    std::env::var("RAYON_NUM_THREADS")
        .ok()
        .and_then(|s| s.trim().parse::<usize>().ok())
        .filter(|n| *n > 0)
        .or_else(|| std::thread::available_parallelism().ok().map(usize::from))
        .unwrap_or(1)
}

/// Threads of each worker's pool: the cores shared evenly, at least one each.
pub fn threads_per_worker(cores: usize, jobs: usize) -> usize {
    (cores / jobs.max(1)).max(1)
}

/// Runs `work` on a thread of the current rayon pool (the global one outside any pool).
///
/// Training always runs on a pool thread, never beside the pool: a step is hundreds of
/// parallel ops, and a caller outside the pool sleeps through each one and must be woken
/// after it, a third thread on two cores. On the pool, the caller takes its share of each
/// op instead (on 2 cores, DenseNet-121's step 1.0-1.3x faster, ResNet-18's 1.0-1.1x;
/// `cargo bench --bench train_step -- --caller outside` measures the old way).
pub fn on_pool<R: Send>(work: impl FnOnce() -> R + Send) -> R {
    rayon::scope(|_| work())
}

/// Runs `work` on every item with `jobs` workers, each in its own rayon pool of
/// `threads` threads, items taken in order as workers free up. With one job, the items
/// run in order [`on_pool`]. `work` returns `Err` to stop the plan: workers finish the
/// item in hand and take no other; the first error is returned.
pub fn run_parallel<T, E, F>(items: &[T], jobs: usize, threads: usize, work: F) -> Result<(), E>
where
    T: Sync,
    E: Send + From<WorkerError>,
    F: Fn(&T) -> Result<(), E> + Sync,
{
    if jobs <= 1 {
        return on_pool(|| items.iter().try_for_each(&work));
    }
    let next = Mutex::new(0usize);
    let first_error: Mutex<Option<E>> = Mutex::new(None);
    let take = || -> Option<&T> {
        let stopped = lock(&first_error).is_some();
        let mut i = lock(&next);
        if stopped || *i >= items.len() {
            return None;
        }
        *i += 1;
        items.get(*i - 1)
    };
    let fail = |e: E| {
        let mut slot = lock(&first_error);
        if slot.is_none() {
            *slot = Some(e);
        }
    };
    std::thread::scope(|scope| {
        for _ in 0..jobs.min(items.len()) {
            scope.spawn(|| {
                let pool = match rayon::ThreadPoolBuilder::new().num_threads(threads).build() {
                    Ok(pool) => pool,
                    Err(e) => return fail(WorkerError::Pool(e.to_string()).into()),
                };
                pool.install(|| {
                    while let Some(item) = take() {
                        if let Err(e) = work(item) {
                            fail(e);
                        }
                    }
                });
            });
        }
    });
    match first_error
        .into_inner()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
    {
        Some(e) => Err(e),
        None => Ok(()),
    }
}

/// Why the workers themselves could not run.
#[derive(Debug, thiserror::Error)]
pub enum WorkerError {
    #[error("cannot start a worker's thread pool: {0}")]
    Pool(String),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shards_parse_and_partition_the_plan() {
        let s: Shard = "2/3".parse().unwrap();
        assert_eq!((s.index(), s.count()), (2, 3));
        assert_eq!(s.to_string(), "2/3");
        let items: Vec<usize> = (0..8).collect();
        assert_eq!(s.select(&items), vec![1, 4, 7]);
        let mut all: Vec<usize> = (1..=3)
            .flat_map(|i| Shard::new(i, 3).unwrap().select(&items))
            .collect();
        all.sort();
        assert_eq!(all, items);
    }

    #[test]
    fn bad_shards_say_what_is_expected() {
        assert_eq!(
            "3".parse::<Shard>().unwrap_err().to_string(),
            "`3` is not a shard: expected I/N with 1 <= I <= N, e.g. 2/4"
        );
        assert_eq!(
            "0/2".parse::<Shard>().unwrap_err().to_string(),
            "shard 0/2: I must be between 1 and N"
        );
        assert_eq!(
            "3/2".parse::<Shard>().unwrap_err(),
            ShardError::OutOfRange { index: 3, count: 2 }
        );
        assert!("a/2".parse::<Shard>().is_err());
        assert!("1/0".parse::<Shard>().is_err());
    }

    #[test]
    fn cores_are_shared_evenly_and_never_below_one() {
        assert_eq!(threads_per_worker(8, 2), 4);
        assert_eq!(threads_per_worker(8, 3), 2);
        assert_eq!(threads_per_worker(2, 4), 1);
        assert_eq!(threads_per_worker(2, 0), 2);
    }

    #[test]
    fn parallel_workers_do_every_item_once_in_pools_of_the_given_size() {
        let items: Vec<usize> = (0..20).collect();
        let seen = Mutex::new(Vec::new());
        let result: Result<(), WorkerError> = run_parallel(&items, 3, 1, |i| {
            assert_eq!(rayon::current_num_threads(), 1);
            seen.lock().unwrap().push(*i);
            Ok(())
        });
        result.unwrap();
        let mut seen = seen.into_inner().unwrap();
        seen.sort();
        assert_eq!(seen, items);
    }

    #[test]
    fn an_error_stops_the_workers_taking_new_items() {
        let items: Vec<usize> = (0..50).collect();
        let done = Mutex::new(0usize);
        let result: Result<(), WorkerError> = run_parallel(&items, 2, 1, |i| {
            *done.lock().unwrap() += 1;
            if *i == 3 {
                return Err(WorkerError::Pool("disk full".into()));
            }
            std::thread::sleep(std::time::Duration::from_millis(2));
            Ok(())
        });
        assert_eq!(
            result.unwrap_err().to_string(),
            "cannot start a worker's thread pool: disk full"
        );
        // Item 3 failed; at most the item in the other worker's hand followed.
        assert!(*done.lock().unwrap() <= 6, "{}", done.lock().unwrap());
    }
}
