//! `word/document.xml` (and the notes parts): paragraphs and tables in
//! document order, with the text Word shows — tracked deletions, field
//! codes, hidden text and drawings left out.

use super::numbering::{Label, Numbering};
use super::styles::Styles;
use super::xml::{self, Xml};
use crate::plan::import::document::{Block, Document, Origin, Paragraph, Table};
use crate::plan::import::error::ImportError;
use quick_xml::events::{BytesStart, Event};
use std::collections::HashMap;
use unicode_normalization::{is_nfc_quick, IsNormalized, UnicodeNormalization};

/// The texts of the notes of one kind, by `w:id`.
pub(super) type Notes = HashMap<i64, String>;

/// A note a paragraph cites.
#[derive(Debug, Clone, Copy)]
enum NoteRef {
    Foot(i64),
    End(i64),
}

/// A paragraph as written, before numbering and normalisation.
#[derive(Debug, Default)]
struct RawParagraph {
    text: String,
    style: Option<String>,
    num_id: Option<u32>,
    ilvl: Option<u8>,
    /// Runs with visible text, and how many of them are bold.
    text_runs: usize,
    bold_runs: usize,
    notes: Vec<NoteRef>,
}

#[derive(Debug, Default)]
struct RunProperties {
    bold: Option<bool>,
    style: Option<String>,
    hidden: bool,
}

/// Reads paragraphs and runs of one part.
struct Walker<'a, 's> {
    xml: Xml<'a>,
    styles: &'s Styles,
    /// Complex fields open here (`fldChar begin` … `end`; they may span
    /// runs and paragraphs): `true` once past `separate`, in the result
    /// Word displays; before it is the field code, which is not shown.
    fields: Vec<bool>,
}

impl<'a, 's> Walker<'a, 's> {
    fn new(text: &'a str, part: &'a str, styles: &'s Styles) -> Self {
        Self {
            xml: Xml::new(text, part),
            styles,
            fields: Vec::new(),
        }
    }

    /// Whether text here is displayed (not a field code).
    fn shown(&self) -> bool {
        self.fields.iter().all(|&result| result)
    }

    /// Reads a `w:p` whose start was just read.
    fn paragraph(&mut self) -> Result<RawParagraph, ImportError> {
        let depth = self.xml.depth();
        let mut p = RawParagraph::default();
        while let Some(event) = self.xml.next_in(depth)? {
            let Event::Start(e) = event else { continue };
            match xml::local(&e) {
                b"pPr" => self.paragraph_properties(&mut p)?,
                b"r" => self.run(&mut p)?,
                // Tracked deletions and moves away, drawings and text boxes
                // (shown twice, as DrawingML and VML), properties of
                // content controls and the like: no displayed text.
                b"del" | b"moveFrom" | b"drawing" | b"pict" | b"object" | b"txbxContent" | b"rPr" | b"sdtPr"
                | b"sdtEndPr" | b"customXmlPr" | b"smartTagPr" => self.xml.skip()?,
                // Hyperlinks, insertions, simple fields (their content is
                // the result), content controls, smart tags, equations:
                // their runs are the paragraph's.
                _ => {}
            }
        }
        Ok(p)
    }

    fn paragraph_properties(&mut self, p: &mut RawParagraph) -> Result<(), ImportError> {
        let depth = self.xml.depth();
        while let Some(event) = self.xml.next_in(depth)? {
            let (e, started) = match &event {
                Event::Start(e) => (e, true),
                Event::Empty(e) => (e, false),
                _ => continue,
            };
            match xml::local(e) {
                b"pStyle" => p.style = xml::attr(e, b"val").map(|v| v.into_owned()),
                b"numId" => p.num_id = xml::val_number(e),
                b"ilvl" => p.ilvl = xml::val_number::<u8>(e).map(|l| l.min(8)),
                // The paragraph mark's formatting, earlier properties kept
                // for tracked changes, the section: nothing to read.
                b"rPr" | b"pPrChange" | b"sectPr" => self.xml.skip_if(started)?,
                _ => {}
            }
        }
        Ok(())
    }

