//! The fallback for runs of versions whose summary held no identity: what their
//! `run.yaml` says of their kinds, read defensively (a field in another shape is unknown,
//! and said so).

use std::io::ErrorKind;

use serde::de::DeserializeOwned;
use serde_json::Value;

use super::identity::RunKinds;
use super::scan::Unreadable;
use crate::config::from_yaml;
use crate::config::{Topography, TopographySpec, topography_of};
use crate::results::RunDir;

impl RunKinds {
    /// Reads `dataset.kind`, `model.kind` and `topography` from a parsed `run.yaml`. A
    /// field that is absent is unknown; one in another shape is unknown too, and the
    /// messages returned beside say why.
    pub fn from_run_yaml(doc: &Value) -> (RunKinds, Vec<String>) {
        let mut problems = Vec::new();
        let kind = |key: &str| doc.get(key).and_then(|v| v.get("kind"));
        let identity = RunKinds {
            dataset: read_field("dataset.kind", kind("dataset"), &mut problems),
            model: read_field("model.kind", kind("model"), &mut problems),
            topography: doc
                .get("topography")
                .and_then(|t| match read_topography(t) {
                    Ok(t) => Some(t),
                    Err(e) => {
                        problems.push(format!("`topography`: {e}"));
                        None
                    }
                }),
        };
        (identity, problems)
    }
}

fn read_field<T: DeserializeOwned>(
    key: &str,
    value: Option<&Value>,
    problems: &mut Vec<String>,
) -> Option<T> {
    match serde_json::from_value::<T>(value?.clone()) {
        Ok(t) => Some(t),
        Err(e) => {
            problems.push(format!("`{key}`: {e}"));
            None
        }
    }
}

/// The resolved form `run.yaml` writes, or the form as written in an experiment (which
/// runs of older versions wrote).
fn read_topography(value: &Value) -> Result<Topography, String> {
    match serde_json::from_value::<Topography>(value.clone()) {
        Ok(t) => Ok(t),
        Err(resolved) => match serde_json::from_value::<TopographySpec>(value.clone()) {
            Ok(spec) => topography_of(&spec).map_err(|e| e.to_string()),
            // Neither form: the resolved form's message is the one to show.
            Err(_) => Err(resolved.to_string()),
        },
    }
}

/// `run.yaml` may be absent (older runs) or in a format this report predates: either
/// way the run still counts, only without what the file would have said.
pub fn read_kinds(run: &RunDir) -> (RunKinds, Option<Unreadable>) {
    let path = run.run_yaml();
    let text = match std::fs::read_to_string(&path) {
        Ok(t) => t,
        Err(e) if e.kind() == ErrorKind::NotFound => return (RunKinds::default(), None),
        Err(e) => {
            return (
                RunKinds::default(),
                Some(Unreadable {
                    path,
                    message: e.to_string(),
                }),
            );
        }
    };
    match from_yaml::<serde_json::Value>(&text) {
        Ok(doc) => {
            let (identity, problems) = RunKinds::from_run_yaml(&doc);
            let problem = (!problems.is_empty()).then(|| Unreadable {
                path,
                message: format!("read in part: {}", problems.join("; ")),
            });
            (identity, problem)
        }
        Err(e) => (
            RunKinds::default(),
            Some(Unreadable {
                path,
                message: e.to_string(),
            }),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{DatasetKind, ModelKind, Placement};
    use crate::topography::{Layout, Norm};

    /// The paper's loss on a built-in layout, every layer weighted alike.
    fn builtin(layout: Layout, dimension: u8) -> Topography {
        let placement = Placement::Builtin {
            layout,
            dimension,
            norm: Norm::Euclidean,
        };
        Topography::Placed(
            placement,
            crate::config::LossMethod::Poli2023,
            Default::default(),
            Default::default(),
            Default::default(),
        )
    }

    fn parse(text: &str) -> RunKinds {
        parse_with_problems(text).0
    }

    fn parse_with_problems(text: &str) -> (RunKinds, Vec<String>) {
        RunKinds::from_run_yaml(&crate::config::from_yaml(text).unwrap())
    }

    #[test]
    fn reads_the_resolved_form() {
        let id = parse(
            "dataset: { kind: cifar100, root: x }\nmodel: { kind: vgg16_bn, width: 0.5 }\n\
             topography: { kind: builtin, layout: sphere, dimension: 3, norm: euclidean }\n",
        );
        assert_eq!(id.dataset, Some(DatasetKind::Cifar100));
        assert_eq!(id.model, Some(ModelKind::Vgg16Bn));
        assert_eq!(id.topography, Some(builtin(Layout::Sphere, 3)));
    }

    #[test]
    fn reads_the_written_form_and_tolerates_garbage() {
        let (id, problems) = parse_with_problems(
            "dataset: cifar10\nmodel: { kind: 7 }\ntopography: { layout: grid, dimension: 2 }\n",
        );
        // A data set without a kind is unknown; a model kind that is not one says so.
        assert_eq!(problems.len(), 1, "{problems:?}");
        assert!(problems[0].starts_with("`model.kind`: "), "{problems:?}");
        assert_eq!(id.dataset, None);
        assert_eq!(id.model, None);
        assert_eq!(id.topography, Some(builtin(Layout::Grid, 2)));
        assert_eq!(parse_with_problems("[1, 2]"), (RunKinds::default(), vec![]));
        let (_, problems) = parse_with_problems("topography: { kind: torus }");
        assert!(problems[0].starts_with("`topography`: "), "{problems:?}");
        assert_eq!(
            parse("topography: { kind: none }").topography,
            Some(Topography::Baseline)
        );
    }
}
