//! `word/numbering.xml` and Word's automatic numbering: the definitions of
//! the lists, and the counters that rebuild "1.", "1.1.", "a)", "II-" as
//! Word draws them in front of each numbered paragraph.

use super::styles::Styles;
use super::xml::{self, Xml};
use crate::plan::import::error::ImportError;
use quick_xml::events::Event;
use std::collections::{HashMap, HashSet};

const LEVELS: usize = 9;

/// How a level's counter is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Format {
    Decimal,
    /// Zero-padded to this many digits ("01", "001").
    DecimalZero(usize),
    UpperRoman,
    LowerRoman,
    UpperLetter,
    LowerLetter,
    Bullet,
    None,
}

impl Format {
    /// `w:numFmt`; formats the reader does not write (ordinal, Chinese
    /// counting…) fall back to decimal.
    fn parse(value: &str, custom: Option<&str>) -> Self {
        match value {
            "upperRoman" => Self::UpperRoman,
            "lowerRoman" => Self::LowerRoman,
            "upperLetter" => Self::UpperLetter,
            "lowerLetter" => Self::LowerLetter,
            "bullet" => Self::Bullet,
            "none" => Self::None,
            "decimalZero" => Self::DecimalZero(2),
            // Word 2010+ writes zero padding as `custom` with `w:format="001, 002, 003, ..."`.
            "custom" => match custom.and_then(|f| f.split(',').next()).map(str::trim) {
                Some(first)
                    if first.len() > 1 && first.bytes().all(|b| b.is_ascii_digit()) && first.starts_with('0') =>
                {
                    Self::DecimalZero(first.len())
                }
                _ => Self::Decimal,
            },
            _ => Self::Decimal,
        }
    }

    fn write(self, n: u32, out: &mut String) {
        match self {
            Self::Decimal => out.push_str(&n.to_string()),
            Self::DecimalZero(width) => out.push_str(&format!("{n:0width$}")),
            Self::UpperRoman => roman(n, true, out),
            Self::LowerRoman => roman(n, false, out),
            Self::UpperLetter => letter(n, true, out),
            Self::LowerLetter => letter(n, false, out),
            Self::Bullet | Self::None => {}
        }
    }
}

fn roman(n: u32, upper: bool, out: &mut String) {
    if n == 0 {
        out.push('0');
        return;
    }
    const NUMERALS: [(u32, &str); 13] = [
        (1000, "m"),
        (900, "cm"),
        (500, "d"),
        (400, "cd"),
        (100, "c"),
        (90, "xc"),
        (50, "l"),
        (40, "xl"),
        (10, "x"),
        (9, "ix"),
        (5, "v"),
        (4, "iv"),
        (1, "i"),
    ];
    // Word writes thousands as repeated M; cap so a hostile start value
    // cannot make a huge label.
    let mut rest = n.min(9_999);
    for (value, numeral) in NUMERALS {
        while rest >= value {
            rest -= value;
            if upper {
                out.push_str(&numeral.to_ascii_uppercase());
            } else {
                out.push_str(numeral);
            }
        }
    }
}

/// Word's letters: a…z, then aa, bb, …, zz, then aaa… (the letter repeats,
/// it does not carry like spreadsheet columns).
fn letter(n: u32, upper: bool, out: &mut String) {
    if n == 0 {
        out.push('0');
        return;
    }
    let index = (n - 1) % 26;
    // Capped for the same reason as Roman numerals.
    let repeat = ((n - 1) / 26 + 1).min(20);
    let base = if upper { b'A' } else { b'a' };
    // index < 26, so the sum stays within ASCII letters.
    let c = char::from(base + index as u8);
    for _ in 0..repeat {
        out.push(c);
    }
}

/// One level of a list, as written; absent values take Word's defaults.
#[derive(Debug, Clone, Default)]
struct Level {
    start: Option<u32>,
    format: Option<Format>,
    text: Option<String>,
    /// `w:lvlRestart`: restart after this (1-based) level; 0 = never.
    restart: Option<u32>,
    legal: bool,
    /// The paragraph style bound to this level (`w:pStyle`).
    style: Option<String>,
}

impl Level {
    fn start(&self) -> u32 {
        self.start.unwrap_or(1)
    }

    fn format(&self) -> Format {
        self.format.unwrap_or(Format::Decimal)
    }
}