    fn run(&mut self, p: &mut RawParagraph) -> Result<(), ImportError> {
        let depth = self.xml.depth();
        let mut props = RunProperties::default();
        let text_start = p.text.len();
        while let Some(event) = self.xml.next_in(depth)? {
            let (e, started) = match &event {
                Event::Start(e) => (e, true),
                Event::Empty(e) => (e, false),
                _ => continue,
            };
            let shown = self.shown() && !props.hidden;
            match xml::local(e) {
                b"rPr" if started => self.run_properties(&mut props)?,
                b"t" if started && shown => self.xml.text_into(&mut p.text)?,
                // Line breaks read as spaces: a paragraph is one logical line.
                b"tab" | b"ptab" | b"br" | b"cr" if shown => {
                    p.text.push(' ');
                    self.xml.skip_if(started)?;
                }
                b"noBreakHyphen" if shown => {
                    p.text.push('-');
                    self.xml.skip_if(started)?;
                }
                b"fldChar" => {
                    self.field_char(e);
                    self.xml.skip_if(started)?;
                }
                b"footnoteReference" if shown => {
                    p.notes.extend(
                        xml::attr(e, b"id")
                            .and_then(|v| v.trim().parse().ok())
                            .map(NoteRef::Foot),
                    );
                    self.xml.skip_if(started)?;
                }
                b"endnoteReference" if shown => {
                    p.notes.extend(
                        xml::attr(e, b"id")
                            .and_then(|v| v.trim().parse().ok())
                            .map(NoteRef::End),
                    );
                    self.xml.skip_if(started)?;
                }
                // Deleted text, field codes, symbols, drawings, hidden text…
                _ => self.xml.skip_if(started)?,
            }
        }
        if p.text[text_start..].chars().any(|c| !c.is_whitespace()) {
            p.text_runs += 1;
            let bold = props
                .bold
                .or_else(|| props.style.as_deref().and_then(|s| self.styles.bold(s)))
                .or_else(|| {
                    p.style
                        .as_deref()
                        .or(self.styles.default_paragraph())
                        .and_then(|s| self.styles.bold(s))
                })
                .unwrap_or(self.styles.default_bold());
            if bold {
                p.bold_runs += 1;
            }
        }
        Ok(())
    }

    fn run_properties(&mut self, props: &mut RunProperties) -> Result<(), ImportError> {
        let depth = self.xml.depth();
        while let Some(event) = self.xml.next_in(depth)? {
            let (e, started) = match &event {
                Event::Start(e) => (e, true),
                Event::Empty(e) => (e, false),
                _ => continue,
            };
            match xml::local(e) {
                b"b" => props.bold = Some(xml::on(e)),
                b"rStyle" => props.style = xml::attr(e, b"val").map(|v| v.into_owned()),
                b"vanish" => props.hidden = xml::on(e),
                _ => {}
            }
            // Children of run properties (`w:rPrChange`…) are earlier
            // formatting: not in effect.
            self.xml.skip_if(started)?;
        }
        Ok(())
    }

    fn field_char(&mut self, e: &BytesStart<'_>) {
        match xml::attr(e, b"fldCharType").as_deref() {
            Some("begin") => self.fields.push(false),
            Some("separate") => {
                if let Some(result) = self.fields.last_mut() {
                    *result = true;
                }
            }
            Some("end") => {
                self.fields.pop();
            }
            _ => {}
        }
    }
}

/// Where the blocks of a container go.
enum Sink {
    Body(Vec<Block>),
    /// A table cell: the display text of its paragraphs, one a line.
    Cell(Vec<String>),
}

#[derive(Debug, Default)]
struct CellProperties {
    span: usize,
    /// `w:vMerge` continue: the cell above extends over this one.
    continued: bool,
    /// `w:hMerge` continue (old files): merged into the cell on its left.
    merged_left: bool,
}

/// A table cell as read: its text, and whether it repeats the cell above.
struct Cell {
    text: String,
    repeated: bool,
}

