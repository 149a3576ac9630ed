//! The narrative layout of a plan: parts "I-", "II." …, numbered items
//! "1.", "1.1.", "2.2.1.", targets "(1)", and after an item (or a run of
//! items) its block of "- Cơ quan lãnh đạo / tham mưu / thực hiện: …" and
//! "- Thời gian hoàn thành: …" lines. Part "TỔ CHỨC THỰC HIỆN" names the body
//! of each item in its heading.

use super::agencies::{split_list, Mention};
use super::document::{Block, Document, Paragraph};
use super::words::{fold, roman, to_roman};
use regex::Regex;
use std::sync::LazyLock;

static RE_PART: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"^(?:PHẦN\s+(?:THỨ\s+)?)?(X{0,3}(?:IX|IV|V?I{0,3}))\s*[-.–/:)]\s*(\S.*)$").expect("valid")
});
static RE_ITEM: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"^(\d{1,2}(?:\.\d{1,2})*)\s*(?:[.\-–)/]\s*|\s+)(\S.*)$").expect("valid"));
static RE_TARGET: LazyLock<Regex> = LazyLock::new(|| Regex::new(r"^\((\d{1,2})\)\s*(\S.*)$").expect("valid"));
static RE_ROLE_LINE: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"^[-–•+*]?\s*((?:Cơ quan|Đơn vị|Bộ phận|Cơ quan, đơn vị)[^:]{0,60}?|Chủ trì|Phối hợp|Lãnh đạo|Chỉ đạo|Tham mưu|Thực hiện)\s*:\s*(.*)$")
        .expect("valid")
});
static RE_TIME_LINE: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"^[-–•+*]?\s*(Thời gian|Thời hạn|Tiến độ|Thời điểm)[^:]{0,40}:\s*(.*)$").expect("valid")
});

/// The role a block line gives its bodies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    Lead,
    Advisory,
    Implementer,
    Coordinator,
}

/// One agency or deadline line of a block.
#[derive(Debug, Clone, PartialEq)]
pub struct RoleLine {
    pub label: String,
    pub roles: Vec<Role>,
    pub bodies: Vec<Mention>,
    pub line: u32,
    pub raw: String,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct AgencyBlock {
    pub lines: Vec<RoleLine>,
    pub deadline: Option<(String, u32)>,
    pub first_line: u32,
}

impl AgencyBlock {
    pub fn with_role(&self, role: Role) -> Vec<(&Mention, u32)> {
        self.lines
            .iter()
            .filter(|l| l.roles.contains(&role))
            .flat_map(|l| l.bodies.iter().map(move |b| (b, l.line)))
            .collect()
    }

    fn has_agencies(&self) -> bool {
        self.lines.iter().any(|l| !l.bodies.is_empty())
    }
}

/// How a part's items are read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PartKind {
    /// Items followed by agency blocks.
    Tasks,
    /// "TỔ CHỨC THỰC HIỆN": each item names its body in the heading.
    Organisation,
    /// Purposes, requirements, viewpoints: no tasks.
    NoTasks,
}

#[derive(Debug, Clone)]
pub struct Part {
    pub numeral: String,
    pub printed: String,
    pub title: String,
    pub line: u32,
    pub kind: PartKind,
}

/// A numbered item or target.
#[derive(Debug, Clone)]
pub struct Node {
    pub part: usize,
    pub path: Vec<u32>,
    pub target: Option<u32>,
    /// The item's paragraphs, numbers taken off.
    pub paragraphs: Vec<String>,
    pub footnotes: Vec<String>,
    pub line: u32,
    pub children: usize,
    pub parent: Option<usize>,
    pub block: Option<usize>,
}

impl Node {
    pub fn heading(&self) -> &str {
        self.paragraphs.first().map(String::as_str).unwrap_or("")
    }
}

/// What the narrative reading found.
#[derive(Debug, Default)]
pub struct Narrative {
    pub preamble: Vec<Paragraph>,
    pub parts: Vec<Part>,
    pub nodes: Vec<Node>,
    pub blocks: Vec<AgencyBlock>,
    /// Things a person should look at: (line, message, quote).
    pub notes: Vec<(u32, String, String)>,
    /// Tables outside the body's paragraphs (header, signature, task tables).
    pub tables: Vec<super::document::Table>,
}

fn role_of(label: &str) -> Vec<Role> {
    let f = fold(label);
    let mut roles = Vec::new();
    if f.contains("lãnh đạo") || f.contains("chỉ đạo") {
        roles.push(Role::Lead);
    }
    if f.contains("tham mưu") {
        roles.push(Role::Advisory);
    }
    if f.contains("thực hiện") || f.contains("chủ trì") || f.contains("triển khai") || f == "cơ quan" || f == "đơn vị"
    {
        roles.push(Role::Implementer);
    }
    if f.contains("phối hợp") && !roles.contains(&Role::Implementer) {
        roles.push(Role::Coordinator);
    }
    roles
}

