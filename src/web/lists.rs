//! What the list pages (inbox, queue, a plan's tasks) share: reading the
//! filter parameters, the filter form, the pager, sortable column links and
//! the CSV / XLSX downloads. The rows come from `obligation_index`
//! (`projections::lists`); no list reads every task view.

use super::{AppState, WebError};
use crate::domain::dates::format_vn;
use crate::domain::task::MilestoneStatus;
use crate::projections::lists::{
    obligation_link, roles_label, Asker, BadParam, DueWithin, ListKind, ListQuery, ListRow, Page, Sort, EXPORT_LIMIT,
};
use crate::projections::views::PlanView;
use axum::http::Uri;
use axum::response::Response;
use chrono::{DateTime, NaiveDate, Utc};
use serde_json::{json, Value};

/// A download format (`format=csv|xlsx`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Csv,
    Xlsx,
}

impl Format {
    /// `csv` or `xlsx`; anything else is refused with the reason.
    pub fn parse(s: &str) -> Result<Self, String> {
        match s {
            "csv" => Ok(Self::Csv),
            "xlsx" => Ok(Self::Xlsx),
            other => Err(format!("không tải được dạng {other:?} (dùng csv hoặc xlsx)")),
        }
    }
}

/// The query pairs of a request, decoded (none if the query is malformed).
pub fn pairs(uri: &Uri) -> Vec<(String, String)> {
    axum::extract::Query::<Vec<(String, String)>>::try_from_uri(uri)
        .map(|q| q.0)
        .unwrap_or_default()
}

/// The message of a refused list parameter, as a page shows it.
pub fn refused(e: BadParam) -> WebError {
    WebError::bad_request(format!("Tham số danh sách không hợp lệ — {e}"))
}

/// Reads a page's list parameters (an empty field is no filter) and the
/// download format.
pub fn page_query(pairs: &[(String, String)]) -> Result<(ListQuery, Option<Format>), WebError> {
    let query = ListQuery::parse(pairs.iter().map(|(k, v)| (k.as_str(), v.as_str())), true).map_err(refused)?;
    let format = match pairs.iter().rev().find(|(k, _)| k == "format").map(|(_, v)| v.trim()) {
        None | Some("") | Some("html") => None,
        Some(v) => Some(Format::parse(v).map_err(|why| refused(BadParam { name: "format", why }))?),
    };
    Ok((query, format))
}

/// Every agency of the plans loaded, by name (the agency filter's list;
/// an agency in several plans once, under its first name).
pub fn agency_choices(plans: &[PlanView]) -> Vec<Value> {
    let mut seen = std::collections::BTreeSet::new();
    let mut out: Vec<(String, String)> = plans
        .iter()
        .flat_map(|p| p.plan.agencies.iter())
        .filter(|a| seen.insert(a.code.to_string()))
        .map(|a| (a.name.clone(), a.code.to_string()))
        .collect();
    out.sort_by_key(|(name, _)| crate::projections::lists::fold(name));
    out.into_iter()
        .map(|(name, code)| json!({ "code": code, "name": name }))
        .collect()
}

/// An agency's name, from the plans loaded (its code when no plan names it).
pub fn agency_name(plans: &[PlanView], code: &str) -> String {
    plans
        .iter()
        .find_map(|p| p.plan.agency_name_of(code))
        .map_or_else(|| code.to_string(), str::to_string)
}

