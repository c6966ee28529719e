//! `topo schema [--check]`.

use std::path::PathBuf;

use anyhow::Context;

use crate::config::{SchemaCheck, check_schemas, write_schemas};

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
    let written = write_schemas(&args.dir)
        .with_context(|| format!("writing schemas into {}", args.dir.display()))?;
    for p in written {
        println!("wrote {}", p.display());
    }
    Ok(())
}
