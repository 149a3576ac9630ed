//! Reads a Word .docx into the neutral [`Document`]: paragraphs and tables
//! in document order, Word's automatic numbering rebuilt, footnotes
//! attached to the paragraph that cites them.
//!
//! What is refused, before anything heavy is done: files over the size
//! limit, old binary .doc and password-protected files (both OLE2 compound
//! files), anything that is not a zip holding `word/document.xml`,
//! macro-enabled documents, archives that unpack to more than the limits
//! (sizes declared in the zip are never trusted), and malformed XML.
//!
//! Only the parts needed are read: `[Content_Types].xml`, the main
//! document, its relationships, styles, numbering, footnotes and endnotes.
//!
//! Choices worth knowing: line breaks (`w:br`, `w:cr`) and tabs read as a
//! space (a paragraph is one logical line); text boxes, drawings and
//! embedded objects are skipped; of `mc:AlternateContent` only the first
//! branch is read; hidden text (`w:vanish`) and tracked deletions are
//! dropped; field codes are dropped and field results kept.

mod body;
mod numbering;
mod styles;
#[cfg(test)]
mod tests;
mod xml;

use super::document::Document;
use super::error::{ImportError, DOCUMENT_MAX_BYTES, UNPACKED_MAX_BYTES};
use numbering::Numbering;
use quick_xml::events::Event;
use std::io::{Cursor, Read};
use styles::Styles;
use zip::result::ZipError;
use zip::ZipArchive;

/// The most one part may unpack to.
pub const PART_MAX_BYTES: u64 = 50 * 1024 * 1024;
/// The most entries a .docx may list (a document with many pictures has a
/// few hundred).
pub const ENTRIES_MAX: usize = 20_000;

const OLE2_MAGIC: [u8; 8] = [0xD0, 0xCF, 0x11, 0xE0, 0xA1, 0xB1, 0x1A, 0xE1];
const ZIP_MAGIC: &[u8] = b"PK\x03\x04";
const DEFAULT_MAIN: &str = "word/document.xml";

/// How much the reader accepts; `Limits::default()` is what `read` uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// The largest file read.
    pub document_bytes: usize,
    /// The most all the parts read may unpack to, together.
    pub unpacked_bytes: u64,
    /// The most one part may unpack to.
    pub part_bytes: u64,
    /// The most entries the zip may list.
    pub entries: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            document_bytes: DOCUMENT_MAX_BYTES,
            unpacked_bytes: UNPACKED_MAX_BYTES,
            part_bytes: PART_MAX_BYTES,
            entries: ENTRIES_MAX,
        }
    }
}

/// Reads the bytes of a .docx.
pub fn read(bytes: &[u8]) -> Result<Document, ImportError> {
    read_with_limits(bytes, &Limits::default())
}

/// `read` with other limits (tests use small ones).
pub fn read_with_limits(bytes: &[u8], limits: &Limits) -> Result<Document, ImportError> {
    if bytes.len() > limits.document_bytes {
        return Err(ImportError::TooLarge {
            bytes: bytes.len(),
            max: limits.document_bytes,
        });
    }
    if bytes.starts_with(&OLE2_MAGIC) {
        // Word saves a password-protected .docx as an OLE2 file holding the
        // encrypted package; any other OLE2 file is a Word 97–2003 .doc.
        let encrypted = contains_utf16(bytes, "EncryptedPackage") || contains_utf16(bytes, "EncryptionInfo");
        return Err(if encrypted {
            ImportError::Encrypted
        } else {
            ImportError::OldWordFormat
        });
    }
    if !bytes.starts_with(ZIP_MAGIC) {
        return Err(ImportError::NotADocument(not_zip_reason(bytes).to_owned()));
    }

    let mut package = Package::open(bytes, limits)?;
    let types = match package.read_text("[Content_Types].xml")? {
        Some(text) => ContentTypes::parse(&text)?,
        None => ContentTypes::default(),
    };
    if types.macros || package.find("word/vbaProject.bin").is_some() {
        return Err(ImportError::MacroEnabled);
    }
    let main = match types.main {
        Some(main) if package.find(&main).is_some() => main,
        _ if package.find(DEFAULT_MAIN).is_some() => DEFAULT_MAIN.to_owned(),
        _ => return Err(ImportError::NotADocument(package.not_word_reason().to_owned())),
    };

    let related = match package.read_text(&rels_of(&main))? {
        Some(text) => Related::parse(&text, directory_of(&main))?,
        None => Related::default(),
    };
    let styles = match package.read_text(related.styles.as_deref().unwrap_or("word/styles.xml"))? {
        Some(text) => Styles::parse(&text, "styles.xml")?,
        None => Styles::default(),
    };
    let mut numbering = match package.read_text(related.numbering.as_deref().unwrap_or("word/numbering.xml"))? {
        Some(text) => Numbering::parse(&text, "numbering.xml")?,
        None => Numbering::default(),
    };
    let footnotes = match package.read_text(related.footnotes.as_deref().unwrap_or("word/footnotes.xml"))? {
        Some(text) => body::read_notes(&text, "footnotes.xml", &styles)?,
        None => body::Notes::default(),
    };
    let endnotes = match package.read_text(related.endnotes.as_deref().unwrap_or("word/endnotes.xml"))? {
        Some(text) => body::read_notes(&text, "endnotes.xml", &styles)?,
        None => body::Notes::default(),
    };
    let Some(text) = package.read_text(&main)? else {
        return Err(ImportError::NotADocument(package.not_word_reason().to_owned()));
    };
    body::read_body(&text, "document.xml", &styles, &mut numbering, &footnotes, &endnotes)
}