/// Reads the body: paragraphs numbered, counted, given their notes.
struct BodyReader<'a, 's> {
    walker: Walker<'a, 's>,
    numbering: &'s mut Numbering,
    footnotes: &'s Notes,
    endnotes: &'s Notes,
    /// Paragraphs met so far (empty ones and those in tables included).
    line: u32,
}

impl BodyReader<'_, '_> {
    fn document(&mut self) -> Result<Document, ImportError> {
        let mut sink = Sink::Body(Vec::new());
        loop {
            match self.walker.xml.next()? {
                Event::Start(e) if xml::local(&e) == b"body" => {
                    self.container(&mut sink, None)?;
                }
                // The root (`w:document`) is entered; other top-level
                // content (background) is skipped.
                Event::Start(_) if self.walker.xml.depth() > 1 => self.walker.xml.skip()?,
                Event::Eof => break,
                _ => {}
            }
        }
        let blocks = match sink {
            Sink::Body(blocks) => blocks,
            Sink::Cell(_) => Vec::new(),
        };
        Ok(Document { blocks })
    }

    /// Reads the blocks of the element just started (the body, a cell) into
    /// `sink`; a cell's own properties go to `cell`.
    fn container(&mut self, sink: &mut Sink, mut cell: Option<&mut CellProperties>) -> Result<(), ImportError> {
        let depth = self.walker.xml.depth();
        while let Some(event) = self.walker.xml.next_in(depth)? {
            match event {
                Event::Start(e) => match xml::local(&e) {
                    b"p" => {
                        let line = self.next_line();
                        let raw = self.walker.paragraph()?;
                        let paragraph = self.finish(raw, line);
                        sink.paragraph(paragraph);
                    }
                    b"tbl" => {
                        let (rows, line) = self.table()?;
                        sink.table(rows, line);
                    }
                    b"tcPr" => match cell.as_deref_mut() {
                        Some(props) => self.cell_properties(props)?,
                        None => self.walker.xml.skip()?,
                    },
                    // Content controls, custom XML, tracked insertions: their
                    // blocks are the container's.
                    b"sdt" | b"sdtContent" | b"customXml" | b"ins" | b"moveTo" | b"smartTag" => {}
                    // Section properties, content control properties, moves
                    // away, embedded foreign chunks…
                    _ => self.walker.xml.skip()?,
                },
                Event::Empty(e) if xml::local(&e) == b"p" => {
                    self.next_line();
                }
                _ => {}
            }
        }
        Ok(())
    }

    fn next_line(&mut self) -> u32 {
        self.line = self.line.saturating_add(1);
        self.line
    }

    /// Numbering, normalised text and notes of a paragraph just read.
    fn finish(&mut self, raw: RawParagraph, line: u32) -> Paragraph {
        let styles = self.walker.styles;
        let style = raw.style.as_deref().or(styles.default_paragraph());
        let (style_num, style_ilvl) = style.map(|s| styles.numbering(s)).unwrap_or_default();
        let num_id = raw.num_id.or(style_num);
        let label = match num_id {
            Some(id) if id != 0 => {
                let ilvl = raw.ilvl.or(style_ilvl).unwrap_or(0);
                self.numbering.next(id, ilvl, style, raw.ilvl.is_none(), styles)
            }
            _ => None,
        };
        let (number, bullet) = match label {
            Some(Label::Number(n)) => (Some(n), false),
            Some(Label::Bullet) => (None, true),
            // A list-bullet style draws a bullet even when its numbering
            // is missing, unless the paragraph turned numbering off.
            None => (
                None,
                num_id != Some(0) && style.is_some_and(|s| styles.is_bullet_style(s)),
            ),
        };
        let footnotes = raw
            .notes
            .iter()
            .filter_map(|note| match *note {
                NoteRef::Foot(id) => self.footnotes.get(&id),
                NoteRef::End(id) => self.endnotes.get(&id),
            })
            .filter(|text| !text.is_empty())
            .cloned()
            .collect();
        Paragraph {
            text: normalize(&raw.text),
            number,
            bullet,
            footnotes,
            bold: raw.text_runs > 0 && raw.bold_runs == raw.text_runs,
            origin: Origin { line },
        }
    }

