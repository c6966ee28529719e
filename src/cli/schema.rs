//! `topo schema [--check]`.

use std::path::PathBuf;

use anyhow::Context;

use crate::config::{EXPERIMENT_SCHEMA_FILE, SchemaCheck, check_schemas, experiment_schema_text};
use crate::results::write_atomic;

use super::CliError;

#[derive(Debug, clap::Args)]
pub struct SchemaArgs {
    /// Fail (exit 1) if the schemas on disk differ from the ones the code generates.
    #[arg(long)]
    pub check: bool,
    /// Folder of the schema files.
    #[arg(long, value_name = "DIR", default_value = "schemas")]
    pub dir: PathBuf,
}

pub fn run(args: &SchemaArgs) -> Result<(), CliError> {
    if args.check {
        return match check_schemas(&args.dir) {
            SchemaCheck::UpToDate(p) => {
                println!("{}: up to date", p.display());
                Ok(())
            }
            SchemaCheck::Stale(p) => Err(CliError::Failed(anyhow::anyhow!(
                "{} is stale: run `topo schema` and commit the result",
                p.display()
            ))),
            SchemaCheck::Missing(p) => Err(CliError::Failed(anyhow::anyhow!(
                "{} is missing: run `topo schema`",
                p.display()
            ))),
        };
    }
    let path = args.dir.join(EXPERIMENT_SCHEMA_FILE);
    write_atomic(&path, experiment_schema_text().as_bytes())
        .with_context(|| format!("writing the schema into {}", args.dir.display()))?;
    println!("wrote {}", path.display());
    Ok(())
}
