//! Plan definitions: the TOML format of `workflows/`, its validation with
//! `file:line:col` diagnostics, and turning a plan into commands.

pub mod baseline;
pub mod diagnostics;
pub mod directory;
pub mod import;
pub mod load;
pub mod raw;
mod validate;

use crate::domain::ids::{PlanId, TaskId, TaskKey};
use crate::domain::plan::{Agency, PlanHeader, PlanSource};
use crate::domain::task::{MilestoneSpec, TaskDefinition};
pub use diagnostics::Diagnostic;
use diagnostics::Reporter;
use std::path::{Path, PathBuf};

/// A validated plan.
#[derive(Debug, Clone, PartialEq)]
pub struct PlanDefinition {
    pub header: PlanHeader,
    pub agencies: Vec<Agency>,
    pub tasks: Vec<PlanTask>,
    /// The file's name and the SHA-256 of its text.
    pub source: PlanSource,
    /// The text itself, when the plan was read from one: kept with the
    /// evidence files at load, so that the plan in force can be downloaded
    /// and its directory edited on the web.
    pub text: Option<std::sync::Arc<str>>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct PlanTask {
    pub id: TaskId,
    pub definition: TaskDefinition,
    pub milestones: Vec<MilestoneSpec>,
}

impl PlanDefinition {
    pub fn id(&self) -> &PlanId {
        &self.header.id
    }

    pub fn key(&self, task: &PlanTask) -> TaskKey {
        TaskKey::new(self.header.id.clone(), task.id.clone())
    }
}

/// A plan text's name and SHA-256.
pub fn source_of(file: &Path, text: &str) -> PlanSource {
    use sha2::Digest as _;
    PlanSource {
        file: file.display().to_string(),
        sha256: hex::encode(sha2::Sha256::digest(text.as_bytes())),
        document: None,
    }
}

/// The largest plan file read or parsed: the shipped plan is about 70 KiB
/// for 45 tasks, a 2,000-task plan about 3 MiB; 8 MiB holds some 5,000
/// tasks, more than any one plan of a district or a province has.
pub const PLAN_MAX_BYTES: u64 = 8 * 1024 * 1024;

/// A plan file over `PLAN_MAX_BYTES`, refused before it is parsed.
fn too_large(file: &Path, bytes: u64) -> Option<Vec<Diagnostic>> {
    (bytes > PLAN_MAX_BYTES).then(|| {
        vec![Diagnostic {
            file: file.to_path_buf(),
            line: 0,
            col: 0,
            message: format!(
                "tệp kế hoạch quá lớn: {bytes} byte, tối đa {PLAN_MAX_BYTES} byte (8 MiB, khoảng 5.000 nhiệm vụ): tách thành nhiều kế hoạch"
            ),
            hint: None,
        }]
    })
}

/// `parse_str` for text from outside (an upload): refused unparsed when
/// over `PLAN_MAX_BYTES`. Plans generated in process (benchmarks) use
/// `parse_str` directly.
pub fn parse_bounded(file: &Path, source: &str) -> Result<PlanDefinition, Vec<Diagnostic>> {
    match too_large(file, source.len() as u64) {
        Some(refused) => Err(refused),
        None => parse_str(file, source),
    }
}

/// Parses and validates plan text; `file` names it in diagnostics and in the record.
pub fn parse_str(file: &Path, source: &str) -> Result<PlanDefinition, Vec<Diagnostic>> {
    let mut reporter = Reporter::new(file, source);
    match toml::from_str::<raw::RawPlanFile>(source) {
        Ok(raw) => match validate::validate(raw, &mut reporter) {
            Some(plan) if reporter.diagnostics.is_empty() => Ok(PlanDefinition {
                source: source_of(file, source),
                text: Some(source.into()),
                ..plan
            }),
            _ => Err(reporter.diagnostics),
        },
        Err(e) => {
            let message = e.message().trim().replace('\n', " ");
            reporter.error(e.span().unwrap_or(0..0), format!("TOML không hợp lệ: {message}"), None);
            Err(reporter.diagnostics)
        }
    }
}

/// Reads, parses and validates a plan file.
pub fn parse_file(file: &Path) -> Result<PlanDefinition, Vec<Diagnostic>> {
    if let Some(refused) = std::fs::metadata(file).ok().and_then(|m| too_large(file, m.len())) {
        return Err(refused);
    }
    match std::fs::read_to_string(file) {
        Ok(source) => parse_bounded(file, &source),
        Err(e) => Err(vec![Diagnostic {
            file: file.to_path_buf(),
            line: 0,
            col: 0,
            message: format!("không đọc được tệp: {e}"),
            hint: None,
        }]),
    }
}

/// The `*.toml` files of a workflows directory, sorted.
pub fn files_in(dir: &Path) -> std::io::Result<Vec<PathBuf>> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "toml"))
        .collect();
    files.sort();
    Ok(files)
}

#[cfg(test)]
mod tests;
