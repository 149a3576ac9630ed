//! .docx files are built here, part by part, with `zip::ZipWriter`.

use super::*;
use crate::plan::import::document::{Block, Paragraph, Table};
use std::io::Write;
use unicode_normalization::UnicodeNormalization;
use zip::write::SimpleFileOptions;

const NS: &str = concat!(
    r#"xmlns:w="http://schemas.openxmlformats.org/wordprocessingml/2006/main" "#,
    r#"xmlns:mc="http://schemas.openxmlformats.org/markup-compatibility/2006" "#,
    r#"xmlns:wps="http://schemas.microsoft.com/office/word/2010/wordprocessingShape""#
);

const CONTENT_TYPES: &str = r#"<?xml version="1.0" encoding="UTF-8" standalone="yes"?>
<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">
<Default Extension="rels" ContentType="application/vnd.openxmlformats-package.relationships+xml"/>
<Default Extension="xml" ContentType="application/xml"/>
<Override PartName="/word/document.xml" ContentType="application/vnd.openxmlformats-officedocument.wordprocessingml.document.main+xml"/>
</Types>"#;

fn zip_of(parts: &[(&str, &[u8])]) -> Vec<u8> {
    let mut writer = zip::ZipWriter::new(Cursor::new(Vec::new()));
    let options = SimpleFileOptions::default().compression_method(zip::CompressionMethod::Deflated);
    for (name, data) in parts {
        writer.start_file(*name, options).unwrap();
        writer.write_all(data).unwrap();
    }
    writer.finish().unwrap().into_inner()
}

/// The parts of a test document besides `[Content_Types].xml`.
#[derive(Default)]
struct Parts<'a> {
    body: &'a str,
    numbering: Option<&'a str>,
    styles: Option<&'a str>,
    footnotes: Option<&'a str>,
    endnotes: Option<&'a str>,
}

impl Parts<'_> {
    fn build(&self) -> Vec<u8> {
        let document = format!(
            r#"<?xml version="1.0" encoding="UTF-8"?><w:document {NS}><w:body>{}</w:body></w:document>"#,
            self.body
        );
        let wrap = |root: &str, inner: &str| format!(r#"<w:{root} {NS}>{inner}</w:{root}>"#);
        let mut parts: Vec<(&str, Vec<u8>)> = vec![
            ("[Content_Types].xml", CONTENT_TYPES.as_bytes().to_vec()),
            ("word/document.xml", document.into_bytes()),
        ];
        if let Some(n) = self.numbering {
            parts.push(("word/numbering.xml", wrap("numbering", n).into_bytes()));
        }
        if let Some(s) = self.styles {
            parts.push(("word/styles.xml", wrap("styles", s).into_bytes()));
        }
        if let Some(f) = self.footnotes {
            parts.push(("word/footnotes.xml", wrap("footnotes", f).into_bytes()));
        }
        if let Some(e) = self.endnotes {
            parts.push(("word/endnotes.xml", wrap("endnotes", e).into_bytes()));
        }
        let refs: Vec<(&str, &[u8])> = parts.iter().map(|(n, d)| (*n, d.as_slice())).collect();
        zip_of(&refs)
    }

    fn read(&self) -> Document {
        read(&self.build()).unwrap()
    }
}

fn body(body: &str) -> Document {
    Parts {
        body,
        ..Parts::default()
    }
    .read()
}