/// What the filter form, pager, sort links and download links of a page
/// need: `path` is the page's own path.
pub fn controls(path: &str, query: &ListQuery, total: u64, pages: u64, plans: &[PlanView]) -> Value {
    let filters = query.filters_query();
    let with = |extra: &str| -> String {
        let joined = [filters.as_str(), extra]
            .iter()
            .filter(|s| !s.is_empty())
            .copied()
            .collect::<Vec<_>>()
            .join("&");
        if joined.is_empty() {
            path.to_string()
        } else {
            format!("{path}?{joined}")
        }
    };
    let page_link = |p: u64| if p == 1 { with("") } else { with(&format!("page={p}")) };
    let sort_link = |key: Sort, reverse: Option<Sort>| -> String {
        let next = match reverse {
            Some(r) if query.sort == key => r,
            _ => key,
        };
        let mut q = ListQuery {
            sort: next,
            page: 1,
            ..query.clone()
        };
        q.q = query.q.clone();
        let f = q.filters_query();
        if f.is_empty() {
            path.to_string()
        } else {
            format!("{path}?{f}")
        }
    };
    let page = u64::from(query.page);
    let windows: Vec<Value> = [DueWithin::Month, DueWithin::Next30Days]
        .iter()
        .map(|d| json!({ "value": d.as_str(), "label": d.label_vi() }))
        .collect();
    json!({
        "path": path,
        "q": query.q_raw,
        "plan": query.plan,
        "agency": query.agency.as_ref().map(|a| a.to_string()),
        "status": query.status.map(|s| s.as_str()),
        "year": query.year,
        "overdue": query.overdue,
        "due_within": query.due_within.map(|d| d.as_str()),
        "windows": windows,
        "agencies": agency_choices(plans),
        "sort": query.sort.as_str(),
        "per_page": query.per_page,
        "statuses": MilestoneStatus::NAMES.iter().filter_map(|n| MilestoneStatus::parse(n))
            .map(|s| json!({ "value": s.as_str(), "label": capitalised(s.label_vi()) })).collect::<Vec<_>>(),
        "plans": super::pages::plans_nav(plans),
        "total": total,
        "page": page,
        "pages": pages,
        "prev": (page > 1).then(|| page_link(page - 1)),
        "next": (page < pages).then(|| page_link(page + 1)),
        "csv": with("format=csv"),
        "xlsx": with("format=xlsx"),
        "sort_due": sort_link(Sort::Due, Some(Sort::DueDesc)),
        "sort_task": sort_link(Sort::Task, None),
        "sort_title": sort_link(Sort::Title, None),
        "filtered": !filters.is_empty(),
    })
}

/// "đã duyệt" → "Đã duyệt".
pub fn capitalised(s: &str) -> String {
    let mut c = s.chars();
    c.next()
        .map_or_else(String::new, |f| f.to_uppercase().chain(c).collect())
}

fn iso_date(s: &str) -> Option<NaiveDate> {
    NaiveDate::parse_from_str(s, "%Y-%m-%d").ok()
}

/// A date as people read it (dd/mm/yyyy), or the text as it is.
pub fn shown_date(s: &str) -> String {
    iso_date(s).map_or_else(|| s.to_string(), format_vn)
}

/// `text` written with agency codes (an actor "Hồ Thị Mặt (MTTQ)", an
/// account's history) with the names the loaded plans give them: see
/// `audit::history::named`.
pub fn with_agency_names(text: &str, plans: &[PlanView]) -> String {
    crate::audit::history::named(text, |code| plans.iter().find_map(|p| p.plan.agency_name_of(code)))
}

/// A row's deadline as people read it: the date as written, and where the
/// law moves it, why and to when ("31/03/2024 (Chủ nhật; theo Điều 148
/// BLDS: 01/04/2024)").
pub fn shown_due(row: &ListRow, plans: &[PlanView]) -> String {
    match iso_date(&row.due) {
        Some(due) => crate::projections::views::deadlines_for(plans, &row.aggregate_id).shown(due),
        None => row.due.clone(),
    }
}

/// When it was submitted, in the plan's zone (dd/mm/yyyy hh:mm).
pub fn shown_instant(s: &str, tz: chrono_tz::Tz) -> String {
    DateTime::parse_from_rfc3339(s)
        .map(|t| {
            t.with_timezone(&Utc)
                .with_timezone(&tz)
                .format("%d/%m/%Y %H:%M")
                .to_string()
        })
        .unwrap_or_default()
}

/// The owing agency of a row as people read it ("chung" for a joint one).
pub fn obligation_label(row: &ListRow) -> String {
    if row.obligation.is_empty() {
        "chung".into()
    } else {
        row.obligation.clone()
    }
}

