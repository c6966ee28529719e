//! Test suite: one binary, one module per part.
// Helpers outside `#[test]` functions unwrap too: a failing fixture should stop the test.
#![allow(clippy::unwrap_used, clippy::expect_used)]
mod analyses;
mod browser;
mod common;
mod config;
mod cuda_source;
mod data;
mod device;
mod engine;
mod fixtures;
mod golden;
mod gpu_check;
mod kernels;
mod layers;
mod methods;
mod models;
mod plan;
mod preflight;
mod record;
mod report;
mod scale;
mod tasks;
mod tensorboard;
mod topography;
mod trace;
mod winograd;
