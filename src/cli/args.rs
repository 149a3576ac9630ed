//! Command-line arguments.

use clap::{Args, Parser, Subcommand, ValueEnum};
use std::path::PathBuf;

#[derive(Debug, Parser)]
#[command(
    name = "kehoach",
    version,
    about = "Theo dõi nhiệm vụ của kế hoạch thực hiện Đề án — event-sourced workflow engine"
)]
pub struct Cli {
    /// Database URL: postgres://… or sqlite://path (default ./data/kehoach.db).
    /// Also KEHOACH_DB or DATABASE_URL.
    #[arg(long, global = true)]
    pub db: Option<String>,

    /// Run as if it were this time: RFC 3339 or a date (start of that day in Vietnam).
    #[arg(long, global = true, env = "KEHOACH_NOW")]
    pub now: Option<String>,

    /// Output format: table (or text) and json everywhere; csv for `audit
    /// history`; jsonl for `audit export`.
    #[arg(long, global = true, value_enum, default_value_t = Format::Table)]
    pub format: Format,

    /// Configuration file (default ./kehoach.toml if present). Also KEHOACH_CONFIG.
    #[arg(long, global = true, env = "KEHOACH_CONFIG")]
    pub config: Option<PathBuf>,

    /// Log lines on standard error: text (coloured only on a terminal, never
    /// with NO_COLOR set) or json (one object per line, for log collectors).
    /// Also KEHOACH_LOG_FORMAT; the level is KEHOACH_LOG (default info).
    #[arg(long, global = true, value_enum, ignore_case = true, env = "KEHOACH_LOG_FORMAT", default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,

    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    #[value(alias = "text")]
    Table,
    Json,
    Csv,
    Jsonl,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Check and load plan files.
    #[command(subcommand)]
    Plan(PlanCommand),
    /// List, show and act on tasks.
    #[command(subcommand)]
    Task(TaskCommand),
    /// Maintain the views.
    #[command(subcommand)]
    Views(ViewsCommand),
    /// Run the engine: load workflows/*.toml, keep the views up to date, send reminders, until Ctrl-C.
    Serve(ServeArgs),
    /// Run one scheduling and dispatch pass now and print what was queued and sent.
    Remind {
        /// One pass, then exit (the continuous loop is `serve`).
        #[arg(long, required = true)]
        once: bool,
    },
    /// Move a simulated clock day by day through the scheduler and dispatcher.
    Simulate {
        /// First day (default: the day of --now, or today).
        #[arg(long)]
        from: Option<String>,
        /// Last day, included.
        #[arg(long)]
        until: String,
    },
    /// Queued, sent and failed messages.
    #[command(subcommand)]
    Outbox(OutboxCommand),
    /// Tamper evidence for the Inspection Committee.
    #[command(subcommand)]
    Audit(AuditCommand),
    /// Printable reports.
    #[command(subcommand)]
    Report(ReportCommand),
    /// People who use the web pages: create them and their sign-in links.
    #[command(subcommand)]
    User(UserCommand),
    /// API tokens for machine clients.
    #[command(subcommand)]
    Token(TokenCommand),
    /// The store itself: create it as a production or a simulation store.
    #[command(subcommand)]
    Store(StoreCommand),
}

#[derive(Debug, Subcommand)]
pub enum StoreCommand {
    /// Create the store: a production store, or with --simulation a
    /// simulation store, the only kind that takes simulated time (--now,
    /// simulate). Does nothing if the store already is that kind.
    Init {
        #[arg(long)]
        simulation: bool,
    },
}

#[derive(Debug, Subcommand)]
pub enum UserCommand {
    /// Create a user of an agency and print a one-time sign-in link to set a password.
    Add {
        /// Agency code from the plan's list (BDV, UBKT, …).
        #[arg(long)]
        agency: String,
        /// Full name, as it will appear in the history ("Nguyễn Văn A").
        #[arg(long)]
        name: String,
        #[arg(long)]
        email: String,
        /// member, supervisor, auditor or admin; repeat or separate with commas.
        #[arg(long = "role", required = true, value_delimiter = ',')]
        roles: Vec<String>,
    },
    /// List users.
    List,
    /// Print a new one-time sign-in link for a user (forgotten password).
    Link {
        #[arg(long)]
        email: String,
    },
    /// Disable a user: sessions end, API tokens stop working, sign-in is refused.
    Disable {
        #[arg(long)]
        email: String,
    },
    /// Enable a disabled user again.
    Enable {
        #[arg(long)]
        email: String,
    },
    /// Set a user's roles (exactly these; grants and revocations are recorded).
    Role {
        #[arg(long)]
        email: String,
        /// member, supervisor, auditor or admin; repeat or separate with commas.
        #[arg(long = "role", required = true, value_delimiter = ',')]
        roles: Vec<String>,
    },
    /// Turn off a user's two-factor sign-in (a lost authenticator); the user
    /// sets it up again at the next sign-in if the role requires it.
    TotpReset {
        #[arg(long)]
        email: String,
    },
    /// The account's history: time, actor and what, from its events.
    History {
        #[arg(long)]
        email: String,
    },
}