/// A row of an inbox or a queue, as its page shows it.
pub fn row_json(row: &ListRow, today: NaiveDate, tz: chrono_tz::Tz, plans: &[PlanView]) -> Value {
    let t = row.timeliness(today);
    let agency = obligation_label(row);
    json!({
        "plan": row.plan_id, "task": row.task_id, "title": row.title,
        "role": roles_label(row.roles),
        "milestone": row.milestone_id, "milestone_title": row.milestone_title,
        "link": obligation_link(&row.plan_id, &row.task_id, &row.milestone_id, &agency, None),
        "review_link": obligation_link(&row.plan_id, &row.task_id, &row.milestone_id, &agency, Some("approve")),
        "agency_name": if row.obligation.is_empty() { "Chung".to_string() } else { agency_name(plans, &row.obligation) },
        "agency": agency,
        "due": shown_due(row, plans),
        "status": row.status().map(|s| capitalised(s.label_vi())),
        "timeliness": capitalised(t.label_vi()), "class": t.css_class(),
        "submitted_by": with_agency_names(&row.submitted_by, plans),
        "submitted_at": shown_instant(&row.submitted_at, tz),
    })
}

/// The columns of a download, in Vietnamese.
const HEADERS: [&str; 11] = [
    "Kế hoạch",
    "Mã nhiệm vụ",
    "Nhiệm vụ",
    "Mốc",
    "Cơ quan thực hiện",
    "Vai trò của cơ quan xem",
    "Hạn",
    "Trạng thái",
    "Tình hình hạn",
    "Người nộp",
    "Thời điểm nộp",
];

fn cells(row: &ListRow, today: NaiveDate, tz: chrono_tz::Tz, plans: &[PlanView]) -> [String; 11] {
    [
        plans
            .iter()
            .find(|p| p.id == row.plan_id)
            .and_then(|p| p.plan.header.as_ref())
            .map_or_else(|| row.plan_id.clone(), |h| h.title.clone()),
        row.task_id.clone(),
        row.title.clone(),
        row.milestone_title.clone(),
        if row.obligation.is_empty() {
            "Chung".to_string()
        } else {
            agency_name(plans, &row.obligation)
        },
        roles_label(row.roles),
        shown_due(row, plans),
        row.status().map(|s| capitalised(s.label_vi())).unwrap_or_default(),
        capitalised(row.timeliness(today).label_vi()),
        with_agency_names(&row.submitted_by, plans),
        shown_instant(&row.submitted_at, tz),
    ]
}

/// Rows read per statement while exporting.
const EXPORT_CHUNK: u32 = 500;

/// Every row of a filtered list, a chunk at a time, refused past
/// `EXPORT_LIMIT` so that a download's memory is bounded.
async fn export_rows(
    state: &AppState,
    kind: ListKind,
    query: &ListQuery,
    asker: &Asker,
    today: NaiveDate,
) -> Result<Vec<ListRow>, WebError> {
    let mut q = ListQuery {
        page: 1,
        per_page: EXPORT_CHUNK,
        ..query.clone()
    };
    let mut rows: Vec<ListRow> = Vec::new();
    loop {
        let page: Page<ListRow> = state.store().list_obligations(kind, &q, asker, today).await?;
        if page.total > u64::from(EXPORT_LIMIT) {
            return Err(WebError::bad_request(format!(
                "Danh sách có {} dòng, quá {EXPORT_LIMIT} dòng để tải một lần; hãy lọc thêm (kế hoạch, cơ quan, năm…)",
                page.total
            )));
        }
        let done = page.items.len() < EXPORT_CHUNK as usize;
        rows.extend(page.items);
        if done {
            return Ok(rows);
        }
        q.page += 1;
    }
}

/// The filtered list as a download named `<name>-<today>.csv|xlsx`.
pub async fn download(
    state: &AppState,
    kind: ListKind,
    query: &ListQuery,
    asker: &Asker,
    (today, tz): (NaiveDate, chrono_tz::Tz),
    format: Format,
    name: &str,
) -> Result<Response, WebError> {
    let rows = export_rows(state, kind, query, asker, today).await?;
    let plans = state.plan_views().await?;
    let table: Vec<[String; 11]> = rows.iter().map(|r| cells(r, today, tz, &plans)).collect();
    table_download(format, "Danh sách", &HEADERS, &table, &format!("{name}-{today}"))
}