fn p(text: &str) -> String {
    format!(r#"<w:p><w:r><w:t xml:space="preserve">{text}</w:t></w:r></w:p>"#)
}

fn numbered(num_id: u32, ilvl: u32, text: &str) -> String {
    format!(
        r#"<w:p><w:pPr><w:numPr><w:ilvl w:val="{ilvl}"/><w:numId w:val="{num_id}"/></w:numPr></w:pPr><w:r><w:t>{text}</w:t></w:r></w:p>"#
    )
}

fn paragraphs(doc: &Document) -> Vec<&Paragraph> {
    doc.blocks
        .iter()
        .filter_map(|b| match b {
            Block::Paragraph(p) => Some(p),
            Block::Table(_) => None,
        })
        .collect()
}

fn texts(doc: &Document) -> Vec<String> {
    paragraphs(doc).iter().map(|p| p.display()).collect()
}

fn tables(doc: &Document) -> Vec<&Table> {
    doc.blocks
        .iter()
        .filter_map(|b| match b {
            Block::Table(t) => Some(t),
            Block::Paragraph(_) => None,
        })
        .collect()
}

fn level(ilvl: u32, format: &str, text: &str) -> String {
    format!(
        r#"<w:lvl w:ilvl="{ilvl}"><w:start w:val="1"/><w:numFmt w:val="{format}"/><w:lvlText w:val="{text}"/></w:lvl>"#
    )
}

#[test]
fn runs_split_mid_word_join() {
    let doc = body(
        r#"<w:p><w:r><w:t xml:space="preserve">Cơ quan th</w:t></w:r><w:r><w:rPr><w:i/></w:rPr><w:t>ực hiện</w:t></w:r><w:r><w:t>: Sở Nội vụ</w:t></w:r></w:p>"#,
    );
    assert_eq!(texts(&doc), ["Cơ quan thực hiện: Sở Nội vụ"]);
    assert_eq!(paragraphs(&doc)[0].origin.line, 1);
}

#[test]
fn decomposed_vietnamese_comes_out_nfc() {
    let nfd: String = "Cơ quan thực hiện: Ủy ban nhân dân tỉnh".nfd().collect();
    assert_ne!(nfd, "Cơ quan thực hiện: Ủy ban nhân dân tỉnh");
    let doc = body(&p(&nfd));
    assert_eq!(texts(&doc), ["Cơ quan thực hiện: Ủy ban nhân dân tỉnh"]);
}

#[test]
fn whitespace_tabs_breaks_and_hyphens() {
    let doc = body(concat!(
        r#"<w:p><w:r><w:t xml:space="preserve">  Thời hạn:</w:t><w:tab/><w:t>Quý</w:t><w:br/><w:t xml:space="preserve">IV   năm 2025  </w:t></w:r>"#,
        r#"<w:r><w:t>Số 12</w:t><w:noBreakHyphen/><w:t>KH</w:t><w:softHyphen/><w:sym w:font="Symbol" w:char="F0B7"/></w:r></w:p>"#,
        r#"<w:p><w:r><w:t>A &amp; B &#x1EA1;</w:t></w:r></w:p>"#
    ));
    assert_eq!(texts(&doc), ["Thời hạn: Quý IV năm 2025 Số 12-KH", "A & B ạ"]);
}

#[test]
fn whitespace_nbsp_collapses() {
    let doc = body(&p("Quý\u{a0}\u{a0} IV\u{200b}"));
    assert_eq!(texts(&doc), ["Quý IV"]);
}

#[test]
fn empty_paragraphs_are_dropped_but_counted() {
    let doc = body(&format!(
        r#"<w:p/><w:p><w:pPr><w:jc w:val="center"/></w:pPr></w:p>{}<w:p><w:r><w:t> </w:t></w:r></w:p>{}"#,
        p("Một"),
        p("Hai")
    ));
    let lines: Vec<u32> = paragraphs(&doc).iter().map(|p| p.origin.line).collect();
    assert_eq!(texts(&doc), ["Một", "Hai"]);
    assert_eq!(lines, [3, 5]);
}

const MULTI_LEVEL: &str = r#"
<w:abstractNum w:abstractNumId="0">
  <w:multiLevelType w:val="multilevel"/>
  <w:lvl w:ilvl="0"><w:start w:val="1"/><w:numFmt w:val="upperRoman"/><w:lvlText w:val="%1-"/><w:pPr><w:ind w:left="0"/></w:pPr><w:rPr><w:b/></w:rPr></w:lvl>
  <w:lvl w:ilvl="1"><w:start w:val="1"/><w:numFmt w:val="decimal"/><w:lvlText w:val="%2."/></w:lvl>
  <w:lvl w:ilvl="2"><w:start w:val="1"/><w:numFmt w:val="decimal"/><w:lvlText w:val="%2.%3."/></w:lvl>
  <w:lvl w:ilvl="3"><w:start w:val="1"/><w:numFmt w:val="lowerLetter"/><w:lvlText w:val="%4)"/></w:lvl>
</w:abstractNum>
<w:abstractNum w:abstractNumId="1">
  <w:lvl w:ilvl="0"><w:start w:val="1"/><w:numFmt w:val="decimal"/><w:lvlText w:val="(%1)"/></w:lvl>
</w:abstractNum>
<w:num w:numId="1"><w:abstractNumId w:val="0"/></w:num>
<w:num w:numId="2"><w:abstractNumId w:val="0"/></w:num>
<w:num w:numId="3"><w:abstractNumId w:val="0"/><w:lvlOverride w:ilvl="0"><w:startOverride w:val="1"/></w:lvlOverride></w:num>
<w:num w:numId="4"><w:abstractNumId w:val="1"/></w:num>
"#;

#[test]
fn multi_level_numbering_is_rebuilt() {
    let steps: &[(u32, u32, &str)] = &[
        (1, 0, "I-"),
        (1, 1, "1."),
        (1, 2, "1.1."),
        (1, 2, "1.2."),
        (1, 3, "a)"),
        (1, 3, "b)"),
        (1, 1, "2."),
        (1, 2, "2.1."),
        (1, 3, "a)"),
        (4, 0, "(1)"),
        (4, 0, "(2)"),
        (1, 0, "II-"),
        (1, 1, "1."),
        // Another num of the same list continues its counters.
        (2, 0, "III-"),
        (2, 1, "1."),
        (1, 1, "2."),
        // A start override restarts the list at the num's first use…
        (3, 0, "I-"),
        (3, 1, "1."),
        (3, 0, "II-"),
        // …and the other nums go on from there.
        (1, 0, "III-"),
        (4, 0, "(3)"),
    ];
    let body_xml: String = steps
        .iter()
        .enumerate()
        .map(|(i, (num, lvl, _))| numbered(*num, *lvl, &format!("Mục {i}")))
        .collect();
    let doc = Parts {
        body: &body_xml,
        numbering: Some(MULTI_LEVEL),
        ..Parts::default()
    }
    .read();
    let got: Vec<Option<String>> = paragraphs(&doc).iter().map(|p| p.number.clone()).collect();
    let want: Vec<Option<String>> = steps.iter().map(|(_, _, n)| Some(n.to_string())).collect();
    assert_eq!(got, want);
    let first = paragraphs(&doc)[0];
    assert_eq!(first.text, "Mục 0");
    assert_eq!(first.display(), "I- Mục 0");
    assert!(!first.bullet);
}

#[test]
fn numbering_details() {
    let numbering = format!(
        r#"<w:abstractNum w:abstractNumId="7">
          {}
          <w:lvl w:ilvl="1"><w:start w:val="1"/><w:numFmt w:val="decimal"/><w:lvlRestart w:val="0"/><w:lvlText w:val="%2."/></w:lvl>
          <w:lvl w:ilvl="2"><w:start w:val="1"/><w:isLgl/><w:numFmt w:val="decimal"/><w:lvlText w:val="%1.%3"/></w:lvl>
          <w:lvl w:ilvl="3"><w:start w:val="3"/>
            <mc:AlternateContent><mc:Choice Requires="w14"><w:numFmt w:val="custom" w:format="01, 02, 03, ..."/></mc:Choice>
            <mc:Fallback><w:numFmt w:val="decimalZero"/></mc:Fallback></mc:AlternateContent>
            <w:lvlText w:val="%4."/></w:lvl>
          <w:lvl w:ilvl="4"><w:numFmt w:val="none"/><w:lvlText w:val=""/></w:lvl>
        </w:abstractNum>
        <w:num w:numId="7"><w:abstractNumId w:val="7"/></w:num>
        <w:num w:numId="8"><w:abstractNumId w:val="7"/><w:lvlOverride w:ilvl="3"><w:startOverride w:val="9"/></w:lvlOverride></w:num>"#,
        level(0, "upperRoman", "%1.")
    );
    let body_xml = [
        numbered(7, 0, "a"),
        numbered(7, 1, "b"),
        numbered(7, 0, "c"),
        // lvlRestart 0: level 1 does not restart after level 0.
        numbered(7, 1, "d"),
        // isLgl: level 0 shown in decimal.
        numbered(7, 2, "e"),
        numbered(7, 3, "f"),
        numbered(7, 3, "g"),
        numbered(7, 4, "h"),
        numbered(8, 3, "i"),
        // numId 0 and unknown numIds: not numbered.
        numbered(0, 0, "j"),
        numbered(99, 0, "k"),
    ]
    .concat();
    let doc = Parts {
        body: &body_xml,
        numbering: Some(&numbering),
        ..Parts::default()
    }
    .read();
    assert_eq!(
        texts(&doc),
        ["I. a", "1. b", "II. c", "2. d", "2.1 e", "03. f", "04. g", "h", "09. i", "j", "k"]
    );
}

#[test]
fn numbering_via_paragraph_style_based_on() {
    let numbering = format!(
        r#"<w:abstractNum w:abstractNumId="2">{}{}</w:abstractNum><w:num w:numId="5"><w:abstractNumId w:val="2"/></w:num>"#,
        level(0, "decimal", "%1."),
        level(1, "lowerLetter", "%2)")
    );
    let styles = r#"
      <w:style w:type="paragraph" w:default="1" w:styleId="Normal"><w:name w:val="Normal"/></w:style>
      <w:style w:type="paragraph" w:styleId="TaskBase"><w:name w:val="Task Base"/><w:basedOn w:val="Normal"/>
        <w:pPr><w:numPr><w:numId w:val="5"/></w:numPr></w:pPr><w:rPr><w:b/></w:rPr></w:style>
      <w:style w:type="paragraph" w:styleId="Task"><w:name w:val="Task"/><w:basedOn w:val="TaskBase"/><w:pPr><w:spacing w:after="0"/></w:pPr></w:style>
      <w:style w:type="paragraph" w:styleId="SubTask"><w:name w:val="Sub Task"/><w:basedOn w:val="Task"/>
        <w:pPr><w:numPr><w:ilvl w:val="1"/></w:numPr><w:pPrChange w:id="1"><w:pPr><w:numPr><w:numId w:val="0"/></w:numPr></w:pPr></w:pPrChange></w:pPr>
        <w:rPr><w:b w:val="0"/></w:rPr></w:style>
    "#;
    let styled = |style: &str, text: &str| {
        format!(r#"<w:p><w:pPr><w:pStyle w:val="{style}"/></w:pPr><w:r><w:t>{text}</w:t></w:r></w:p>"#)
    };
    let body_xml = [
        styled("Task", "Quán triệt"),
        styled("SubTask", "Tổ chức hội nghị"),
        styled("SubTask", "Ban hành kế hoạch"),
        styled("Task", "Kiểm tra"),
        r#"<w:p><w:pPr><w:pStyle w:val="Task"/><w:numPr><w:numId w:val="0"/></w:numPr></w:pPr><w:r><w:t>Không số</w:t></w:r></w:p>"#.to_owned(),
        p("Thường"),
    ]
    .concat();
    let doc = Parts {
        body: &body_xml,
        numbering: Some(&numbering),
        styles: Some(styles),
        ..Parts::default()
    }
    .read();
    assert_eq!(
        texts(&doc),
        [
            "1. Quán triệt",
            "a) Tổ chức hội nghị",
            "b) Ban hành kế hoạch",
            "2. Kiểm tra",
            "Không số",
            "Thường"
        ]
    );
    let bold: Vec<bool> = paragraphs(&doc).iter().map(|p| p.bold).collect();
    assert_eq!(bold, [true, false, false, true, true, false]);
}

#[test]
fn bullets() {
    let numbering = format!(
        r#"<w:abstractNum w:abstractNumId="3">{}{}</w:abstractNum><w:num w:numId="6"><w:abstractNumId w:val="3"/></w:num>"#,
        level(0, "bullet", "\u{f0b7}"),
        level(1, "bullet", "o")
    );
    let styles = r#"<w:style w:type="paragraph" w:styleId="Danhsach"><w:name w:val="List Bullet 2"/></w:style>"#;
    let body_xml = [
        numbered(6, 0, "Sở Tài chính"),
        numbered(6, 1, "Sở Nội vụ"),
        r#"<w:p><w:pPr><w:pStyle w:val="Danhsach"/></w:pPr><w:r><w:t>Sở Tư pháp</w:t></w:r></w:p>"#.to_owned(),
        r#"<w:p><w:pPr><w:pStyle w:val="ListBullet"/></w:pPr><w:r><w:t>Sở Y tế</w:t></w:r></w:p>"#.to_owned(),
    ]
    .concat();
    let doc = Parts {
        body: &body_xml,
        numbering: Some(&numbering),
        styles: Some(styles),
        ..Parts::default()
    }
    .read();
    for paragraph in paragraphs(&doc) {
        assert!(paragraph.bullet, "{paragraph:?}");
        assert_eq!(paragraph.number, None);
    }
    assert_eq!(
        texts(&doc),
        ["- Sở Tài chính", "- Sở Nội vụ", "- Sở Tư pháp", "- Sở Y tế"]
    );
}

#[test]
fn footnotes_and_endnotes_attach_to_the_citing_paragraph() {
    let footnotes = r#"
      <w:footnote w:type="separator" w:id="-1"><w:p><w:r><w:separator/></w:r></w:p></w:footnote>
      <w:footnote w:type="continuationSeparator" w:id="0"><w:p><w:r><w:continuationSeparator/></w:r></w:p></w:footnote>
      <w:footnote w:id="1"><w:p><w:r><w:rPr><w:rStyle w:val="FootnoteReference"/></w:rPr><w:footnoteRef/></w:r>
        <w:r><w:t xml:space="preserve"> Theo Quyết định số 12/QĐ-UBND</w:t></w:r></w:p><w:p><w:r><w:t>ngày 02/01/2025.</w:t></w:r></w:p></w:footnote>
      <w:footnote w:id="2"><w:p><w:r><w:footnoteRef/></w:r><w:r><w:t>Chú thích hai.</w:t></w:r></w:p></w:footnote>
    "#;
    let endnotes =
        r#"<w:endnote w:id="1"><w:p><w:r><w:endnoteRef/></w:r><w:r><w:t>Ghi chú cuối.</w:t></w:r></w:p></w:endnote>"#;
    let body_xml = concat!(
        r#"<w:p><w:r><w:t>Triển khai kế hoạch</w:t></w:r><w:r><w:rPr><w:rStyle w:val="FootnoteReference"/></w:rPr><w:footnoteReference w:id="1"/></w:r>"#,
        r#"<w:r><w:t xml:space="preserve"> năm 2025</w:t></w:r><w:r><w:footnoteReference w:id="2"/></w:r><w:r><w:endnoteReference w:id="1"/></w:r></w:p>"#,
        r#"<w:p><w:r><w:t>Không chú thích</w:t></w:r></w:p>"#
    );
    let doc = Parts {
        body: body_xml,
        footnotes: Some(footnotes),
        endnotes: Some(endnotes),
        ..Parts::default()
    }
    .read();
    let ps = paragraphs(&doc);
    assert_eq!(ps[0].text, "Triển khai kế hoạch năm 2025");
    assert_eq!(
        ps[0].footnotes,
        [
            "Theo Quyết định số 12/QĐ-UBND ngày 02/01/2025.",
            "Chú thích hai.",
            "Ghi chú cuối."
        ]
    );
    assert!(ps[1].footnotes.is_empty());
}

#[test]
fn tables_with_grid_span_and_vertical_merge() {
    let numbering = format!(
        r#"<w:abstractNum w:abstractNumId="1">{}</w:abstractNum><w:num w:numId="1"><w:abstractNumId w:val="1"/></w:num>"#,
        level(0, "decimal", "%1.")
    );
    let cell = |props: &str, inner: &str| format!("<w:tc><w:tcPr><w:tcW w:w=\"100\"/>{props}</w:tcPr>{inner}</w:tc>");
    let nested = format!(
        "<w:tbl><w:tr>{}{}</w:tr></w:tbl>",
        cell("", &p("Phối hợp A")),
        cell("", &p("Phối hợp B"))
    );
    let table = format!(
        "<w:tbl><w:tblPr><w:tblW w:w=\"0\"/></w:tblPr><w:tblGrid><w:gridCol/><w:gridCol/><w:gridCol/></w:tblGrid>\
         <w:tr>{}{}</w:tr>\
         <w:tr>{}{}{}</w:tr>\
         <w:tr>{}{}{}</w:tr>\
         <w:tr><w:trPr><w:gridBefore w:val=\"1\"/></w:trPr>{}{}</w:tr></w:tbl>",
        cell(r#"<w:gridSpan w:val="2"/>"#, &p("Nội dung")),
        cell("", &p("Cơ quan")),
        cell(r#"<w:vMerge w:val="restart"/>"#, &numbered(1, 0, "Nhiệm vụ A")),
        cell("", &format!("{}{}", p("Dòng 1"), p("Dòng 2"))),
        cell("", &nested),
        cell("<w:vMerge/>", "<w:p/>"),
        cell("", &p("Dòng 3")),
        cell("", &p("Sở C")),
        cell("", &p("Lệch")),
        cell("<w:vMerge/>", "<w:p/>"),
    );
    let body_xml = format!("<w:p/>{}{table}{}", p("Trước bảng"), numbered(1, 0, "Sau bảng"));
    let doc = Parts {
        body: &body_xml,
        numbering: Some(&numbering),
        ..Parts::default()
    }
    .read();
    let t = tables(&doc);
    assert_eq!(t.len(), 1);
    assert_eq!(
        t[0].rows,
        vec![
            vec!["Nội dung".to_owned(), "Cơ quan".to_owned()],
            vec![
                "1. Nhiệm vụ A".to_owned(),
                "Dòng 1\nDòng 2".to_owned(),
                "Phối hợp A\nPhối hợp B".to_owned()
            ],
            vec!["1. Nhiệm vụ A".to_owned(), "Dòng 3".to_owned(), "Sở C".to_owned()],
            vec!["Lệch".to_owned(), "Sở C".to_owned()],
        ]
    );
    // Lines: 1 empty, 2 "Trước bảng", the table from 3 (2 + 5 + 3 + 2
    // paragraphs, empty ones and the nested table's included), then 15
    // "Sau bảng".
    assert_eq!(t[0].origin.line, 3);
    let ps = paragraphs(&doc);
    assert_eq!(ps[0].origin.line, 2);
    assert_eq!(ps[1].origin.line, 15);
    // Counters advance inside tables.
    assert_eq!(ps[1].display(), "2. Sau bảng");
}

#[test]
fn tracked_changes_fields_and_alternate_content() {
    let doc = body(concat!(
        // A deletion is dropped, an insertion kept; earlier run formatting ignored.
        r#"<w:p><w:r><w:t xml:space="preserve">Cơ quan </w:t></w:r><w:del w:id="1" w:author="A"><w:r><w:delText>cũ</w:delText></w:r></w:del>"#,
        r#"<w:ins w:id="2" w:author="A"><w:r><w:t>chủ trì</w:t></w:r></w:ins><w:moveFrom w:id="3"><w:r><w:t>chuyển đi</w:t></w:r></w:moveFrom></w:p>"#,
        // A complex field: the code is dropped, the result kept; nested fields too.
        r#"<w:p><w:r><w:t xml:space="preserve">Trang </w:t></w:r><w:r><w:fldChar w:fldCharType="begin"/></w:r><w:r><w:instrText xml:space="preserve"> PAGE </w:instrText></w:r>"#,
        r#"<w:r><w:fldChar w:fldCharType="separate"/></w:r><w:r><w:t>5</w:t></w:r><w:r><w:fldChar w:fldCharType="end"/></w:r>"#,
        r#"<w:r><w:t xml:space="preserve">, </w:t></w:r><w:fldSimple w:instr=" DATE "><w:r><w:t>01/02/2025</w:t></w:r></w:fldSimple>"#,
        r#"<w:r><w:t xml:space="preserve"> </w:t></w:r><w:hyperlink r:id="rId9" xmlns:r="r"><w:r><w:t>xem tại đây</w:t></w:r></w:hyperlink></w:p>"#,
        // Both branches of AlternateContent hold the same run: read once;
        // a text box in a drawing is not the paragraph's text.
        r#"<w:p><w:r><w:t xml:space="preserve">Hộp </w:t></w:r><mc:AlternateContent><mc:Choice Requires="wps"><w:r><w:t>X</w:t></w:r></mc:Choice>"#,
        r#"<mc:Fallback><w:r><w:t>X</w:t></w:r></mc:Fallback></mc:AlternateContent>"#,
        r#"<w:r><mc:AlternateContent><mc:Choice Requires="wps"><w:drawing><wps:txbx><w:txbxContent><w:p><w:r><w:t>trong hộp</w:t></w:r></w:p></w:txbxContent></wps:txbx></w:drawing></mc:Choice>"#,
        r#"<mc:Fallback><w:pict><w:txbxContent><w:p><w:r><w:t>trong hộp</w:t></w:r></w:p></w:txbxContent></w:pict></mc:Fallback></mc:AlternateContent></w:r>"#,
        r#"<w:r><w:rPr><w:vanish/></w:rPr><w:t>ẩn</w:t></w:r></w:p>"#,
        r#"<w:p><w:sdt><w:sdtPr><w:alias w:val="Tên"/></w:sdtPr><w:sdtContent><w:r><w:t>Trong điều khiển</w:t></w:r></w:sdtContent></w:sdt></w:p>"#
    ));
    assert_eq!(
        texts(&doc),
        [
            "Cơ quan chủ trì",
            "Trang 5, 01/02/2025 xem tại đây",
            "Hộp X",
            "Trong điều khiển"
        ]
    );
}

#[test]
fn field_spanning_paragraphs_hides_only_its_code() {
    let doc = body(concat!(
        r#"<w:p><w:r><w:fldChar w:fldCharType="begin"/></w:r><w:r><w:instrText>TOC \o "1-3"</w:instrText></w:r><w:r><w:fldChar w:fldCharType="separate"/></w:r><w:r><w:t>Mục lục 1</w:t></w:r></w:p>"#,
        r#"<w:p><w:r><w:t>Mục lục 2</w:t></w:r><w:r><w:fldChar w:fldCharType="end"/></w:r></w:p>"#,
        r#"<w:p><w:r><w:fldChar w:fldCharType="begin"/></w:r><w:r><w:instrText>REF x</w:instrText></w:r></w:p>"#,
        r#"<w:p><w:r><w:t>vẫn là mã</w:t></w:r><w:r><w:fldChar w:fldCharType="separate"/></w:r><w:r><w:t>Kết quả</w:t></w:r><w:r><w:fldChar w:fldCharType="end"/></w:r></w:p>"#
    ));
    assert_eq!(texts(&doc), ["Mục lục 1", "Mục lục 2", "Kết quả"]);
}

#[test]
fn bold_when_every_run_with_text_is_bold() {
    let styles =
        r#"<w:style w:type="character" w:styleId="Strong"><w:name w:val="Strong"/><w:rPr><w:b/></w:rPr></w:style>"#;
    let doc = Parts {
        body: concat!(
            r#"<w:p><w:r><w:rPr><w:b/></w:rPr><w:t>I. MỤC ĐÍCH</w:t></w:r><w:r><w:t xml:space="preserve"> </w:t></w:r><w:r><w:rPr><w:rStyle w:val="Strong"/></w:rPr><w:t>YÊU CẦU</w:t></w:r></w:p>"#,
            r#"<w:p><w:r><w:rPr><w:b/></w:rPr><w:t>Một phần</w:t></w:r><w:r><w:t xml:space="preserve"> thường</w:t></w:r></w:p>"#,
            r#"<w:p><w:r><w:rPr><w:b w:val="0"/></w:rPr><w:t>Không đậm</w:t></w:r></w:p>"#,
            r#"<w:p><w:r><w:rPr><w:b w:val="false"/><w:rPrChange w:id="1"><w:rPr><w:b/></w:rPr></w:rPrChange></w:rPr><w:t>Từng đậm</w:t></w:r></w:p>"#
        ),
        styles: Some(styles),
        ..Parts::default()
    }
    .read();
    let bold: Vec<bool> = paragraphs(&doc).iter().map(|p| p.bold).collect();
    assert_eq!(bold, [true, false, false, false]);
}

#[test]
fn utf16_parts_are_read() {
    let document = format!(
        r#"<?xml version="1.0" encoding="UTF-16"?><w:document {NS}><w:body>{}</w:body></w:document>"#,
        p("Kế hoạch")
    );
    let mut utf16 = vec![0xFF, 0xFE];
    utf16.extend(document.encode_utf16().flat_map(u16::to_le_bytes));
    let bytes = zip_of(&[
        ("[Content_Types].xml", CONTENT_TYPES.as_bytes()),
        ("word/document.xml", &utf16),
    ]);
    assert_eq!(texts(&read(&bytes).unwrap()), ["Kế hoạch"]);
}

#[test]
fn parts_found_through_relationships() {
    let rels = r#"<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">
      <Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/numbering" Target="../custom/list.xml"/>
      <Relationship Id="rId2" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/hyperlink" Target="https://example.org" TargetMode="External"/>
    </Relationships>"#;
    let numbering = format!(
        r#"<w:numbering {NS}><w:abstractNum w:abstractNumId="1">{}</w:abstractNum><w:num w:numId="1"><w:abstractNumId w:val="1"/></w:num></w:numbering>"#,
        level(0, "lowerLetter", "%1)")
    );
    let document = format!(
        r#"<w:document {NS}><w:body>{}</w:body></w:document>"#,
        numbered(1, 0, "Một")
    );
    let bytes = zip_of(&[
        ("[Content_Types].xml", CONTENT_TYPES.as_bytes()),
        ("word/document.xml", document.as_bytes()),
        ("word/_rels/document.xml.rels", rels.as_bytes()),
        ("custom/list.xml", numbering.as_bytes()),
    ]);
    assert_eq!(texts(&read(&bytes).unwrap()), ["a) Một"]);
}

#[test]
fn refuses_what_is_not_a_docx() {
    assert!(matches!(read(b"hello"), Err(ImportError::NotADocument(_))));
    assert!(matches!(read(b""), Err(ImportError::NotADocument(_))));
    assert!(matches!(read(b"%PDF-1.7 ..."), Err(ImportError::NotADocument(r)) if r.contains("PDF")));

    let mut doc = OLE2_MAGIC.to_vec();
    doc.extend([0u8; 1024]);
    doc.extend("Root Entry".encode_utf16().flat_map(u16::to_le_bytes));
    doc.extend("WordDocument".encode_utf16().flat_map(u16::to_le_bytes));
    assert_eq!(read(&doc), Err(ImportError::OldWordFormat));

    let mut encrypted = OLE2_MAGIC.to_vec();
    encrypted.extend([0u8; 1024]);
    encrypted.extend("EncryptedPackage".encode_utf16().flat_map(u16::to_le_bytes));
    assert_eq!(read(&encrypted), Err(ImportError::Encrypted));

    let plain_zip = zip_of(&[("readme.txt", b"hello".as_slice())]);
    assert!(matches!(read(&plain_zip), Err(ImportError::NotADocument(r)) if r.contains("word/document.xml")));
    let xlsx = zip_of(&[
        ("[Content_Types].xml", b"<Types/>".as_slice()),
        ("xl/workbook.xml", b"<workbook/>".as_slice()),
    ]);
    assert!(matches!(read(&xlsx), Err(ImportError::NotADocument(r)) if r.contains("Excel")));

    let mut truncated = Parts {
        body: &p("x"),
        ..Parts::default()
    }
    .build();
    truncated.truncate(truncated.len() / 2);
    assert!(matches!(read(&truncated), Err(ImportError::Corrupt(_))));

    let limits = Limits {
        document_bytes: 10,
        ..Limits::default()
    };
    let big = b"PK\x03\x04 more than ten";
    assert_eq!(
        read_with_limits(big, &limits),
        Err(ImportError::TooLarge {
            bytes: big.len(),
            max: 10
        })
    );
}

#[test]
fn refuses_macro_enabled_documents() {
    let document = format!(r#"<w:document {NS}><w:body>{}</w:body></w:document>"#, p("x"));
    let docm_types = CONTENT_TYPES.replace(
        "application/vnd.openxmlformats-officedocument.wordprocessingml.document.main+xml",
        "application/vnd.ms-word.document.macroEnabled.main+xml",
    );
    let docm = zip_of(&[
        ("[Content_Types].xml", docm_types.as_bytes()),
        ("word/document.xml", document.as_bytes()),
    ]);
    assert_eq!(read(&docm), Err(ImportError::MacroEnabled));

    let with_vba = zip_of(&[
        ("[Content_Types].xml", CONTENT_TYPES.as_bytes()),
        ("word/document.xml", document.as_bytes()),
        ("word/vbaProject.bin", b"\xD0\xCF\x11\xE0".as_slice()),
    ]);
    assert_eq!(read(&with_vba), Err(ImportError::MacroEnabled));
}

#[test]
fn refuses_malformed_xml() {
    for broken in [
        "<w:p><w:r><w:t>x</w:r></w:p>",
        "<w:p><w:r><w:t>x &nbsp; y</w:t></w:r></w:p>",
        "<w:p><w:r><w:t>x</w:t></w:r>",
        "<w:p><w:r w:val=\"1></w:r></w:p>",
    ] {
        let result = read(
            &Parts {
                body: broken,
                ..Parts::default()
            }
            .build(),
        );
        assert!(matches!(result, Err(ImportError::Corrupt(_))), "{broken}: {result:?}");
    }
    let bad_styles = read(
        &Parts {
            body: &p("x"),
            styles: Some("<w:style>"),
            ..Parts::default()
        }
        .build(),
    );
    assert!(matches!(bad_styles, Err(ImportError::Corrupt(r)) if r.contains("styles.xml")));
    let deep = "<w:sdt>".repeat(1000);
    let result = read(
        &Parts {
            body: &deep,
            ..Parts::default()
        }
        .build(),
    );
    assert!(matches!(result, Err(ImportError::Corrupt(_))), "{result:?}");
}

/// A document whose `document.xml` unpacks to `size` bytes of spaces,
/// written in chunks so the test never holds it whole.
fn spaces_docx(size: usize) -> Vec<u8> {
    let mut writer = zip::ZipWriter::new(Cursor::new(Vec::new()));
    let options = SimpleFileOptions::default().compression_method(zip::CompressionMethod::Deflated);
    writer.start_file("[Content_Types].xml", options).unwrap();
    writer.write_all(CONTENT_TYPES.as_bytes()).unwrap();
    writer.start_file("word/document.xml", options).unwrap();
    writer
        .write_all(format!("<w:document {NS}><w:body>").as_bytes())
        .unwrap();
    let chunk = vec![b' '; 1 << 20];
    let mut written = 0;
    while written < size {
        let n = chunk.len().min(size - written);
        writer.write_all(&chunk[..n]).unwrap();
        written += n;
    }
    writer.write_all(b"</w:body></w:document>").unwrap();
    writer.finish().unwrap().into_inner()
}

#[test]
fn refuses_zip_bombs_with_small_limits() {
    let bomb = spaces_docx(2 << 20);
    assert!(bomb.len() < 64 * 1024, "{}", bomb.len());
    let total = Limits {
        unpacked_bytes: 1 << 20,
        ..Limits::default()
    };
    assert_eq!(read_with_limits(&bomb, &total), Err(ImportError::ZipBomb));
    let part = Limits {
        part_bytes: 1 << 20,
        ..Limits::default()
    };
    assert_eq!(read_with_limits(&bomb, &part), Err(ImportError::ZipBomb));
    // Within the limits the same file reads (as an empty document).
    assert_eq!(read_with_limits(&bomb, &Limits::default()), Ok(Document::default()));

    // The running total counts every part: two parts, each under the part
    // limit, together over the total.
    let numbering = format!("<w:numbering {NS}>{}</w:numbering>", " ".repeat(600 * 1024));
    let document = format!(
        "<w:document {NS}><w:body>{}</w:body></w:document>",
        " ".repeat(600 * 1024)
    );
    let two = zip_of(&[
        ("[Content_Types].xml", CONTENT_TYPES.as_bytes()),
        ("word/numbering.xml", numbering.as_bytes()),
        ("word/document.xml", document.as_bytes()),
    ]);
    let limits = Limits {
        unpacked_bytes: 1 << 20,
        part_bytes: 1 << 20,
        ..Limits::default()
    };
    assert_eq!(read_with_limits(&two, &limits), Err(ImportError::ZipBomb));

    let many: Vec<(String, &[u8])> = (0..30).map(|i| (format!("media/{i}.bin"), b"x".as_slice())).collect();
    let refs: Vec<(&str, &[u8])> = many.iter().map(|(n, d)| (n.as_str(), *d)).collect();
    let limits = Limits {
        entries: 20,
        ..Limits::default()
    };
    assert_eq!(read_with_limits(&zip_of(&refs), &limits), Err(ImportError::ZipBomb));
}

#[test]
fn refuses_a_zip_bomb_with_the_default_limits() {
    // Over the 50 MB part limit, compressed to a few dozen kilobytes.
    let bomb = spaces_docx(60 << 20);
    assert!(bomb.len() < 1 << 20, "{}", bomb.len());
    assert_eq!(read(&bomb), Err(ImportError::ZipBomb));
}

#[test]
fn a_large_plan_reads_quickly() {
    let numbering = format!(
        r#"<w:abstractNum w:abstractNumId="0">{}{}{}</w:abstractNum><w:num w:numId="1"><w:abstractNumId w:val="0"/></w:num>"#,
        level(0, "upperRoman", "%1."),
        level(1, "decimal", "%2."),
        level(2, "decimal", "%2.%3.")
    );
    let mut body_xml = String::new();
    for task in 0..300 {
        if task % 30 == 0 {
            body_xml.push_str(&numbered(1, 0, "PHẦN NHIỆM VỤ"));
        }
        body_xml.push_str(&numbered(
            1,
            1,
            &format!("Nhiệm vụ số {task}: tổ chức triển khai thực hiện kế hoạch"),
        ));
        for line in 0..8 {
            body_xml.push_str(&format!(
                r#"<w:p><w:pPr><w:ind w:left="720"/></w:pPr><w:r><w:rPr><w:rFonts w:ascii="Times New Roman"/><w:sz w:val="28"/></w:rPr><w:t xml:space="preserve">- Cơ quan th</w:t></w:r><w:r><w:t>ực hiện {line}: Sở Kế hoạch và Đầu tư</w:t></w:r></w:p>"#
            ));
        }
        body_xml.push_str(&numbered(1, 2, "Thời hạn: Quý IV năm 2025"));
    }
    let bytes = Parts {
        body: &body_xml,
        numbering: Some(&numbering),
        ..Parts::default()
    }
    .build();
    let started = std::time::Instant::now();
    let doc = read(&bytes).unwrap();
    let elapsed = started.elapsed();
    assert_eq!(doc.blocks.len(), 3010);
    let ps = paragraphs(&doc);
    assert_eq!(ps[2709].display(), "X. PHẦN NHIỆM VỤ");
    assert_eq!(
        ps[3000].display(),
        "30. Nhiệm vụ số 299: tổ chức triển khai thực hiện kế hoạch"
    );
    assert_eq!(ps[3009].display(), "30.1. Thời hạn: Quý IV năm 2025");
    assert_eq!(ps[3009].origin.line, 3010);
    // Generous: this runs unoptimised; a release build is far faster.
    assert!(elapsed.as_millis() < 3000, "{elapsed:?}");
}
