//! Recording the state already reached from a sheet (`plan::baseline`):
//! every row resolved against the plan (task, milestone, agency by name,
//! state, a day not in the future), then all of them written in one
//! transaction, or none. A row that restates what the store already says
//! is left out; a row that contradicts it refuses the whole sheet.

use super::{Engine, EngineError};
use crate::domain::dates::local_date;
use crate::domain::ids::{AgencyCode, MilestoneId, TaskId, TaskKey};
use crate::domain::plan::Plan;
use crate::domain::task::{
    Actor, MilestoneStatus, Obligation, RecordRow, RecordedState, SheetRef, TaskAction, TaskCommand, TaskError,
};
use crate::plan::baseline::{parse_day, SheetLine, TemplateRow};
use crate::plan::import::words::fold;
use crate::projections::views::{PlanView, TaskView};
use chrono::NaiveDate;
use std::collections::BTreeMap;

/// Why a sheet was not recorded. Nothing of it is written.
#[derive(Debug, thiserror::Error)]
pub enum BaselineError {
    /// Rows that cannot be recorded, each with its row number.
    #[error("{}", rows.iter().map(|(r, why)| format!("dòng {r}: {why}")).collect::<Vec<_>>().join("\n"))]
    Rows { rows: Vec<(u32, String)> },
    #[error("{0}")]
    Plan(String),
    #[error(transparent)]
    Engine(#[from] EngineError),
}

impl From<crate::store::StoreError> for BaselineError {
    fn from(e: crate::store::StoreError) -> Self {
        Self::Engine(e.into())
    }
}

/// What a recorded sheet did.
#[derive(Debug, Clone, serde::Serialize)]
pub struct BaselineReport {
    pub plan: String,
    pub rows: usize,
    pub recorded: usize,
    /// Rows that restate what the store already holds.
    pub unchanged: usize,
    pub done: usize,
    pub in_progress: usize,
    pub not_started: usize,
    pub not_done: usize,
}

/// Where an obligation stands, in the sheet's words: `None` once it is
/// closed (waived, cancelled), which a sheet cannot change.
pub fn current_state(o: &Obligation, tz: chrono_tz::Tz) -> Option<(RecordedState, Option<NaiveDate>)> {
    match o.status {
        MilestoneStatus::Approved => Some((RecordedState::Done, o.completed_on(tz))),
        MilestoneStatus::Waived | MilestoneStatus::Cancelled => None,
        MilestoneStatus::Submitted => Some((RecordedState::InProgress, None)),
        MilestoneStatus::Open | MilestoneStatus::Returned => Some(match &o.recorded {
            Some(r) if r.state != RecordedState::Done => (r.state, None),
            _ if o.reports > 0 || o.status == MilestoneStatus::Returned => (RecordedState::InProgress, None),
            _ => (RecordedState::NotStarted, None),
        }),
    }
}

/// The agency a cell names: its code, name or one of its aliases.
fn agency_named(plan: &Plan, cell: &str) -> Option<AgencyCode> {
    let f = fold(cell);
    plan.agencies
        .iter()
        .find(|a| {
            a.code.as_str().eq_ignore_ascii_case(cell.trim())
                || fold(&a.name) == f
                || a.aliases.iter().any(|al| fold(al) == f)
        })
        .map(|a| a.code.clone())
}

/// The plan a sheet is about: the one named, or the only one loaded.
fn plan_of<'a>(plans: &'a [PlanView], named: Option<&str>) -> Result<&'a PlanView, BaselineError> {
    match named {
        Some(id) => plans
            .iter()
            .find(|p| p.id == id)
            .ok_or_else(|| BaselineError::Plan(format!("không có kế hoạch {id}"))),
        None => match plans {
            [one] => Ok(one),
            [] => Err(BaselineError::Plan("chưa nạp kế hoạch nào".into())),
            many => Err(BaselineError::Plan(format!(
                "có {} kế hoạch: hãy nêu kế hoạch (--plan {})",
                many.len(),
                many.iter().map(|p| p.id.as_str()).collect::<Vec<_>>().join(" | ")
            ))),
        },
    }
}