pub use crate::domain::text::neutralised;
use crate::domain::text::printable;

/// A table as CSV in UTF-8 with a byte-order mark, so that Excel reads
/// Vietnamese; every cell quoted and neutralised.
pub fn csv_table<R: AsRef<[String]>>(headers: &[&str], rows: &[R]) -> Vec<u8> {
    let mut out = String::from("\u{feff}");
    let mut line = |cells: &mut dyn Iterator<Item = &str>| {
        let quoted: Vec<String> = cells
            .map(|c| format!("\"{}\"", printable(&neutralised(c)).replace('"', "\"\"")))
            .collect();
        out.push_str(&quoted.join(","));
        out.push_str("\r\n");
    };
    line(&mut headers.iter().copied());
    for row in rows {
        line(&mut row.as_ref().iter().map(String::as_str));
    }
    out.into_bytes()
}

/// The same table as an Excel workbook of one sheet, header in bold and
/// frozen, every cell as text.
pub fn xlsx_table<R: AsRef<[String]>>(
    sheet_name: &str,
    headers: &[&str],
    rows: &[R],
) -> Result<Vec<u8>, rust_xlsxwriter::XlsxError> {
    let mut book = rust_xlsxwriter::Workbook::new();
    let bold = rust_xlsxwriter::Format::new().set_bold();
    let sheet = book.add_worksheet();
    sheet.set_name(sheet_name)?;
    for (c, h) in headers.iter().enumerate() {
        sheet.write_string_with_format(0, c as u16, *h, &bold)?;
    }
    for (r, row) in rows.iter().enumerate() {
        for (c, cell) in row.as_ref().iter().enumerate() {
            sheet.write_string(r as u32 + 1, c as u16, cell)?;
        }
    }
    sheet.set_freeze_panes(1, 0)?;
    sheet.autofit();
    book.save_to_buffer()
}

/// A file to download: its bytes, media type and name.
pub fn attachment(body: Vec<u8>, media: &str, file: &str) -> Response {
    super::files::file_response(file, media, body, false)
}

pub const CSV_MEDIA: &str = "text/csv; charset=utf-8";
pub const XLSX_MEDIA: &str = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet";

/// A table in the format asked for, as a download named `<name>.csv|xlsx`.
pub fn table_download<R: AsRef<[String]>>(
    format: Format,
    sheet_name: &str,
    headers: &[&str],
    rows: &[R],
    name: &str,
) -> Result<Response, WebError> {
    Ok(match format {
        Format::Csv => attachment(csv_table(headers, rows), CSV_MEDIA, &format!("{name}.csv")),
        Format::Xlsx => {
            let body = xlsx_table(sheet_name, headers, rows).map_err(|e| {
                tracing::error!(error = %e, "lỗi tạo tệp Excel");
                WebError::new(
                    axum::http::StatusCode::INTERNAL_SERVER_ERROR,
                    "export_failed",
                    "không tạo được tệp Excel",
                )
            })?;
            attachment(body, XLSX_MEDIA, &format!("{name}.xlsx"))
        }
    })
}

#[cfg(test)]
mod tests {
    use crate::projections::lists::ListQuery;

    /// Templates run in strict mode: every name the controls use is defined.
    #[test]
    fn an_empty_queue_renders_with_its_controls() {
        let env = super::super::pages::environment();
        let query = ListQuery {
            page: 1,
            per_page: 50,
            ..Default::default()
        };
        let mut list = super::controls("/queue", &query, 0, 1, &[]);
        list["items"] = serde_json::json!([]);
        let ctx = serde_json::json!({ "title": "Chờ duyệt", "list": list, "plans": [], "simulation": false });
        let html = env
            .get_template("queue.html")
            .unwrap()
            .render(minijinja::value::Serde(&ctx))
            .unwrap();
        assert!(
            html.contains("Không có mốc nào chờ duyệt") && html.contains("Tải Excel"),
            "{html}"
        );
    }
}
