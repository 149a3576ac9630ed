//! A thin layer over quick-xml for the XML parts of a .docx: errors become
//! `ImportError::Corrupt`, nesting is bounded (the walkers recurse), a
//! truncated part is caught, and `mc:AlternateContent` is resolved so that
//! no walker ever sees both of its branches.

use crate::plan::import::error::ImportError;
use quick_xml::events::{BytesStart, Event};
use quick_xml::Reader;
use std::borrow::Cow;

/// Word nests a few dozen levels at most (tables in tables in content
/// controls); far deeper is an attack on the walkers' recursion.
const MAX_DEPTH: usize = 256;

/// The text of a part: UTF-8 (BOM dropped), or UTF-16 with a BOM.
pub(super) fn part_text(bytes: Vec<u8>, part: &str) -> Result<String, ImportError> {
    let not_text = || ImportError::Corrupt(format!("phần {part} không phải văn bản UTF-8/UTF-16"));
    let utf16 = |bytes: &[u8], from: fn([u8; 2]) -> u16| -> Result<String, ImportError> {
        let units = bytes.chunks_exact(2).map(|c| from([c[0], c[1]]));
        char::decode_utf16(units)
            .collect::<Result<String, _>>()
            .map_err(|_| not_text())
    };
    match bytes.as_slice() {
        [0xEF, 0xBB, 0xBF, rest @ ..] => std::str::from_utf8(rest).map(str::to_owned).map_err(|_| not_text()),
        [0xFF, 0xFE, rest @ ..] => utf16(rest, u16::from_le_bytes),
        [0xFE, 0xFF, rest @ ..] => utf16(rest, u16::from_be_bytes),
        _ => String::from_utf8(bytes).map_err(|_| not_text()),
    }
}

/// Reads one part's events.
pub(super) struct Xml<'a> {
    reader: Reader<&'a [u8]>,
    part: &'a str,
    /// Depth of the element last opened or closed: after a `Start` the
    /// depth of that element (the root is 1), after an `End` its parent's.
    depth: usize,
    /// Open `mc:AlternateContent` elements: their depth, and whether their
    /// first branch has been taken (the others are skipped).
    alternates: Vec<(usize, bool)>,
    seen_root: bool,
}

impl<'a> Xml<'a> {
    pub(super) fn new(text: &'a str, part: &'a str) -> Self {
        Self {
            reader: Reader::from_str(text),
            part,
            depth: 0,
            alternates: Vec::new(),
            seen_root: false,
        }
    }

    pub(super) fn depth(&self) -> usize {
        self.depth
    }

    pub(super) fn corrupt(&self, what: &str) -> ImportError {
        ImportError::Corrupt(format!(
            "phần {} {what} (byte {})",
            self.part,
            self.reader.buffer_position()
        ))
    }

