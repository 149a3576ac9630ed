//! Who may do what: users of an agency with roles, and the role gate the web
//! layer applies before the domain's own rules (implementer, lead or advisory
//! agency, four eyes) decide. Pure types here; `store` keeps them.

pub mod history;
pub mod manage;
pub mod security;
pub mod store;
pub mod totp;

use crate::domain::ids::{AgencyCode, MilestoneId, PersonName};
use crate::domain::task::{Actor, Channel, KpiValue, MilestoneStatus, Obligation, Principal, TaskAction};
use crate::projections::views::TaskView;
use chrono::NaiveDate;
use serde::{Deserialize, Serialize};

/// What a user is for. A user may hold several roles.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// Reports progress and submits milestones for the user's agency.
    Member,
    /// Everything a member does, and approves, returns, extends, waives or
    /// cancels milestones of tasks the agency leads or advises on.
    Supervisor,
    /// Reads every task and its history; changes nothing.
    Auditor,
    /// Loads plans and sees every task.
    Admin,
}

impl Role {
    pub const NAMES: [&'static str; 4] = ["member", "supervisor", "auditor", "admin"];

    pub fn parse(s: &str) -> Result<Self, AccountError> {
        match s.trim().to_lowercase().as_str() {
            "member" | "thanh-vien" => Ok(Self::Member),
            "supervisor" | "lanh-dao" => Ok(Self::Supervisor),
            "auditor" | "kiem-tra" => Ok(Self::Auditor),
            "admin" | "quan-tri" => Ok(Self::Admin),
            _ => Err(AccountError::BadRole(s.to_string())),
        }
    }

    pub fn as_str(self) -> &'static str {
        Self::NAMES[self as usize]
    }

    /// Roles as people read them: "cán bộ, quản trị".
    pub fn list_vi(roles: &[Role]) -> String {
        roles.iter().map(|r| r.label_vi()).collect::<Vec<_>>().join(", ")
    }

    /// The role in Vietnamese, as every page, e-mail and text output shows it.
    pub fn label_vi(self) -> &'static str {
        match self {
            Self::Member => "cán bộ",
            Self::Supervisor => "lãnh đạo duyệt",
            Self::Auditor => "kiểm tra",
            Self::Admin => "quản trị",
        }
    }
}

/// What a person can ask for on a task.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    Report,
    Submit,
    Approve,
    Return,
    Extend,
    Waive,
    Cancel,
    /// A message in a milestone's discussion ("Trao đổi"); its text is the note.
    Discuss,
}

/// What a person's action may carry besides its milestone and obligation.
#[derive(Debug, Clone, Default)]
pub struct ActionFields {
    pub note: String,
    pub reason: String,
    /// The new deadline, for an extension.
    pub until: Option<NaiveDate>,
    pub kpis: Vec<KpiValue>,
    pub evidence: Vec<String>,
    /// Evidence files, already stored; for a report or a submission.
    pub attachments: Vec<crate::domain::task::Attachment>,
}

impl Action {
    /// The domain action, from the CLI's flags or a web request's fields;
    /// None for an extension without its new date.
    pub fn build(self, milestone: MilestoneId, agency: Option<AgencyCode>, f: ActionFields) -> Option<TaskAction> {
        Some(match self {
            Self::Report => TaskAction::ReportProgress {
                milestone,
                agency,
                note: f.note,
                kpis: f.kpis,
                evidence: f.evidence,
                attachments: f.attachments,
            },
            Self::Submit => TaskAction::Submit {
                milestone,
                agency,
                note: f.note,
                attachments: f.attachments,
            },
            Self::Approve => TaskAction::Approve {
                milestone,
                agency,
                note: f.note,
            },
            Self::Return => TaskAction::Return {
                milestone,
                agency,
                reason: f.reason,
            },
            Self::Extend => TaskAction::Extend {
                milestone,
                agency,
                until: f.until?,
                reason: f.reason,
            },
            Self::Waive => TaskAction::Waive {
                milestone,
                agency,
                reason: f.reason,
            },
            Self::Cancel => TaskAction::Cancel {
                milestone,
                agency,
                reason: f.reason,
            },
            Self::Discuss => TaskAction::Discuss {
                milestone,
                agency,
                text: f.note,
            },
        })
    }