impl Engine {
    /// Every obligation of a plan with its state today, for the template:
    /// the plan's id, its today, the rows.
    pub async fn baseline_template(
        &self,
        plan: Option<&str>,
    ) -> Result<(String, NaiveDate, Vec<TemplateRow>), BaselineError> {
        let plans = self.store.plan_views().await?;
        let plan_view = plan_of(&plans, plan)?;
        let tz = plan_view.tz();
        let prefix = format!("{}/", plan_view.id);
        let views = self.store.task_views().await?;
        let mut rows = Vec::new();
        for v in views.iter().filter(|v| v.id.starts_with(&prefix) && !v.task.withdrawn) {
            let (Some(def), Some(key)) = (&v.task.definition, v.key()) else {
                continue;
            };
            for m in &v.task.milestones {
                for o in &m.obligations {
                    let Some((state, done_on)) = current_state(o, tz) else {
                        continue;
                    };
                    let agencies: Vec<&AgencyCode> = match &o.agency {
                        Some(a) => vec![a],
                        None => def.implementers.iter().take(1).collect(),
                    };
                    for a in agencies {
                        rows.push(TemplateRow {
                            task: key.task.to_string(),
                            task_title: def.title.clone(),
                            milestone: m.spec.id.to_string(),
                            milestone_title: m.spec.title.clone(),
                            due: o.due,
                            agency: plan_view
                                .plan
                                .agency(a)
                                .map_or_else(|| a.to_string(), |x| x.name.clone()),
                            state: Some(state),
                            done_on,
                        });
                    }
                }
            }
        }
        rows.sort_by(|a, b| (a.due, &a.task, &a.milestone).cmp(&(b.due, &b.task, &b.milestone)));
        Ok((plan_view.id.clone(), local_date(self.clock.now(), tz), rows))
    }

