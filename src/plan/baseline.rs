//! The sheet of the state already reached, for a plan adopted part-way: one
//! row per obligation (task, milestone, agency, state, date done, note,
//! where the paper record is), as .xlsx or .csv. This module reads the
//! sheet's rows as written and writes the template; the engine resolves the
//! rows against the plan and records them (`engine::baseline`).

use super::import::words::fold;
use crate::domain::task::RecordedState;
use calamine::{Data, Reader};
use chrono::NaiveDate;

/// The largest sheet read (a plan of 2,000 tasks has some 20,000 rows).
pub const SHEET_MAX_BYTES: usize = 10 * 1024 * 1024;
/// The most rows one sheet may have.
pub const SHEET_MAX_ROWS: usize = 50_000;

/// The columns of the template, in order: (header, what it holds).
pub const COLUMNS: [(&str, Column); 11] = [
    ("STT", Column::Ignored),
    ("Mã nhiệm vụ", Column::Task),
    ("Tên nhiệm vụ", Column::Ignored),
    ("Mã mốc", Column::Milestone),
    ("Tên mốc", Column::Ignored),
    ("Hạn", Column::Ignored),
    ("Cơ quan", Column::Agency),
    ("Trạng thái", Column::State),
    ("Ngày hoàn thành", Column::DoneOn),
    ("Ghi chú", Column::Note),
    ("Nơi lưu hồ sơ", Column::Record),
];

/// Other headings people give the same columns.
const ALSO: [(&str, Column); 6] = [
    ("Nhiệm vụ", Column::Task),
    ("Mốc", Column::Milestone),
    ("Cơ quan thực hiện", Column::Agency),
    ("Ngày thực hiện", Column::DoneOn),
    ("Hồ sơ", Column::Record),
    ("Số thứ tự", Column::Ignored),
];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Column {
    Task,
    Milestone,
    Agency,
    State,
    DoneOn,
    Note,
    Record,
    /// Shown to help the person filling it; not read.
    Ignored,
}