    pub const ALL: [Action; 8] = [
        Self::Report,
        Self::Submit,
        Self::Approve,
        Self::Return,
        Self::Extend,
        Self::Waive,
        Self::Cancel,
        Self::Discuss,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Report => "report",
            Self::Submit => "submit",
            Self::Approve => "approve",
            Self::Return => "return",
            Self::Extend => "extend",
            Self::Waive => "waive",
            Self::Cancel => "cancel",
            Self::Discuss => "discuss",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|a| a.as_str() == s)
    }

    pub fn of(action: &TaskAction) -> Option<Self> {
        Some(match action {
            TaskAction::ReportProgress { .. } => Self::Report,
            TaskAction::Submit { .. } => Self::Submit,
            TaskAction::Approve { .. } => Self::Approve,
            TaskAction::Return { .. } => Self::Return,
            TaskAction::Extend { .. } => Self::Extend,
            TaskAction::Waive { .. } => Self::Waive,
            TaskAction::Cancel { .. } => Self::Cancel,
            TaskAction::Discuss { .. } => Self::Discuss,
            _ => return None,
        })
    }

    /// Whether the implementing agency acts (report, submit), as opposed to
    /// the lead or advisory agency (the rest).
    pub fn by_implementer(self) -> bool {
        matches!(self, Self::Report | Self::Submit)
    }

    pub fn label_vi(self) -> &'static str {
        match self {
            Self::Report => "Báo cáo tiến độ",
            Self::Submit => "Nộp",
            Self::Approve => "Duyệt",
            Self::Return => "Trả lại",
            Self::Extend => "Gia hạn",
            Self::Waive => "Miễn",
            Self::Cancel => "Hủy",
            Self::Discuss => "Trao đổi",
        }
    }
}

/// An e-mail address, as people sign in with it: trimmed, lower-cased.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
#[serde(transparent)]
pub struct Email(String);

