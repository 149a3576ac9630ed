//! Plan documents of any size in the conventions of the shipped plan, for
//! the benchmark and the tests of large imports: as text, and as a Word
//! document whose numbers come from automatic numbering.

use std::io::Write;

const AGENCIES: [&str; 10] = [
    "Ban Tuyên giáo Huyện ủy",
    "Ban Dân vận Huyện ủy",
    "Ủy ban nhân dân huyện",
    "Ủy ban Mặt trận Tổ quốc Việt Nam huyện",
    "Phòng Văn hóa và Thông tin huyện",
    "Phòng Giáo dục và Đào tạo huyện",
    "Phòng Nông nghiệp và Phát triển nông thôn huyện",
    "Công an huyện",
    "Huyện đoàn",
    "Hội Liên hiệp Phụ nữ huyện",
];

const DEADLINES: [&str; 6] = [
    "Trong quý I/2026.",
    "Thường xuyên.",
    "Trước 31/3 hằng năm.",
    "6 tháng đầu năm 2027.",
    "Năm 2028.",
    "Trước ngày 30/6/2027.",
];

/// One paragraph of a sample: its text, and its automatic number (list,
/// level 0 or 1, the number shown) when the Word version numbers it.
struct Line {
    text: String,
    numbered: Option<(u8, u8, String)>,
}

fn lines(tasks: usize) -> Vec<Line> {
    let plain = |t: &str| Line {
        text: t.to_string(),
        numbered: None,
    };
    let mut out: Vec<Line> = [
        "ĐẢNG BỘ TỈNH QUẢNG NGÃI",
        "HUYỆN ỦY SƠN TỊNH",
        "*",
        "Số 120-KH/HU",
        "ĐẢNG CỘNG SẢN VIỆT NAM",
        "Sơn Tịnh, ngày 05 tháng 01 năm 2026",
        "KẾ HOẠCH",
        "Thực hiện chương trình chuyển đổi số giai đoạn 2026 - 2030",
        "I- MỤC ĐÍCH, YÊU CẦU",
        "1. Nâng cao nhận thức của cả hệ thống chính trị.",
        "II- NỘI DUNG THỰC HIỆN",
    ]
    .iter()
    .map(|t| plain(t))
    .collect();
    let mut n = 0;
    for g in 1..=tasks.div_ceil(50) {
        out.push(Line {
            text: format!("Nhóm nhiệm vụ số {g}"),
            numbered: Some((1, 0, format!("{g}."))),
        });
        for i in 1..=50 {
            if n == tasks {
                break;
            }
            out.push(Line {
                text: format!(
                    "Triển khai nội dung số {n} của chương trình, phấn đấu đạt từ {}% trở lên số cơ quan, đơn vị thực hiện.",
                    50 + n % 50
                ),
                numbered: Some((1, 1, format!("{g}.{i}."))),
            });
            out.push(plain("- Cơ quan lãnh đạo: Ban Thường vụ Huyện ủy."));
            out.push(plain(&format!("- Cơ quan tham mưu: {}.", AGENCIES[n % 2])));
            out.push(plain(&format!("- Cơ quan thực hiện: {}.", AGENCIES[2 + n % 8])));
            out.push(plain(&format!(
                "- Thời gian hoàn thành: {}",
                DEADLINES[n % DEADLINES.len()]
            )));
            n += 1;
        }
    }
    out.push(plain("III- TỔ CHỨC THỰC HIỆN"));
    out.push(Line {
        text: "Ban Dân vận Huyện ủy: Theo dõi, tổng hợp kết quả thực hiện Kế hoạch.".into(),
        // A list of its own, restarting at 1.
        numbered: Some((2, 0, "1.".into())),
    });
    out
}

/// A plan of `tasks` numbered items (and one item of "Tổ chức thực hiện")
/// as UTF-8 text, numbers typed.
pub fn text(tasks: usize) -> String {
    let mut s = String::new();
    for l in lines(tasks) {
        if let Some((_, _, number)) = &l.numbered {
            s.push_str(number);
            s.push(' ');
        }
        s.push_str(&l.text);
        s.push('\n');
    }
    s
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;")
}

