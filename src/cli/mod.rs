//! The command-line interface: parses arguments into typed values, runs them
//! on the engine and reports each failure as one line with an exit status.

pub mod args;
pub mod audit;
pub mod history;
pub mod output;
pub mod remind;
pub mod users;

use crate::accounts::{Action, ActionFields, Email};
use crate::clock::{OffsetClock, SharedClock, SystemClock};
use crate::config::{self, ConfigError, FileConfig};
use crate::domain::dates::parse_date;
use crate::domain::files::Evidence;
use crate::domain::ids::{AgencyCode, IdError, KpiKey, MilestoneId, TaskKey};
use crate::domain::task::{Actor, Channel, KpiValue, MilestoneStatus};
use crate::engine::{host_name, os_user, Engine, EngineError};
use crate::projections::json::obligation_states;
use crate::projections::views::{deadlines_for, TaskFilter};
use crate::projections::{self, PlanView};
use crate::store::info::StoreMode;
use crate::store::requests::RequestId;
use crate::store::StoreError;
use args::{
    Acting, AuditCommand, Cli, Command, Format, OutboxCommand, PlanCommand, ReportCommand, StoreCommand,
    TaskCommand as TaskCmd, TokenCommand, UserCommand, ViewsCommand,
};
use serde_json::json;

use std::sync::Arc;