#[derive(Debug, Default)]
struct Abstract {
    levels: [Option<Level>; LEVELS],
    /// `w:numStyleLink`: the definition lives with the list style's own numbering.
    style_link: Option<String>,
}

#[derive(Debug, Default)]
struct Override {
    start: Option<u32>,
    level: Option<Level>,
}

#[derive(Debug, Default)]
struct Num {
    abstract_id: Option<u32>,
    overrides: [Option<Override>; LEVELS],
}

/// What Word draws in front of a numbered paragraph.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Label {
    Number(String),
    Bullet,
}

#[derive(Debug, Default)]
pub(super) struct Numbering {
    abstracts: HashMap<u32, Abstract>,
    nums: HashMap<u32, Num>,
    /// Counters, per abstract definition: Word counts a list across all
    /// the `w:num`s that share it. `None`: not started (or restarted).
    counters: HashMap<u32, [Option<u32>; LEVELS]>,
    /// `w:num`s already used: a start override applies at the first use.
    used: HashSet<u32>,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Tag {
    Abstract,
    Num,
    Level,
    Override,
    Other,
}

impl Numbering {
    pub(super) fn parse(text: &str, part: &str) -> Result<Self, ImportError> {
        let mut xml = Xml::new(text, part);
        let mut numbering = Numbering::default();
        let mut stack: Vec<Tag> = Vec::new();
        let mut abstract_num: Option<(u32, Abstract)> = None;
        let mut num: Option<(u32, Num)> = None;
        let mut level: Option<(usize, Level)> = None;
        let mut override_level: Option<usize> = None;
        loop {
            let event = xml.next()?;
            let (e, started) = match &event {
                Event::Start(e) => (e, true),
                Event::Empty(e) => (e, false),
                Event::End(_) => {
                    let tag = stack.pop();
                    numbering.close(
                        tag,
                        &stack,
                        &mut abstract_num,
                        &mut num,
                        &mut level,
                        &mut override_level,
                    );
                    continue;
                }
                Event::Eof => break,
                _ => continue,
            };
            let parent = stack.last().copied();
            let tag = match (xml::local(e), parent) {
                (b"abstractNum", _) => {
                    abstract_num = xml::attr(e, b"abstractNumId")
                        .and_then(|v| v.trim().parse().ok())
                        .map(|id| (id, Abstract::default()));
                    Tag::Abstract
                }
                (b"num", _) => {
                    num = xml::attr(e, b"numId")
                        .and_then(|v| v.trim().parse().ok())
                        .map(|id| (id, Num::default()));
                    Tag::Num
                }
                (b"lvl", Some(Tag::Abstract | Tag::Override)) => {
                    level = xml::attr(e, b"ilvl")
                        .and_then(|v| v.trim().parse::<usize>().ok())
                        .filter(|&l| l < LEVELS)
                        .map(|l| (l, Level::default()));
                    Tag::Level
                }
                (b"lvlOverride", Some(Tag::Num)) => {
                    override_level = xml::attr(e, b"ilvl")
                        .and_then(|v| v.trim().parse::<usize>().ok())
                        .filter(|&l| l < LEVELS);
                    if let (Some(l), Some((_, num))) = (override_level, num.as_mut()) {
                        num.overrides[l].get_or_insert_with(Override::default);
                    }
                    Tag::Override
                }
                (b"start", Some(Tag::Level)) => {
                    if let Some((_, level)) = level.as_mut() {
                        level.start = xml::val_number(e);
                    }
                    Tag::Other
                }
                (b"numFmt", Some(Tag::Level)) => {
                    if let Some((_, level)) = level.as_mut() {
                        let value = xml::attr(e, b"val").unwrap_or_default();
                        let custom = xml::attr(e, b"format");
                        level.format = Some(Format::parse(&value, custom.as_deref()));
                    }
                    Tag::Other
                }
                (b"lvlText", Some(Tag::Level)) => {
                    if let Some((_, level)) = level.as_mut() {
                        level.text = Some(xml::attr(e, b"val").map(|v| v.into_owned()).unwrap_or_default());
                    }
                    Tag::Other
                }
                (b"lvlRestart", Some(Tag::Level)) => {
                    if let Some((_, level)) = level.as_mut() {
                        level.restart = xml::val_number(e);
                    }
                    Tag::Other
                }
                (b"isLgl", Some(Tag::Level)) => {
                    if let Some((_, level)) = level.as_mut() {
                        level.legal = xml::on(e);
                    }
                    Tag::Other
                }
                (b"pStyle", Some(Tag::Level)) => {
                    if let Some((_, level)) = level.as_mut() {
                        level.style = xml::attr(e, b"val").map(|v| v.into_owned());
                    }
                    Tag::Other
                }
                (b"numStyleLink", Some(Tag::Abstract)) => {
                    if let Some((_, abstract_num)) = abstract_num.as_mut() {
                        abstract_num.style_link = xml::attr(e, b"val").map(|v| v.into_owned());
                    }
                    Tag::Other
                }
                (b"abstractNumId", Some(Tag::Num)) => {
                    if let Some((_, num)) = num.as_mut() {
                        num.abstract_id = xml::val_number(e);
                    }
                    Tag::Other
                }
                (b"startOverride", Some(Tag::Override)) => {
                    if let (Some(l), Some((_, num))) = (override_level, num.as_mut()) {
                        if let Some(o) = num.overrides[l].as_mut() {
                            o.start = xml::val_number(e);
                        }
                    }
                    Tag::Other
                }
                // A level's paragraph and run formatting, picture bullets:
                // nothing the reader needs.
                (b"pPr" | b"rPr" | b"numPicBullet", _) => {
                    xml.skip_if(started)?;
                    continue;
                }
                _ => Tag::Other,
            };
            if started {
                stack.push(tag);
            } else {
                // An empty element is opened and closed at once.
                numbering.close(
                    Some(tag),
                    &stack,
                    &mut abstract_num,
                    &mut num,
                    &mut level,
                    &mut override_level,
                );
            }
        }
        Ok(numbering)
    }

