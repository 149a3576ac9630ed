//! `file:line:col: what is wrong` messages for plan files.

use std::fmt;
use std::ops::Range;
use std::path::{Path, PathBuf};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnostic {
    pub file: PathBuf,
    pub line: usize,
    pub col: usize,
    pub message: String,
    pub hint: Option<String>,
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}:{}:{}: {}",
            self.file.display(),
            self.line,
            self.col,
            self.message
        )?;
        if let Some(hint) = &self.hint {
            write!(f, " (gợi ý: {hint})")?;
        }
        Ok(())
    }
}

/// Collects diagnostics for one file, turning byte spans into line and column.
pub struct Reporter<'a> {
    file: &'a Path,
    source: &'a str,
    /// Byte offset of the start of each line, so that a position is a
    /// binary search (validating a plan of 100 000 tasks asks for one per task).
    line_starts: Vec<usize>,
    pub diagnostics: Vec<Diagnostic>,
}

impl<'a> Reporter<'a> {
    pub fn new(file: &'a Path, source: &'a str) -> Self {
        Self {
            file,
            source,
            line_starts: std::iter::once(0)
                .chain(source.match_indices('\n').map(|(i, _)| i + 1))
                .collect(),
            diagnostics: Vec::new(),
        }
    }

    /// 1-based line and column (in characters) of a byte offset.
    pub fn position(&self, offset: usize) -> (usize, usize) {
        let offset = offset.min(self.source.len());
        let line = self.line_starts.partition_point(|start| *start <= offset);
        let line_start = self.line_starts[line - 1];
        (line, self.source[line_start..offset].chars().count() + 1)
    }

    pub fn error(&mut self, span: Range<usize>, message: impl Into<String>, hint: Option<String>) {
        let (line, col) = self.position(span.start);
        self.diagnostics.push(Diagnostic {
            file: self.file.to_path_buf(),
            line,
            col,
            message: message.into(),
            hint,
        });
    }
}
