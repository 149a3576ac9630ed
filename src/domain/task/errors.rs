use super::aggregate::MilestoneStatus;
use crate::domain::ids::{AgencyCode, KpiKey, MilestoneId};
use chrono::NaiveDate;

fn codes(list: &[AgencyCode]) -> String {
    list.iter().map(AgencyCode::as_str).collect::<Vec<_>>().join(", ")
}

/// Why the domain refused a command. Messages are for the people who act on
/// tasks, so they are in Vietnamese.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum TaskError {
    #[error("nhiệm vụ chưa được đăng ký từ kế hoạch")]
    NotRegistered,
    #[error("nhiệm vụ đã bị rút khỏi kế hoạch; không thể thao tác")]
    Withdrawn,
    #[error("không có mốc {milestone} trong nhiệm vụ (các mốc: {known})")]
    UnknownMilestone { milestone: MilestoneId, known: String },
    #[error("chỉ hệ thống (nạp kế hoạch) được thực hiện thao tác này")]
    SystemOnly,
    #[error("thao tác này cần một người thuộc một cơ quan, không phải hệ thống")]
    PersonRequired,
    #[error("{agency} không phải cơ quan thực hiện nhiệm vụ này; chỉ {} được báo cáo và nộp", codes(.implementers))]
    NotImplementer {
        agency: AgencyCode,
        implementers: Vec<AgencyCode>,
    },
    #[error("{agency} không phải cơ quan lãnh đạo hay tham mưu của nhiệm vụ này; chỉ {} được duyệt, trả lại, gia hạn", codes(.supervisors))]
    NotSupervisor {
        agency: AgencyCode,
        supervisors: Vec<AgencyCode>,
    },
    #[error("nguyên tắc bốn mắt: tài khoản {account} đã báo cáo hoặc nộp mốc {milestone} của {obligation} trong lượt này nên không thể tự {action}")]
    FourEyes {
        account: String,
        milestone: MilestoneId,
        obligation: String,
        action: &'static str,
    },
    #[error("{agency} không được tự {action} nghĩa vụ của chính mình (mốc {milestone}); việc này thuộc cơ quan khác")]
    OwnObligation {
        agency: AgencyCode,
        milestone: MilestoneId,
        action: &'static str,
    },
    #[error("mốc {milestone} có nhiều nghĩa vụ ({choices}); hãy nêu cơ quan (--agency hoặc \"agency\")")]
    AgencyRequired { milestone: MilestoneId, choices: String },
    #[error("mốc {milestone} không có nghĩa vụ của {agency} (các nghĩa vụ: {known})")]
    UnknownObligation {
        milestone: MilestoneId,
        agency: String,
        known: String,
    },
    #[error("{agency} chỉ được báo cáo và nộp nghĩa vụ của chính mình, không phải của {requested}")]
    NotYourObligation { agency: AgencyCode, requested: AgencyCode },
    #[error("mốc {milestone} đã được duyệt; không thể {action}")]
    AlreadyApproved {
        milestone: MilestoneId,
        action: &'static str,
    },
    #[error("mốc {milestone} đã nộp và đang chờ duyệt")]
    AlreadySubmitted { milestone: MilestoneId },
    #[error("mốc {milestone} chưa được nộp (trạng thái: {status}); chỉ duyệt hoặc trả lại mốc đã nộp")]
    NotSubmitted {
        milestone: MilestoneId,
        status: MilestoneStatus,
    },
    #[error("mốc {milestone} đã đóng (trạng thái: {status})")]
    Closed {
        milestone: MilestoneId,
        status: MilestoneStatus,
    },
    #[error("cần nêu lý do")]
    ReasonRequired,
    /// A row of a sheet of the state already reached that contradicts the record.
    #[error("dòng {row}: {reason}")]
    SheetRow { row: u32, reason: String },
    #[error("báo cáo trống: cần ghi chú, giá trị chỉ tiêu hoặc minh chứng")]
    EmptyReport,
    #[error("tin nhắn trống: hãy viết nội dung trao đổi")]
    EmptyMessage,
    #[error("{agency} không thực hiện, lãnh đạo hay tham mưu nhiệm vụ này nên không trao đổi được về mốc của nó")]
    NotInvolved { agency: AgencyCode },
    #[error("hạn mới {requested} phải sau hạn hiện tại {current}")]
    ExtensionNotLater { current: NaiveDate, requested: NaiveDate },
    #[error("không có chỉ tiêu {key} trong nhiệm vụ (các chỉ tiêu: {known})")]
    UnknownKpi { key: KpiKey, known: String },
    #[error("giá trị chỉ tiêu {key} không phải số hữu hạn")]
    KpiNotFinite { key: KpiKey },
    #[error("mốc {milestone} không có lời nhắc {key}")]
    UnknownReminder { milestone: MilestoneId, key: String },
    #[error("lời nhắc {key} của mốc {milestone} đã ở trong một thư tổng hợp khác")]
    AlreadyInDigest { milestone: MilestoneId, key: String },
    #[error("{field} quá dài: {chars} ký tự, tối đa {max} ký tự")]
    TooLong {
        field: &'static str,
        max: usize,
        chars: usize,
    },
    #[error("{field} chứa ký tự điều khiển {code} (như mã điều khiển màn hình hay đảo chiều chữ), không được phép; hãy xóa ký tự đó rồi gửi lại")]
    ForbiddenCharacter { field: &'static str, code: String },
    #[error("quá nhiều minh chứng: {given}, tối đa {max}")]
    TooManyEvidence { max: usize, given: usize },
    #[error("giá trị chỉ tiêu {key} = {value} không hợp lệ: {rule}")]
    KpiOutOfRange {
        key: KpiKey,
        value: f64,
        rule: &'static str,
    },
    #[error("hạn mới {requested} vượt quá thời kỳ của kế hoạch (muộn nhất {latest})")]
    ExtensionBeyondPlan { requested: NaiveDate, latest: NaiveDate },
    #[error("nhiệm vụ thuộc kế hoạch/mã khác ({0})")]
    WrongIdentity(String),
}