    /// Reads a `w:tbl` just started: its rows, and the line of its first
    /// paragraph.
    fn table(&mut self) -> Result<(Vec<Vec<Cell>>, u32), ImportError> {
        let line = self.line.saturating_add(1);
        let depth = self.walker.xml.depth();
        let mut rows = Vec::new();
        // The text last written in each grid column, for vertical merges.
        let mut above: Vec<String> = Vec::new();
        while let Some(event) = self.walker.xml.next_in(depth)? {
            let Event::Start(e) = event else { continue };
            match xml::local(&e) {
                b"tr" => rows.push(self.row(&mut above)?),
                b"sdt" | b"sdtContent" | b"customXml" | b"ins" | b"moveTo" => {}
                _ => self.walker.xml.skip()?,
            }
        }
        Ok((rows, line))
    }

    fn row(&mut self, above: &mut Vec<String>) -> Result<Vec<Cell>, ImportError> {
        let depth = self.walker.xml.depth();
        let mut cells = Vec::new();
        let mut column = 0usize;
        while let Some(event) = self.walker.xml.next_in(depth)? {
            let (e, started) = match &event {
                Event::Start(e) => (e, true),
                Event::Empty(e) => (e, false),
                _ => continue,
            };
            match xml::local(e) {
                b"trPr" if started => {
                    column = column.saturating_add(self.grid_before()?);
                }
                b"tc" => {
                    let mut props = CellProperties {
                        span: 1,
                        ..CellProperties::default()
                    };
                    let mut sink = Sink::Cell(Vec::new());
                    if started {
                        self.container(&mut sink, Some(&mut props))?;
                    }
                    let Sink::Cell(lines) = sink else { continue };
                    let span = props.span.clamp(1, 64);
                    if props.merged_left {
                        column = column.saturating_add(span);
                        continue;
                    }
                    if above.len() < column + span {
                        above.resize(column + span, String::new());
                    }
                    let cell = if props.continued {
                        Cell {
                            text: above[column].clone(),
                            repeated: true,
                        }
                    } else {
                        let text = lines.join("\n");
                        above[column].clone_from(&text);
                        for covered in &mut above[column + 1..column + span] {
                            covered.clear();
                        }
                        Cell { text, repeated: false }
                    };
                    cells.push(cell);
                    column += span;
                }
                b"sdt" | b"sdtContent" | b"customXml" | b"ins" | b"moveTo" => {}
                _ => self.walker.xml.skip_if(started)?,
            }
        }
        Ok(cells)
    }

    /// `w:gridBefore` in the row properties just started: grid columns
    /// left empty before the first cell.
    fn grid_before(&mut self) -> Result<usize, ImportError> {
        let depth = self.walker.xml.depth();
        let mut before = 0;
        while let Some(event) = self.walker.xml.next_in(depth)? {
            let (e, started) = match &event {
                Event::Start(e) => (e, true),
                Event::Empty(e) => (e, false),
                _ => continue,
            };
            if xml::local(e) == b"gridBefore" {
                before = xml::val_number::<usize>(e).unwrap_or(0).min(64);
            }
            self.walker.xml.skip_if(started)?;
        }
        Ok(before)
    }

    fn cell_properties(&mut self, props: &mut CellProperties) -> Result<(), ImportError> {
        let depth = self.walker.xml.depth();
        while let Some(event) = self.walker.xml.next_in(depth)? {
            let (e, started) = match &event {
                Event::Start(e) => (e, true),
                Event::Empty(e) => (e, false),
                _ => continue,
            };
            match xml::local(e) {
                b"gridSpan" => props.span = xml::val_number(e).unwrap_or(1),
                b"vMerge" => props.continued = xml::attr(e, b"val").as_deref() != Some("restart"),
                b"hMerge" => props.merged_left = xml::attr(e, b"val").as_deref() != Some("restart"),
                _ => {}
            }
            // `w:tcPrChange` holds earlier properties: not in effect.
            self.walker.xml.skip_if(started)?;
        }
        Ok(())
    }
}

