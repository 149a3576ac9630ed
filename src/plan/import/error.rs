//! Why a document cannot be imported: one Vietnamese line each, naming the
//! file's problem and what to do about it. Nothing is written on any of them.

/// The largest document read (a 300-page plan in .docx is a few MB).
pub const DOCUMENT_MAX_BYTES: usize = 20 * 1024 * 1024;
/// The most that the parts of a .docx may unpack to, all together.
pub const UNPACKED_MAX_BYTES: u64 = 100 * 1024 * 1024;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ImportError {
    #[error("tệp quá lớn: {bytes} byte, tối đa {max} byte ({} MB)", max / 1024 / 1024)]
    TooLarge { bytes: usize, max: usize },
    #[error("tệp .doc (Word 97–2003) không đọc được: mở bằng Word hoặc LibreOffice rồi lưu lại dạng .docx")]
    OldWordFormat,
    #[error("tệp .docm có macro: không nhận tệp có macro; lưu lại dạng .docx (Word Document) rồi nhập")]
    MacroEnabled,
    #[error("tệp được đặt mật khẩu: gỡ mật khẩu trong Word (Tệp → Thông tin → Bảo vệ tài liệu) rồi nhập lại")]
    Encrypted,
    #[error("tệp nén bất thường: giải nén vượt {max} byte (có thể là zip bomb); không đọc", max = UNPACKED_MAX_BYTES)]
    ZipBomb,
    #[error("không phải văn bản Word (.docx) hay tệp văn bản (.txt): {0}")]
    NotADocument(String),
    #[error("văn bản Word hỏng: {0}")]
    Corrupt(String),
    #[error("tệp .txt không phải UTF-8 (byte {offset}): lưu lại với mã hóa UTF-8")]
    NotUtf8 { offset: usize },
    #[error("văn bản có {tasks} nhiệm vụ, quá giới hạn {max} nhiệm vụ một kế hoạch: tách thành nhiều kế hoạch")]
    TooManyTasks { tasks: usize, max: usize },
    #[error("không tìm thấy nhiệm vụ nào trong văn bản: cần các mục đánh số có dòng \"- Cơ quan thực hiện: …\", hoặc bảng nhiệm vụ có cột \"Cơ quan chủ trì\"")]
    NoTasks,
}
