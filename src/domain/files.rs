//! Checking an evidence file before it is stored: its size, its type found
//! from the content (never from the name), and a clean base name. Pure: the
//! bytes are given, nothing is read or written here.

use super::task::evidence::{Attachment, FileHash, ATTACHMENTS_MAX_ITEMS, ATTACHMENT_NAME_MAX_CHARS};
use sha2::{Digest as _, Sha256};

/// Default size limit of one file, in MiB (`KEHOACH_MAX_FILE_MB`).
pub const DEFAULT_MAX_FILE_MB: u64 = 10;
const MIB: u64 = 1024 * 1024;

/// The accepted kinds, as people read them (in messages).
pub const ACCEPTED_KINDS: &str = "PDF, Word (DOC, DOCX), Excel (XLS, XLSX) hoặc ảnh (JPEG, PNG, GIF, WebP)";

/// Why a file is refused; each names the file.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FileError {
    #[error("tệp {name:?} rỗng; không ghi nhận gì")]
    Empty { name: String },
    #[error("tệp {name:?} lớn {} MB, quá giới hạn {} MB mỗi tệp; không ghi nhận gì", mb(*.size), mb(*.max))]
    TooLarge { name: String, size: u64, max: u64 },
    #[error("tệp {name:?} không phải {ACCEPTED_KINDS} (xét theo nội dung, không theo tên); không ghi nhận gì")]
    UnknownType { name: String },
    #[error("đính kèm {given} tệp, tối đa {max} tệp mỗi lần; không ghi nhận gì")]
    TooMany { given: usize, max: usize },
}

fn mb(bytes: u64) -> String {
    in_tenths(bytes, MIB)
}

/// `bytes` in `unit`s to one decimal (rounded up), written the Vietnamese
/// way: "10", "12,5".
fn in_tenths(bytes: u64, unit: u64) -> String {
    let tenths = (bytes * 10).div_ceil(unit);
    if tenths.is_multiple_of(10) {
        format!("{}", tenths / 10)
    } else {
        format!("{},{}", tenths / 10, tenths % 10)
    }
}

/// The size limit in bytes for a limit in MiB (at least 1 MiB).
pub fn max_bytes(mb: u64) -> u64 {
    mb.max(1) * MIB
}

/// A checked file: what the event records and the bytes to store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Evidence {
    pub attachment: Attachment,
    pub bytes: Vec<u8>,
}

/// The SHA-256 of some bytes.
pub fn sha256(bytes: &[u8]) -> FileHash {
    FileHash::parse(&hex::encode(Sha256::digest(bytes))).expect("a SHA-256 digest is 64 hex digits")
}

/// Checks one file: not empty, within `max` bytes, of an accepted type.
pub fn check(raw_name: &str, bytes: Vec<u8>, max: u64) -> Result<Evidence, FileError> {
    let name = clean_name(raw_name);
    let size = bytes.len() as u64;
    if size == 0 {
        return Err(FileError::Empty { name });
    }
    if size > max {
        return Err(FileError::TooLarge { name, size, max });
    }
    let media_type = sniff(&bytes).ok_or_else(|| FileError::UnknownType { name: name.clone() })?;
    Ok(Evidence {
        attachment: Attachment {
            sha256: sha256(&bytes),
            name,
            size,
            media_type: media_type.to_string(),
        },
        bytes,
    })
}

/// Checks the files of one report or submission (at most
/// `ATTACHMENTS_MAX_ITEMS`), stopping at the first refused.
pub fn check_all(files: Vec<(String, Vec<u8>)>, max: u64) -> Result<Vec<Evidence>, FileError> {
    if files.len() > ATTACHMENTS_MAX_ITEMS {
        return Err(FileError::TooMany {
            given: files.len(),
            max: ATTACHMENTS_MAX_ITEMS,
        });
    }
    files
        .into_iter()
        .map(|(name, bytes)| check(&name, bytes, max))
        .collect()
}

/// The base name only (no directories), without control characters or
/// bidi controls (a right-to-left override makes "x\u{202E}fdp.exe" read as a PDF),
/// trimmed, at most `ATTACHMENT_NAME_MAX_CHARS` characters; "tệp" when
/// nothing is left.
pub fn clean_name(raw: &str) -> String {
    let base = raw.rsplit(['/', '\\']).next().unwrap_or_default();
    let kept: String = base
        .chars()
        .filter(|c| !c.is_control() && !super::text::is_bidi_control(*c))
        .collect();
    let kept = kept.trim();
    let kept: String = kept.chars().take(ATTACHMENT_NAME_MAX_CHARS).collect();
    if kept.trim_matches('.').is_empty() {
        "tệp".into()
    } else {
        kept
    }
}