/// A part heading: "II- NỘI DUNG THỰC HIỆN", "III. NHIỆM VỤ …", "Phần IV: …".
pub fn part_heading(p: &Paragraph) -> Option<(String, String)> {
    let text = p.display();
    let c = RE_PART.captures(&text)?;
    let numeral = c.get(1)?.as_str();
    let title = c.get(2)?.as_str().trim();
    if numeral.is_empty() || roman(numeral).is_none() {
        return None;
    }
    // A part's title is a heading: mostly upper case, or bold and short.
    let letters: Vec<char> = title.chars().filter(|c| c.is_alphabetic()).collect();
    let upper = letters.iter().filter(|c| c.is_uppercase()).count();
    let heading_like = letters.len() >= 3
        && (upper * 10 >= letters.len() * 7
            || (p.bold && title.split_whitespace().count() <= 16)
            || (title.split_whitespace().count() <= 12 && !title.ends_with([';', ','])));
    heading_like.then(|| (numeral.to_string(), title.to_string()))
}

fn is_end_of_body(text: &str) -> bool {
    let f = fold(text);
    f.starts_with("nơi nhận")
        || f.starts_with("t/m ban")
        || f.starts_with("tm ban")
        || f.starts_with("t/m ")
        || f.starts_with("tm. ")
}

