//! Resolution: the one place where an experiment's names are looked up and its defaults
//! applied. Loading calls it (its problems become located diagnostics), the planner
//! expands what it returns, and the report resolves `experiment.resolved.yaml` with it.

use super::locate::{child_path, item_path};
use super::{DatasetSpec, Experiment, ModelKind, ModelSpec, Topography, TopographySpec};
use super::{TopographyProblem, TrainingSpec};

/// A name of the experiment with what it stands for.
#[derive(Debug, Clone, PartialEq)]
pub struct Named<T> {
    pub name: String,
    pub value: T,
}

/// An experiment with every name of its grid looked up, in the grid's order, and every
/// default applied.
#[derive(Debug, Clone, PartialEq)]
pub struct Resolved {
    /// The experiment as merged (what `experiment.resolved.yaml` holds).
    pub experiment: Experiment,
    /// Each data set of the grid, its defaults applied (an audio set names its
    /// normalisation, so a change of default changes the ids of the runs it affects).
    pub datasets: Vec<Named<DatasetSpec>>,
    /// Each model of the grid: a definition of `models`, or an architecture's defaults.
    pub models: Vec<Named<ModelSpec>>,
    /// Each topography of the grid, checked.
    pub topographies: Vec<Named<Topography>>,
}

impl Resolved {
    /// The recipe a data set's runs train with: its own epochs, where it sets them.
    pub fn training_for(&self, dataset: &DatasetSpec) -> TrainingSpec {
        let mut training = self.experiment.training.clone();
        if let Some(epochs) = dataset.epochs {
            training.epochs = epochs;
        }
        training
    }

    /// Any data set the experiment defines, in the grid or not, its defaults applied.
    pub fn defined_dataset(&self, name: &str) -> Option<DatasetSpec> {
        self.experiment.datasets.get(name).map(with_defaults)
    }
}

/// Something of the experiment that does not resolve, at its key path
/// (`topographies.grid2d.dimension`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResolveProblem {
    pub path: String,
    pub message: String,
}

/// An experiment that resolves only in part: what did resolve, and why the rest did not.
#[derive(Debug, Clone, PartialEq)]
pub struct Unresolved {
    pub partial: Resolved,
    pub problems: Vec<ResolveProblem>,
}

/// Resolves every name the grid uses; every problem at once.
pub fn resolve(experiment: Experiment) -> Result<Resolved, Box<Unresolved>> {
    let mut problems = Vec::new();
    let grid = &experiment.grid;
    let mut datasets = Vec::new();
    for (i, name) in grid.dataset.iter().enumerate() {
        match experiment.datasets.get(name) {
            Some(spec) => datasets.push(named(name, with_defaults(spec))),
            None => problems.push(undefined("grid.dataset", i, "data set", name)),
        }
    }
    let mut models = Vec::new();
    for (i, name) in grid.model.iter().enumerate() {
        let model = match experiment.models.get(name) {
            Some(spec) => Some(spec.clone()),
            None => ModelKind::from_name(name).map(ModelSpec::of_kind),
        };
        match model {
            Some(m) => models.push(named(name, m)),
            None => problems.push(undefined("grid.model", i, "model", name)),
        }
    }
    // Every topography defined is checked, used by the grid or not.
    let mut defined = std::collections::BTreeMap::new();
    for (name, spec) in &experiment.topographies {
        match topography_of(spec) {
            Ok(t) => {
                defined.insert(name.as_str(), t);
            }
            Err(problem) => {
                let base = child_path("topographies", name);
                problems.push(ResolveProblem {
                    path: problem_path(&base, &problem),
                    message: problem.to_string(),
                });
            }
        }
    }
    let mut topographies = Vec::new();
    for (i, name) in grid.topography.iter().enumerate() {
        match defined.get(name.as_str()) {
            Some(t) => topographies.push(named(name, t.clone())),
            None if experiment.topographies.contains_key(name) => {}
            None => problems.push(undefined("grid.topography", i, "topography", name)),
        }
    }
    let resolved = Resolved {
        experiment,
        datasets,
        models,
        topographies,
    };
    if problems.is_empty() {
        Ok(resolved)
    } else {
        Err(Box::new(Unresolved {
            partial: resolved,
            problems,
        }))
    }
}