pub const PDF: &str = "application/pdf";
pub const JPEG: &str = "image/jpeg";
pub const PNG: &str = "image/png";
pub const GIF: &str = "image/gif";
pub const WEBP: &str = "image/webp";
pub const DOC: &str = "application/msword";
pub const XLS: &str = "application/vnd.ms-excel";
pub const DOCX: &str = "application/vnd.openxmlformats-officedocument.wordprocessingml.document";
pub const XLSX: &str = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet";

/// Whether a browser may show files of this type itself (PDF and images).
pub fn viewable(media_type: &str) -> bool {
    media_type == PDF || media_type.starts_with("image/")
}

/// The media type of accepted content, found from its bytes.
pub fn sniff(bytes: &[u8]) -> Option<&'static str> {
    const OLE2: &[u8] = &[0xD0, 0xCF, 0x11, 0xE0, 0xA1, 0xB1, 0x1A, 0xE1];
    if bytes.starts_with(b"%PDF-") {
        Some(PDF)
    } else if bytes.starts_with(&[0xFF, 0xD8, 0xFF]) {
        Some(JPEG)
    } else if bytes.starts_with(b"\x89PNG\r\n\x1a\n") {
        Some(PNG)
    } else if bytes.starts_with(b"GIF87a") || bytes.starts_with(b"GIF89a") {
        Some(GIF)
    } else if bytes.len() >= 12 && bytes.starts_with(b"RIFF") && &bytes[8..12] == b"WEBP" {
        Some(WEBP)
    } else if bytes.starts_with(OLE2) {
        ole2_kind(bytes)
    } else if bytes.starts_with(b"PK\x03\x04") {
        office_zip_kind(bytes)
    } else {
        None
    }
}

/// A Word or Excel 97–2003 file: an OLE2 compound file whose directory
/// names the stream `WordDocument`, or `Workbook` / `Book`.
fn ole2_kind(bytes: &[u8]) -> Option<&'static str> {
    let utf16 = |s: &str| s.encode_utf16().flat_map(u16::to_le_bytes).collect::<Vec<u8>>();
    let has = |s: &str| {
        let needle = utf16(s);
        bytes.windows(needle.len()).any(|w| w == needle.as_slice())
    };
    if has("WordDocument") {
        Some(DOC)
    } else if has("Workbook") || has("Book\0") {
        Some(XLS)
    } else {
        None
    }
}

/// A Word or Excel 2007+ file: a zip whose central directory lists
/// `word/document.xml` or `xl/workbook.xml`.
fn office_zip_kind(bytes: &[u8]) -> Option<&'static str> {
    let names = zip_names(bytes)?;
    if names.iter().any(|n| n == b"word/document.xml") {
        Some(DOCX)
    } else if names.iter().any(|n| n == b"xl/workbook.xml") {
        Some(XLSX)
    } else {
        None
    }
}