#[derive(Debug, Subcommand)]
pub enum TokenCommand {
    /// Create an API token for a user; it is printed once and stored hashed.
    Create {
        /// The user the token acts as.
        #[arg(long)]
        email: String,
        /// What the token is for.
        #[arg(long, default_value = "api")]
        label: String,
    },
    /// Revoke an API token by its id (see `token list`).
    Revoke {
        #[arg(long)]
        id: String,
    },
    /// API tokens: id, label, user, created, revoked (never the token).
    List {
        /// Only this user's tokens.
        #[arg(long)]
        email: Option<String>,
    },
}

#[derive(Debug, Subcommand)]
pub enum ReportCommand {
    /// The yearly evaluation (--year) or the five-year review (--period), as self-contained HTML.
    #[command(group(clap::ArgGroup::new("scope").required(true).args(["year", "period"])))]
    Review {
        #[arg(long)]
        year: Option<i32>,
        #[arg(long)]
        period: bool,
        /// Output file (default ./data/reports/review-<year|period>.html).
        #[arg(long)]
        output: Option<PathBuf>,
    },
}

#[derive(Debug, Subcommand)]
pub enum AuditCommand {
    /// Record a checkpoint now: the Merkle root over the heads of all chains.
    Checkpoint,
    /// Recompute every chain, replay every task, check checkpoints, views,
    /// the outbox and due-date index, and roots kept outside the store.
    Verify {
        /// A checkpoint root kept outside the store (from UBKT's e-mail, a
        /// report, a printout): it must be the root of a checkpoint of this
        /// store that still holds. Repeatable.
        #[arg(long = "root", value_name = "HEX")]
        kept: Vec<String>,
        /// A file of kept roots, one a line (blank lines and `#` comments
        /// ignored). Repeatable.
        #[arg(long = "roots", value_name = "FILE")]
        kept_files: Vec<PathBuf>,
    },
    /// Write every event with its hashes, for offline checking.
    /// A task's timeline (local time, actor, what happened, details, hash);
    /// with --as-of, its state at that instant.
    History {
        /// Task id (III.1.2) or plan/task.
        task: String,
        /// RFC 3339 instant, or a date meaning the end of that day in the plan's zone.
        #[arg(long)]
        as_of: Option<String>,
        #[arg(long)]
        plan: Option<String>,
    },
    /// Every task's state at a date, per-agency counts (on time, overdue,
    /// not yet due, approved late), and with --since what changed.
    Plan {
        #[arg(long)]
        as_of: String,
        #[arg(long)]
        since: Option<String>,
    },
    /// (`--format jsonl`, the default for this command.)
    Export {
        /// Output file (default: standard output).
        #[arg(long)]
        output: Option<PathBuf>,
    },
}

#[derive(Debug, Subcommand)]
pub enum OutboxCommand {
    /// List messages per task and agency, newest first.
    List {
        /// queued, sent or failed.
        #[arg(long)]
        status: Option<String>,
    },
    /// Put deliveries that failed for good back in the queue (recorded as
    /// events): each digest is sent again as it was, under its Message-ID,
    /// to the addresses that did not take it.
    Retry {
        /// Only this agency's (code from the plan's directory).
        #[arg(long)]
        agency: Option<String>,
        /// Only failures whose last attempt was on or after this day
        /// (YYYY-MM-DD or DD/MM/YYYY).
        #[arg(long)]
        since: Option<String>,
    },
}

#[derive(Debug, Subcommand)]
pub enum PlanCommand {
    /// Validate plan files; every problem is reported as file:line:col. Exit 2 on errors.
    Check {
        #[arg(required = true)]
        files: Vec<PathBuf>,
    },
    /// Load plan files: register new tasks, amend changed ones, withdraw
    /// removed ones. Each file is one transaction.
    Load {
        #[arg(required = true)]
        files: Vec<PathBuf>,
        /// Idempotency key for a load of one file: a retry with the same key
        /// and the same file writes nothing and prints the first report.
        #[arg(long = "request-id")]
        request_id: Option<String>,
    },
    /// Read a plan document (.docx or UTF-8 .txt) into a draft plan file to
    /// review: tasks, agencies (no addresses yet), deadlines and targets.
    /// Exit 2 when the document cannot be read; nothing is loaded.
    Import {
        file: PathBuf,
        /// Where to write the draft plan file (default: standard output).
        #[arg(long)]
        out: Option<PathBuf>,
        /// A plan file, or the id of a loaded plan, whose agencies keep
        /// their codes and addresses in the draft.
        #[arg(long)]
        directory: Option<String>,
        /// Where to write the report of doubts as JSON.
        #[arg(long)]
        report: Option<PathBuf>,
    },
    /// Record the state already reached from a sheet (.xlsx or .csv, one
    /// row per obligation; template on the plan page): all rows or none.
    Baseline {
        file: PathBuf,
        /// The administrator's account e-mail; the rows are recorded as theirs.
        #[arg(long, env = "KEHOACH_USER")]
        user: String,
        /// Plan id, when several plans are loaded.
        #[arg(long)]
        plan: Option<String>,
    },
}

