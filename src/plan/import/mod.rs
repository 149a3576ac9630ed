//! `kehoach plan import`: a plan's Word document (or its text) read into a
//! draft plan file of `workflows/`, with every doubt listed for a person to
//! check. Pure: bytes in, draft out; no I/O, no clock.
//!
//! The flow: `docx`/`text` → [`document::Document`] (paragraphs with Word's
//! numbering rebuilt, tables, footnotes) → `structure` (parts, numbered
//! items, targets, agency blocks) or `table` (a table of tasks) → tasks with
//! agencies (`agencies`: one entry per body whatever the spelling),
//! schedules (`deadline`) and KPI targets (`kpi`) → [`Draft`] → TOML
//! (`emit`) and the JSON report.

pub mod agencies;
pub mod deadline;
pub mod document;
pub mod docx;
mod emit;
pub mod error;
pub mod kpi;
pub mod sample;
pub mod structure;
pub mod table;
pub mod text;
pub mod words;

use agencies::{Mention, Registry};
use deadline::Schedule;
use document::{Block, Document};
pub use error::ImportError;
use serde::Serialize;
use structure::{node_id, node_section, Narrative, PartKind, Role};

/// Every task, body and doubt read from one document.
#[derive(Debug, Clone)]
pub struct Draft {
    /// The document's file name, as given.
    pub document: String,
    pub plan_id: String,
    pub title: String,
    pub issuer: usize,
    pub period: (chrono::NaiveDate, chrono::NaiveDate),
    pub reporting_years: (i32, i32),
    pub agencies: Vec<agencies::Body>,
    pub tasks: Vec<DraftTask>,
    pub doubts: Vec<Doubt>,
    /// "narrative" or "table".
    pub layout: &'static str,
}

#[derive(Debug, Clone)]
pub struct DraftTask {
    pub id: String,
    pub title: String,
    pub text: String,
    pub section: String,
    pub line: u32,
    pub lead: usize,
    pub advisory: Vec<usize>,
    pub implementers: Vec<usize>,
    /// "phối hợp" bodies: they see the task and coordinate; they owe nothing.
    pub coordinators: Vec<usize>,
    pub deadline: Option<String>,
    pub schedules: Vec<Schedule>,
    pub kpis: Vec<kpi::Kpi>,
    pub obligation: &'static str,
    pub obligation_reason: String,
}

/// Something a person should check, with the words it is about.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Doubt {
    /// `agency_once`, `deadline_unread`, `no_agency_block`, `number_unread`,
    /// `part_numbering`, `lead_missing`, `several_leads`, `no_implementer`,
    /// `issuer_guessed`, `task_id_repeated`.
    pub kind: &'static str,
    pub task: Option<String>,
    /// The draft's field the doubt is about (`lead`, `deadline`, `kpis` …).
    pub field: Option<&'static str>,
    pub line: u32,
    pub message: String,
    pub quote: String,
}

/// The largest number of tasks one document may give (real plans have tens
/// to a few hundred; the plan format is sized for 2,000).
pub const MAX_TASKS: usize = 5_000;

/// Reads a document into a draft. `file_name` decides the format (.docx or
/// .txt; anything else is sniffed). `directory`: bodies already known keep
/// their codes and addresses.
pub fn import(file_name: &str, bytes: &[u8], directory: &[crate::domain::plan::Agency]) -> Result<Draft, ImportError> {
    if bytes.len() > error::DOCUMENT_MAX_BYTES {
        return Err(ImportError::TooLarge {
            bytes: bytes.len(),
            max: error::DOCUMENT_MAX_BYTES,
        });
    }
    let lower = file_name.to_lowercase();
    let doc = if lower.ends_with(".docm") {
        return Err(ImportError::MacroEnabled);
    } else if lower.ends_with(".doc") && !bytes.starts_with(b"PK") {
        return Err(ImportError::OldWordFormat);
    } else if lower.ends_with(".txt") || lower.ends_with(".text") || lower.ends_with(".md") {
        text::read(bytes)?
    } else if bytes.starts_with(b"PK") || bytes.starts_with(&[0xD0, 0xCF, 0x11, 0xE0]) || lower.ends_with(".docx") {
        docx::read(bytes)?
    } else if std::str::from_utf8(bytes).is_ok() && !bytes.contains(&0) {
        text::read(bytes)?
    } else {
        return Err(ImportError::NotADocument(
            "không nhận ra định dạng (cần .docx hoặc .txt UTF-8)".into(),
        ));
    };
    build(file_name, &doc, directory)
}