impl TaskError {
    /// A stable code for API clients and tests.
    pub fn code(&self) -> &'static str {
        match self {
            Self::NotRegistered => "not_registered",
            Self::Withdrawn => "withdrawn",
            Self::UnknownMilestone { .. } => "unknown_milestone",
            Self::SystemOnly => "system_only",
            Self::PersonRequired => "person_required",
            Self::NotImplementer { .. } => "not_implementer",
            Self::NotSupervisor { .. } => "not_supervisor",
            Self::FourEyes { .. } => "four_eyes",
            Self::OwnObligation { .. } => "own_obligation",
            Self::AgencyRequired { .. } => "agency_required",
            Self::UnknownObligation { .. } => "unknown_obligation",
            Self::NotYourObligation { .. } => "not_your_obligation",
            Self::AlreadyApproved { .. } => "already_approved",
            Self::AlreadySubmitted { .. } => "already_submitted",
            Self::NotSubmitted { .. } => "not_submitted",
            Self::Closed { .. } => "closed",
            Self::ReasonRequired => "reason_required",
            Self::SheetRow { .. } => "sheet_row",
            Self::EmptyReport => "empty_report",
            Self::EmptyMessage => "empty_message",
            Self::NotInvolved { .. } => "not_involved",
            Self::ExtensionNotLater { .. } => "extension_not_later",
            Self::UnknownKpi { .. } => "unknown_kpi",
            Self::KpiNotFinite { .. } => "kpi_not_finite",
            Self::UnknownReminder { .. } => "unknown_reminder",
            Self::AlreadyInDigest { .. } => "already_in_digest",
            Self::TooLong { .. } => "too_long",
            Self::ForbiddenCharacter { .. } => "forbidden_character",
            Self::TooManyEvidence { .. } => "too_many_evidence",
            Self::KpiOutOfRange { .. } => "kpi_out_of_range",
            Self::ExtensionBeyondPlan { .. } => "extension_beyond_plan",
            Self::WrongIdentity(_) => "wrong_identity",
        }
    }

    /// Refusals of what the request carries, whatever the task's state: a
    /// field over its bound (`inputs`). The CLI exits 2 for these.
    pub fn is_bad_input(&self) -> bool {
        matches!(
            self,
            Self::TooLong { .. }
                | Self::ForbiddenCharacter { .. }
                | Self::TooManyEvidence { .. }
                | Self::KpiOutOfRange { .. }
                | Self::KpiNotFinite { .. }
                | Self::ExtensionBeyondPlan { .. }
        )
    }

    /// Refusals because of who asked (HTTP 403), as opposed to the state of the task.
    pub fn is_permission(&self) -> bool {
        matches!(
            self,
            Self::SystemOnly
                | Self::PersonRequired
                | Self::NotImplementer { .. }
                | Self::NotSupervisor { .. }
                | Self::NotInvolved { .. }
                | Self::OwnObligation { .. }
                | Self::NotYourObligation { .. }
        )
    }
}
