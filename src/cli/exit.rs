//! How a command fails, and the exit code each failure maps to.

use std::process::ExitCode;

use crate::config::Diagnostics;
use crate::runner::preflight::Problem;

/// A failed command.
#[derive(Debug)]
pub enum CliError {
    /// The input is wrong (exit 2): the diagnostics say where and how to fix it.
    Invalid(Diagnostics),
    /// A usage problem found after parsing (exit 2).
    Usage(String),
    /// What the runs need is missing or broken (exit 2): each problem once, found
    /// before any run started.
    Preflight(Vec<Problem>),
    /// Something went wrong while working (exit 1).
    Failed(anyhow::Error),
}

impl CliError {
    /// Prints the error to stderr and returns its exit code.
    pub fn report(&self) -> ExitCode {
        match self {
            CliError::Invalid(d) => {
                eprintln!("{d}");
                ExitCode::from(2)
            }
            CliError::Usage(m) => {
                eprintln!("error: {m}");
                ExitCode::from(2)
            }
            CliError::Preflight(problems) => {
                for p in problems {
                    eprintln!("error: {p}");
                }
                eprintln!(
                    "{} problem{} found before any run started; nothing was trained or recorded",
                    problems.len(),
                    if problems.len() == 1 { "" } else { "s" }
                );
                ExitCode::from(2)
            }
            CliError::Failed(e) => {
                eprintln!("error: {e:#}");
                ExitCode::FAILURE
            }
        }
    }
}

impl From<anyhow::Error> for CliError {
    fn from(e: anyhow::Error) -> Self {
        CliError::Failed(e)
    }
}
