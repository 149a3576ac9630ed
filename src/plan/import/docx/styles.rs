//! `word/styles.xml`: what the reader needs of styles — numbering set on a
//! paragraph style, bold set on a style, list-bullet styles, and the
//! `w:basedOn` chains through which those are inherited.

use super::xml::{self, Xml};
use crate::plan::import::error::ImportError;
use quick_xml::events::Event;
use std::collections::HashMap;

/// Longest `w:basedOn` chain followed; also stops a cycle.
const MAX_CHAIN: usize = 32;

#[derive(Debug, Default)]
struct Style {
    based_on: Option<String>,
    num_id: Option<u32>,
    ilvl: Option<u8>,
    bold: Option<bool>,
    /// Named like Word's "List Bullet" styles.
    bullet_name: bool,
}

#[derive(Debug, Default)]
pub(super) struct Styles {
    by_id: HashMap<String, Style>,
    default_paragraph: Option<String>,
    /// Bold in the document defaults (`w:docDefaults`).
    default_bold: bool,
}

/// Where the parser is, as far as it matters.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Tag {
    Style,
    Defaults,
    PPr,
    NumPr,
    RPr,
    Other,
}

impl Styles {
    pub(super) fn parse(text: &str, part: &str) -> Result<Self, ImportError> {
        let mut xml = Xml::new(text, part);
        let mut styles = Styles::default();
        let mut stack: Vec<Tag> = Vec::new();
        let mut current: Option<(String, Style)> = None;
        loop {
            let event = xml.next()?;
            let (e, started) = match &event {
                Event::Start(e) => (e, true),
                Event::Empty(e) => (e, false),
                Event::End(_) => {
                    if stack.pop() == Some(Tag::Style) {
                        if let Some((id, style)) = current.take() {
                            styles.by_id.insert(id, style);
                        }
                    }
                    continue;
                }
                Event::Eof => break,
                _ => continue,
            };
            let name = xml::local(e);
            let parent = stack.last().copied();
            let tag = match name {
                // Earlier formatting kept for tracked changes: not in effect.
                b"pPrChange" | b"rPrChange" => {
                    xml.skip_if(started)?;
                    continue;
                }
                b"style" => {
                    let id = xml::attr(e, b"styleId").map(|v| v.into_owned()).unwrap_or_default();
                    let is_paragraph = xml::attr(e, b"type").as_deref() == Some("paragraph");
                    if is_paragraph && xml::attr(e, b"default").is_some_and(|v| matches!(&*v, "1" | "true" | "on")) {
                        styles.default_paragraph = Some(id.clone());
                    }
                    let style = Style {
                        bullet_name: is_bullet_name(&id),
                        ..Style::default()
                    };
                    if started {
                        current = Some((id, style));
                    } else {
                        styles.by_id.insert(id, style);
                    }
                    Tag::Style
                }
                b"docDefaults" => Tag::Defaults,
                b"pPr" => Tag::PPr,
                b"numPr" => Tag::NumPr,
                b"rPr" => Tag::RPr,
                _ => {
                    let in_style = stack.contains(&Tag::Style);
                    let in_defaults = stack.contains(&Tag::Defaults);
                    match (name, parent) {
                        (b"name", Some(Tag::Style)) => {
                            if let Some((_, style)) = current.as_mut() {
                                let name = xml::attr(e, b"val").unwrap_or_default();
                                style.bullet_name |= is_bullet_name(&name);
                            }
                        }
                        (b"basedOn", Some(Tag::Style)) => {
                            if let Some((_, style)) = current.as_mut() {
                                style.based_on = xml::attr(e, b"val").map(|v| v.into_owned());
                            }
                        }
                        (b"numId", Some(Tag::NumPr)) if in_style => {
                            if let Some((_, style)) = current.as_mut() {
                                style.num_id = xml::val_number(e);
                            }
                        }
                        (b"ilvl", Some(Tag::NumPr)) if in_style => {
                            if let Some((_, style)) = current.as_mut() {
                                style.ilvl = xml::val_number::<u8>(e).map(|l| l.min(8));
                            }
                        }
                        (b"b", Some(Tag::RPr)) if in_style => {
                            if let Some((_, style)) = current.as_mut() {
                                style.bold = Some(xml::on(e));
                            }
                        }
                        (b"b", Some(Tag::RPr)) if in_defaults => styles.default_bold = xml::on(e),
                        _ => {}
                    }
                    Tag::Other
                }
            };
            if started {
                stack.push(tag);
            }
        }
        Ok(styles)
    }

    /// The style and the styles it is based on, nearest first.
    fn chain<'s>(&'s self, id: &'s str) -> impl Iterator<Item = &'s Style> + 's {
        let mut next = Some(id);
        std::iter::from_fn(move || {
            let style = self.by_id.get(next?)?;
            next = style.based_on.as_deref();
            Some(style)
        })
        .take(MAX_CHAIN)
    }

    /// The numbering a paragraph style gives: its `numId` and `ilvl`, each
    /// from the nearest style in the chain that sets it.
    pub(super) fn numbering(&self, id: &str) -> (Option<u32>, Option<u8>) {
        let num_id = self.chain(id).find_map(|s| s.num_id);
        let ilvl = self.chain(id).find_map(|s| s.ilvl);
        (num_id, ilvl)
    }

    /// Bold as a style sets it, if it does.
    pub(super) fn bold(&self, id: &str) -> Option<bool> {
        self.chain(id).find_map(|s| s.bold)
    }

    pub(super) fn is_bullet_style(&self, id: &str) -> bool {
        is_bullet_name(id) || self.chain(id).any(|s| s.bullet_name)
    }

    /// The style of paragraphs that name none.
    pub(super) fn default_paragraph(&self) -> Option<&str> {
        self.default_paragraph.as_deref()
    }

    pub(super) fn default_bold(&self) -> bool {
        self.default_bold
    }
}

/// "List Bullet", "List Bullet 2", "ListBullet3", any case.
fn is_bullet_name(name: &str) -> bool {
    let compact: String = name
        .chars()
        .filter(|c| !c.is_whitespace())
        .flat_map(char::to_lowercase)
        .collect();
    compact.starts_with("listbullet")
}
