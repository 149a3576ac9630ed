//! A plain-text plan (UTF-8, one paragraph a line, as Word's "Plain Text"
//! export writes it) into the document model. Footnotes: the export puts
//! their texts at the end, each starting with "�", and leaves the place of
//! each marker as a broken line ("…đô thị\n. ", "…3-4m2(\n)."); the n-th
//! broken line cites the n-th footnote.

use super::document::{Block, Document, Paragraph};
use super::error::ImportError;
use super::words::clean;

const FOOTNOTE_MARK: char = '\u{FFFD}';

pub fn read(bytes: &[u8]) -> Result<Document, ImportError> {
    let text = std::str::from_utf8(bytes).map_err(|e| ImportError::NotUtf8 {
        offset: e.valid_up_to(),
    })?;
    let text = text.strip_prefix('\u{FEFF}').unwrap_or(text);
    let lines: Vec<(u32, String)> = text
        .split('\n')
        .enumerate()
        .map(|(i, l)| (i as u32 + 1, clean(&l.replace(['\t', '\r', '\u{a0}'], " "))))
        .collect();

    // Footnote texts: from the first line that starts with the marker.
    let footnote_start = lines
        .iter()
        .position(|(_, l)| l.starts_with(FOOTNOTE_MARK))
        .unwrap_or(lines.len());
    let mut footnotes: Vec<String> = Vec::new();
    for (_, l) in &lines[footnote_start..] {
        if let Some(rest) = l.strip_prefix(FOOTNOTE_MARK) {
            footnotes.push(rest.trim().to_string());
        } else if !l.is_empty() {
            if let Some(last) = footnotes.last_mut() {
                last.push(' ');
                last.push_str(l);
            }
        }
    }
    let mut next_footnote = footnotes.into_iter();

    let mut paragraphs: Vec<Paragraph> = Vec::new();
    let mut previous_blank = true;
    for (number, line) in &lines[..footnote_start] {
        let line = line.replace(FOOTNOTE_MARK, "");
        let line = line.trim();
        if line.is_empty() {
            previous_blank = true;
            continue;
        }
        // A broken line where a footnote marker was: glue it back.
        let continues = !previous_blank
            && paragraphs.last().is_some_and(|p| {
                line.starts_with(['.', ',', ';', ')', ':'])
                    || p.text.ends_with('(')
                    || continues_sentence(&p.text, line)
            });
        if let (true, Some(last)) = (continues, paragraphs.last_mut()) {
            let marker = line.starts_with(['.', ',', ';', ')']) || last.text.ends_with('(');
            let rest = line.trim_start_matches(')').trim_start();
            if last.text.ends_with('(') {
                last.text.pop();
            }
            let glue = if rest.starts_with(['.', ',', ';', ':']) || rest.is_empty() {
                ""
            } else {
                " "
            };
            last.text = format!("{}{glue}{rest}", last.text.trim_end()).trim().to_string();
            if marker {
                if let Some(f) = next_footnote.next() {
                    last.footnotes.push(f);
                }
            }
        } else {
            paragraphs.push(Paragraph::plain(line.to_string(), *number));
        }
        previous_blank = false;
    }
    Ok(Document {
        blocks: paragraphs.into_iter().map(Block::Paragraph).collect(),
    })
}

/// A line wrapped inside a sentence: the next starts lower case and the
/// previous did not end one.
fn continues_sentence(previous: &str, line: &str) -> bool {
    let starts_lower = line.chars().next().is_some_and(char::is_lowercase);
    let ended = previous.ends_with(['.', ':', ';', '!', '?', '"', '”']);
    starts_lower && !ended && !previous.starts_with(['-', '+', '•'])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn texts(doc: &Document) -> Vec<(String, Vec<String>)> {
        doc.blocks
            .iter()
            .map(|b| match b {
                Block::Paragraph(p) => (p.text.clone(), p.footnotes.clone()),
                Block::Table(_) => (String::new(), vec![]),
            })
            .collect()
    }

    #[test]
    fn broken_lines_are_glued_and_cite_their_footnotes() {
        let doc = read(
            "(3) Phấn đấu từ 75% đến 80% phường đạt chuẩn văn minh đô thị\n. \n\n(4) cây xanh đạt từ 3-4m2(\n).  \n\n\u{FFFD} Theo Quyết định số 04.\n\n\u{FFFD} Năm 2021 đạt khoảng 2,5m2.\n"
                .as_bytes(),
        )
        .unwrap();
        assert_eq!(
            texts(&doc),
            vec![
                (
                    "(3) Phấn đấu từ 75% đến 80% phường đạt chuẩn văn minh đô thị.".to_string(),
                    vec!["Theo Quyết định số 04.".to_string()]
                ),
                (
                    "(4) cây xanh đạt từ 3-4m2.".to_string(),
                    vec!["Năm 2021 đạt khoảng 2,5m2.".to_string()]
                ),
            ]
        );
    }

    #[test]
    fn not_utf8_is_refused_with_its_offset() {
        assert_eq!(read(b"ab\xffcd"), Err(ImportError::NotUtf8 { offset: 2 }));
    }
}