pub fn read(doc: &Document) -> Narrative {
    let mut n = Narrative::default();
    let mut part: Option<usize> = None;
    let mut last_numeral = 0u32;
    let mut pending: Vec<usize> = Vec::new();
    let mut current: Option<usize> = None;
    let mut open_block: Option<usize> = None;
    let mut ended = false;

    let close_block =
        |n: &mut Narrative, pending: &mut Vec<usize>, open_block: &mut Option<usize>, current: Option<usize>| {
            if let Some(b) = open_block.take() {
                if !n.blocks[b].has_agencies() && n.blocks[b].deadline.is_some() {
                    // A lone "Thời gian" line: it belongs to the block of the same
                    // items if one follows; kept open below by the caller.
                }
                let targets: Vec<usize> = if pending.is_empty() {
                    current.into_iter().collect()
                } else {
                    std::mem::take(pending)
                };
                for t in targets {
                    if n.nodes[t].block.is_none() {
                        n.nodes[t].block = Some(b);
                    }
                }
            }
        };

    for block in &doc.blocks {
        let p = match block {
            Block::Paragraph(p) => p,
            Block::Table(t) => {
                n.tables.push(t.clone());
                continue;
            }
        };
        if ended {
            continue;
        }
        let display = p.display();
        if is_end_of_body(&display) && part.is_some() {
            ended = true;
            continue;
        }
        if let Some((numeral, title)) = part_heading(p) {
            close_block(&mut n, &mut pending, &mut open_block, current);
            pending.clear();
            let value = roman(&numeral).unwrap_or(0);
            let effective = if value == last_numeral + 1 || last_numeral == 0 {
                value
            } else {
                last_numeral + 1
            };
            if effective != value {
                n.notes.push((
                    p.origin.line,
                    format!(
                        "phần đánh số {numeral} lặp lại hoặc sai thứ tự; đọc là phần {}",
                        to_roman(effective)
                    ),
                    display.clone(),
                ));
            }
            last_numeral = effective;
            n.parts.push(Part {
                numeral: to_roman(effective),
                printed: numeral,
                title,
                line: p.origin.line,
                kind: PartKind::Tasks,
            });
            part = Some(n.parts.len() - 1);
            current = None;
            continue;
        }
        let Some(part_index) = part else {
            n.preamble.push(p.clone());
            continue;
        };
        // Agency and deadline lines.
        let role_line = RE_ROLE_LINE.captures(&display).and_then(|c| {
            let label = c.get(1)?.as_str().trim().to_string();
            let roles = role_of(&label);
            (!roles.is_empty()).then(|| {
                (
                    label,
                    roles,
                    c.get(2).map(|m| m.as_str().to_string()).unwrap_or_default(),
                )
            })
        });
        let time_line = RE_TIME_LINE
            .captures(&display)
            .map(|c| c.get(2).map(|m| m.as_str().trim().to_string()).unwrap_or_default());
        if (role_line.is_some() || time_line.is_some()) && current.is_some() {
            let b = match open_block {
                Some(b) => b,
                None => {
                    n.blocks.push(AgencyBlock {
                        first_line: p.origin.line,
                        ..Default::default()
                    });
                    open_block = Some(n.blocks.len() - 1);
                    n.blocks.len() - 1
                }
            };
            if let Some((label, roles, list)) = role_line {
                n.blocks[b].lines.push(RoleLine {
                    label,
                    roles,
                    bodies: split_list(&list),
                    line: p.origin.line,
                    raw: display.clone(),
                });
            } else if let Some(wording) = time_line {
                n.blocks[b].deadline = Some((wording, p.origin.line));
            }
            continue;
        }
        close_block(&mut n, &mut pending, &mut open_block, current);

        let numbered = RE_ITEM.captures(&display).and_then(|c| {
            let path: Option<Vec<u32>> = c.get(1)?.as_str().split('.').map(|x| x.parse().ok()).collect();
            let rest = c.get(2)?.as_str();
            // "10.000 ngày công", "2022 - 2026": numbers, not items.
            (!rest.starts_with(['%', '-', '–', ','])
                && rest
                    .chars()
                    .next()
                    .is_some_and(|ch| ch.is_alphabetic() || ch == '"' || ch == '“'))
            .then(|| (path, rest.to_string()))
            .and_then(|(path, rest)| Some((path?, rest)))
        });
        if let Some((path, rest)) = numbered {
            let parent = n.nodes.iter().rposition(|x| {
                x.part == part_index && x.target.is_none() && path.len() > 1 && x.path == path[..path.len() - 1]
            });
            if let Some(parent) = parent {
                n.nodes[parent].children += 1;
            }
            n.nodes.push(Node {
                part: part_index,
                path,
                target: None,
                paragraphs: vec![rest],
                footnotes: p.footnotes.clone(),
                line: p.origin.line,
                children: 0,
                parent,
                block: None,
            });
            current = Some(n.nodes.len() - 1);
            pending.push(n.nodes.len() - 1);
            continue;
        }
        if let Some(c) = RE_TARGET.captures(&display) {
            let number: u32 = c[1].parse().unwrap_or(0);
            let parent = n.nodes.iter().rposition(|x| x.part == part_index && x.target.is_none());
            if let Some(parent) = parent {
                n.nodes[parent].children += 1;
                let path = n.nodes[parent].path.clone();
                n.nodes.push(Node {
                    part: part_index,
                    path,
                    target: Some(number),
                    paragraphs: vec![c[2].to_string()],
                    footnotes: p.footnotes.clone(),
                    line: p.origin.line,
                    children: 0,
                    parent: Some(parent),
                    block: None,
                });
                current = Some(n.nodes.len() - 1);
                pending.push(n.nodes.len() - 1);
                continue;
            }
        }
        // Any other paragraph belongs to the item being read, unless that
        // item's block is already closed (then it is text between items).
        match current {
            Some(c) if n.nodes[c].block.is_none() => {
                n.nodes[c].paragraphs.push(display.clone());
                n.nodes[c].footnotes.extend(p.footnotes.iter().cloned());
            }
            _ => {}
        }
    }
    close_block(&mut n, &mut pending, &mut open_block, current);
    classify_parts(&mut n);
    n
}

/// Decides which parts hold tasks.
fn classify_parts(n: &mut Narrative) {
    for (i, part) in n.parts.iter_mut().enumerate() {
        let nodes: Vec<&Node> = n.nodes.iter().filter(|x| x.part == i).collect();
        let with_blocks = nodes
            .iter()
            .filter(|x| x.block.is_some_and(|b| n.blocks[b].has_agencies()))
            .count();
        let title = fold(&part.title);
        let organisation_title =
            title.contains("tổ chức thực hiện") || title.contains("trách nhiệm") || title.contains("phân công");
        let top: Vec<&&Node> = nodes
            .iter()
            .filter(|x| x.path.len() == 1 && x.target.is_none())
            .collect();
        let named = top.iter().filter(|x| !heading_bodies(x.heading()).0.is_empty()).count();
        part.kind = if with_blocks > 0 {
            PartKind::Tasks
        } else if !top.is_empty()
            && (organisation_title && named * 2 >= top.len()
                || named * 10 >= top.len() * 8 && top.len() >= 2 && !title.contains("mục đích"))
        {
            PartKind::Organisation
        } else {
            PartKind::NoTasks
        };
    }
}