/// One row as written, cells trimmed; `row` is the spreadsheet's number.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SheetLine {
    pub row: u32,
    pub task: String,
    pub milestone: String,
    pub agency: String,
    pub state: String,
    /// A date as the sheet holds it: "20/03/2023", or already a date.
    pub done_on: String,
    pub note: String,
    pub record: String,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SheetError {
    #[error("tệp quá lớn: {bytes} byte, tối đa {max} byte")]
    TooLarge { bytes: usize, max: usize },
    #[error("không phải bảng tính .xlsx hay .csv: {0}")]
    NotASheet(String),
    #[error("bảng tính hỏng, không đọc được: {0}")]
    Corrupt(String),
    #[error("tệp .csv không phải UTF-8 (byte {offset}): lưu lại dạng \"CSV UTF-8\"")]
    NotUtf8 { offset: usize },
    #[error("bảng tính trống: cần dòng tiêu đề ({all}) và một dòng cho mỗi nghĩa vụ", all = headers())]
    Empty,
    #[error("cột \"{header}\" (cột {column}) không có trong mẫu; các cột của mẫu: {all}", all = headers())]
    UnknownColumn { header: String, column: String },
    #[error("thiếu cột \"{0}\"; các cột của mẫu: {all}", all = headers())]
    MissingColumn(&'static str),
    #[error("cột \"{0}\" có hai lần")]
    RepeatedColumn(String),
    #[error("bảng tính có {rows} dòng, quá giới hạn {max} dòng")]
    TooManyRows { rows: usize, max: usize },
}

fn headers() -> String {
    COLUMNS
        .iter()
        .map(|(h, _)| format!("\"{h}\""))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Column letters as a spreadsheet shows them: 0 → A, 27 → AB.
fn column_letter(mut index: usize) -> String {
    let mut out = Vec::new();
    loop {
        out.push(b'A' + (index % 26) as u8);
        if index < 26 {
            break;
        }
        index = index / 26 - 1;
    }
    out.reverse();
    String::from_utf8(out).unwrap_or_default()
}

fn column_of(header: &str) -> Option<Column> {
    let f = fold(header);
    COLUMNS
        .iter()
        .chain(ALSO.iter())
        .find(|(h, _)| fold(h) == f)
        .map(|(_, c)| *c)
}

/// Reads a sheet's rows. The file's name decides the format (.xlsx, .csv);
/// the first row that is not empty is the header.
pub fn read(file_name: &str, bytes: &[u8]) -> Result<Vec<SheetLine>, SheetError> {
    if bytes.len() > SHEET_MAX_BYTES {
        return Err(SheetError::TooLarge {
            bytes: bytes.len(),
            max: SHEET_MAX_BYTES,
        });
    }
    let lower = file_name.to_lowercase();
    let cells = if lower.ends_with(".csv") {
        csv_cells(bytes)?
    } else if lower.ends_with(".xlsx") || bytes.starts_with(b"PK") {
        xlsx_cells(bytes)?
    } else if lower.ends_with(".xls") {
        return Err(SheetError::NotASheet(
            "tệp .xls (Excel 97–2003): mở bằng Excel hoặc LibreOffice rồi lưu lại dạng .xlsx".into(),
        ));
    } else {
        return Err(SheetError::NotASheet("cần tệp .xlsx hoặc .csv".into()));
    };
    lines_of(cells)
}

/// Rows of cells, each with its spreadsheet row number.
type Cells = Vec<(u32, Vec<String>)>;

fn lines_of(cells: Cells) -> Result<Vec<SheetLine>, SheetError> {
    let mut rows = cells
        .into_iter()
        .filter(|(_, r)| r.iter().any(|c| !c.trim().is_empty()));
    let Some((_, header)) = rows.next() else {
        return Err(SheetError::Empty);
    };
    let mut columns: Vec<Option<Column>> = Vec::new();
    for (i, h) in header.iter().enumerate() {
        if h.trim().is_empty() {
            columns.push(None);
            continue;
        }
        let c = column_of(h).ok_or_else(|| SheetError::UnknownColumn {
            header: h.trim().to_string(),
            column: column_letter(i),
        })?;
        if c != Column::Ignored && columns.contains(&Some(c)) {
            return Err(SheetError::RepeatedColumn(h.trim().to_string()));
        }
        columns.push(Some(c));
    }
    for (name, needed) in [
        ("Mã nhiệm vụ", Column::Task),
        ("Mã mốc", Column::Milestone),
        ("Cơ quan", Column::Agency),
        ("Trạng thái", Column::State),
    ] {
        if !columns.contains(&Some(needed)) {
            return Err(SheetError::MissingColumn(name));
        }
    }
    let mut out = Vec::new();
    for (row, cells) in rows {
        let mut line = SheetLine {
            row,
            ..Default::default()
        };
        for (i, cell) in cells.iter().enumerate() {
            let value = cell.trim().to_string();
            match columns.get(i).copied().flatten() {
                Some(Column::Task) => line.task = value,
                Some(Column::Milestone) => line.milestone = value,
                Some(Column::Agency) => line.agency = value,
                Some(Column::State) => line.state = value,
                Some(Column::DoneOn) => line.done_on = value,
                Some(Column::Note) => line.note = value,
                Some(Column::Record) => line.record = value,
                Some(Column::Ignored) | None => {}
            }
        }
        out.push(line);
        if out.len() > SHEET_MAX_ROWS {
            return Err(SheetError::TooManyRows {
                rows: out.len(),
                max: SHEET_MAX_ROWS,
            });
        }
    }
    Ok(out)
}

fn xlsx_cells(bytes: &[u8]) -> Result<Cells, SheetError> {
    let mut book: calamine::Xlsx<_> = calamine::Xlsx::new(std::io::Cursor::new(bytes.to_vec()))
        .map_err(|e| SheetError::NotASheet(format!("không mở được như .xlsx ({e})")))?;
    let range = book
        .worksheet_range_at(0)
        .ok_or(SheetError::Empty)?
        .map_err(|e| SheetError::Corrupt(e.to_string()))?;
    let (first_row, first_col) = range.start().unwrap_or((0, 0));
    let mut out = Vec::new();
    for (i, row) in range.rows().enumerate() {
        let mut cells = vec![String::new(); first_col as usize];
        cells.extend(row.iter().map(cell_text));
        out.push((first_row + i as u32 + 1, cells));
    }
    Ok(out)
}

/// A cell as text; dates as dd/mm/yyyy.
fn cell_text(d: &Data) -> String {
    match d {
        Data::Empty => String::new(),
        Data::String(s) => s.clone(),
        Data::Float(f) if f.fract() == 0.0 => format!("{}", *f as i64),
        Data::Float(f) => f.to_string(),
        Data::Int(i) => i.to_string(),
        Data::Bool(b) => b.to_string(),
        // Days since 30/12/1899 (Excel's 1900 date system).
        Data::DateTime(dt) => NaiveDate::from_ymd_opt(1899, 12, 30)
            .and_then(|epoch| epoch.checked_add_signed(chrono::Duration::days(dt.as_f64().floor() as i64)))
            .map(|d| d.format("%d/%m/%Y").to_string())
            .unwrap_or_else(|| dt.to_string()),
        Data::DateTimeIso(s) => NaiveDate::parse_from_str(s.get(..10).unwrap_or(s), "%Y-%m-%d")
            .map(|d| d.format("%d/%m/%Y").to_string())
            .unwrap_or_else(|_| s.clone()),
        Data::DurationIso(s) => s.clone(),
        Data::Error(e) => format!("#{e:?}"),
    }
}

/// CSV as Excel writes it: UTF-8 (a byte-order mark or not), separated by
/// commas or semicolons, fields in double quotes where needed.
fn csv_cells(bytes: &[u8]) -> Result<Cells, SheetError> {
    let text = std::str::from_utf8(bytes).map_err(|e| SheetError::NotUtf8 {
        offset: e.valid_up_to(),
    })?;
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let first_line = text.lines().next().unwrap_or("");
    let separator = if first_line.matches(';').count() > first_line.matches(',').count() {
        ';'
    } else {
        ','
    };
    let mut out = Vec::new();
    let mut row: Vec<String> = Vec::new();
    let mut cell = String::new();
    let mut quoted = false;
    let mut line = 1u32;
    let mut row_line = 1u32;
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match (quoted, c) {
            (true, '"') if chars.peek() == Some(&'"') => {
                cell.push('"');
                chars.next();
            }
            (true, '"') => quoted = false,
            (true, '\n') => {
                line += 1;
                cell.push('\n');
            }
            (true, c) => cell.push(c),
            (false, '"') if cell.trim().is_empty() => {
                cell.clear();
                quoted = true;
            }
            (false, c) if c == separator => row.push(std::mem::take(&mut cell)),
            (false, '\r') => {}
            (false, '\n') => {
                row.push(std::mem::take(&mut cell));
                out.push((row_line, std::mem::take(&mut row)));
                line += 1;
                row_line = line;
            }
            (false, c) => cell.push(c),
        }
    }
    if !cell.is_empty() || !row.is_empty() {
        row.push(cell);
        out.push((row_line, row));
    }
    Ok(out)
}

/// A date as the sheet gives it: dd/mm/yyyy (also d/m/yyyy, with '-' or
/// '.'), or yyyy-mm-dd.
pub fn parse_day(text: &str) -> Option<NaiveDate> {
    let t = text.trim();
    let t = t.split_whitespace().next().unwrap_or("");
    NaiveDate::parse_from_str(t, "%Y-%m-%d").ok().or_else(|| {
        let parts: Vec<&str> = t.split(['/', '-', '.']).collect();
        match parts.as_slice() {
            [d, m, y] if y.len() == 4 => NaiveDate::from_ymd_opt(y.parse().ok()?, m.parse().ok()?, d.parse().ok()?),
            _ => None,
        }
    })
}

/// One row of the template: an obligation and its state today.
#[derive(Debug, Clone, PartialEq)]
pub struct TemplateRow {
    pub task: String,
    pub task_title: String,
    pub milestone: String,
    pub milestone_title: String,
    pub due: NaiveDate,
    pub agency: String,
    pub state: Option<RecordedState>,
    pub done_on: Option<NaiveDate>,
}

/// The template as an Excel workbook: the columns of `COLUMNS`, a row per
/// obligation with today's state, the accepted states in a note row.
pub fn template_xlsx(rows: &[TemplateRow]) -> Result<Vec<u8>, rust_xlsxwriter::XlsxError> {
    use rust_xlsxwriter::{DataValidation, Format, Workbook};
    let mut book = Workbook::new();
    let bold = Format::new().set_bold();
    let sheet = book.add_worksheet();
    sheet.set_name("Hiện trạng")?;
    for (c, (h, _)) in COLUMNS.iter().enumerate() {
        sheet.write_string_with_format(0, c as u16, *h, &bold)?;
    }
    for (i, r) in rows.iter().enumerate() {
        let n = i as u32 + 1;
        sheet.write_number(n, 0, f64::from(n))?;
        sheet.write_string(n, 1, &r.task)?;
        sheet.write_string(n, 2, &r.task_title)?;
        sheet.write_string(n, 3, &r.milestone)?;
        sheet.write_string(n, 4, &r.milestone_title)?;
        sheet.write_string(n, 5, r.due.format("%d/%m/%Y").to_string())?;
        sheet.write_string(n, 6, &r.agency)?;
        sheet.write_string(n, 7, r.state.map_or("", RecordedState::label_vi))?;
        sheet.write_string(
            n,
            8,
            r.done_on.map(|d| d.format("%d/%m/%Y").to_string()).unwrap_or_default(),
        )?;
    }
    if !rows.is_empty() {
        let states: Vec<&str> = RecordedState::ALL.iter().map(|s| s.label_vi()).collect();
        let validation = DataValidation::new().allow_list_strings(&states)?;
        sheet.add_data_validation(1, 7, rows.len() as u32, 7, &validation)?;
    }
    sheet.set_freeze_panes(1, 0)?;
    sheet.autofit();
    book.save_to_buffer()
}

/// The same template as CSV (UTF-8 with a byte-order mark, for Excel).
pub fn template_csv(rows: &[TemplateRow]) -> Vec<u8> {
    let mut out = String::from("\u{feff}");
    let quote = |s: &str| format!("\"{}\"", s.replace('"', "\"\""));
    out.push_str(&COLUMNS.iter().map(|(h, _)| quote(h)).collect::<Vec<_>>().join(","));
    out.push_str("\r\n");
    for (i, r) in rows.iter().enumerate() {
        let cells = [
            (i + 1).to_string(),
            r.task.clone(),
            r.task_title.clone(),
            r.milestone.clone(),
            r.milestone_title.clone(),
            r.due.format("%d/%m/%Y").to_string(),
            r.agency.clone(),
            r.state.map_or("", RecordedState::label_vi).to_string(),
            r.done_on.map(|d| d.format("%d/%m/%Y").to_string()).unwrap_or_default(),
            String::new(),
            String::new(),
        ];
        out.push_str(&cells.iter().map(|c| quote(c)).collect::<Vec<_>>().join(","));
        out.push_str("\r\n");
    }
    out.into_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(task: &str, state: Option<RecordedState>, done_on: Option<NaiveDate>) -> TemplateRow {
        TemplateRow {
            task: task.into(),
            task_title: "Xây dựng mô hình \"Dân vận khéo\"".into(),
            milestone: "register-2023".into(),
            milestone_title: "Đăng ký mô hình 2023".into(),
            due: NaiveDate::from_ymd_opt(2023, 3, 31).unwrap(),
            agency: "Ủy ban nhân dân thị xã".into(),
            state,
            done_on,
        }
    }

    #[test]
    fn the_template_reads_back_as_xlsx_and_csv() {
        let day = NaiveDate::from_ymd_opt(2023, 3, 20).unwrap();
        let rows = vec![
            row("III.1.2", Some(RecordedState::Done), Some(day)),
            row("III.1.3", Some(RecordedState::NotStarted), None),
        ];
        for (name, bytes) in [
            ("mau.xlsx", template_xlsx(&rows).unwrap()),
            ("mau.csv", template_csv(&rows)),
        ] {
            let lines = read(name, &bytes).unwrap();
            assert_eq!(lines.len(), 2, "{name}");
            assert_eq!(lines[0].row, 2);
            assert_eq!(lines[0].task, "III.1.2");
            assert_eq!(lines[0].milestone, "register-2023");
            assert_eq!(lines[0].agency, "Ủy ban nhân dân thị xã");
            assert_eq!(lines[0].state, "đã hoàn thành");
            assert_eq!(parse_day(&lines[0].done_on), Some(day));
            assert_eq!(lines[1].state, "chưa thực hiện");
        }
    }

    #[test]
    fn csv_as_people_save_it() {
        let text = "Mã nhiệm vụ;Mã mốc;Cơ quan;Trạng thái;Ngày hoàn thành;Ghi chú\r\n\
                    III.1.2;register-2023;UBND;Đã hoàn thành;20/03/2023;\"Báo cáo số 12; \"\"xong\"\"\"\r\n\r\n";
        let lines = read("hien-trang.csv", text.as_bytes()).unwrap();
        assert_eq!(lines.len(), 1);
        assert_eq!(lines[0].note, "Báo cáo số 12; \"xong\"");
        assert_eq!(lines[0].row, 2);
    }

    #[test]
    fn unknown_and_missing_columns_are_named() {
        let e = read(
            "a.csv",
            "Mã nhiệm vụ,Mã mốc,Cơ quan,Trạng thái,Điểm thưởng\n".as_bytes(),
        )
        .unwrap_err();
        assert!(e.to_string().contains("\"Điểm thưởng\" (cột E)"), "{e}");
        let e = read("a.csv", "Mã nhiệm vụ,Mã mốc,Trạng thái\n".as_bytes()).unwrap_err();
        assert_eq!(e, SheetError::MissingColumn("Cơ quan"));
        assert!(matches!(read("a.csv", b"\xff\xfe"), Err(SheetError::NotUtf8 { .. })));
        assert!(matches!(read("a.xlsx", b"not a zip"), Err(SheetError::NotASheet(_))));
        assert!(matches!(read("a.csv", b"\n\n"), Err(SheetError::Empty)));
    }

    #[test]
    fn days_as_sheets_write_them() {
        let d = NaiveDate::from_ymd_opt(2023, 4, 15);
        assert_eq!(parse_day("15/04/2023"), d);
        assert_eq!(parse_day("15/4/2023"), d);
        assert_eq!(parse_day("2023-04-15"), d);
        assert_eq!(parse_day("15-04-2023"), d);
        assert_eq!(parse_day("31/02/2023"), None);
        assert_eq!(parse_day("15/04/23"), None);
    }

    #[test]
    fn column_letters() {
        assert_eq!(column_letter(0), "A");
        assert_eq!(column_letter(25), "Z");
        assert_eq!(column_letter(26), "AA");
        assert_eq!(column_letter(27), "AB");
    }
}