/// Whether `name`, in UTF-16LE (as OLE2 directory entries write names),
/// occurs in `bytes`.
fn contains_utf16(bytes: &[u8], name: &str) -> bool {
    let needle: Vec<u8> = name.encode_utf16().flat_map(u16::to_le_bytes).collect();
    bytes.windows(needle.len()).any(|window| window == needle)
}

/// Why bytes that are not a zip are not a .docx, as far as can be told.
fn not_zip_reason(bytes: &[u8]) -> &'static str {
    if bytes.is_empty() {
        "tệp rỗng"
    } else if bytes.starts_with(b"%PDF") {
        "đây là tệp PDF; cần tệp .docx gốc"
    } else if bytes.starts_with(b"{\\rtf") {
        "đây là tệp RTF; mở bằng Word rồi lưu lại dạng .docx"
    } else if bytes.starts_with(b"PK\x05\x06") {
        "tệp nén rỗng"
    } else {
        "nội dung không phải tệp nén .docx"
    }
}

/// The zip, read part by part within the limits.
struct Package<'b> {
    archive: ZipArchive<Cursor<&'b [u8]>>,
    limits: Limits,
    /// Bytes unpacked so far, all parts together.
    unpacked: u64,
}

impl<'b> Package<'b> {
    fn open(bytes: &'b [u8], limits: &Limits) -> Result<Self, ImportError> {
        let archive = ZipArchive::new(Cursor::new(bytes)).map_err(|e| zip_error(e, "danh mục tệp nén"))?;
        if archive.len() > limits.entries {
            return Err(ImportError::ZipBomb);
        }
        Ok(Self {
            archive,
            limits: *limits,
            unpacked: 0,
        })
    }

    /// The entry of a part; names in a package are case-insensitive.
    fn find(&self, name: &str) -> Option<usize> {
        self.archive.index_for_name(name).or_else(|| {
            (0..self.archive.len()).find(|&i| {
                self.archive
                    .name_for_index(i)
                    .is_some_and(|n| n.eq_ignore_ascii_case(name))
            })
        })
    }

    /// Unpacks a part, if the package has it. The sizes the zip declares
    /// are not trusted: reading stops one byte past what the limits allow.
    fn read(&mut self, name: &str) -> Result<Option<Vec<u8>>, ImportError> {
        let Some(index) = self.find(name) else { return Ok(None) };
        let allowed = self
            .limits
            .part_bytes
            .min(self.limits.unpacked_bytes.saturating_sub(self.unpacked));
        let file = self.archive.by_index(index).map_err(|e| zip_error(e, name))?;
        let mut bytes = Vec::new();
        file.take(allowed.saturating_add(1))
            .read_to_end(&mut bytes)
            .map_err(|_| ImportError::Corrupt(format!("phần {name} trong tệp nén bị hỏng")))?;
        let size = bytes.len() as u64;
        if size > allowed {
            return Err(ImportError::ZipBomb);
        }
        self.unpacked += size;
        Ok(Some(bytes))
    }

    fn read_text(&mut self, name: &str) -> Result<Option<String>, ImportError> {
        match self.read(name)? {
            Some(bytes) => xml::part_text(bytes, name).map(Some),
            None => Ok(None),
        }
    }

    /// Why a zip without a main document part is not a .docx.
    fn not_word_reason(&self) -> &'static str {
        if self.find("xl/workbook.xml").is_some() {
            "đây là bảng tính Excel (.xlsx), không phải văn bản Word"
        } else if self.find("ppt/presentation.xml").is_some() {
            "đây là bản trình chiếu PowerPoint (.pptx), không phải văn bản Word"
        } else if self.find("content.xml").is_some() {
            "đây là tệp OpenDocument (.odt); mở bằng Word hoặc LibreOffice rồi lưu lại dạng .docx"
        } else {
            "tệp nén không có word/document.xml"
        }
    }
}

