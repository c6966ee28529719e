//! The weight of the topographic loss: positive and finite by construction, with one
//! way to write it (run ids, tables, figures), one order and one hash.

use std::cmp::Ordering;
use std::fmt;
use std::hash::{Hash, Hasher};

use serde::{Deserialize, Serialize};

/// A lambda that is positive and finite; it reads and writes as a plain number.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(into = "f64", try_from = "f64")]
pub struct Lambda(f64);

/// Why a number is not a lambda.
#[derive(Debug, Clone, Copy, PartialEq, thiserror::Error)]
#[error("lambda must be a positive finite number, found `{0}`")]
pub struct NotALambda(pub f64);

impl Lambda {
    pub const fn new(value: f64) -> Result<Self, NotALambda> {
        if value.is_finite() && value > 0.0 {
            Ok(Lambda(value))
        } else {
            Err(NotALambda(value))
        }
    }

    /// For constants: a number that is not a lambda fails the build, not a run.
    pub const fn known(value: f64) -> Lambda {
        match Lambda::new(value) {
            Ok(l) => l,
            Err(_) => panic!("not a lambda"),
        }
    }

    pub fn get(self) -> f64 {
        self.0
    }

    /// `ce + lambda * topo`: the objective the run minimises.
    pub fn weigh(self, ce: f64, topo: f64) -> f64 {
        ce + self.0 * topo
    }
}

impl TryFrom<f64> for Lambda {
    type Error = NotALambda;
    fn try_from(value: f64) -> Result<Self, NotALambda> {
        Lambda::new(value)
    }
}

impl From<Lambda> for f64 {
    fn from(l: Lambda) -> f64 {
        l.0
    }
}

/// As a run id, a table and a figure write it: `1e-5`, `5e-2`, `0.1`, `1`, `5`, `1e2`.
impl fmt::Display for Lambda {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if (0.01..100.0).contains(&self.0) {
            let s = format!("{}", self.0);
            f.write_str(s.trim_end_matches(".0"))
        } else {
            write!(f, "{:e}", self.0)
        }
    }
}

// Finite by construction, so the total order is the numeric order and equal values
// have equal bits (a positive number has no signed zero).
impl Eq for Lambda {}

impl PartialOrd for Lambda {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Lambda {
    fn cmp(&self, other: &Self) -> Ordering {
        self.0.total_cmp(&other.0)
    }
}

impl Hash for Lambda {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.0.to_bits().hash(state);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_positive_finite_numbers_are_lambdas() {
        assert!(Lambda::new(1e-5).is_ok());
        for bad in [0.0, -0.0, -1.0, f64::INFINITY, f64::NAN] {
            assert!(Lambda::new(bad).is_err(), "{bad}");
        }
        assert!(serde_json::from_str::<Lambda>("-1").is_err());
        assert_eq!(serde_json::to_string(&Lambda(0.5)).unwrap(), "0.5");
    }

    #[test]
    fn lambdas_read_like_the_paper() {
        let t = |l| Lambda::new(l).unwrap().to_string();
        assert_eq!(t(1e-5), "1e-5");
        assert_eq!(t(5e-3), "5e-3");
        assert_eq!(t(0.01), "0.01");
        assert_eq!(t(0.1), "0.1");
        assert_eq!(t(1.0), "1");
        assert_eq!(t(5.0), "5");
        assert_eq!(t(100.0), "1e2");
    }

    #[test]
    fn lambdas_order_by_value() {
        let mut v: Vec<Lambda> = [1.0, 1e-5, 0.1].map(|l| Lambda::new(l).unwrap()).to_vec();
        v.sort();
        assert_eq!(
            v.iter().map(|l| l.get()).collect::<Vec<_>>(),
            [1e-5, 0.1, 1.0]
        );
    }
}
