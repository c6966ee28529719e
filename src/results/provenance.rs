//! Where a run came from: the build, the machine and the command that produced it, kept
//! in its summary so that a result can be traced and a stale one told apart.

use std::time::{SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

use super::Versions;
use crate::kernels::Kernels;

/// The commit a build came from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GitState {
    pub commit: String,
    /// The work tree had changes not committed when the binary was built.
    pub dirty: bool,
}

impl GitState {
    /// This binary's, as `build.rs` read it; `None` for a build outside a git checkout.
    pub fn of_this_build() -> Option<GitState> {
        let commit = env!("BUILD_GIT_COMMIT");
        (!commit.is_empty()).then(|| GitState {
            commit: commit.to_string(),
            dirty: env!("BUILD_GIT_DIRTY") == "true",
        })
    }
}

/// The widest vector instruction set the kernels (and gemm, whose float rounding depends
/// on it) use on this CPU: AVX-512 only where the CPU has it and the build has its
/// kernels (the default `avx512` feature).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Isa {
    Avx512,
    Avx2,
    /// Neither: plain or SSE code on x86-64, or another architecture.
    Portable,
}

impl Isa {
    pub fn of_this_cpu() -> Isa {
        #[cfg(target_arch = "x86_64")]
        {
            if crate::kernels::AVX512_KERNELS && std::arch::is_x86_feature_detected!("avx512f") {
                return Isa::Avx512;
            }
            if std::arch::is_x86_feature_detected!("avx2")
                && std::arch::is_x86_feature_detected!("fma")
            {
                return Isa::Avx2;
            }
        }
        Isa::Portable
    }

    pub fn name(self) -> &'static str {
        match self {
            Isa::Avx512 => "avx512",
            Isa::Avx2 => "avx2",
            Isa::Portable => "portable",
        }
    }
}

/// How a run was produced.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Provenance {
    pub topo: String,
    pub candle: String,
    /// `None` for a build outside a git checkout.
    pub git: Option<GitState>,
    /// The CPU's model name (`/proc/cpuinfo`), or `unknown`.
    pub cpu: String,
    pub isa: Isa,
    /// The kernels that ran (after `fast` became `unfold` on a GPU).
    pub kernels: Kernels,
    /// `cpu`, or `cuda:N`.
    pub device: String,
    pub host: String,
    /// The command line, program first.
    pub command: Vec<String>,
    /// When the session that finished the run started and ended (UTC, RFC 3339).
    pub started: String,
    pub ended: String,
}

impl Provenance {
    /// This build, machine and process; `started` when the run's session began.
    pub fn here(kernels: Kernels, device: String, started: SystemTime) -> Provenance {
        let versions = Versions::of_this_build();
        Provenance {
            topo: versions.topo,
            candle: versions.candle,
            git: GitState::of_this_build(),
            cpu: cpu_model(),
            isa: Isa::of_this_cpu(),
            kernels,
            device,
            host: host(),
            command: std::env::args().collect(),
            started: rfc3339(started),
            ended: rfc3339(SystemTime::now()),
        }
    }

    /// How this run's build differs from `other`'s in what can change its numbers (the
    /// commit, the kernels, the instruction set); `None` where nothing does. A record
    /// without a commit cannot be told apart by it.
    pub fn differs_from(&self, other: &Provenance) -> Option<String> {
        let mut what = Vec::new();
        if let (Some(a), Some(b)) = (&self.git, &other.git)
            && a.commit != b.commit
        {
            what.push(format!(
                "commit {} -> {}",
                short(&a.commit),
                short(&b.commit)
            ));
        }
        if self.kernels != other.kernels {
            what.push(format!(
                "kernels {} -> {}",
                self.kernels.name(),
                other.kernels.name()
            ));
        }
        if self.isa != other.isa {
            what.push(format!("isa {} -> {}", self.isa.name(), other.isa.name()));
        }
        (!what.is_empty()).then(|| what.join(", "))
    }
}

fn short(commit: &str) -> &str {
    commit.get(..8).unwrap_or(commit)
}

/// This machine's name, as the lock files record it too.
pub fn host() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_string())
        .unwrap_or_else(|_| "localhost".into())
}

fn cpu_model() -> String {
    std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|text| {
            text.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split_once(':'))
                .map(|(_, v)| v.trim().to_string())
        })
        .unwrap_or_else(|| "unknown".into())
}

/// `2026-12-06T20:24:12Z`: days from the civil calendar (Howard Hinnant's algorithm),
/// so no date crate is needed for one format.
pub fn rfc3339(t: SystemTime) -> String {
    let secs = t
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let (days, rem) = (secs / 86_400, secs % 86_400);
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn rfc3339_of_known_instants() {
        let at = |s| rfc3339(UNIX_EPOCH + Duration::from_secs(s));
        assert_eq!(at(0), "1970-01-01T00:00:00Z");
        // 2000-02-29 (a leap day of a century leap year) 12:34:56.
        assert_eq!(at(951_827_696), "2000-02-29T12:34:56Z");
        assert_eq!(at(1_796_588_652), "2026-12-06T20:24:12Z");
    }

    #[test]
    fn differences_name_what_changes_numbers() {
        let p = Provenance::here(Kernels::Fast, "cpu".into(), SystemTime::now());
        assert_eq!(p.differs_from(&p), None);
        let mut q = p.clone();
        q.kernels = Kernels::Candle;
        q.host = "elsewhere".into();
        q.git = Some(GitState {
            commit: "0123456789abcdef".into(),
            dirty: false,
        });
        let said = p.differs_from(&q).unwrap();
        assert!(said.contains("kernels fast -> candle"), "{said}");
        assert!(!said.contains("elsewhere"), "{said}");
    }
}