fn zip_error(error: ZipError, what: &str) -> ImportError {
    match error {
        ZipError::UnsupportedArchive(ZipError::PASSWORD_REQUIRED) | ZipError::InvalidPassword => ImportError::Encrypted,
        ZipError::UnsupportedArchive(_) => ImportError::Corrupt(format!(
            "{what}: kiểu nén không được hỗ trợ; lưu lại bằng Word rồi nhập"
        )),
        _ => ImportError::Corrupt(format!("{what}: tệp nén bị hỏng hoặc không trọn vẹn")),
    }
}

/// What `[Content_Types].xml` says about the package.
#[derive(Debug, Default)]
struct ContentTypes {
    /// The main document part, without the leading '/'.
    main: Option<String>,
    macros: bool,
}

impl ContentTypes {
    fn parse(text: &str) -> Result<Self, ImportError> {
        const MAIN: &[&str] = &[
            "application/vnd.openxmlformats-officedocument.wordprocessingml.document.main+xml",
            "application/vnd.openxmlformats-officedocument.wordprocessingml.template.main+xml",
        ];
        const MACROS: &[&str] = &[
            "application/vnd.ms-word.document.macroEnabled.main+xml",
            "application/vnd.ms-word.template.macroEnabledTemplate.main+xml",
            "application/vnd.ms-office.vbaProject",
        ];
        let mut types = ContentTypes::default();
        let mut xml = xml::Xml::new(text, "[Content_Types].xml");
        loop {
            match xml.next()? {
                Event::Start(e) | Event::Empty(e) if xml::local(&e) == b"Override" => {
                    let content_type = xml::attr(&e, b"ContentType").unwrap_or_default();
                    let is = |list: &[&str]| list.iter().any(|t| t.eq_ignore_ascii_case(content_type.trim()));
                    if is(MACROS) {
                        types.macros = true;
                    } else if is(MAIN) {
                        types.main = xml::attr(&e, b"PartName").map(|p| p.trim_start_matches('/').to_owned());
                    }
                }
                Event::Eof => break,
                _ => {}
            }
        }
        Ok(types)
    }
}

/// The parts the main document relates to.
#[derive(Debug, Default)]
struct Related {
    styles: Option<String>,
    numbering: Option<String>,
    footnotes: Option<String>,
    endnotes: Option<String>,
}

impl Related {
    fn parse(text: &str, directory: &str) -> Result<Self, ImportError> {
        let mut related = Related::default();
        let mut xml = xml::Xml::new(text, "document.xml.rels");
        loop {
            match xml.next()? {
                Event::Start(e) | Event::Empty(e) if xml::local(&e) == b"Relationship" => {
                    if xml::attr(&e, b"TargetMode").is_some_and(|m| m.eq_ignore_ascii_case("External")) {
                        continue;
                    }
                    let (Some(kind), Some(target)) = (xml::attr(&e, b"Type"), xml::attr(&e, b"Target")) else {
                        continue;
                    };
                    let slot = match kind.rsplit('/').next() {
                        Some("styles") => &mut related.styles,
                        Some("numbering") => &mut related.numbering,
                        Some("footnotes") => &mut related.footnotes,
                        Some("endnotes") => &mut related.endnotes,
                        _ => continue,
                    };
                    *slot = Some(resolve(directory, &target));
                }
                Event::Eof => break,
                _ => {}
            }
        }
        Ok(related)
    }
}

/// "word/document.xml" → "word/_rels/document.xml.rels".
fn rels_of(part: &str) -> String {
    match part.rsplit_once('/') {
        Some((directory, file)) => format!("{directory}/_rels/{file}.rels"),
        None => format!("_rels/{part}.rels"),
    }
}

/// "word/document.xml" → "word".
fn directory_of(part: &str) -> &str {
    part.rsplit_once('/').map_or("", |(directory, _)| directory)
}

/// A relationship's target as a part name: absolute ("/word/x.xml") or
/// relative to the source's directory, "." and ".." resolved.
fn resolve(directory: &str, target: &str) -> String {
    let (base, target) = match target.strip_prefix('/') {
        Some(absolute) => ("", absolute),
        None => (directory, target),
    };
    let mut segments: Vec<&str> = base.split('/').filter(|s| !s.is_empty()).collect();
    for segment in target.split('/') {
        match segment {
            "" | "." => {}
            ".." => {
                segments.pop();
            }
            segment => segments.push(segment),
        }
    }
    segments.join("/")
}