    /// Records the rows of a sheet as `by` (an administrator's account, on
    /// the sheet's channel): all of them in one transaction, or nothing.
    pub async fn record_baseline(
        &self,
        plan: Option<&str>,
        sheet: &SheetRef,
        lines: Vec<SheetLine>,
        by: Actor,
    ) -> Result<BaselineReport, BaselineError> {
        let plans = self.store.plan_views().await?;
        let plan_view = plan_of(&plans, plan)?;
        let tz = plan_view.tz();
        let today = local_date(self.clock.now(), tz);
        let mut errors: Vec<(u32, String)> = Vec::new();
        // The tasks the sheet names, read once.
        let mut ids: Vec<String> = Vec::new();
        for l in &lines {
            if let Ok(t) = TaskId::parse(l.task.trim()) {
                let id = format!("{}/{t}", plan_view.id);
                if !ids.contains(&id) {
                    ids.push(id);
                }
            }
        }
        let views: BTreeMap<String, TaskView> = self
            .store
            .task_views_by_id(&ids)
            .await?
            .into_iter()
            .map(|v| (v.id.clone(), v))
            .collect();
        let mut by_task: BTreeMap<String, Vec<RecordRow>> = BTreeMap::new();
        let mut report = BaselineReport {
            plan: plan_view.id.clone(),
            rows: lines.len(),
            recorded: 0,
            unchanged: 0,
            done: 0,
            in_progress: 0,
            not_started: 0,
            not_done: 0,
        };
        for l in lines {
            let row = l.row;
            let mut fail = |why: String| errors.push((row, why));
            let Ok(task) = TaskId::parse(l.task.trim()) else {
                fail(format!("mã nhiệm vụ \"{}\" không hợp lệ", l.task));
                continue;
            };
            let id = format!("{}/{task}", plan_view.id);
            let Some(view) = views.get(&id).filter(|v| v.task.definition.is_some()) else {
                fail(format!("không có nhiệm vụ {task} trong kế hoạch {}", plan_view.id));
                continue;
            };
            let Ok(milestone) = MilestoneId::parse(l.milestone.trim()) else {
                fail(format!("mã mốc \"{}\" không hợp lệ", l.milestone));
                continue;
            };
            let Some(m) = view.task.milestones.iter().find(|m| m.spec.id == milestone) else {
                fail(format!("nhiệm vụ {task} không có mốc {milestone}"));
                continue;
            };
            let Some(agency) = agency_named(&plan_view.plan, &l.agency) else {
                fail(format!("không có cơ quan \"{}\" trong danh mục của kế hoạch", l.agency));
                continue;
            };
            let Some(state) = RecordedState::parse_vi(&l.state) else {
                fail(format!(
                    "trạng thái \"{}\" không hợp lệ; ghi một trong: {}",
                    l.state,
                    RecordedState::ALL
                        .iter()
                        .map(|s| s.label_vi())
                        .collect::<Vec<_>>()
                        .join(", ")
                ));
                continue;
            };
            let done_on = if l.done_on.trim().is_empty() {
                None
            } else {
                match parse_day(&l.done_on) {
                    Some(d) => Some(d),
                    None => {
                        fail(format!(
                            "ngày hoàn thành \"{}\" không hợp lệ (ghi dd/mm/yyyy)",
                            l.done_on
                        ));
                        continue;
                    }
                }
            };
            if let Some(d) = done_on.filter(|d| *d > today) {
                fail(format!(
                    "ngày hoàn thành {} ở tương lai (hôm nay là {})",
                    d.format("%d/%m/%Y"),
                    today.format("%d/%m/%Y")
                ));
                continue;
            }
            let def = view.task.definition.as_ref().expect("checked above");
            let name = plan_view
                .plan
                .agency(&agency)
                .map_or_else(|| agency.to_string(), |a| a.name.clone());
            if !def.is_implementer(&agency) {
                fail(format!(
                    "{name} không phải cơ quan thực hiện nhiệm vụ {task} nên không có nghĩa vụ ở mốc {milestone}"
                ));
                continue;
            }
            let Some(o) = m.obligations.iter().find(|o| o.owed_by(&agency, &def.implementers)) else {
                fail(format!("mốc {milestone} không có nghĩa vụ của {name}"));
                continue;
            };
            match (state, done_on) {
                (RecordedState::Done, None) => {
                    fail("\"đã hoàn thành\" cần ngày hoàn thành".into());
                    continue;
                }
                (s, Some(_)) if s != RecordedState::Done => {
                    fail(format!(
                        "ngày hoàn thành chỉ ghi khi trạng thái là \"đã hoàn thành\" (dòng ghi \"{}\")",
                        s.label_vi()
                    ));
                    continue;
                }
                _ => {}
            }
            // Restating the store's own state changes nothing; changing a
            // state the store has settled contradicts it.
            let now = current_state(o, tz);
            if now == Some((state, done_on)) {
                report.unchanged += 1;
                continue;
            }
            let settled = match (o.status, now) {
                (_, None) => Some(format!("đã đóng ({})", o.status.label_vi())),
                (MilestoneStatus::Approved, Some((_, day))) => Some(format!(
                    "đã được duyệt{}",
                    day.map(|d| format!(", hoàn thành ngày {}", d.format("%d/%m/%Y")))
                        .unwrap_or_default()
                )),
                (MilestoneStatus::Submitted, _) => Some("đã nộp và đang chờ duyệt".to_string()),
                _ => None,
            };
            if let Some(why) = settled {
                fail(format!(
                    "mốc {milestone} của {name} {why} trong hệ thống; dòng ghi \"{}\" mâu thuẫn",
                    state.label_vi()
                ));
                continue;
            }
            match state {
                RecordedState::Done => report.done += 1,
                RecordedState::InProgress => report.in_progress += 1,
                RecordedState::NotStarted => report.not_started += 1,
                RecordedState::NotDone => report.not_done += 1,
            }
            by_task.entry(id).or_default().push(RecordRow {
                row,
                milestone,
                agency,
                state,
                done_on,
                note: l.note,
                record: l.record,
            });
        }
        if !errors.is_empty() {
            return Err(BaselineError::Rows { rows: errors });
        }
        report.recorded = by_task.values().map(Vec::len).sum();
        if by_task.is_empty() {
            return Ok(report);
        }
        let stamp = self.stamp(by);
        let commands: Vec<(TaskKey, TaskCommand)> = by_task
            .into_iter()
            .filter_map(|(id, rows)| {
                Some((
                    TaskKey::parse(&id).ok()?,
                    TaskCommand {
                        stamp: stamp.clone(),
                        action: TaskAction::RecordFromSheet {
                            sheet: sheet.clone(),
                            rows,
                        },
                    },
                ))
            })
            .collect();
        match self.execute_tasks_atomically(commands).await {
            Ok(()) => {}
            Err(EngineError::Rejected {
                source: TaskError::SheetRow { row, reason },
                ..
            }) => {
                return Err(BaselineError::Rows {
                    rows: vec![(row, reason)],
                })
            }
            Err(e) => return Err(e.into()),
        }
        if let Err(e) = self.catch_up().await {
            tracing::warn!(error = %e, "đã ghi nhận hiện trạng nhưng chưa cập nhật được các khung nhìn");
        }
        Ok(report)
    }
}
