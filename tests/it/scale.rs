//! Scale-out and fault tolerance: shards, parallel workers, locks, Slurm scripts (being written).