/// The entry names of a zip's central directory, or None if it has none
/// that reads (end record within the last 64 KiB + 22 bytes).
fn zip_names(bytes: &[u8]) -> Option<Vec<&[u8]>> {
    let u16_at = |i: usize| bytes.get(i..i + 2).map(|b| u16::from_le_bytes([b[0], b[1]]) as usize);
    let u32_at = |i: usize| {
        bytes
            .get(i..i + 4)
            .map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]) as usize)
    };
    let floor = bytes.len().saturating_sub(22 + 0xFFFF);
    let end = (floor..=bytes.len().checked_sub(22)?)
        .rev()
        .find(|&i| bytes[i..].starts_with(b"PK\x05\x06"))?;
    let count = u16_at(end + 10)?;
    let mut at = u32_at(end + 16)?;
    let mut names = Vec::with_capacity(count);
    for _ in 0..count {
        if !bytes.get(at..)?.starts_with(b"PK\x01\x02") {
            return None;
        }
        let (name_len, extra_len, comment_len) = (u16_at(at + 28)?, u16_at(at + 30)?, u16_at(at + 32)?);
        names.push(bytes.get(at + 46..at + 46 + name_len)?);
        at += 46 + name_len + extra_len + comment_len;
    }
    Some(names)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A zip with stored (uncompressed) entries of these names.
    pub fn zip_of(names: &[&str]) -> Vec<u8> {
        let mut out = Vec::new();
        let mut central = Vec::new();
        for name in names {
            let offset = out.len() as u32;
            out.extend_from_slice(b"PK\x03\x04");
            out.extend_from_slice(&[20, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
            out.extend_from_slice(&[0; 12]);
            out.extend_from_slice(&(name.len() as u16).to_le_bytes());
            out.extend_from_slice(&[0, 0]);
            out.extend_from_slice(name.as_bytes());
            central.extend_from_slice(b"PK\x01\x02");
            central.extend_from_slice(&[20, 0, 20, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
            central.extend_from_slice(&[0; 12]);
            central.extend_from_slice(&(name.len() as u16).to_le_bytes());
            central.extend_from_slice(&[0; 12]);
            central.extend_from_slice(&offset.to_le_bytes());
            central.extend_from_slice(name.as_bytes());
        }
        let cd_offset = out.len() as u32;
        out.extend_from_slice(&central);
        out.extend_from_slice(b"PK\x05\x06\0\0\0\0");
        out.extend_from_slice(&(names.len() as u16).to_le_bytes());
        out.extend_from_slice(&(names.len() as u16).to_le_bytes());
        out.extend_from_slice(&(central.len() as u32).to_le_bytes());
        out.extend_from_slice(&cd_offset.to_le_bytes());
        out.extend_from_slice(&[0, 0]);
        out
    }

    #[test]
    fn types_come_from_the_content() {
        assert_eq!(sniff(b"%PDF-1.4\n%%EOF"), Some(PDF));
        assert_eq!(sniff(b"\x89PNG\r\n\x1a\n...."), Some(PNG));
        assert_eq!(sniff(&[0xFF, 0xD8, 0xFF, 0xE0, 0, 0]), Some(JPEG));
        assert_eq!(sniff(b"GIF89a...."), Some(GIF));
        assert_eq!(sniff(b"RIFF\0\0\0\0WEBPVP8 "), Some(WEBP));
        assert_eq!(
            sniff(&zip_of(&["[Content_Types].xml", "word/document.xml"])),
            Some(DOCX)
        );
        assert_eq!(sniff(&zip_of(&["xl/workbook.xml"])), Some(XLSX));
        assert_eq!(sniff(&zip_of(&["a.txt"])), None, "a plain zip is not an Office file");
        let mut doc = vec![0xD0, 0xCF, 0x11, 0xE0, 0xA1, 0xB1, 0x1A, 0xE1];
        doc.extend("WordDocument".encode_utf16().flat_map(u16::to_le_bytes));
        assert_eq!(sniff(&doc), Some(DOC));
        assert_eq!(sniff(b"MZ\x90\0"), None, "an executable");
        assert_eq!(sniff(b"hello, this is text"), None);
        assert_eq!(sniff(b"PK\x03\x04broken"), None);
    }

    #[test]
    fn names_keep_only_the_base_name() {
        assert_eq!(clean_name("C:\\Users\\a\\Báo cáo.pdf"), "Báo cáo.pdf");
        assert_eq!(clean_name("../../etc/passwd"), "passwd");
        assert_eq!(clean_name("a\u{0}b\nc.pdf"), "abc.pdf");
        assert_eq!(clean_name(".."), "tệp");
        assert_eq!(clean_name(""), "tệp");
        assert_eq!(clean_name(&"x".repeat(300)).chars().count(), ATTACHMENT_NAME_MAX_CHARS);
    }

    #[test]
    fn refusals_name_the_file() {
        let e = check("a.pdf", b"MZ".to_vec(), 100).unwrap_err();
        assert!(e.to_string().contains("\"a.pdf\""), "{e}");
        let e = check("big.pdf", b"%PDF-".repeat(100), 100).unwrap_err();
        assert!(matches!(e, FileError::TooLarge { .. }), "{e}");
        assert!(check("e.pdf", Vec::new(), 100).is_err());
        let ok = check("dir/a.pdf", b"\x89PNG\r\n\x1a\n".to_vec(), 100).unwrap();
        assert_eq!(
            (ok.attachment.name.as_str(), ok.attachment.media_type.as_str()),
            ("a.pdf", PNG)
        );
        assert_eq!(ok.attachment.sha256, sha256(b"\x89PNG\r\n\x1a\n"));
        let many = (0..11)
            .map(|i| (format!("{i}.png"), b"\x89PNG\r\n\x1a\n".to_vec()))
            .collect();
        assert!(matches!(check_all(many, 100), Err(FileError::TooMany { .. })));
        assert_eq!(mb(10 * MIB), "10");
        assert_eq!(mb(10 * MIB + 1), "10,1");
    }
}
