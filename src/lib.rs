//! `topo`: topographic convolutional networks (Poli, Dupoux, Riad, ICASSP 2023) as a
//! declarative experiment framework.
//!
//! The data flow, one module per stage: [`config`] (YAML, schemas, diagnostics) →
//! [`plan`] (the runs) → [`engine`] (training with topographic taps, pruning) →
//! [`results`] (the files on disk) → [`report`] (tables and figures). [`topography`] is
//! the pure topographic core; [`cli`] is the command line.

pub mod cli;
pub mod config;
pub mod data;
pub mod kernels;
pub mod nn;
pub mod plan;
pub mod report;
pub mod results;
pub mod runner;
pub mod topography;
pub mod train;