/// The draft of a document already read.
pub fn build(file_name: &str, doc: &Document, directory: &[crate::domain::plan::Agency]) -> Result<Draft, ImportError> {
    let narrative = structure::read(doc);
    let mut registry = Registry::with_directory(directory);
    let mut doubts: Vec<Doubt> = narrative
        .notes
        .iter()
        .map(|(line, message, quote)| Doubt {
            kind: "part_numbering",
            task: None,
            field: None,
            line: *line,
            message: message.clone(),
            quote: quote.clone(),
        })
        .collect();
    let header = header_of(doc, &narrative);
    // Both readings, each with its own directory and doubts; the one that
    // finds more tasks is kept, with only what it found.
    let (mut table_registry, mut table_doubts) = (registry.clone(), doubts.clone());
    let mut tasks = narrative_tasks(&narrative, &mut registry, &mut doubts);
    let mut layout = "narrative";
    if let Some(found) = table::read(&narrative, doc, &mut table_registry, &mut table_doubts) {
        if found.len() > tasks.len() {
            tasks = found;
            layout = "table";
            registry = table_registry;
            doubts = table_doubts;
        }
    }
    if tasks.is_empty() {
        return Err(ImportError::NoTasks);
    }
    if tasks.len() > MAX_TASKS {
        return Err(ImportError::TooManyTasks {
            tasks: tasks.len(),
            max: MAX_TASKS,
        });
    }

    // The issuer: the body the opening paragraph says draws up the plan
    // ("…, Ban Thường vụ Thị ủy xây dựng Kế hoạch thực hiện như sau"); else
    // the body that leads most tasks; for a plan without lead lines, the
    // body in the document's header.
    let named_issuer = issuer_in_preamble(&narrative).map(|(name, line)| {
        registry.resolve(
            &Mention {
                spelled: name,
                completed: None,
            },
            line,
        )
    });
    let lead_counts = tasks
        .iter()
        .filter_map(|t| t.lead)
        .fold(std::collections::BTreeMap::new(), |mut m, l| {
            *m.entry(l).or_insert(0usize) += 1;
            m
        });
    let most_leading = lead_counts.iter().max_by_key(|(l, c)| (**c, std::cmp::Reverse(**l)));
    let issuer = match named_issuer.or(most_leading.map(|(l, _)| *l)) {
        Some(l) => l,
        None => {
            let name = header
                .issuer
                .clone()
                .unwrap_or_else(|| "Cơ quan ban hành kế hoạch".into());
            doubts.push(Doubt {
                kind: "issuer_guessed",
                task: None,
                field: Some("issuer"),
                line: header.issuer_line,
                message: format!("không có dòng \"Cơ quan lãnh đạo\": cơ quan ban hành \"{name}\" (đầu văn bản) làm cơ quan lãnh đạo mọi nhiệm vụ"),
                quote: name.clone(),
            });
            registry.resolve(
                &Mention {
                    spelled: name,
                    completed: None,
                },
                header.issuer_line,
            )
        }
    };
    // "TỔ CHỨC THỰC HIỆN": the Standing Committee leads; the body that
    // tracks the plan for it is the advisory one.
    let tracker = tracker_of(&narrative, &mut registry, &tasks);
    for t in &mut tasks {
        if t.lead.is_none() {
            t.lead = Some(issuer);
        }
        if t.implementers.is_empty() {
            // Said in the report already; the lead carries it until fixed.
            t.implementers = t.lead.into_iter().collect();
        }
        if t.organisation {
            if let Some(tr) = tracker {
                t.advisory = vec![tr];
            }
        }
    }
    registry.finish();
    for (i, b) in registry.bodies.iter().enumerate() {
        if b.mentions == 1 && b.known.is_none() && i != issuer {
            doubts.push(Doubt {
                kind: "agency_once",
                task: None,
                field: Some("agencies"),
                line: b.first_line,
                message: format!(
                    "cơ quan \"{}\" chỉ được nêu một lần: kiểm tra có phải cách viết khác của một cơ quan đã có",
                    b.name
                ),
                quote: b.name.clone(),
            });
        }
    }
    let mut draft_tasks: Vec<DraftTask> = Vec::new();
    for t in tasks {
        let mut id = t.id.clone();
        if draft_tasks.iter().any(|d| d.id == id) {
            let mut n = 2;
            while draft_tasks.iter().any(|d| d.id == format!("{}.{n}", t.id)) {
                n += 1;
            }
            id = format!("{}.{n}", t.id);
            doubts.push(Doubt {
                kind: "task_id_repeated",
                task: Some(id.clone()),
                field: Some("id"),
                line: t.line,
                message: format!("số thứ tự {} lặp lại: đặt mã {id}", t.id),
                quote: t.title.clone(),
            });
        }
        let (obligation, obligation_reason) = obligation_of(&t);
        draft_tasks.push(DraftTask {
            id,
            title: t.title,
            text: t.text,
            section: t.section,
            line: t.line,
            lead: t.lead.unwrap_or(issuer),
            advisory: dedup(t.advisory),
            implementers: dedup(t.implementers),
            coordinators: dedup(t.coordinators),
            deadline: t.deadline,
            schedules: t.schedules,
            kpis: t.kpis,
            obligation,
            obligation_reason,
        });
    }
    let (period, reporting_years) = period_of(&header, &draft_tasks);
    Ok(Draft {
        document: file_name.to_string(),
        plan_id: plan_id_of(file_name, &header.title),
        title: header.title.clone(),
        issuer,
        period,
        reporting_years,
        agencies: registry.bodies,
        tasks: draft_tasks,
        doubts,
        layout,
    })
}