    /// Files what an element that just closed defined.
    fn close(
        &mut self,
        tag: Option<Tag>,
        stack: &[Tag],
        abstract_num: &mut Option<(u32, Abstract)>,
        num: &mut Option<(u32, Num)>,
        level: &mut Option<(usize, Level)>,
        override_level: &mut Option<usize>,
    ) {
        match tag {
            Some(Tag::Level) => {
                let Some((l, done)) = level.take() else { return };
                match stack.last() {
                    Some(Tag::Override) => {
                        if let (Some(ol), Some((_, num))) = (*override_level, num.as_mut()) {
                            if let Some(o) = num.overrides[ol].as_mut() {
                                o.level = Some(done);
                            }
                        }
                    }
                    Some(Tag::Abstract) => {
                        if let Some((_, abstract_num)) = abstract_num.as_mut() {
                            abstract_num.levels[l] = Some(done);
                        }
                    }
                    _ => {}
                }
            }
            Some(Tag::Override) => *override_level = None,
            Some(Tag::Abstract) => {
                if let Some((id, done)) = abstract_num.take() {
                    self.abstracts.insert(id, done);
                }
            }
            Some(Tag::Num) => {
                if let Some((id, done)) = num.take() {
                    self.nums.insert(id, done);
                }
            }
            _ => {}
        }
    }

    /// The abstract definition a `w:num` counts with, `w:numStyleLink`
    /// followed to the list style's own numbering.
    fn abstract_of(&self, num_id: u32, styles: &Styles) -> Option<u32> {
        let mut id = self.nums.get(&num_id)?.abstract_id?;
        for _ in 0..LEVELS {
            let Some(link) = self.abstracts.get(&id).and_then(|a| a.style_link.as_deref()) else {
                break;
            };
            let linked = styles
                .numbering(link)
                .0
                .and_then(|n| self.nums.get(&n))
                .and_then(|n| n.abstract_id)
                .filter(|linked| self.abstracts.contains_key(linked));
            match linked {
                Some(linked) if linked != id => id = linked,
                _ => break,
            }
        }
        Some(id)
    }

    /// Level `l` as `w:num` `num` sees it: its own override, else the
    /// abstract definition's.
    fn level<'n>(&'n self, num: &'n Num, abstract_id: u32, l: usize) -> Option<&'n Level> {
        num.overrides[l]
            .as_ref()
            .and_then(|o| o.level.as_ref())
            .or_else(|| self.abstracts.get(&abstract_id)?.levels[l].as_ref())
    }

    /// The value a level starts at for this `w:num`.
    fn start(&self, num: &Num, abstract_id: u32, l: usize) -> u32 {
        num.overrides[l]
            .as_ref()
            .and_then(|o| o.start)
            .or_else(|| self.level(num, abstract_id, l).map(Level::start))
            .unwrap_or(1)
    }