impl Sink {
    fn paragraph(&mut self, paragraph: Paragraph) {
        // Empty paragraphs (spacing) carry nothing; their line was counted.
        if paragraph.text.is_empty() && paragraph.footnotes.is_empty() {
            return;
        }
        match self {
            Sink::Body(blocks) => blocks.push(Block::Paragraph(paragraph)),
            Sink::Cell(lines) => lines.push(paragraph.display()),
        }
    }

    fn table(&mut self, rows: Vec<Vec<Cell>>, line: u32) {
        match self {
            Sink::Body(blocks) => {
                if !rows.is_empty() {
                    let rows = rows
                        .into_iter()
                        .map(|row| row.into_iter().map(|c| c.text).collect())
                        .collect();
                    blocks.push(Block::Table(Table {
                        rows,
                        origin: Origin { line },
                    }));
                }
            }
            // A table in a cell: its text joins the cell's, each cell once.
            Sink::Cell(lines) => lines.extend(
                rows.into_iter()
                    .flatten()
                    .filter(|c| !c.repeated && !c.text.is_empty())
                    .map(|c| c.text),
            ),
        }
    }
}

/// Reads `word/document.xml`.
pub(super) fn read_body(
    text: &str,
    part: &str,
    styles: &Styles,
    numbering: &mut Numbering,
    footnotes: &Notes,
    endnotes: &Notes,
) -> Result<Document, ImportError> {
    let mut reader = BodyReader {
        walker: Walker::new(text, part, styles),
        numbering,
        footnotes,
        endnotes,
        line: 0,
    };
    reader.document()
}

/// Reads `word/footnotes.xml` or `word/endnotes.xml`: each note's
/// paragraphs joined with spaces. Separator notes have no text.
pub(super) fn read_notes(text: &str, part: &str, styles: &Styles) -> Result<Notes, ImportError> {
    let mut walker = Walker::new(text, part, styles);
    let mut notes = Notes::new();
    let mut current: Option<(i64, String)> = None;
    let mut note_depth = 0;
    loop {
        match walker.xml.next()? {
            Event::Start(e) if matches!(xml::local(&e), b"footnote" | b"endnote") => {
                note_depth = walker.xml.depth();
                current = xml::attr(&e, b"id")
                    .and_then(|v| v.trim().parse().ok())
                    .map(|id| (id, String::new()));
            }
            Event::Start(e) if xml::local(&e) == b"p" => {
                let paragraph = walker.paragraph()?;
                if let Some((_, text)) = current.as_mut() {
                    let paragraph = normalize(&paragraph.text);
                    if !paragraph.is_empty() {
                        if !text.is_empty() {
                            text.push(' ');
                        }
                        text.push_str(&paragraph);
                    }
                }
            }
            Event::Start(e) if matches!(xml::local(&e), b"drawing" | b"pict" | b"object" | b"sectPr") => {
                walker.xml.skip()?;
            }
            Event::End(_) if walker.xml.depth() + 1 == note_depth => {
                if let Some((id, text)) = current.take() {
                    notes.insert(id, text);
                }
            }
            Event::Eof => break,
            _ => {}
        }
    }
    Ok(notes)
}

/// NFC, whitespace runs as one space, no leading or trailing whitespace,
/// invisible characters (zero-width space, BOM, soft hyphen) dropped.
pub(super) fn normalize(raw: &str) -> String {
    let mut out = String::with_capacity(raw.len());
    let mut space = false;
    let mut push = |c: char| {
        if c.is_whitespace() {
            space = !out.is_empty();
        } else if !matches!(c, '\u{200B}' | '\u{FEFF}' | '\u{00AD}') {
            if space {
                out.push(' ');
                space = false;
            }
            out.push(c);
        }
    };
    if is_nfc_quick(raw.chars()) == IsNormalized::Yes {
        raw.chars().for_each(&mut push);
    } else {
        raw.nfc().for_each(&mut push);
    }
    out
}