/// The same plan as a .docx: numbers from numbering.xml ("%1." and
/// "%1.%2."), not typed.
pub fn docx(tasks: usize) -> Vec<u8> {
    let mut body = String::new();
    for l in lines(tasks) {
        match &l.numbered {
            Some((list, level, _)) => body.push_str(&format!(
                "<w:p><w:pPr><w:numPr><w:ilvl w:val=\"{level}\"/><w:numId w:val=\"{list}\"/></w:numPr></w:pPr><w:r><w:t xml:space=\"preserve\">{}</w:t></w:r></w:p>",
                escape(&l.text)
            )),
            None => body.push_str(&format!(
                "<w:p><w:r><w:t xml:space=\"preserve\">{}</w:t></w:r></w:p>",
                escape(&l.text)
            )),
        }
    }
    const W: &str = "http://schemas.openxmlformats.org/wordprocessingml/2006/main";
    let document = format!("<?xml version=\"1.0\" encoding=\"UTF-8\" standalone=\"yes\"?><w:document xmlns:w=\"{W}\"><w:body>{body}</w:body></w:document>");
    let numbering = format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\" standalone=\"yes\"?><w:numbering xmlns:w=\"{W}\">\
         <w:abstractNum w:abstractNumId=\"0\">\
         <w:lvl w:ilvl=\"0\"><w:start w:val=\"1\"/><w:numFmt w:val=\"decimal\"/><w:lvlText w:val=\"%1.\"/></w:lvl>\
         <w:lvl w:ilvl=\"1\"><w:start w:val=\"1\"/><w:numFmt w:val=\"decimal\"/><w:lvlText w:val=\"%1.%2.\"/></w:lvl>\
         </w:abstractNum><w:num w:numId=\"1\"><w:abstractNumId w:val=\"0\"/></w:num>\
         <w:num w:numId=\"2\"><w:abstractNumId w:val=\"0\"/><w:lvlOverride w:ilvl=\"0\"><w:startOverride w:val=\"1\"/></w:lvlOverride></w:num></w:numbering>"
    );
    let parts: [(&str, String); 5] = [
        (
            "[Content_Types].xml",
            "<?xml version=\"1.0\" encoding=\"UTF-8\" standalone=\"yes\"?><Types xmlns=\"http://schemas.openxmlformats.org/package/2006/content-types\">\
             <Default Extension=\"rels\" ContentType=\"application/vnd.openxmlformats-package.relationships+xml\"/>\
             <Default Extension=\"xml\" ContentType=\"application/xml\"/>\
             <Override PartName=\"/word/document.xml\" ContentType=\"application/vnd.openxmlformats-officedocument.wordprocessingml.document.main+xml\"/>\
             <Override PartName=\"/word/numbering.xml\" ContentType=\"application/vnd.openxmlformats-officedocument.wordprocessingml.numbering+xml\"/></Types>".into(),
        ),
        (
            "_rels/.rels",
            "<?xml version=\"1.0\" encoding=\"UTF-8\" standalone=\"yes\"?><Relationships xmlns=\"http://schemas.openxmlformats.org/package/2006/relationships\">\
             <Relationship Id=\"rId1\" Type=\"http://schemas.openxmlformats.org/officeDocument/2006/relationships/officeDocument\" Target=\"word/document.xml\"/></Relationships>".into(),
        ),
        (
            "word/_rels/document.xml.rels",
            "<?xml version=\"1.0\" encoding=\"UTF-8\" standalone=\"yes\"?><Relationships xmlns=\"http://schemas.openxmlformats.org/package/2006/relationships\">\
             <Relationship Id=\"rId1\" Type=\"http://schemas.openxmlformats.org/officeDocument/2006/relationships/numbering\" Target=\"numbering.xml\"/></Relationships>".into(),
        ),
        ("word/document.xml", document),
        ("word/numbering.xml", numbering),
    ];
    let mut buffer = std::io::Cursor::new(Vec::new());
    {
        let mut zip = zip::ZipWriter::new(&mut buffer);
        let options = zip::write::SimpleFileOptions::default().compression_method(zip::CompressionMethod::Deflated);
        for (name, text) in parts {
            // Writing to memory cannot fail but for a bug; the sample is for tests and the benchmark.
            zip.start_file(name, options).expect("zip entry");
            zip.write_all(text.as_bytes()).expect("zip write");
        }
        zip.finish().expect("zip finish");
    }
    buffer.into_inner()
}

#[cfg(test)]
mod tests {
    #[test]
    fn both_forms_import_to_the_same_tasks() {
        let from_text = super::super::import("sample.txt", super::text(120).as_bytes(), &[]).unwrap();
        let from_word = super::super::import("sample.docx", &super::docx(120), &[]).unwrap();
        assert_eq!(from_text.tasks.len(), 121);
        let ids = |d: &super::super::Draft| d.tasks.iter().map(|t| t.id.clone()).collect::<Vec<_>>();
        assert_eq!(ids(&from_text), ids(&from_word));
        assert_eq!(from_text.tasks[60].id, "II.2.11");
        assert_eq!(
            from_word
                .to_toml()
                .lines()
                .filter(|l| l.starts_with("[[tasks]]"))
                .count(),
            121
        );
    }
}