    /// Counts a paragraph of list `num_id` at level `ilvl` and returns the
    /// label Word draws for it. `style` is the paragraph's style and
    /// `ilvl_from_style` says its level was not set on the paragraph, in
    /// which case a level bound to that style (`w:lvl/w:pStyle`) wins.
    pub(super) fn next(
        &mut self,
        num_id: u32,
        ilvl: u8,
        style: Option<&str>,
        ilvl_from_style: bool,
        styles: &Styles,
    ) -> Option<Label> {
        let abstract_id = self.abstract_of(num_id, styles)?;
        let num = self.nums.get(&num_id)?;
        let mut l = usize::from(ilvl).min(LEVELS - 1);
        if let (true, Some(style)) = (ilvl_from_style, style) {
            if let Some(bound) =
                (0..LEVELS).find(|&k| self.level(num, abstract_id, k).and_then(|lv| lv.style.as_deref()) == Some(style))
            {
                l = bound;
            }
        }
        let level = self.level(num, abstract_id, l)?;
        let (format, legal, template) = (level.format(), level.legal, level.text.clone().unwrap_or_default());
        let formats: [Option<Format>; LEVELS] =
            std::array::from_fn(|k| self.level(num, abstract_id, k).map(Level::format));
        let starts: [u32; LEVELS] = std::array::from_fn(|k| self.start(num, abstract_id, k));
        let restarts: [Option<u32>; LEVELS] =
            std::array::from_fn(|k| self.level(num, abstract_id, k).and_then(|lv| lv.restart));
        let overridden: [bool; LEVELS] =
            std::array::from_fn(|k| num.overrides[k].as_ref().is_some_and(|o| o.start.is_some()));

        let counters = self.counters.entry(abstract_id).or_default();
        // The first use of a `w:num` with start overrides restarts those levels.
        if self.used.insert(num_id) {
            for (counter, _) in counters.iter_mut().zip(overridden).filter(|(_, o)| *o) {
                *counter = None;
            }
        }
        counters[l] = Some(match counters[l] {
            None => starts[l],
            Some(n) => n.saturating_add(1),
        });
        for (deeper, restart) in restarts.iter().enumerate().skip(l + 1) {
            let resets = match restart {
                None => true,
                Some(0) => false,
                Some(after) => (l as u32) < *after,
            };
            if resets {
                counters[deeper] = None;
            }
        }
        let values: [u32; LEVELS] = std::array::from_fn(|k| counters[k].unwrap_or(starts[k]));

        match format {
            Format::None => return None,
            Format::Bullet => return (!template.is_empty()).then_some(Label::Bullet),
            _ => {}
        }
        let mut label = String::with_capacity(template.len() + 4);
        let mut chars = template.chars().peekable();
        while let Some(c) = chars.next() {
            let Some(k) = (c == '%')
                .then(|| chars.peek().and_then(|d| d.to_digit(10)))
                .flatten()
                .filter(|&d| d >= 1)
            else {
                label.push(c);
                continue;
            };
            chars.next();
            let k = (k - 1) as usize;
            let format = match formats[k] {
                Some(Format::Bullet | Format::None) => continue,
                _ if legal => Format::Decimal,
                Some(format) => format,
                None => Format::Decimal,
            };
            format.write(values[k], &mut label);
        }
        let label = label.trim();
        (!label.is_empty()).then(|| Label::Number(label.to_owned()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn written(format: Format, n: u32) -> String {
        let mut out = String::new();
        format.write(n, &mut out);
        out
    }

    #[test]
    fn formats_write_as_word_does() {
        assert_eq!(written(Format::UpperRoman, 4), "IV");
        assert_eq!(written(Format::UpperRoman, 1994), "MCMXCIV");
        assert_eq!(written(Format::LowerRoman, 9), "ix");
        assert_eq!(written(Format::LowerLetter, 1), "a");
        assert_eq!(written(Format::LowerLetter, 26), "z");
        assert_eq!(written(Format::LowerLetter, 27), "aa");
        assert_eq!(written(Format::UpperLetter, 28), "BB");
        assert_eq!(written(Format::DecimalZero(2), 3), "03");
        assert_eq!(written(Format::DecimalZero(2), 12), "12");
        assert_eq!(
            Format::parse("custom", Some("001, 002, 003, ...")),
            Format::DecimalZero(3)
        );
        assert_eq!(Format::parse("chineseCounting", None), Format::Decimal);
    }
}