#[derive(Debug, Subcommand)]
pub enum ViewsCommand {
    /// Rebuild every view from the events.
    Rebuild,
}

#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Directory of plan files to load at start.
    #[arg(long, env = "KEHOACH_WORKFLOWS")]
    pub workflows: Option<PathBuf>,
    /// Seconds between two catch-ups of the views.
    #[arg(long, default_value_t = 1.0)]
    pub poll: f64,
    /// Address of the HTTP server (port 0 picks a free one).
    #[arg(long, env = "KEHOACH_LISTEN")]
    pub listen: Option<String>,
    /// Load the plan files even where the plan in force is a later load
    /// (for example one uploaded on the web); by default that one is kept.
    #[arg(long)]
    pub prefer_files: bool,
    /// On SIGTERM or Ctrl-C, seconds to let a delivery or pass in flight
    /// finish and be recorded before exiting (then exit 1; nothing is lost).
    #[arg(long, env = "KEHOACH_STOP_TIMEOUT", default_value_t = 30.0)]
    pub stop_timeout: f64,
}

/// Which task, and as whom.
#[derive(Debug, Args)]
pub struct Acting {
    /// Task id (II.1.2) or plan/task (duc-pho-de-an-13/II.1.2).
    pub task: String,
    /// Milestone id (see `task show`).
    #[arg(long)]
    pub milestone: String,
    /// Your account's e-mail (`user add`); the agency and name come from
    /// the account. Also KEHOACH_USER.
    #[arg(long, env = "KEHOACH_USER")]
    pub user: String,
    /// The obligation's agency, where the milestone has several.
    #[arg(long)]
    pub agency: Option<String>,
    /// Plan id, when several plans are loaded.
    #[arg(long)]
    pub plan: Option<String>,
    /// Idempotency key (1–128 of A–Z a–z 0–9 - _ . :): a retry with the same
    /// key and the same request writes nothing and prints the first outcome.
    #[arg(long = "request-id")]
    pub request_id: Option<String>,
}

#[derive(Debug, Subcommand)]
pub enum TaskCommand {
    /// List tasks.
    List {
        #[arg(long)]
        plan: Option<String>,
        /// Only tasks this agency leads, advises, implements or coordinates.
        #[arg(long)]
        agency: Option<String>,
        /// Only tasks with a milestone in this status (open, submitted, returned, approved, waived, cancelled).
        #[arg(long)]
        status: Option<String>,
        /// Only tasks with a pending milestone due on or before this date.
        #[arg(long)]
        due_before: Option<String>,
        /// Only tasks with an overdue milestone.
        #[arg(long)]
        overdue: bool,
    },
    /// Show one task with its milestones and KPI targets.
    Show {
        task: String,
        #[arg(long)]
        plan: Option<String>,
    },
    /// Report progress on a milestone (implementers).
    Report {
        #[command(flatten)]
        who: Acting,
        #[arg(long, default_value = "")]
        note: String,
        /// KPI value, KEY=VALUE (repeatable).
        #[arg(long = "kpi")]
        kpis: Vec<String>,
        /// Link to evidence (repeatable).
        #[arg(long = "evidence")]
        evidence: Vec<String>,
        /// Evidence file to attach: PDF, Word, Excel or an image (repeatable, at most 10).
        #[arg(long = "attach", value_name = "FILE")]
        attach: Vec<std::path::PathBuf>,
    },
    /// Submit a milestone for approval (implementers).
    Submit {
        #[command(flatten)]
        who: Acting,
        #[arg(long, default_value = "")]
        note: String,
        /// Evidence file to attach: PDF, Word, Excel or an image (repeatable, at most 10).
        #[arg(long = "attach", value_name = "FILE")]
        attach: Vec<std::path::PathBuf>,
    },
    /// Approve a submitted milestone (lead or advisory).
    Approve {
        #[command(flatten)]
        who: Acting,
        #[arg(long, default_value = "")]
        note: String,
    },
    /// Return a submitted milestone with a reason (lead or advisory).
    Return {
        #[command(flatten)]
        who: Acting,
        #[arg(long)]
        reason: String,
    },
    /// Extend a milestone's deadline (lead or advisory).
    Extend {
        #[command(flatten)]
        who: Acting,
        /// New due date.
        #[arg(long)]
        until: String,
        #[arg(long)]
        reason: String,
    },
    /// Waive a milestone (lead or advisory).
    Waive {
        #[command(flatten)]
        who: Acting,
        #[arg(long)]
        reason: String,
    },
    /// Cancel a milestone (lead or advisory).
    Cancel {
        #[command(flatten)]
        who: Acting,
        #[arg(long)]
        reason: String,
    },
}