/// A topography as written, checked and in the engine's form (also how the records of
/// older versions, which kept the written form, are read).
pub fn topography_of(spec: &TopographySpec) -> Result<Topography, TopographyProblem> {
    spec.to_topography()
}

/// A data set with its defaults applied, as a run records it.
fn with_defaults(spec: &DatasetSpec) -> DatasetSpec {
    let mut spec = spec.clone();
    if spec.kind.is_audio() {
        spec.normalisation.get_or_insert_default();
    }
    spec
}

fn named<T>(name: &str, value: T) -> Named<T> {
    Named {
        name: name.to_string(),
        value,
    }
}

fn undefined(axis: &str, i: usize, what: &str, name: &str) -> ResolveProblem {
    ResolveProblem {
        path: item_path(axis, i),
        message: format!("the grid names an undefined {what} `{name}`"),
    }
}

/// The key a topography's problem is about.
fn problem_path(base: &str, problem: &TopographyProblem) -> String {
    use TopographyProblem as P;
    match problem {
        P::Dimension(_) | P::SphereInOneDimension | P::SheetNotIn2d(_) | P::CustomDimension => {
            child_path(base, "dimension")
        }
        P::MissingLayout | P::MissingDimension(_) => base.to_string(),
        P::BaselineField(f) => child_path(base, f),
        P::Loss(_) => child_path(base, "loss"),
        P::LayerWeights(_) => child_path(base, "layer_weights"),
        P::TopolossNeedsGrid => child_path(base, "layout"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn experiment(text: &str) -> Experiment {
        crate::config::from_yaml(text).unwrap()
    }

    fn find<'a, T>(items: &'a [Named<T>], name: &str) -> &'a T {
        &items.iter().find(|n| n.name == name).unwrap().value
    }

    #[test]
    fn every_name_resolves_in_grid_order_with_its_defaults() {
        let e = experiment(
            "name: x\ndatasets: { sc: { kind: speech_commands, epochs: 3 } }\n\
             models: { narrow: { kind: vgg16_bn, width: 0.5 } }\n\
             topographies: { g: { layout: grid, dimension: 2 }, b: { kind: none } }\n\
             grid: { dataset: [sc], model: [resnet18, narrow], topography: [g, b] }\n",
        );
        let r = resolve(e).unwrap();
        let names = |v: Vec<&str>| v.into_iter().map(String::from).collect::<Vec<_>>();
        assert_eq!(
            r.models.iter().map(|m| m.name.clone()).collect::<Vec<_>>(),
            names(vec!["resnet18", "narrow"])
        );
        assert_eq!(find(&r.models, "resnet18").kind, ModelKind::Resnet18);
        assert_eq!(find(&r.models, "narrow").width, 0.5);
        assert_eq!(find(&r.topographies, "b"), &Topography::Baseline);
        // An audio set names its normalisation; its epochs become the recipe's.
        let sc = find(&r.datasets, "sc");
        assert!(sc.normalisation.is_some());
        assert_eq!(r.training_for(sc).epochs, 3);
    }

    #[test]
    fn every_problem_at_once_at_its_key() {
        let e = experiment(
            "name: x\ndatasets: { d: { kind: cifar10 } }\n\
             topographies: { s: { layout: sphere, dimension: 1 }, unused: { kind: none, dimension: 2 } }\n\
             grid: { dataset: [d, e], model: [resnet19], topography: [s] }\n",
        );
        let u = resolve(e).unwrap_err();
        let paths: Vec<&str> = u.problems.iter().map(|p| p.path.as_str()).collect();
        assert_eq!(
            paths,
            vec![
                "grid.dataset[1]",
                "grid.model[0]",
                "topographies.s.dimension",
                "topographies.unused.dimension"
            ]
        );
        // What did resolve is kept, for the report.
        assert_eq!(u.partial.datasets.len(), 1);
    }
}