    /// The next event as written, with the depth kept.
    fn raw(&mut self) -> Result<Event<'a>, ImportError> {
        let event = match self.reader.read_event() {
            Ok(event) => event,
            Err(_) => {
                return Err(ImportError::Corrupt(format!(
                    "phần {} không phải XML hợp lệ (byte {})",
                    self.part,
                    self.reader.error_position()
                )))
            }
        };
        match &event {
            Event::Start(_) => {
                self.depth += 1;
                self.seen_root = true;
                if self.depth > MAX_DEPTH {
                    return Err(self.corrupt("lồng quá sâu"));
                }
            }
            Event::Empty(_) => self.seen_root = true,
            // quick-xml already refuses an end tag that closes nothing.
            Event::End(_) => self.depth = self.depth.saturating_sub(1),
            Event::Eof if self.depth > 0 => return Err(self.corrupt("bị cắt cụt: thiếu thẻ đóng")),
            Event::Eof if !self.seen_root => return Err(self.corrupt("rỗng")),
            _ => {}
        }
        Ok(event)
    }

    /// The next event, `mc:AlternateContent` resolved: its first branch
    /// (`mc:Choice`) reads as if its content stood in place of the whole
    /// element, the other branches are skipped. Both branches show the same
    /// content, so taking one never loses text and never doubles it.
    pub(super) fn next(&mut self) -> Result<Event<'a>, ImportError> {
        loop {
            let event = self.raw()?;
            match &event {
                Event::Start(e) if local(e) == b"AlternateContent" => self.alternates.push((self.depth, false)),
                Event::Empty(e) if local(e) == b"AlternateContent" => {}
                Event::Start(_) | Event::Empty(_) if self.is_alternate_branch(&event) => {
                    let started = matches!(event, Event::Start(_));
                    if let Some(top) = self.alternates.last_mut() {
                        if top.1 {
                            if started {
                                self.skip()?;
                            }
                        } else {
                            top.1 = true;
                        }
                    }
                }
                Event::End(_) => match self.alternates.last() {
                    // The end of the branch taken.
                    Some(&(at, _)) if self.depth == at => {}
                    // The end of the AlternateContent itself.
                    Some(&(at, _)) if self.depth + 1 == at => {
                        self.alternates.pop();
                    }
                    _ => return Ok(event),
                },
                _ => return Ok(event),
            }
        }
    }

    /// Whether the element just read is a direct child (a branch) of the
    /// innermost open `mc:AlternateContent`.
    fn is_alternate_branch(&self, event: &Event<'_>) -> bool {
        // A Start has already raised the depth, an Empty has not.
        match (self.alternates.last(), event) {
            (Some(&(at, _)), Event::Start(_)) => self.depth == at + 1,
            (Some(&(at, _)), Event::Empty(_)) => self.depth == at,
            _ => false,
        }
    }

    /// The next event inside the element opened at `depth`; `None` at its end.
    pub(super) fn next_in(&mut self, depth: usize) -> Result<Option<Event<'a>>, ImportError> {
        let event = self.next()?;
        match event {
            Event::End(_) if self.depth < depth => Ok(None),
            // An end tag is only reached at depth 0 after the root closed;
            // inside an element `raw` already refused the early end of file.
            Event::Eof => Err(self.corrupt("bị cắt cụt")),
            event => Ok(Some(event)),
        }
    }

    /// Skips the content of the element whose `Start` was just read.
    pub(super) fn skip(&mut self) -> Result<(), ImportError> {
        let depth = self.depth;
        while self.depth >= depth {
            self.raw()?;
        }
        Ok(())
    }

    /// Skips the content of an element if it has any (`Start`, not `Empty`).
    pub(super) fn skip_if(&mut self, started: bool) -> Result<(), ImportError> {
        if started {
            self.skip()?;
        }
        Ok(())
    }

    /// Appends the text of the element just started (a `w:t`) to `out`.
    pub(super) fn text_into(&mut self, out: &mut String) -> Result<(), ImportError> {
        let depth = self.depth;
        while let Some(event) = self.next_in(depth)? {
            match event {
                Event::Text(t) => match t.decode() {
                    Ok(text) => out.push_str(&text),
                    Err(_) => return Err(self.corrupt("có ký tự không hợp lệ")),
                },
                Event::CData(t) => match t.decode() {
                    Ok(text) => out.push_str(&text),
                    Err(_) => return Err(self.corrupt("có ký tự không hợp lệ")),
                },
                Event::GeneralRef(r) => {
                    let resolved = match r.resolve_char_ref() {
                        Ok(Some(c)) => Some(c),
                        Ok(None) => match &r[..] {
                            b"amp" => Some('&'),
                            b"lt" => Some('<'),
                            b"gt" => Some('>'),
                            b"quot" => Some('"'),
                            b"apos" => Some('\''),
                            _ => None,
                        },
                        Err(_) => None,
                    };
                    match resolved {
                        Some(c) => out.push(c),
                        None => return Err(self.corrupt("có thực thể XML không xác định")),
                    }
                }
                // Nothing else belongs in a text element; ignore it.
                Event::Start(_) => self.skip()?,
                _ => {}
            }
        }
        Ok(())
    }
}

/// The element's name without its namespace prefix: documents are matched
/// on local names, since prefixes are the writer's choice.
pub(super) fn local<'e>(e: &'e BytesStart<'_>) -> &'e [u8] {
    e.local_name().into_inner()
}

/// The value of the attribute with this local name (`w:val` → `val`).
pub(super) fn attr<'e>(e: &'e BytesStart<'_>, name: &[u8]) -> Option<Cow<'e, str>> {
    let attribute = e.attributes().flatten().find(|a| a.key.local_name().as_ref() == name)?;
    match attribute.value {
        Cow::Borrowed(bytes) => {
            let raw = std::str::from_utf8(bytes).ok()?;
            quick_xml::escape::unescape(raw).ok()
        }
        Cow::Owned(bytes) => {
            let raw = String::from_utf8(bytes).ok()?;
            let value = quick_xml::escape::unescape(&raw).ok()?.into_owned();
            Some(Cow::Owned(value))
        }
    }
}

/// `w:val` as a number.
pub(super) fn val_number<T: std::str::FromStr>(e: &BytesStart<'_>) -> Option<T> {
    attr(e, b"val")?.trim().parse().ok()
}

/// A toggle property (`w:b`, `w:vanish`, `w:isLgl`): on unless `w:val` says off.
pub(super) fn on(e: &BytesStart<'_>) -> bool {
    !matches!(attr(e, b"val").as_deref(), Some("0" | "false" | "off"))
}
