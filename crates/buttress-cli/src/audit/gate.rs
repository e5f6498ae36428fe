//! The CI gates of `buttress audit`: `--min-grade` and `--baseline`, read before the scan
//! (a bad grade is exit code 2, an unusable baseline 4) and applied to its reports (exit 1 when
//! either fails, with every reason on standard error).

use std::io::Read as _;
use std::path::PathBuf;
use std::process::ExitCode;

use buttress_audit::baseline::{compare, Baseline, MAX_BASELINE_BYTES};
use buttress_audit::{grade_rank, Report};

use super::AuditArgs;

/// Exit code: the `--baseline` cannot be used.
const BASELINE_UNUSABLE: u8 = 4;

/// The gates asked for.
pub(super) struct Gate {
    min_grade: Option<String>,
    baseline: Option<(PathBuf, Baseline)>,
}

/// How to make a baseline, for the messages about a file that is none.
const MAKE_ONE: &str =
    "Fix: write one with `buttress audit URL --format json -o FILE` (or `--json FILE`)";

fn unusable(path: &std::path::Path, why: &dyn std::fmt::Display) -> ExitCode {
    eprintln!("buttress audit: --baseline {}: {why}", path.display());
    ExitCode::from(BASELINE_UNUSABLE)
}

/// Reads at most [`MAX_BASELINE_BYTES`] of `path` as UTF-8.
fn read_bounded(path: &std::path::Path) -> Result<String, String> {
    let file = std::fs::File::open(path).map_err(|e| format!("cannot read it: {e}. {MAKE_ONE}"))?;
    let mut text = String::new();
    file.take(MAX_BASELINE_BYTES + 1)
        .read_to_string(&mut text)
        .map_err(|e| format!("cannot read it as UTF-8 text: {e}. {MAKE_ONE}"))?;
    if text.len() as u64 > MAX_BASELINE_BYTES {
        return Err(format!(
            "larger than {} MiB: not a report. {MAKE_ONE}",
            MAX_BASELINE_BYTES >> 20
        ));
    }
    Ok(text)
}

impl Gate {
    /// The gates of `args`, checked before anything is sent.
    pub(super) fn load(args: &AuditArgs) -> Result<Gate, ExitCode> {
        if let Some(g) = &args.min_grade {
            if grade_rank(g) == 0 && !g.trim().eq_ignore_ascii_case("F") {
                eprintln!("buttress audit: --min-grade {g:?} is not a grade (A+, A, A-, B+ … F)");
                return Err(ExitCode::from(2));
            }
        }
        let baseline = match &args.baseline {
            None => None,
            Some(path) => {
                let text = read_bounded(path).map_err(|why| unusable(path, &why))?;
                let b = Baseline::from_json(&text).map_err(|e| unusable(path, &e))?;
                b.check_target(&args.url).map_err(|e| unusable(path, &e))?;
                Some((path.clone(), b))
            }
        };
        Ok(Gate {
            min_grade: args.min_grade.clone(),
            baseline,
        })
    }

    /// Applies the gates to the reports: 0 when all pass, 1 (with the reasons) otherwise.
    pub(super) fn apply(&self, reports: &[Report], quiet: bool) -> ExitCode {
        let mut failed = false;
        if let Some(min) = &self.min_grade {
            for r in reports
                .iter()
                .filter(|r| grade_rank(r.grade) < grade_rank(min))
            {
                eprintln!(
                    "buttress audit: {} graded {}, below --min-grade {min}",
                    r.target, r.grade
                );
                failed = true;
            }
        }
        if let (Some((path, baseline)), Some(report)) = (&self.baseline, reports.first()) {
            match compare(baseline, report) {
                Ok(cmp) => {
                    if cmp.regressed() || !quiet {
                        eprint!(
                            "buttress audit: --baseline {}\n{}",
                            path.display(),
                            cmp.render()
                        );
                    }
                    failed |= cmp.regressed();
                }
                Err(e) => return unusable(path, &e),
            }
        }
        if failed {
            ExitCode::FAILURE
        } else {
            ExitCode::SUCCESS
        }
    }
}