/// Exit statuses: 2 bad input, 3 refused by the rules, 4 changed meanwhile, 1 anything else.
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    #[error("{0}")]
    Input(String),
    #[error("{0}")]
    Invalid(String),
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error(transparent)]
    Engine(#[from] EngineError),
    #[error(transparent)]
    Store(#[from] StoreError),
    /// `audit verify` found the store altered.
    #[error("kho sự kiện không toàn vẹn: {0}")]
    Tampered(String),
    /// Refused because of who asked (a role the account does not have).
    #[error("{0}")]
    Refused(String),
    /// `serve` stopped before the work in flight finished (exit 1).
    #[error("{0}")]
    Unfinished(String),
    /// Writing the output failed (exit 1, like any other outage).
    #[error("{0}")]
    Output(String),
}

impl From<IdError> for CliError {
    fn from(e: IdError) -> Self {
        CliError::Input(e.to_string())
    }
}

/// A database failure while exporting is an outage (1), like everywhere else.
impl From<crate::audit::export::ExportError> for CliError {
    fn from(e: crate::audit::export::ExportError) -> Self {
        match e {
            crate::audit::export::ExportError::Store(s) => CliError::Store(s),
            other => CliError::Output(other.to_string()),
        }
    }
}

/// A review needs a loaded plan (bad input, 2); a database failure is an outage (1).
impl From<crate::audit::report::ReportError> for CliError {
    fn from(e: crate::audit::report::ReportError) -> Self {
        match e {
            crate::audit::report::ReportError::Store(s) => CliError::Store(s),
            no_plan @ crate::audit::report::ReportError::NoPlan => CliError::Input(no_plan.to_string()),
            other => CliError::Output(other.to_string()),
        }
    }
}

fn request_id(flag: Option<&str>) -> Result<Option<RequestId>, CliError> {
    flag.map(RequestId::parse)
        .transpose()
        .map_err(|e| CliError::Input(format!("--request-id: {e}")))
}

/// Said on standard error when a retried key was answered from its record.
fn replay_note(id: Option<&RequestId>) {
    if let Some(id) = id {
        eprintln!("(yêu cầu {id} đã được thực hiện trước đây; không ghi gì thêm, đây là kết quả lần đầu)");
    }
}

impl CliError {
    pub fn exit_code(&self) -> i32 {
        match self {
            CliError::Input(_)
            | CliError::Config(
                ConfigError::Now(_) | ConfigError::Parse { .. } | ConfigError::Db(StoreError::BadUrl { .. }),
            ) => 2,
            CliError::Invalid(_) => 2,
            CliError::Engine(EngineError::Rejected { source, .. }) if source.is_bad_input() => 2,
            CliError::Engine(
                EngineError::Rejected { .. } | EngineError::PlanRejected { .. } | EngineError::AccountRejected { .. },
            )
            | CliError::Refused(_) => 3,
            CliError::Engine(EngineError::Conflict(_) | EngineError::RequestReused(_)) => 4,
            CliError::Engine(EngineError::StoreKind(_)) => 2,
            CliError::Tampered(_) => 5,
            _ => 1,
        }
    }
}

pub struct Context {
    cli_db: Option<String>,
    file: FileConfig,
    clock: SharedClock,
    format: Format,
    /// `--now` (or KEHOACH_NOW) was given.
    simulated_now: bool,
    /// The command writes events (or accounts stamped with the clock).
    writes: bool,
}

/// Whether a command writes: these take simulated time only on a simulation store.
fn writes(command: &Command) -> bool {
    match command {
        Command::Plan(PlanCommand::Check { .. } | PlanCommand::Import { .. })
        | Command::Task(TaskCmd::List { .. } | TaskCmd::Show { .. })
        | Command::Views(_)
        | Command::Outbox(OutboxCommand::List { .. })
        | Command::Report(_)
        | Command::User(UserCommand::List | UserCommand::History { .. })
        | Command::Token(TokenCommand::List { .. })
        | Command::Audit(
            AuditCommand::Verify { .. }
            | AuditCommand::History { .. }
            | AuditCommand::Plan { .. }
            | AuditCommand::Export { .. },
        ) => false,
        Command::Plan(PlanCommand::Load { .. } | PlanCommand::Baseline { .. })
        | Command::Task(_)
        | Command::Serve(_)
        | Command::Remind { .. }
        | Command::Simulate { .. }
        | Command::Outbox(OutboxCommand::Retry { .. })
        | Command::Audit(AuditCommand::Checkpoint)
        | Command::User(
            UserCommand::Add { .. }
            | UserCommand::Link { .. }
            | UserCommand::Disable { .. }
            | UserCommand::Enable { .. }
            | UserCommand::Role { .. }
            | UserCommand::TotpReset { .. },
        )
        | Command::Token(TokenCommand::Create { .. } | TokenCommand::Revoke { .. })
        | Command::Store(_) => true,
    }
}

/// Why simulated time is refused on a store of this kind.
fn simulated_time_refused(what: &str, mode: StoreMode) -> CliError {
    let kind = match mode {
        StoreMode::Uninitialised => "kho này chưa có dữ liệu nên sẽ là kho thật",
        StoreMode::Legacy => "kho cũ này là kho thật",
        _ => "kho này là kho thật",
    };
    CliError::Input(format!(
        "{what} chỉ dùng được trên kho mô phỏng; {kind} (tạo kho mô phỏng bằng \"kehoach store init --simulation\")"
    ))
}

impl Context {
    /// The engine on the configured store, for any command. A command that
    /// writes with `--now` is refused, before anything is written, unless
    /// the store is a simulation store.
    async fn engine(&self) -> Result<Engine, CliError> {
        let engine = self.open_engine().await?;
        if self.writes && self.simulated_now && !engine.is_simulation() {
            return Err(simulated_time_refused("--now (giờ mô phỏng)", engine.mode()));
        }
        if self.writes {
            engine.record_unrecorded_accounts().await?;
        }
        Ok(engine)
    }

    async fn open_engine(&self) -> Result<Engine, CliError> {
        let url = config::resolve_db(self.cli_db.as_deref(), &self.file)?;
        tracing::debug!(db = %url.display(), "mở cơ sở dữ liệu");
        Ok(Engine::open(&url, self.clock.clone()).await?)
    }

    /// The engine for `simulate`: a new store becomes a simulation store;
    /// a production store is refused, with or without `--now`, since the
    /// simulation moves its own clock.
    async fn simulation_engine(&self) -> Result<Engine, CliError> {
        let engine = self.open_engine().await?;
        if engine.mode() == StoreMode::Uninitialised {
            engine.initialise(true).await?;
        }
        if !engine.is_simulation() {
            let what = if self.simulated_now {
                "simulate và --now (giờ mô phỏng)"
            } else {
                "simulate (giờ mô phỏng)"
            };
            return Err(simulated_time_refused(what, engine.mode()));
        }
        engine.record_unrecorded_accounts().await?;
        Ok(engine)
    }
}

pub async fn run(cli: Cli) -> Result<(), CliError> {
    let file = FileConfig::load(cli.config.as_deref())?;
    let clock: SharedClock = match &cli.now {
        Some(now) => Arc::new(OffsetClock::starting_at(config::parse_now(now)?)),
        None => Arc::new(SystemClock),
    };
    let export = matches!(cli.command, Command::Audit(args::AuditCommand::Export { .. }));
    match cli.format {
        Format::Jsonl if !export => return Err(CliError::Input("--format jsonl chỉ dùng cho `audit export`".into())),
        Format::Csv if !matches!(cli.command, Command::Audit(args::AuditCommand::History { .. })) => {
            return Err(CliError::Input("--format csv chỉ dùng cho `audit history`".into()))
        }
        Format::Json if export => return Err(CliError::Input("`audit export` chỉ xuất --format jsonl".into())),
        _ => {}
    }
    let ctx = Context {
        cli_db: cli.db.clone(),
        file,
        clock,
        format: cli.format,
        simulated_now: cli.now.is_some(),
        writes: writes(&cli.command),
    };
    match cli.command {
        Command::Plan(PlanCommand::Check { files }) => plan_check(&files, ctx.format, ctx.clock.now()),
        Command::Plan(PlanCommand::Load { files, request_id }) => plan_load(&ctx, &files, request_id.as_deref()).await,
        Command::Plan(PlanCommand::Baseline { file, user, plan }) => {
            plan_baseline(&ctx, &file, &user, plan.as_deref()).await
        }
        Command::Plan(PlanCommand::Import {
            file,
            out,
            directory,
            report,
        }) => plan_import(&ctx, &file, out.as_deref(), directory.as_deref(), report.as_deref()).await,
        Command::Views(ViewsCommand::Rebuild) => {
            let engine = ctx.engine().await?;
            let done = projections::rebuild(&engine.store).await?;
            match ctx.format {
                Format::Json => output::print_json(&json!({ "events_applied": done.applied })),
                _ => println!("Đã dựng lại các khung nhìn từ {} sự kiện.", done.applied),
            }
            engine.store.close().await;
            Ok(())
        }
        Command::Task(cmd) => task(&ctx, cmd).await,
        Command::Remind { once: _ } => remind::remind_once(&ctx).await,
        Command::Simulate { from, until } => remind::simulate(&ctx, from, until).await,
        Command::Outbox(OutboxCommand::List { status }) => remind::outbox_list(&ctx, status).await,
        Command::Outbox(OutboxCommand::Retry { agency, since }) => remind::outbox_retry(&ctx, agency, since).await,
        Command::Audit(cmd) => audit::run(&ctx, cmd).await,
        Command::Report(ReportCommand::Review {
            year,
            period: _,
            output,
        }) => audit::review(&ctx, year, output).await,
        Command::User(cmd) => users::user(&ctx, cmd).await,
        Command::Token(cmd) => users::token(&ctx, cmd).await,
        Command::Store(StoreCommand::Init { simulation }) => store_init(&ctx, simulation).await,
        Command::Serve(args) => {
            let workflows = args
                .workflows
                .or(ctx.file.workflows.clone())
                .unwrap_or_else(|| config::DEFAULT_WORKFLOWS.into());
            let listen = args
                .listen
                .or(ctx.file.listen.clone())
                .unwrap_or_else(|| crate::web::DEFAULT_LISTEN.into());
            // One serve per SQLite file: held until this process ends.
            let _lock = match config::resolve_db(ctx.cli_db.as_deref(), &ctx.file)? {
                crate::store::DbUrl::Sqlite(path) => Some(crate::serve::lock_sqlite(&path)?),
                crate::store::DbUrl::Postgres(_) => None,
            };
            let listener = crate::web::bind(&listen)
                .await
                .map_err(|e| CliError::Input(e.to_string()))?;
            let engine = ctx.engine().await?;
            let mut mail = config::MailSettings::resolve(&ctx.file);
            // Links in e-mails and on pages lead to where this server listens,
            // unless a web address is set; a set one that names another
            // address is said once (right behind a reverse proxy).
            if let Ok(actual) = listener.local_addr() {
                if !mail.base_url_set {
                    mail.base_url = config::base_url_for(&actual);
                } else if !config::base_url_matches(&mail.base_url, &actual) {
                    tracing::warn!(
                        "địa chỉ web {0} (KEHOACH_BASE_URL) khác địa chỉ serve đang nghe ({actual}): liên kết trong thư và trên trang dẫn tới {0}; \
                         đúng nếu có proxy phía trước, nếu không hãy sửa KEHOACH_BASE_URL hoặc bỏ nó đi",
                        mail.base_url
                    );
                }
            }
            let dispatcher = remind::dispatcher(&mail)?;
            crate::serve::run(
                engine,
                &mail.base_url,
                dispatcher,
                listener,
                &workflows,
                std::time::Duration::from_secs_f64(args.poll.max(0.05)),
                args.prefer_files,
                std::time::Duration::from_secs_f64(args.stop_timeout.max(0.0)),
                config::SecuritySettings::resolve(&ctx.file),
                crate::notification::account_mail::AccountMailer::from_settings(&mail)
                    .map_err(|e| tracing::error!(error = %e, "không dựng được cách gửi thư về tài khoản"))
                    .ok(),
            )
            .await
        }
    }
}

/// `store init [--simulation]`.
async fn store_init(ctx: &Context, simulation: bool) -> Result<(), CliError> {
    let engine = ctx.open_engine().await?;
    if ctx.simulated_now && !simulation {
        return Err(simulated_time_refused("--now (giờ mô phỏng)", engine.mode()));
    }
    let created = engine.mode() == StoreMode::Uninitialised;
    let mode = engine.initialise(simulation).await?;
    match ctx.format {
        Format::Json => {
            output::print_json(&json!({ "mode": mode, "simulation": mode.is_simulation(), "created": created }))
        }
        _ if created => println!("Đã tạo {}.", mode.label_vi()),
        _ => println!("Kho đã là {}; không ghi gì.", mode.label_vi()),
    }
    engine.store.close().await;
    Ok(())
}

/// Parses every file, printing every diagnostic; fails if any file has one,
/// so a command never acts on a partly valid set of plans.
fn parse_all(files: &[std::path::PathBuf], failure: &str) -> Result<Vec<crate::plan::PlanDefinition>, CliError> {
    let mut plans = Vec::new();
    let mut errors = 0;
    for file in files {
        match crate::plan::parse_file(file) {
            Ok(p) => plans.push(p),
            Err(diags) => {
                errors += diags.len();
                for d in diags {
                    eprintln!("{d}");
                }
            }
        }
    }
    if errors > 0 {
        return Err(CliError::Invalid(format!("{errors} lỗi trong tệp kế hoạch{failure}")));
    }
    Ok(plans)
}

fn plan_check(
    files: &[std::path::PathBuf],
    format: Format,
    now: chrono::DateTime<chrono::Utc>,
) -> Result<(), CliError> {
    let plans = parse_all(files, "")?;
    for (file, plan) in files.iter().zip(&plans) {
        let today = crate::domain::dates::local_date(now, plan.header.tz());
        if let Some(warning) = plan.header.calendar_warning(today) {
            eprintln!("cảnh báo: {}: {warning}", file.display());
        }
    }
    let summaries: Vec<_> = files
        .iter()
        .zip(&plans)
        .map(|(file, plan)| {
            let milestones: usize = plan.tasks.iter().map(|t| t.milestones.len()).sum();
            if format == Format::Table {
                println!(
                    "{}: hợp lệ — kế hoạch {}, {} nhiệm vụ, {} mốc, {} cơ quan",
                    file.display(),
                    plan.id(),
                    plan.tasks.len(),
                    milestones,
                    plan.agencies.len()
                );
            }
            json!({ "file": file, "plan": plan.id(), "tasks": plan.tasks.len(), "milestones": milestones, "agencies": plan.agencies.len() })
        })
        .collect();
    if format == Format::Json {
        output::print_json(&summaries);
    }
    Ok(())
}

/// `plan import`: the document read into a draft plan file, the doubts
/// into a report. Writes files only; the store is read for `--directory ID`.
async fn plan_import(
    ctx: &Context,
    file: &std::path::Path,
    out: Option<&std::path::Path>,
    directory: Option<&str>,
    report: Option<&std::path::Path>,
) -> Result<(), CliError> {
    let directory = match directory {
        None => Vec::new(),
        Some(d) if std::path::Path::new(d).is_file() => parse_all(&[d.into()], "; không nhập")?.remove(0).agencies,
        Some(id) => {
            let engine = ctx.open_engine().await?;
            let plans = engine.store.plan_views().await?;
            engine.store.close().await;
            match plans.iter().find(|p| p.id == id) {
                Some(p) => p.plan.agencies.clone(),
                None => {
                    return Err(CliError::Input(format!(
                        "--directory {id}: không có tệp kế hoạch hay kế hoạch đã nạp nào mang tên này"
                    )))
                }
            }
        }
    };
    let bytes =
        std::fs::read(file).map_err(|e| CliError::Input(format!("{}: không đọc được tệp: {e}", file.display())))?;
    let name = file
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let draft = crate::plan::import::import(&name, &bytes, &directory)
        .map_err(|e| CliError::Input(format!("{}: {e}; không nhập gì", file.display())))?;
    let write = |path: &std::path::Path, text: &str| {
        std::fs::write(path, text).map_err(|e| CliError::Output(format!("{}: không ghi được: {e}", path.display())))
    };
    if let Some(path) = report {
        let json = serde_json::to_string_pretty(&draft.report()).unwrap_or_default();
        write(path, &(json + "\n"))?;
    }
    match out {
        Some(path) => write(path, &draft.to_toml())?,
        None => print!("{}", draft.to_toml()),
    }
    eprint!("{}", draft.summary());
    Ok(())
}

/// `plan baseline`: the rows of a sheet of the state already reached,
/// recorded as the administrator's, all of them or none.
async fn plan_baseline(ctx: &Context, file: &std::path::Path, user: &str, plan: Option<&str>) -> Result<(), CliError> {
    use crate::engine::baseline::BaselineError;
    let bytes =
        std::fs::read(file).map_err(|e| CliError::Input(format!("{}: không đọc được tệp: {e}", file.display())))?;
    let name = file
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let lines = crate::plan::baseline::read(&name, &bytes)
        .map_err(|e| CliError::Input(format!("{}: {e}; không ghi nhận gì", file.display())))?;
    let engine = ctx.engine().await?;
    let email = Email::parse(user).map_err(|e| CliError::Input(format!("--user: {e}")))?;
    let account = engine
        .store
        .user_by_email(&email)
        .await?
        .ok_or_else(|| CliError::Input(format!("--user: không có tài khoản đang hoạt động với e-mail {email}")))?;
    if !account.has(crate::accounts::Role::Admin) {
        return Err(CliError::Refused(format!(
            "tài khoản {email} ({}) không có vai trò quản trị nên không được ghi nhận hiện trạng",
            account.roles_vi()
        )));
    }
    let sheet = crate::domain::task::SheetRef {
        file: name,
        sha256: crate::domain::files::sha256(&bytes).to_string(),
    };
    let by = account.actor(Channel::Sheet {
        file: sheet.file.clone(),
        sha256: sheet.sha256.clone(),
        via: "cli".into(),
    });
    let report = match engine.record_baseline(plan, &sheet, lines, by).await {
        Ok(r) => r,
        Err(BaselineError::Rows { rows }) => {
            for (row, why) in &rows {
                eprintln!("{}:{row}: {why}", file.display());
            }
            return Err(CliError::Invalid(format!(
                "{} dòng không ghi nhận được; không ghi nhận dòng nào của bảng",
                rows.len()
            )));
        }
        Err(BaselineError::Plan(why)) => return Err(CliError::Input(why)),
        Err(BaselineError::Engine(e)) => return Err(e.into()),
    };
    match ctx.format {
        Format::Json => output::print_json(&report),
        _ => println!(
            "Kế hoạch {}: {} dòng; ghi nhận {} ({} đã hoàn thành, {} đang thực hiện, {} chưa thực hiện, {} không thực hiện); {} dòng không đổi",
            report.plan,
            report.rows,
            report.recorded,
            report.done,
            report.in_progress,
            report.not_started,
            report.not_done,
            report.unchanged
        ),
    }
    engine.store.close().await;
    Ok(())
}

async fn plan_load(ctx: &Context, files: &[std::path::PathBuf], request: Option<&str>) -> Result<(), CliError> {
    let request = request_id(request)?;
    if request.is_some() && files.len() > 1 {
        return Err(CliError::Input("--request-id chỉ dùng khi nạp một tệp".into()));
    }
    let plans = parse_all(files, "; không nạp gì")?;
    let engine = ctx.engine().await?;
    let operator = Actor::operator(&os_user(), &host_name());
    let mut reports = Vec::new();
    for plan in &plans {
        let loaded = engine.load_plan_for(plan, operator.clone(), request.as_ref()).await?;
        if loaded.replayed {
            replay_note(request.as_ref());
        }
        let r = loaded.report;
        if ctx.format == Format::Table {
            println!(
                "Kế hoạch {}: {} nhiệm vụ, {} mốc; {} sự kiện mới{}",
                r.plan,
                r.tasks,
                r.milestones,
                r.events_written,
                if r.withdrawn > 0 {
                    format!(", {} nhiệm vụ rút khỏi kế hoạch", r.withdrawn)
                } else {
                    String::new()
                }
            );
        }
        reports.push(json!({ "plan": r.plan, "tasks": r.tasks, "milestones": r.milestones, "withdrawn": r.withdrawn, "events_written": r.events_written }));
    }
    // The loads have committed: views that lag are the next catch-up's to fix.
    if let Err(e) = engine.catch_up().await {
        eprintln!("cảnh báo: đã nạp nhưng chưa cập nhật được các khung nhìn: {e}");
    }
    if ctx.format == Format::Json {
        output::print_json(&reports);
    }
    engine.store.close().await;
    Ok(())
}

/// Finds the plan a task id belongs to: `plan/task`, `--plan`, or the only plan loaded.
pub(crate) fn resolve_task(
    plans: &[PlanView],
    task: &str,
    plan: Option<&str>,
) -> Result<(TaskKey, PlanView), CliError> {
    projections::views::resolve_task(plans, task, plan).map_err(|e| CliError::Input(e.to_string()))
}

async fn task(ctx: &Context, cmd: TaskCmd) -> Result<(), CliError> {
    let engine = ctx.engine().await?;
    engine.catch_up().await?;
    let plans = engine.store.plan_views().await?;
    let (today, _) = projections::views::today_in(&plans, engine.clock.now());
    let result = match cmd {
        TaskCmd::List {
            plan,
            agency,
            status,
            due_before,
            overdue,
        } => {
            let agency = agency.as_deref().map(AgencyCode::parse_loose).transpose()?;
            if let Some(a) = &agency {
                if !plans.iter().any(|p| p.plan.agency(a).is_some()) {
                    return Err(CliError::Input(format!(
                        "không có cơ quan {a} trong danh mục của kế hoạch"
                    )));
                }
            }
            let status = status
                .as_deref()
                .map(|s| MilestoneStatus::parse_named(s).map_err(CliError::Input))
                .transpose()?;
            let due_before = due_before
                .as_deref()
                .map(parse_date)
                .transpose()
                .map_err(|e| CliError::Input(format!("--due-before: {e}")))?;
            let filter = TaskFilter {
                plan,
                agency,
                status,
                due_before,
                overdue,
            };
            let views: Vec<_> = engine
                .store
                .task_views()
                .await?
                .into_iter()
                .filter(|v| filter.matches(v, today, deadlines_for(&plans, &v.id)))
                .collect();
            match ctx.format {
                Format::Json => output::print_json(
                    &views
                        .iter()
                        .map(|v| output::task_json(v, today, deadlines_for(&plans, &v.id), false))
                        .collect::<Vec<_>>(),
                ),
                _ => {
                    println!("{}", output::task_table(&views, today, &plans));
                    println!("{} nhiệm vụ · hôm nay {}", views.len(), today.format("%d/%m/%Y"));
                }
            }
            Ok(())
        }
        TaskCmd::Show { task, plan } => {
            let (key, plan_view) = resolve_task(&plans, &task, plan.as_deref())?;
            let dl = plan_view.deadlines();
            let view = engine
                .store
                .task_view(&key)
                .await?
                .ok_or_else(|| CliError::Input(format!("không có nhiệm vụ {key}")))?;
            match ctx.format {
                Format::Json => output::print_json(&output::task_json(&view, today, dl, true)),
                _ => println!("{}", output::task_detail(&view, today, &plan_view)),
            }
            Ok(())
        }
        TaskCmd::Report {
            who,
            note,
            kpis,
            evidence,
            attach,
        } => {
            let kpis = kpis.iter().map(|k| parse_kpi(k)).collect::<Result<Vec<_>, _>>()?;
            let files = read_attachments(ctx, &attach)?;
            let fields = ActionFields {
                note,
                kpis,
                evidence,
                ..Default::default()
            };
            act_with_files(
                ctx,
                &engine,
                &plans,
                &who,
                Action::Report,
                fields,
                files,
                "Đã ghi nhận báo cáo",
            )
            .await
        }
        TaskCmd::Submit { who, note, attach } => {
            let files = read_attachments(ctx, &attach)?;
            let fields = ActionFields {
                note,
                ..Default::default()
            };
            act_with_files(ctx, &engine, &plans, &who, Action::Submit, fields, files, "Đã nộp").await
        }
        TaskCmd::Approve { who, note } => {
            let fields = ActionFields {
                note,
                ..Default::default()
            };
            act(ctx, &engine, &plans, &who, Action::Approve, fields, "Đã duyệt").await
        }
        TaskCmd::Return { who, reason } => {
            let fields = ActionFields {
                reason,
                ..Default::default()
            };
            act(ctx, &engine, &plans, &who, Action::Return, fields, "Đã trả lại").await
        }
        TaskCmd::Extend { who, until, reason } => {
            let until = parse_date(&until).map_err(|e| CliError::Input(format!("--until: {e}")))?;
            let fields = ActionFields {
                reason,
                until: Some(until),
                ..Default::default()
            };
            act(ctx, &engine, &plans, &who, Action::Extend, fields, "Đã gia hạn").await
        }
        TaskCmd::Waive { who, reason } => {
            let fields = ActionFields {
                reason,
                ..Default::default()
            };
            act(ctx, &engine, &plans, &who, Action::Waive, fields, "Đã miễn").await
        }
        TaskCmd::Cancel { who, reason } => {
            let fields = ActionFields {
                reason,
                ..Default::default()
            };
            act(ctx, &engine, &plans, &who, Action::Cancel, fields, "Đã hủy").await
        }
    };
    engine.store.close().await;
    result
}

fn parse_kpi(s: &str) -> Result<KpiValue, CliError> {
    let (k, v) = s
        .split_once('=')
        .ok_or_else(|| CliError::Input(format!("--kpi {s:?}: dùng MÃ=GIÁ_TRỊ, ví dụ ty-le=86.5")))?;
    let value: f64 = v
        .trim()
        .replace(',', ".")
        .parse()
        .map_err(|_| CliError::Input(format!("--kpi {s:?}: {v:?} không phải số")))?;
    Ok(KpiValue::new(KpiKey::parse(k.trim())?, value))
}

/// The account a person's CLI command acts as: it must exist and be
/// enabled, and it is recorded with the operating-system user and host.
async fn cli_actor(engine: &Engine, email: &str, action: Action) -> Result<Actor, CliError> {
    let email = Email::parse(email).map_err(|e| CliError::Input(format!("--user: {e}")))?;
    let user = engine.store.user_by_email(&email).await?.ok_or_else(|| {
        CliError::Input(format!(
            "--user: không có tài khoản đang hoạt động với e-mail {email} (tạo bằng \"kehoach user add\")"
        ))
    })?;
    if !user.role_allows(action) {
        return Err(CliError::Refused(format!(
            "tài khoản {email} ({}) không có vai trò được {}",
            user.roles_vi(),
            action.label_vi().to_lowercase()
        )));
    }
    Ok(user.actor(Channel::Cli {
        os_user: os_user(),
        host: host_name(),
    }))
}

/// The files given with `--attach`, read and checked (size, type from the
/// content); a file that cannot be read or is refused is bad input, found
/// before anything is written.
fn read_attachments(ctx: &Context, paths: &[std::path::PathBuf]) -> Result<Vec<Evidence>, CliError> {
    let max = config::SecuritySettings::resolve(&ctx.file).max_file_bytes;
    let mut read = Vec::with_capacity(paths.len());
    for path in paths {
        let bytes = std::fs::read(path)
            .map_err(|e| CliError::Input(format!("--attach: không đọc được tệp {}: {e}", path.display())))?;
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        read.push((name, bytes));
    }
    crate::domain::files::check_all(read, max).map_err(|e| CliError::Input(format!("--attach: {e}")))
}

async fn act(
    ctx: &Context,
    engine: &Engine,
    plans: &[PlanView],
    who: &Acting,
    action: Action,
    fields: ActionFields,
    done: &str,
) -> Result<(), CliError> {
    act_with_files(ctx, engine, plans, who, action, fields, Vec::new(), done).await
}

/// `act` with evidence files, stored once the account may act, before the event.
#[allow(clippy::too_many_arguments)]
async fn act_with_files(
    ctx: &Context,
    engine: &Engine,
    plans: &[PlanView],
    who: &Acting,
    action: Action,
    mut fields: ActionFields,
    files: Vec<Evidence>,
    done: &str,
) -> Result<(), CliError> {
    let (key, plan) = resolve_task(plans, &who.task, who.plan.as_deref())?;
    let agency = match &who.agency {
        Some(a) => {
            let agency = AgencyCode::parse_loose(a)?;
            if plan.plan.agency(&agency).is_none() {
                return Err(CliError::Input(format!(
                    "--agency: không có cơ quan {agency} trong danh mục của kế hoạch {}",
                    plan.id
                )));
            }
            Some(agency)
        }
        None => None,
    };
    if engine.store.task_view(&key).await?.is_none() {
        return Err(CliError::Input(format!(
            "không có nhiệm vụ {} trong kế hoạch {}",
            key.task, plan.id
        )));
    }
    let milestone = MilestoneId::parse(&who.milestone)?;
    let request = request_id(who.request_id.as_deref())?;
    let actor = cli_actor(engine, &who.user, action).await?;
    engine.store.put_files(&files, engine.clock.now()).await?;
    fields.attachments = files.into_iter().map(|f| f.attachment).collect();
    let task_action = action
        .build(milestone.clone(), agency, fields)
        .ok_or_else(|| CliError::Input("--until: cần hạn mới".into()))?;
    let acted = engine
        .act(&key, actor, &milestone, task_action, request.as_ref())
        .await?;
    // Committed: what could not follow is a warning, never a failure.
    for w in &acted.warnings {
        eprintln!("cảnh báo: đã ghi nhận nhưng {w}");
    }
    if acted.replayed {
        replay_note(request.as_ref());
    }
    let after = acted.milestone;
    match ctx.format {
        Format::Json => output::print_json(&json!({
            "task": key.task, "milestone": milestone,
            "status": after.as_ref().map(|m| m.status.as_str()),
            "obligations": after.as_ref().map(obligation_states).unwrap_or_default(),
        })),
        _ => {
            let parts: Vec<String> = after
                .iter()
                .flat_map(|m| &m.obligations)
                .map(|o| format!("{}: {}", o.label(), o.status.label_vi()))
                .collect();
            println!("{done}: {} mốc {} — {}", key.task, milestone, parts.join("; "))
        }
    }
    Ok(())
}
