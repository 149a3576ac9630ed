//! The neutral model of a plan document that the importer reads: an
//! ordered list of paragraphs and tables, whatever the file was (.txt or
//! .docx). Word's automatic numbering is already rebuilt into `number`,
//! footnotes are already attached to the paragraph that cites them.

use serde::Serialize;

/// Where a block came from, for the report and the `source` of a task.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Origin {
    /// 1-based: the line of a .txt, the paragraph of a .docx (counting the
    /// body's paragraphs, table cells included, in document order).
    pub line: u32,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Paragraph {
    /// The paragraph's text: runs joined, NFC, tabs as spaces, no leading or
    /// trailing whitespace. In a .txt this is the text as typed, numbers
    /// included ("1.1. Quán triệt…", "- Cơ quan…", "(3) Ban…").
    pub text: String,
    /// A number Word draws in front of the paragraph (automatic numbering),
    /// rebuilt as Word would show it: "1.", "1.1.", "a)", "(2)", "II-".
    /// `None` when the paragraph is not numbered (or in a .txt).
    pub number: Option<String>,
    /// The paragraph is a bulleted list item (a list style or numbering whose
    /// format is `bullet`): it reads as "- text".
    pub bullet: bool,
    /// The texts of the footnotes the paragraph cites, in order.
    pub footnotes: Vec<String>,
    /// Bold throughout (headings of parts are often bold).
    pub bold: bool,
    pub origin: Origin,
}

impl Paragraph {
    pub fn plain(text: impl Into<String>, line: u32) -> Self {
        Self {
            text: text.into(),
            number: None,
            bullet: false,
            footnotes: Vec::new(),
            bold: false,
            origin: Origin { line },
        }
    }

    /// The paragraph as a reader sees it: its number (or bullet) then its text.
    pub fn display(&self) -> String {
        match (&self.number, self.bullet) {
            (Some(n), _) => format!("{n} {}", self.text),
            (None, true) => format!("- {}", self.text),
            (None, false) => self.text.clone(),
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Table {
    /// Rows of cells; a cell's paragraphs joined with '\n'. A cell merged
    /// across columns (gridSpan) appears once; a vertically merged cell
    /// (vMerge continue) repeats the text of the cell above it.
    pub rows: Vec<Vec<String>>,
    pub origin: Origin,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Block {
    Paragraph(Paragraph),
    Table(Table),
}

#[derive(Debug, Clone, PartialEq, Default)]
pub struct Document {
    pub blocks: Vec<Block>,
}