fn dedup(v: Vec<usize>) -> Vec<usize> {
    v.into_iter().fold(Vec::new(), |mut acc, x| {
        if !acc.contains(&x) {
            acc.push(x);
        }
        acc
    })
}

/// A task as read, before the plan-wide decisions (issuer, tracker).
#[derive(Debug, Clone)]
pub struct ReadTask {
    pub id: String,
    pub title: String,
    pub text: String,
    pub section: String,
    pub line: u32,
    pub lead: Option<usize>,
    pub advisory: Vec<usize>,
    pub implementers: Vec<usize>,
    pub coordinators: Vec<usize>,
    pub deadline: Option<String>,
    pub schedules: Vec<Schedule>,
    pub kpis: Vec<kpi::Kpi>,
    pub organisation: bool,
    pub joint_hint: Option<String>,
}

struct Header {
    title: String,
    issuer: Option<String>,
    issuer_line: u32,
    /// Years named in the title ("giai đoạn 2022 - 2026").
    years: Option<(i32, i32)>,
    date: Option<chrono::NaiveDate>,
}

fn header_of(doc: &Document, n: &Narrative) -> Header {
    use regex::Regex;
    let mut lines: Vec<(String, u32)> = Vec::new();
    // The header table (Word) or the first lines (text), before "KẾ HOẠCH".
    for b in &doc.blocks {
        match b {
            Block::Table(t) => {
                for row in &t.rows {
                    for cell in row {
                        for l in cell.split('\n') {
                            lines.push((l.trim().to_string(), t.origin.line));
                        }
                    }
                }
            }
            Block::Paragraph(p) => lines.push((p.display(), p.origin.line)),
        }
        if lines.len() > 60 {
            break;
        }
    }
    let plan_at = lines.iter().position(|(l, _)| {
        let f = words::fold(l);
        f == "kế hoạch"
            || (f.starts_with("kế hoạch") && l.chars().filter(|c| c.is_alphabetic()).all(char::is_uppercase))
    });
    let mut title = String::new();
    if let Some(i) = plan_at {
        let head = lines[i].0.trim();
        let rest = head.get("KẾ HOẠCH".len()..).unwrap_or("").trim();
        let next = if rest.is_empty() {
            lines.get(i + 1).map(|(l, _)| l.trim().to_string()).unwrap_or_default()
        } else {
            rest.to_string()
        };
        title = format!("Kế hoạch {}", lower_first(&next));
    }
    if title.trim() == "Kế hoạch" || title.is_empty() {
        title = n
            .preamble
            .iter()
            .find(|p| p.text.chars().count() > 20)
            .map(|p| p.text.clone())
            .unwrap_or_else(|| "Kế hoạch".into());
    }
    // The issuing body: the upper-case lines before "*" / "Số", after the
    // superior body ("ĐẢNG BỘ TỈNH …"); a State body may span two lines
    // ("ỦY BAN NHÂN DÂN" / "HUYỆN BA TƠ").
    let mut issuer = None;
    let mut issuer_line = 1;
    let stop = lines
        .iter()
        .position(|(l, _)| l.trim() == "*" || words::fold(l).starts_with("số"))
        .unwrap_or(0);
    let caps: Vec<&(String, u32)> = lines[..stop]
        .iter()
        .filter(|(l, _)| {
            let f = words::fold(l);
            l.chars().filter(|c| c.is_alphabetic()).count() >= 2
                && l.chars().filter(|c| c.is_alphabetic()).all(char::is_uppercase)
                && !f.starts_with("đảng cộng sản")
                && !f.starts_with("cộng hòa")
                && !f.starts_with("độc lập")
        })
        .collect();
    if let Some(last) = caps.last() {
        let f = words::fold(&last.0);
        let state_split = caps.len() >= 2
            && [
                "huyện",
                "thị xã",
                "xã",
                "tỉnh",
                "thành phố",
                "phường",
                "quận",
                "thị trấn",
            ]
            .iter()
            .any(|w| f.starts_with(w));
        let name = if state_split {
            format!("{} {}", caps[caps.len() - 2].0, last.0)
        } else {
            last.0.clone()
        };
        issuer = Some(title_case(&name));
        issuer_line = last.1;
    }
    let re_years = Regex::new(r"(\d{4})\s*[-–—]\s*(\d{4})").expect("valid");
    let years = re_years
        .captures(&title)
        .and_then(|c| Some((c[1].parse().ok()?, c[2].parse().ok()?)));
    let re_date = Regex::new(r"ngày\s+(\d{1,2})\s+tháng\s+(\d{1,2})\s+năm\s+(\d{4})").expect("valid");
    let date = lines[..plan_at.unwrap_or(lines.len().min(12))]
        .iter()
        .find_map(|(l, _)| re_date.captures(l))
        .and_then(|c| chrono::NaiveDate::from_ymd_opt(c[3].parse().ok()?, c[2].parse().ok()?, c[1].parse().ok()?));
    Header {
        title: words::clean(&title),
        issuer,
        issuer_line,
        years,
        date,
    }
}

