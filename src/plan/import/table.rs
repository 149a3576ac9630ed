//! Plans laid out as a table of tasks, as People's Committees write them:
//! "STT | Nội dung nhiệm vụ | Cơ quan chủ trì | Cơ quan phối hợp | Thời gian
//! hoàn thành | Sản phẩm", with section rows ("I", "II" …) across the table.
//! "chủ trì" bodies owe the task; "phối hợp" bodies coordinate; the issuing
//! body leads.

use super::agencies::{split_list, Registry};
use super::deadline::{self, Schedule};
use super::document::{Block, Document, Table};
use super::structure::{part_heading, Narrative};
use super::words::{fold, roman, to_roman};
use super::{doubt, kpi, Doubt, ReadTask};

#[derive(Debug, Default, Clone, Copy)]
struct Columns {
    number: Option<usize>,
    content: usize,
    owner: usize,
    coordinators: Option<usize>,
    time: Option<usize>,
    product: Option<usize>,
}

fn columns(row: &[String]) -> Option<Columns> {
    let find = |pred: &dyn Fn(&str) -> bool| row.iter().position(|c| pred(&fold(c)));
    let content = find(&|c| c.contains("nội dung") || c.contains("nhiệm vụ") || c.contains("công việc"))?;
    let owner = find(&|c| {
        c.contains("chủ trì")
            || (c.contains("thực hiện") && !c.contains("thời gian"))
            || c.contains("đơn vị thực hiện")
            || c.contains("cơ quan thực hiện")
            || c.contains("trách nhiệm")
    })?;
    if owner == content {
        return None;
    }
    Some(Columns {
        number: find(&|c| c == "stt" || c == "tt" || c == "số tt" || c == "số thứ tự"),
        content,
        owner,
        coordinators: find(&|c| c.contains("phối hợp")),
        time: find(&|c| c.contains("thời gian") || c.contains("thời hạn") || c.contains("tiến độ")),
        product: find(&|c| c.contains("sản phẩm") || c.contains("kết quả")),
    })
}

/// The tasks of the document's task tables; `None` when it has none.
pub fn read(_n: &Narrative, doc: &Document, registry: &mut Registry, doubts: &mut Vec<Doubt>) -> Option<Vec<ReadTask>> {
    let mut out = Vec::new();
    let mut part_numeral: Option<String> = None;
    let mut last = 0u32;
    for block in &doc.blocks {
        match block {
            Block::Paragraph(p) => {
                if let Some((numeral, _)) = part_heading(p) {
                    let v = roman(&numeral).unwrap_or(0);
                    last = if v == last + 1 || last == 0 { v } else { last + 1 };
                    part_numeral = Some(to_roman(last));
                }
            }
            Block::Table(t) => read_table(t, part_numeral.as_deref(), registry, doubts, &mut out),
        }
    }
    (!out.is_empty()).then_some(out)
}

fn cell(row: &[String], i: Option<usize>) -> String {
    i.and_then(|i| row.get(i))
        .map(|s| s.trim().to_string())
        .unwrap_or_default()
}

fn read_table(
    t: &Table,
    part: Option<&str>,
    registry: &mut Registry,
    doubts: &mut Vec<Doubt>,
    out: &mut Vec<ReadTask>,
) {
    let Some((header_at, cols)) = t
        .rows
        .iter()
        .take(4)
        .enumerate()
        .find_map(|(i, r)| columns(r).map(|c| (i, c)))
    else {
        return;
    };
    let width = t.rows[header_at].len();
    let mut group: Option<String> = None;
    let mut sequence = 0u32;
    for (r, row) in t.rows.iter().enumerate().skip(header_at + 1) {
        let line = t.origin.line + r as u32;
        let number = cell(row, cols.number.or(Some(0)));
        let number_clean = number.trim_end_matches(['.', ')']).trim().to_string();
        // The row of column numbers "(1) (2) (3)" under the header.
        if row.iter().all(|c| {
            let c = c.trim().trim_start_matches('(').trim_end_matches(')');
            c.is_empty() || c.chars().all(|ch| ch.is_ascii_digit())
        }) {
            continue;
        }
        let group_numeral = number_clean
            .split(['.', ' '])
            .next()
            .filter(|x| roman(x).is_some())
            .map(str::to_string);
        if let Some(g) = group_numeral {
            group = Some(g);
            sequence = 0;
            continue;
        }
        if row.len() < width.min(3) {
            // A section row across the table without a numeral.
            continue;
        }
        let path: Option<Vec<u32>> = if number_clean.is_empty() {
            None
        } else {
            number_clean.split('.').map(|x| x.trim().parse().ok()).collect()
        };
        let content = cell(row, Some(cols.content));
        if content.is_empty() {
            continue;
        }
        let path = match path {
            Some(p) => p,
            None => {
                sequence += 1;
                doubts.push(doubt(
                    "task_number_missing",
                    "",
                    "id",
                    line,
                    &format!("dòng bảng không có số thứ tự: đánh số {sequence}"),
                    &content,
                ));
                vec![sequence]
            }
        };
        sequence = path[0];
        let prefix = group
            .clone()
            .or_else(|| part.map(str::to_string))
            .unwrap_or_else(|| "I".to_string());
        let id = std::iter::once(prefix.clone())
            .chain(path.iter().map(u32::to_string))
            .collect::<Vec<_>>()
            .join(".");
        let section = format!(
            "bảng, mục {prefix}, dòng {}",
            path.iter().map(u32::to_string).collect::<Vec<_>>().join(".")
        );
        let mut task = ReadTask {
            id: id.clone(),
            title: super::title_of(&content),
            text: content.clone(),
            section,
            line,
            lead: None,
            advisory: Vec::new(),
            implementers: Vec::new(),
            coordinators: Vec::new(),
            deadline: None,
            schedules: Vec::new(),
            kpis: kpi::read(&content, &[]),
            organisation: false,
            joint_hint: None,
        };
        let product = cell(row, cols.product);
        if !product.is_empty() {
            task.text = format!("{content}\nSản phẩm: {product}");
        }
        for l in cell(row, Some(cols.owner)).lines() {
            for m in split_list(l.trim().trim_start_matches(['-', '+', '•']).trim()) {
                task.implementers.push(registry.resolve(&m, line));
            }
        }
        for l in cell(row, cols.coordinators).lines() {
            for m in split_list(l.trim().trim_start_matches(['-', '+', '•']).trim()) {
                task.coordinators.push(registry.resolve(&m, line));
            }
        }
        if task.implementers.is_empty() {
            doubts.push(doubt(
                "no_implementer",
                &id,
                "implementers",
                line,
                "ô \"chủ trì\" trống: điền cơ quan chủ trì",
                &content,
            ));
        }
        let time = cell(row, cols.time);
        if time.is_empty() {
            doubts.push(doubt(
                "deadline_unread",
                &id,
                "deadline",
                line,
                "ô thời gian trống: đặt báo cáo hằng năm (ongoing)",
                &content,
            ));
            task.schedules = vec![Schedule::Ongoing];
        } else {
            task.deadline = Some(time.replace('\n', " "));
            task.schedules = deadline::read(&time).unwrap_or_else(|| {
                doubts.push(doubt(
                    "deadline_unread",
                    &id,
                    "deadline",
                    line,
                    "không hiểu thời hạn: đặt báo cáo hằng năm (ongoing); sửa lịch cho đúng",
                    &time,
                ));
                vec![Schedule::Ongoing]
            });
        }
        out.push(task);
    }
}
