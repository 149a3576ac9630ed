//! Rules for text people write and text that leaves the system: what may
//! not be in a note, a reason or a name (control characters that drive a
//! terminal, bidi controls that make a file name read backwards), how such
//! text is shown when an older record holds it, and how a spreadsheet cell
//! is kept from running as a formula. Pure.

use std::borrow::Cow;

/// Bidi embedding, override and isolate controls, and the invisible marks
/// that reorder text: "hoá-đơn\u{202E}fdp.exe" reads as "hoá-đơnexe.pdf".
pub fn is_bidi_control(c: char) -> bool {
    matches!(c, '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}' | '\u{200E}' | '\u{200F}' | '\u{061C}')
}

/// A character refused in what people write: a control character other
/// than a line break or a tab (ESC starts the sequences that drive a
/// terminal), or a bidi control.
pub fn is_forbidden(c: char) -> bool {
    (c.is_control() && !matches!(c, '\n' | '\r' | '\t')) || is_bidi_control(c)
}

/// The first forbidden character of `s`, as people can name it (`U+001B`).
pub fn forbidden_in(s: &str) -> Option<String> {
    s.chars().find(|c| is_forbidden(*c)).map(code_point)
}

/// `U+001B`.
pub fn code_point(c: char) -> String {
    format!("U+{:04X}", u32::from(c))
}

/// `s` with every forbidden character shown as its code point in brackets
/// (`[U+001B]`), for text an older record holds: an auditor's terminal or
/// spreadsheet shows it, never obeys it.
pub fn printable(s: &str) -> Cow<'_, str> {
    if !s.chars().any(is_forbidden) {
        return Cow::Borrowed(s);
    }
    Cow::Owned(
        s.chars()
            .map(|c| {
                if is_forbidden(c) {
                    format!("[{}]", code_point(c))
                } else {
                    c.to_string()
                }
            })
            .collect(),
    )
}

/// A cell as a spreadsheet reads it as text: one that starts like a
/// formula (`=`, `+`, `-`, `@`, tab, CR) gets a leading apostrophe, so
/// that a name or note never runs as a formula when the file is opened.
pub fn neutralised(cell: &str) -> Cow<'_, str> {
    if cell.starts_with(['=', '+', '-', '@', '\t', '\r']) {
        Cow::Owned(format!("'{cell}"))
    } else {
        Cow::Borrowed(cell)
    }
}

/// One CSV field: neutralised, forbidden characters shown, quoted when it
/// must be.
pub fn csv_field(s: &str) -> String {
    let cell = neutralised(s);
    let cell = printable(&cell);
    if cell.contains([',', '"', '\n', '\r', '\'']) {
        format!("\"{}\"", cell.replace('"', "\"\""))
    } else {
        cell.into_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_and_bidi_controls_are_named_and_shown_never_obeyed() {
        assert_eq!(forbidden_in("Đã nộp\nđủ\tsố liệu\r\n"), None);
        assert_eq!(forbidden_in("xem \u{1b}[2J"), Some("U+001B".into()));
        assert_eq!(forbidden_in("\u{9b}31m"), Some("U+009B".into()));
        assert_eq!(forbidden_in("bao-cao\u{202E}fdp.exe"), Some("U+202E".into()));
        assert_eq!(printable("a\u{1b}[31mb"), "a[U+001B][31mb");
        assert!(matches!(printable("bình thường"), Cow::Borrowed(_)));
    }

    #[test]
    fn cells_that_start_like_a_formula_stay_text() {
        assert_eq!(neutralised("=HYPERLINK(\"http://x\")"), "'=HYPERLINK(\"http://x\")");
        assert_eq!(neutralised("-1"), "'-1");
        assert_eq!(neutralised("Ủy ban"), "Ủy ban");
        assert_eq!(csv_field("=1+1"), "\"'=1+1\"");
        assert_eq!(csv_field("a,b"), "\"a,b\"");
        assert_eq!(csv_field("thường"), "thường");
        assert_eq!(csv_field("x\u{1b}y"), "x[U+001B]y");
    }
}