/// The body named at the start of an item of "TỔ CHỨC THỰC HIỆN" ("Thường
/// trực HĐND thị xã: Tổ chức giám sát…", "Ủy ban nhân dân thị xã"), and the
/// rest of the heading.
pub fn heading_bodies(heading: &str) -> (Vec<Mention>, String) {
    let heading = heading.trim();
    let (name, rest) = match heading.split_once(':') {
        Some((a, b))
            if a.split_whitespace()
                .filter(|w| w.chars().any(char::is_alphanumeric))
                .count()
                <= 20 =>
        {
            (a.trim().to_string(), b.trim().to_string())
        }
        _ => {
            let words = heading
                .split_whitespace()
                .filter(|w| w.chars().any(char::is_alphanumeric))
                .count();
            if words <= 20 && !heading.trim_end_matches('.').contains(['.', ';']) {
                (heading.trim_end_matches('.').to_string(), String::new())
            } else {
                // "Các cơ quan, đơn vị căn cứ …": the body ends where the verb begins.
                let f = heading;
                let verbs = [
                    " căn cứ",
                    " xây dựng",
                    " chủ động",
                    " có trách nhiệm",
                    " chịu trách nhiệm",
                    " tham mưu",
                    " phối hợp",
                    " chỉ đạo",
                    " triển khai",
                    " theo dõi",
                    " tổ chức thực hiện",
                    " thực hiện",
                ];
                match verbs.iter().filter_map(|v| f.find(v)).min() {
                    Some(i) if f[..i].split_whitespace().count() <= 12 => (
                        f[..i].trim().trim_end_matches(',').to_string(),
                        f[i..].trim().to_string(),
                    ),
                    _ => return (Vec::new(), heading.to_string()),
                }
            }
        }
    };
    if !looks_like_body(&name) {
        return (Vec::new(), heading.to_string());
    }
    (split_list(&name), rest)
}

fn looks_like_body(name: &str) -> bool {
    let f = fold(name);
    // Besides the words that start a body in a list: "Viện …", "Đề nghị …" (a request to a body).
    let extra = ["viện", "đề nghị", "chi bộ"];
    let first = name.split_whitespace().next().unwrap_or("");
    let acronym = first.chars().filter(|c| c.is_alphabetic()).count() >= 2
        && first.chars().filter(|c| c.is_alphabetic()).all(char::is_uppercase);
    let padded = format!("{f} ");
    acronym
        || super::agencies::HEADS
            .iter()
            .chain(extra.iter())
            .any(|h| padded.starts_with(&format!("{} ", fold(h))))
}

/// The id of a node: part numeral, numbering path, target.
pub fn node_id(n: &Narrative, node: &Node) -> String {
    let mut id = n.parts[node.part].numeral.clone();
    for x in &node.path {
        id.push('.');
        id.push_str(&x.to_string());
    }
    if let Some(t) = node.target {
        id.push('.');
        id.push_str(&t.to_string());
    }
    id
}

/// How the document itself would cite the node: "II.2.1 (4)".
pub fn node_section(n: &Narrative, node: &Node) -> String {
    let part = &n.parts[node.part];
    let printed = if part.printed == part.numeral {
        part.numeral.clone()
    } else {
        format!("{} ({})", part.numeral, part.printed)
    };
    let path = node.path.iter().map(u32::to_string).collect::<Vec<_>>().join(".");
    match node.target {
        Some(t) => format!("{printed}.{path} ({t})"),
        None => format!("{printed}.{path}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roles_from_labels() {
        assert_eq!(role_of("Cơ quan lãnh đạo"), vec![Role::Lead]);
        assert_eq!(role_of("Cơ quan chỉ đạo"), vec![Role::Lead]);
        assert_eq!(
            role_of("Cơ quan tham mưu, thực hiện"),
            vec![Role::Advisory, Role::Implementer]
        );
        assert_eq!(role_of("Cơ quan, thực hiện"), vec![Role::Implementer]);
        assert_eq!(role_of("Cơ quan chủ trì"), vec![Role::Implementer]);
        assert_eq!(role_of("Cơ quan phối hợp"), vec![Role::Coordinator]);
    }

    #[test]
    fn bodies_in_headings() {
        let names = |h: &str| {
            heading_bodies(h)
                .0
                .iter()
                .map(|m| m.name().to_string())
                .collect::<Vec<_>>()
        };
        assert_eq!(
            names("Thường trực HĐND thị xã: Tổ chức giám sát việc thực hiện."),
            vec!["Thường trực HĐND thị xã"]
        );
        assert_eq!(names("Ủy ban nhân dân thị xã"), vec!["Ủy ban nhân dân thị xã"]);
        assert_eq!(
            names("Mặt trận Tổ quốc và các tổ chức chính trị - xã hội thị xã").len(),
            2
        );
        assert!(names(
            "Quán triệt, triển khai thực hiện Đề án 13 nhằm nâng cao nhận thức, trách nhiệm của cả hệ thống chính trị."
        )
        .is_empty());
    }
}