impl Email {
    pub fn parse(s: &str) -> Result<Self, AccountError> {
        let e = s.trim().to_lowercase();
        let ok = match e.split_once('@') {
            Some((local, domain)) => {
                !local.is_empty()
                    && domain.contains('.')
                    && !domain.starts_with('.')
                    && !domain.ends_with('.')
                    && !domain.contains('@')
                    && e.len() <= 254
                    && !e
                        .chars()
                        .any(|c| c.is_whitespace() || c.is_control() || "<>,;\"".contains(c))
            }
            None => false,
        };
        if ok {
            Ok(Self(e))
        } else {
            Err(AccountError::BadEmail(s.to_string()))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for Email {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct User {
    pub id: String,
    pub email: Email,
    pub name: PersonName,
    pub agency: AgencyCode,
    pub roles: Vec<Role>,
    pub has_password: bool,
}

impl User {
    pub fn has(&self, role: Role) -> bool {
        self.roles.contains(&role)
    }

    /// Auditors and admins see every task; everyone else their agency's.
    pub fn sees_everything(&self) -> bool {
        self.has(Role::Auditor) || self.has(Role::Admin)
    }

    pub fn can_see(&self, task: &TaskView) -> bool {
        self.sees_everything() || task.involves(&self.agency)
    }

    /// The role gate: whether the user's roles allow `action` at all. The
    /// domain then decides whether the user's agency may do it on that task.
    pub fn role_allows(&self, action: Action) -> bool {
        if action == Action::Discuss {
            // An implementer's member, or a supervisor (which side: `may`).
            self.has(Role::Member) || self.has(Role::Supervisor)
        } else if action.by_implementer() {
            self.has(Role::Member) || self.has(Role::Supervisor)
        } else {
            self.has(Role::Supervisor)
        }
    }

    /// Whether to offer `action` on this task: the role gate and the
    /// agency's place on the task (the domain checks again on submit).
    pub fn may(&self, action: Action, task: &TaskView) -> bool {
        let Some(def) = &task.task.definition else {
            return false;
        };
        self.role_allows(action)
            && !task.task.withdrawn
            && if action == Action::Discuss {
                def.is_implementer(&self.agency) || (def.is_supervisor(&self.agency) && self.has(Role::Supervisor))
            } else if action.by_implementer() {
                def.is_implementer(&self.agency)
            } else {
                def.is_supervisor(&self.agency)
            }
    }

    /// Whether to offer `action` on one obligation: `may`, the obligation's
    /// own agency only for reports and submissions and never for decisions,
    /// and the obligation's state (the domain checks again on submit).
    pub fn may_on(&self, action: Action, task: &TaskView, o: &Obligation) -> bool {
        let Some(def) = &task.task.definition else {
            return false;
        };
        let own = o.owed_by(&self.agency, &def.implementers);
        self.may(action, task)
            && match action {
                Action::Report => own && matches!(o.status, MilestoneStatus::Open | MilestoneStatus::Returned),
                Action::Submit => own && matches!(o.status, MilestoneStatus::Open | MilestoneStatus::Returned),
                Action::Approve | Action::Return => !own && o.status == MilestoneStatus::Submitted,
                Action::Extend | Action::Waive | Action::Cancel => !own && o.status.is_pending(),
                // Its own agency, or a supervisor of another's, in any state.
                Action::Discuss => own || (def.is_supervisor(&self.agency) && self.has(Role::Supervisor)),
            }
    }

    /// Who the events say acted: this account as it is now, and how it came.
    pub fn actor(&self, channel: Channel) -> Actor {
        Actor::account(Principal {
            account: self.id.clone(),
            email: self.email.to_string(),
            name: self.name.clone(),
            agency: self.agency.clone(),
            channel,
        })
    }

    pub fn roles_text(&self) -> String {
        self.roles.iter().map(|r| r.as_str()).collect::<Vec<_>>().join(",")
    }

    /// The user's roles in Vietnamese, for text people read.
    pub fn roles_vi(&self) -> String {
        Role::list_vi(&self.roles)
    }
}

/// Parses a comma-separated role list ("member,supervisor").
pub fn parse_roles(s: &str) -> Result<Vec<Role>, AccountError> {
    let mut roles = s
        .split(',')
        .filter(|p| !p.trim().is_empty())
        .map(Role::parse)
        .collect::<Result<Vec<_>, _>>()?;
    roles.sort();
    roles.dedup();
    if roles.is_empty() {
        return Err(AccountError::BadRole(s.to_string()));
    }
    Ok(roles)
}

/// Shortest password accepted.
pub const MIN_PASSWORD: usize = 10;

#[derive(Debug, thiserror::Error)]
pub enum AccountError {
    #[error("địa chỉ e-mail không hợp lệ: {0:?}")]
    BadEmail(String),
    #[error("vai trò không có: {0:?} (dùng member, supervisor, auditor hoặc admin)")]
    BadRole(String),
    #[error("đã có người dùng với e-mail {0}")]
    DuplicateEmail(String),
    #[error("không có người dùng với e-mail {0}")]
    UnknownUser(String),
    #[error("không có cơ quan {0} trong danh mục của các kế hoạch đã nạp")]
    UnknownAgency(String),
    #[error("mật khẩu cần ít nhất {MIN_PASSWORD} ký tự")]
    WeakPassword,
    #[error("hai mật khẩu không khớp")]
    PasswordMismatch,
    #[error("liên kết đăng nhập không hợp lệ, đã dùng hoặc đã hết hạn; hãy xin quản trị viên tạo liên kết mới")]
    LinkInvalid,
    #[error(transparent)]
    Input(#[from] crate::domain::ids::IdError),
    #[error(transparent)]
    Store(#[from] crate::store::StoreError),
    #[error("lỗi băm mật khẩu: {0}")]
    Hash(String),
    #[error("không có mã truy cập API {0} (xem `kehoach token list`)")]
    UnknownToken(String),
    #[error(transparent)]
    Engine(#[from] crate::engine::EngineError),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roles_read_in_vietnamese_and_parse_back() {
        let all = Role::NAMES.map(|n| Role::parse(n).unwrap());
        assert_eq!(Role::list_vi(&all), "cán bộ, lãnh đạo duyệt, kiểm tra, quản trị");
        for r in all {
            for english in Role::NAMES {
                assert!(!r.label_vi().contains(english), "{r:?}");
            }
        }
        assert_eq!(Role::parse("lanh-dao").unwrap(), Role::Supervisor);
    }

    #[test]
    fn emails_are_normalised_and_checked() {
        assert_eq!(
            Email::parse(" A.B@Ducpho.Example ").unwrap().as_str(),
            "a.b@ducpho.example"
        );
        for bad in ["", "ab", "a@b", "a@.b", "a b@c.d", "<a@b.c>", "a@b.c@d.e"] {
            assert!(Email::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn roles_parse_as_a_sorted_set() {
        assert_eq!(
            parse_roles("supervisor, member,member").unwrap(),
            vec![Role::Member, Role::Supervisor]
        );
        assert!(parse_roles("").is_err());
        assert!(parse_roles("boss").is_err());
    }

    #[test]
    fn the_role_gate_separates_reporting_from_approving() {
        let user = |roles: Vec<Role>| User {
            id: "u".into(),
            email: Email::parse("a@b.vn").unwrap(),
            name: PersonName::parse("A").unwrap(),
            agency: AgencyCode::parse("BDV").unwrap(),
            roles,
            has_password: true,
        };
        let member = user(vec![Role::Member]);
        let supervisor = user(vec![Role::Supervisor]);
        let auditor = user(vec![Role::Auditor]);
        assert!(member.role_allows(Action::Submit) && !member.role_allows(Action::Approve));
        assert!(supervisor.role_allows(Action::Submit) && supervisor.role_allows(Action::Approve));
        assert!(Action::ALL.iter().all(|a| !auditor.role_allows(*a)));
        assert!(auditor.sees_everything() && !member.sees_everything());
    }
}