fn lower_first(s: &str) -> String {
    let mut chars = s.chars();
    match chars.next() {
        Some(c) if !chars.clone().next().is_some_and(char::is_uppercase) => c.to_lowercase().chain(chars).collect(),
        Some(c) => std::iter::once(c).chain(chars).collect(),
        None => String::new(),
    }
}

/// "ỦY BAN NHÂN DÂN HUYỆN BA TƠ" → "Ủy ban nhân dân huyện Ba Tơ": the
/// locality's name keeps its capitals.
fn title_case(s: &str) -> String {
    let lower = s.to_lowercase();
    let words: Vec<&str> = lower.split_whitespace().collect();
    let place_from = words
        .iter()
        .enumerate()
        .position(|(i, w)| {
            ["huyện", "thị", "xã", "tỉnh", "phố", "phường", "quận", "trấn"].contains(w)
                || (i > 0 && ["ủy", "uỷ"].contains(w))
        })
        .map(|i| {
            // "thị xã Đức Phổ", "thành phố …": the name follows the locality word(s).
            let mut j = i + 1;
            while j < words.len() && ["xã", "phố", "trấn", "ủy", "uỷ"].contains(&words[j]) {
                j += 1;
            }
            j
        });
    words
        .iter()
        .enumerate()
        .map(|(i, w)| {
            if i == 0 || place_from.is_some_and(|p| i >= p) {
                words::capitalise(w)
            } else {
                w.to_string()
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// The plan's id: the file's name as a slug, or the title's when the name
/// says nothing ("plan.docx", "ke-hoach.txt", "Document1.docx").
fn plan_id_of(file_name: &str, title: &str) -> String {
    let stem = std::path::Path::new(file_name)
        .file_stem()
        .and_then(|s| s.to_str())
        .unwrap_or("");
    let s = words::slug(stem, 48);
    let generic = ["plan", "ke-hoach", "kehoach", "van-ban", "document", "draft", "du-thao"];
    let says_nothing = s.len() < 5
        || generic.contains(&s.as_str())
        || s.trim_end_matches(|c: char| c.is_ascii_digit()).len() < 3
        || generic.iter().any(|g| {
            s.strip_prefix(g)
                .is_some_and(|rest| rest.chars().all(|c| c.is_ascii_digit() || c == '-'))
        });
    match (says_nothing, words::slug(title, 48)) {
        (true, t) if !t.is_empty() => t,
        _ if !s.is_empty() => s,
        _ => "ke-hoach".into(),
    }
}

/// Tasks of the narrative layout.
fn narrative_tasks(n: &Narrative, registry: &mut Registry, doubts: &mut Vec<Doubt>) -> Vec<ReadTask> {
    let mut out = Vec::new();
    for (index, node) in n.nodes.iter().enumerate() {
        let part = &n.parts[node.part];
        let organisation = part.kind == PartKind::Organisation;
        let is_task = match part.kind {
            PartKind::NoTasks => false,
            PartKind::Organisation => node.path.len() == 1 && node.target.is_none(),
            PartKind::Tasks => node.children == 0,
        };
        if !is_task {
            continue;
        }
        let id = node_id(n, node);
        let section = node_section(n, node);
        // The paragraphs of the item and, in "TỔ CHỨC THỰC HIỆN", of its sub-items.
        let mut paragraphs = node.paragraphs.clone();
        let mut footnotes = node.footnotes.clone();
        if organisation {
            for (j, child) in n.nodes.iter().enumerate().skip(index + 1) {
                if !is_descendant(n, j, index) {
                    continue;
                }
                paragraphs.extend(child.paragraphs.iter().cloned());
                footnotes.extend(child.footnotes.iter().cloned());
            }
        }
        let text = paragraphs.join("\n");
        let mut task = ReadTask {
            id: id.clone(),
            title: String::new(),
            text: text.clone(),
            section,
            line: node.line,
            lead: None,
            advisory: Vec::new(),
            implementers: Vec::new(),
            coordinators: Vec::new(),
            deadline: None,
            schedules: Vec::new(),
            kpis: Vec::new(),
            organisation,
            joint_hint: None,
        };
        let block = node.block.or_else(|| ancestor_block(n, index));
        let body_text;
        if organisation {
            let (bodies, rest) = structure::heading_bodies(node.heading());
            let rest_text = std::iter::once(rest.as_str())
                .chain(paragraphs.iter().skip(1).map(String::as_str))
                .filter(|s| !s.trim().is_empty())
                .collect::<Vec<_>>()
                .join("\n");
            body_text = rest_text;
            for b in &bodies {
                let i = registry.resolve(b, node.line);
                task.implementers.push(i);
            }
            if bodies.is_empty() {
                doubts.push(doubt(
                    "no_implementer",
                    &id,
                    "implementers",
                    node.line,
                    "mục không nêu cơ quan ở đầu: điền cơ quan thực hiện",
                    node.heading(),
                ));
            }
            task.schedules = organisation_schedules(&body_text);
        } else {
            body_text = text.clone();
        }
        task.title = title_of(if body_text.trim().is_empty() { &text } else { &body_text });
        let block = match (block, organisation) {
            (Some(b), _) => Some(b),
            (None, true) => None,
            (None, false) => {
                // No block after the item: the nearest block before it in
                // its part, or the next one.
                let before = n.nodes[..index]
                    .iter()
                    .rev()
                    .filter(|x| x.part == node.part)
                    .find_map(|x| x.block);
                let after = n.nodes[index + 1..]
                    .iter()
                    .filter(|x| x.part == node.part)
                    .find_map(|x| x.block);
                let (chosen, rule) = match (before, after) {
                    (Some(b), _) => (Some(b), "dùng khối cơ quan của mục liền trước"),
                    (None, Some(a)) => (Some(a), "dùng khối cơ quan của mục liền sau"),
                    (None, None) => (None, "không có khối nào để dùng"),
                };
                doubts.push(doubt(
                    "no_agency_block",
                    &id,
                    "implementers",
                    node.line,
                    &format!("mục không có dòng \"Cơ quan …\": {rule}"),
                    node.heading(),
                ));
                chosen
            }
        };
        if let Some(b) = block {
            let block = &n.blocks[b];
            let leads = block.with_role(Role::Lead);
            if leads.len() > 1 {
                doubts.push(doubt(
                    "several_leads",
                    &id,
                    "lead",
                    leads[0].1,
                    "nhiều cơ quan lãnh đạo: lấy cơ quan đầu tiên, các cơ quan khác làm tham mưu",
                    &block
                        .lines
                        .iter()
                        .find(|l| l.roles.contains(&Role::Lead))
                        .map(|l| l.raw.clone())
                        .unwrap_or_default(),
                ));
            }
            for (k, (m, line)) in leads.iter().enumerate() {
                let i = registry.resolve(m, *line);
                if k == 0 {
                    task.lead = Some(i);
                } else {
                    task.advisory.push(i);
                }
            }
            for (m, line) in block.with_role(Role::Advisory) {
                task.advisory.push(registry.resolve(m, line));
            }
            for (m, line) in block.with_role(Role::Implementer) {
                task.implementers.push(registry.resolve(m, line));
            }
            for (m, line) in block.with_role(Role::Coordinator) {
                task.coordinators.push(registry.resolve(m, line));
            }
            if task.implementers.is_empty() && !organisation {
                let line = block.first_line;
                doubts.push(doubt(
                    "no_implementer",
                    &id,
                    "implementers",
                    line,
                    "khối cơ quan không có dòng \"Cơ quan thực hiện\": điền cơ quan thực hiện",
                    "",
                ));
            }
            if let Some((wording, line)) = &block.deadline {
                task.deadline = Some(wording.trim().trim_end_matches(['.', ';']).trim().to_string());
                match deadline::read(wording) {
                    Some(s) => task.schedules = s,
                    None => {
                        doubts.push(doubt(
                            "deadline_unread",
                            &id,
                            "deadline",
                            *line,
                            "không hiểu thời hạn: đặt báo cáo hằng năm (ongoing); sửa lịch cho đúng",
                            wording,
                        ));
                        task.schedules = vec![Schedule::Ongoing];
                    }
                }
            }
        }
        if task.schedules.is_empty() {
            if !organisation {
                doubts.push(doubt(
                    "deadline_unread",
                    &id,
                    "deadline",
                    node.line,
                    "mục không có dòng \"Thời gian\": đặt báo cáo hằng năm (ongoing)",
                    node.heading(),
                ));
            }
            task.schedules = vec![Schedule::Ongoing];
        }
        for extra in deadline::yearly_days_in_text(&body_text) {
            if !task.schedules.contains(&extra) {
                task.schedules.push(extra);
            }
        }
        task.kpis = kpi::read(&body_text, &footnotes);
        note_unread_numbers(&task, &body_text, doubts);
        out.push(task);
    }
    out
}

fn is_descendant(n: &Narrative, node: usize, ancestor: usize) -> bool {
    let mut at = n.nodes[node].parent;
    while let Some(p) = at {
        if p == ancestor {
            return true;
        }
        at = n.nodes[p].parent;
    }
    false
}

fn ancestor_block(n: &Narrative, node: usize) -> Option<usize> {
    let mut at = n.nodes[node].parent;
    while let Some(p) = at {
        if let Some(b) = n.nodes[p].block {
            return Some(b);
        }
        at = n.nodes[p].parent;
    }
    None
}

pub(crate) fn doubt(
    kind: &'static str,
    task: &str,
    field: &'static str,
    line: u32,
    message: &str,
    quote: &str,
) -> Doubt {
    Doubt {
        kind,
        task: Some(task.to_string()),
        field: Some(field),
        line,
        message: message.to_string(),
        quote: quote.chars().take(300).collect(),
    }
}

/// Milestones of an item of "TỔ CHỨC THỰC HIỆN": the reporting rhythm it
/// names ("định kỳ 6 tháng", "hằng quý", "trước ngày 30/11 hằng năm"), else
/// a yearly report or evaluation when it says so, else a yearly progress
/// report; with the dated steps it names ("sơ kết vào Quý IV/2027") and the
/// period review ("tổng kết").
fn organisation_schedules(text: &str) -> Vec<Schedule> {
    let f = words::fold(text);
    let mut out = deadline::recurring_in(text);
    out.extend(deadline::yearly_days_in_text(text));
    if out.is_empty() {
        let yearly = ["hằng năm", "hàng năm", "mỗi năm", "định kỳ năm"]
            .iter()
            .any(|p| f.contains(p))
            && ["báo cáo", "đánh giá", "tổng hợp", "sơ kết"]
                .iter()
                .any(|p| f.contains(p));
        out.push(if yearly {
            Schedule::Yearly {
                day: None,
                key: "yearly".into(),
                title: if f.contains("đánh giá") {
                    "Đánh giá kết quả thực hiện hằng năm".into()
                } else {
                    "Báo cáo kết quả thực hiện hằng năm".into()
                },
            }
        } else {
            Schedule::Ongoing
        });
    }
    out.extend(deadline::dated_in(text));
    if f.contains("tổng kết") || (f.contains("sơ kết") && deadline::dated_in(text).is_empty()) {
        out.push(Schedule::PeriodReview {
            title: "Tổng kết thực hiện kế hoạch".into(),
        });
    }
    out
}

/// The body the opening paragraph names as drawing up the plan, with its line.
fn issuer_in_preamble(n: &Narrative) -> Option<(String, u32)> {
    let re = regex::Regex::new(
        r"(?:^|[,;.]\s*)((?:Ban Thường vụ|Ban Chấp hành|Ban Thường trực|Thường trực|Ủy ban nhân dân|Uỷ ban nhân dân|UBND|Ban Chỉ đạo)[^,;:.()]{0,80}?)\s+(?:xây dựng|ban hành|triển khai)\s+(?:[Kk]ế hoạch)",
    )
    .expect("valid");
    n.preamble.iter().find_map(|p| {
        let text = words::clean(&p.text);
        re.captures(&text).map(|c| (c[1].trim().to_string(), p.origin.line))
    })
}

/// The body the plan names to track it for the Standing Committee (the
/// advisory body of "TỔ CHỨC THỰC HIỆN"): "Giúp Ban Thường vụ … theo dõi",
/// "(qua Ban Dân vận)"; failing those, the most frequent advisory body.
fn tracker_of(n: &Narrative, registry: &mut Registry, tasks: &[ReadTask]) -> Option<usize> {
    let mut scores: std::collections::BTreeMap<usize, i32> = std::collections::BTreeMap::new();
    for t in tasks.iter().filter(|t| t.organisation) {
        let f = words::fold(&t.text);
        let mut s = 0;
        for (phrase, weight) in [
            ("theo dõi", 3),
            ("đôn đốc", 2),
            ("giúp ban thường vụ", 2),
            ("giúp thường trực", 2),
            ("tổng hợp", 1),
            ("chủ trì", 1),
        ] {
            if f.contains(phrase) {
                s += weight;
            }
        }
        for i in &t.implementers {
            *scores.entry(*i).or_insert(0) += s;
        }
    }
    // "(qua Ban Dân vận Thị ủy)": reports go through the tracker.
    let re = regex::Regex::new(r"\(qua ([^)]{3,80})\)").expect("valid");
    for node in &n.nodes {
        for p in &node.paragraphs {
            for c in re.captures_iter(p) {
                let i = registry.resolve(
                    &Mention {
                        spelled: c[1].trim().to_string(),
                        completed: None,
                    },
                    node.line,
                );
                *scores.entry(i).or_insert(0) += 2;
            }
        }
    }
    if let Some((i, s)) = scores.iter().max_by_key(|(i, s)| (**s, std::cmp::Reverse(**i))) {
        if *s > 0 {
            return Some(*i);
        }
    }
    let mut counts: std::collections::BTreeMap<usize, usize> = std::collections::BTreeMap::new();
    for t in tasks.iter().filter(|t| !t.organisation) {
        for a in &t.advisory {
            *counts.entry(*a).or_insert(0) += 1;
        }
    }
    counts
        .iter()
        .max_by_key(|(i, c)| (**c, std::cmp::Reverse(**i)))
        .map(|(i, _)| *i)
}

/// The first sentence, without its trailing period.
pub(crate) fn title_of(text: &str) -> String {
    let first = text
        .lines()
        .find(|l| !l.trim().is_empty())
        .unwrap_or("")
        .trim()
        .trim_start_matches(['-', '+', '•'])
        .trim();
    let chars: Vec<char> = first.chars().collect();
    let mut end = chars.len();
    for i in 0..chars.len() {
        if chars[i] == '.' && chars.get(i + 1).is_none_or(|c| c.is_whitespace()) && i > 10 {
            end = i;
            break;
        }
    }
    let title: String = chars[..end].iter().collect();
    let title = title.trim().trim_end_matches(['.', ';', ':', ',']).trim().to_string();
    if title.chars().count() > 300 {
        let cut: String = title.chars().take(297).collect();
        format!("{}…", cut.rsplit_once(' ').map(|(a, _)| a).unwrap_or(&cut))
    } else if title.is_empty() {
        "Nhiệm vụ".to_string()
    } else {
        title
    }
}

/// Each or joint, with the reason in the task's own words.
fn obligation_of(t: &ReadTask) -> (&'static str, String) {
    let f = words::fold(&t.text);
    let quote = |needle: &str| -> String {
        let lower = t.text.to_lowercase();
        match lower.find(needle) {
            Some(i) => {
                let start = t.text[..i].char_indices().rev().nth(30).map(|(j, _)| j).unwrap_or(0);
                let tail: String = t.text[i..].chars().take(60).collect();
                format!("“…{}{}…”", &t.text[start..i], tail)
            }
            None => String::new(),
        }
    };
    if t.implementers.len() <= 1 {
        return ("each", "each: một cơ quan thực hiện".into());
    }
    if let Some(hint) = &t.joint_hint {
        return ("joint", format!("joint: {hint}"));
    }
    for phrase in [
        "100% cơ quan",
        "100% các cơ quan",
        "mỗi cơ quan",
        "các cơ quan, đơn vị",
        "từng cơ quan",
        "mỗi địa phương",
        "phù hợp với chức năng",
    ] {
        if f.contains(&words::fold(phrase)) {
            return (
                "each",
                format!(
                    "each: mỗi cơ quan tự thực hiện phần của mình {}",
                    quote(&phrase.to_lowercase())
                ),
            );
        }
    }
    for phrase in [
        "tỷ lệ",
        "toàn thị xã",
        "toàn huyện",
        "toàn tỉnh",
        "toàn xã",
        "bình quân",
        "trên địa bàn",
    ] {
        if f.contains(phrase) && !t.kpis.is_empty() {
            return (
                "joint",
                format!(
                    "joint: một chỉ tiêu chung của cả địa bàn, các cơ quan cùng báo cáo {}",
                    quote(phrase)
                ),
            );
        }
    }
    if [
        "ban hành quy chế",
        "xây dựng quy chế",
        "ký kết quy chế",
        "kế hoạch của ban thường vụ",
        "đề án của",
    ]
    .iter()
    .any(|p| f.contains(p))
    {
        return ("joint", "joint: một văn bản chung các cơ quan cùng soạn".into());
    }
    if t.kpis.iter().any(|k| k.unit == "%") && t.kpis.iter().all(|k| !k.quote.to_lowercase().contains("cơ quan")) {
        return (
            "joint",
            format!(
                "joint: chỉ tiêu chung \"{}\" báo cáo một số liệu",
                t.kpis[0].label.chars().take(80).collect::<String>()
            ),
        );
    }
    (
        "each",
        format!(
            "each: mỗi cơ quan thực hiện trong lĩnh vực của mình (“{}”)",
            t.title.chars().take(80).collect::<String>()
        ),
    )
}

/// Numbers that look like targets but were not read as one.
fn note_unread_numbers(t: &ReadTask, text: &str, doubts: &mut Vec<Doubt>) {
    static PERCENT: std::sync::LazyLock<regex::Regex> =
        std::sync::LazyLock::new(|| regex::Regex::new(r"\d+(?:[.,]\d+)?\s*%").expect("valid"));
    let re = &*PERCENT;
    let read = t.kpis.len();
    let found = re.find_iter(text).count();
    if found > read + t.kpis.iter().filter(|k| k.comparator == "between").count() {
        doubts.push(doubt(
            "number_unread",
            &t.id,
            "kpis",
            t.line,
            &format!("có {found} số phần trăm nhưng chỉ đọc được {read} chỉ tiêu: kiểm tra chỉ tiêu"),
            text,
        ));
    }
}

fn period_of(header: &Header, tasks: &[DraftTask]) -> ((chrono::NaiveDate, chrono::NaiveDate), (i32, i32)) {
    use chrono::{Datelike, NaiveDate};
    let named: Vec<i32> = tasks
        .iter()
        .flat_map(|t| t.schedules.iter().filter_map(Schedule::year))
        .collect();
    let (mut first, mut last) = header.years.unwrap_or_else(|| {
        let lo = header
            .date
            .map(|d| d.year())
            .or(named.iter().min().copied())
            .unwrap_or(2025);
        let hi = named.iter().max().copied().unwrap_or(lo).max(lo);
        (lo, hi)
    });
    for y in &named {
        first = first.min(*y);
        last = last.max(*y);
    }
    let mut start = NaiveDate::from_ymd_opt(first, 1, 1).expect("valid");
    if let Some(d) = header.date {
        if d.year() == first {
            start = d;
        }
    }
    // Every dated milestone inside the period.
    for t in tasks {
        for s in &t.schedules {
            if let Some(due) = schedule_date(s) {
                if due < start {
                    start = NaiveDate::from_ymd_opt(due.year(), 1, 1).expect("valid");
                }
            }
        }
    }
    let end = NaiveDate::from_ymd_opt(last, 12, 31).expect("valid");
    let first_year = if start.ordinal() == 1 {
        start.year()
    } else {
        start.year() + 1
    };
    ((start, end), (first_year.min(last), last))
}

fn schedule_date(s: &Schedule) -> Option<chrono::NaiveDate> {
    use chrono::NaiveDate;
    match s {
        Schedule::Once { day, month, year } => NaiveDate::from_ymd_opt(*year, *month, *day),
        Schedule::MonthEnd { month, year } => crate::domain::dates::parse_month_end(&format!("{month:02}/{year}")).ok(),
        Schedule::QuarterEnd { quarter, year } => crate::domain::dates::quarter_end(*year, *quarter),
        _ => None,
    }
}

impl Draft {
    /// The draft as a plan file of `workflows/`.
    pub fn to_toml(&self) -> String {
        emit::toml(self)
    }

    /// The report: every task with its source, every doubt.
    pub fn report(&self) -> serde_json::Value {
        emit::report(self)
    }

    /// The readable summary for stderr.
    pub fn summary(&self) -> String {
        emit::summary(self)
    }
}

#[cfg(test)]
mod tests;
