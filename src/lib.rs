//! `topo`: topographic convolutional networks (Poli, Dupoux, Riad, ICASSP 2023) as a
//! declarative experiment framework.
//!
//! One module per stage of the data flow, each using only the modules listed after it
//! (`tests/it/layers.rs` fails on an import against this order):
//!
//! - [`cli`]: the command line, and the CLI's own enums.
//! - [`runner`]: running a plan: the preflight, jobs, shards, Slurm scripts.
//! - [`report`]: tables and figures from a results folder.
//! - [`train`]: one run: the loop, evaluation, checkpoints, seeds, SGD, pruning.
//! - [`nn`]: ResNet-18, VGG-16-BN and DenseNet-121 with their topographic taps.
//! - [`data`]: the image and audio data sets.
//! - [`plan`]: the runs an experiment expands to, and their ids.
//! - [`results`]: the files of a results folder, atomic writes, the run lock.
//! - [`config`]: the typed experiment file: reading, merging, schema and checks.
//! - [`topography`]: positions, distances, the loss and metrics.
//! - [`kernels`]: the fast CPU ops and the allocator, the crate `topo-kernels` of this
//!   workspace (`crates/kernels`): the only unsafe code; this crate forbids it.
//! - [`log`]: log lines, prefixed by their run when several train at once; errors as text.
//! - [`sync`]: the one policy for a poisoned lock.

#![forbid(unsafe_code)]

pub mod cli;
pub mod config;
pub mod data;
pub use topo_kernels as kernels;
pub mod log;
pub mod nn;
pub mod plan;
pub mod report;
pub mod results;
pub mod runner;
pub mod sync;
pub mod topography;
pub mod train;
