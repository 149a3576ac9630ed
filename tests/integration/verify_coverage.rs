//! `audit verify` covers what the scheduler and the dispatcher read — the
//! `outbox`, `due_index` and `plan_view` tables — and roots kept outside the
//! store (`--root`, `--roots`), on both stores: the untampered store passes,
//! each tampering fails with one line naming the table or the root.

use crate::audit::{rewrite_ii_1_2, scripted, sql};
use crate::helpers::*;
use crate::on_both_stores;
use kehoach::audit::verify::{verify, Summary};
use kehoach::engine::Engine;
use std::process::Output;

/// The scripted history, with its reminders of 29 March 2024 delivered (as
/// `.eml` files), so that the outbox holds sent rows.
async fn delivered(kind: &str) -> (TestDb, Engine, tempfile::TempDir) {
    let (db, engine) = scripted(kind).await;
    let outbox = tempfile::tempdir().unwrap();
    let out = bin()
        .args([
            "--db",
            &db.url(),
            "--now",
            "2024-03-29T08:00:00+07:00",
            "remind",
            "--once",
        ])
        .env("KEHOACH_OUTBOX_DIR", outbox.path())
        .output()
        .unwrap();
    assert!(out.status.success(), "remind: {}", stderr(&out));
    engine.catch_up().await.unwrap();
    (db, engine, outbox)
}

async fn passes(engine: &Engine) -> Summary {
    verify(&engine.store, |_| {})
        .await
        .unwrap()
        .unwrap_or_else(|p| panic!("the untampered store verifies: {p}"))
}

/// `kehoach audit verify` with `args`: exit 5 and one line on standard
/// error, which is returned.
fn fails(db: &TestDb, args: &[&str]) -> String {
    let out = kehoach(db, &[&["audit", "verify"], args].concat());
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(5), "{}{err}", stdout(&out));
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    err
}

fn verified(db: &TestDb, args: &[&str]) -> Output {
    let out = kehoach(db, &[&["audit", "verify"], args].concat());
    assert!(out.status.success(), "{}{}", stdout(&out), stderr(&out));
    out
}

async fn count(engine: &Engine, query: &str) -> i64 {
    kehoach::with_pool!(&engine.store, pool => sqlx::query_scalar(query).fetch_one(pool).await.unwrap())
}

/// Three sent reminders set back to `queued` would be sent again by `serve`
/// with no event recording it.
async fn sent_outbox_rows_set_back_to_queued_fail(kind: &str) {
    let (db, engine, _outbox) = delivered(kind).await;
    let summary = passes(&engine).await;
    let sent = count(&engine, "SELECT count(*) FROM outbox WHERE status = 'sent'").await;
    assert!(sent >= 3, "the dispatcher sent some reminders ({sent})");
    assert_eq!(
        summary.outbox_rows as i64,
        count(&engine, "SELECT count(*) FROM outbox").await
    );
    assert!(stdout(&verified(&db, &[])).contains("dòng hộp thư đi"));

    let requeue = "UPDATE outbox SET status = 'queued' WHERE (aggregate_id, milestone_id, reminder_key, agency) IN \
                   (SELECT aggregate_id, milestone_id, reminder_key, agency FROM outbox WHERE status = 'sent' \
                    ORDER BY aggregate_id, milestone_id, reminder_key, agency LIMIT 3)";
    sql(&engine.store, requeue, requeue).await;
    assert_eq!(
        count(&engine, "SELECT count(*) FROM outbox WHERE status = 'sent'").await,
        sent - 3
    );
    let p = verify(&engine.store, |_| {})
        .await
        .unwrap()
        .expect_err("requeued rows are caught");
    assert!(p.what.contains("bảng outbox") && p.what.contains("cột status"), "{p}");
    assert_eq!((p.expected.as_str(), p.found.as_str()), ("sent", "queued"), "{p}");
    let err = fails(&db, &[]);
    assert!(err.contains("bảng outbox") && err.contains("cột status"), "{err}");
}
on_both_stores!(outbox_requeued, sent_outbox_rows_set_back_to_queued_fail);

/// Without its `due_index` rows a task is never reminded again.
async fn a_tasks_due_index_rows_deleted_fail(kind: &str) {
    let (db, engine) = scripted(kind).await;
    let summary = passes(&engine).await;
    assert_eq!(
        summary.due_rows as i64,
        count(&engine, "SELECT count(*) FROM due_index").await
    );
    let rows = count(
        &engine,
        "SELECT count(*) FROM due_index WHERE aggregate_id = 'duc-pho-de-an-13/III.1.2'",
    )
    .await;
    assert!(rows > 0, "III.1.2 has open milestones");
    let delete = "DELETE FROM due_index WHERE aggregate_id = 'duc-pho-de-an-13/III.1.2'";
    sql(&engine.store, delete, delete).await;
    let p = verify(&engine.store, |_| {})
        .await
        .unwrap()
        .expect_err("deleted rows are caught");
    assert_eq!(p.aggregate_id, "duc-pho-de-an-13/III.1.2", "{p}");
    assert!(
        p.what.contains("bảng due_index") && p.what.contains("thiếu dòng"),
        "{p}"
    );
    let err = fails(&db, &[]);
    assert!(err.contains("bảng due_index") && err.contains("III.1.2"), "{err}");
}
on_both_stores!(due_index_deleted, a_tasks_due_index_rows_deleted_fail);

/// UBND's address replaced inside the stored plan view would send its mail elsewhere.
async fn ubnds_address_replaced_in_plan_view_fails(kind: &str) {
    let (db, engine) = scripted(kind).await;
    passes(&engine).await;
    sql(
        &engine.store,
        "UPDATE plan_view SET payload = replace(payload, 'ubnd@ducpho.example', 'ubnd@ke-gian.example')",
        "UPDATE plan_view SET payload = replace(payload, 'ubnd@ducpho.example', 'ubnd@ke-gian.example')",
    )
    .await;
    let redirected = engine.store.plan_view("duc-pho-de-an-13").await.unwrap().unwrap();
    let ubnd = redirected
        .plan
        .agencies
        .iter()
        .find(|a| a.code.as_str() == "UBND")
        .unwrap();
    assert_eq!(ubnd.emails, ["ubnd@ke-gian.example"], "the tampering took");
    let p = verify(&engine.store, |_| {})
        .await
        .unwrap()
        .expect_err("the address is caught");
    assert!(p.what.contains("bảng plan_view") && p.what.contains("emails"), "{p}");
    assert_eq!(
        (p.expected.as_str(), p.found.as_str()),
        ("ubnd@ducpho.example", "ubnd@ke-gian.example"),
        "{p}"
    );
    let err = fails(&db, &[]);
    assert!(
        err.contains("bảng plan_view") && err.contains("ubnd@ke-gian.example"),
        "{err}"
    );
}
on_both_stores!(plan_view_address, ubnds_address_replaced_in_plan_view_fails);

/// The root of every checkpoint, oldest first, as `audit verify` recomputes them.
async fn checkpoint_roots(engine: &Engine) -> Vec<String> {
    all_events(engine)
        .await
        .iter()
        .filter(|e| e.aggregate_type == "Checkpoint")
        .map(|e| {
            e.payload_value().unwrap()["CheckpointRecorded"]["root"]
                .as_str()
                .unwrap()
                .to_string()
        })
        .collect()
}

const MADE_UP: &str = "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff";

/// Roots kept from `audit checkpoint` pass, in any case and from a file; a
/// made-up one fails naming it; malformed ones are bad input (exit 2).
async fn kept_roots_are_checked(kind: &str) {
    let (db, engine) = scripted(kind).await;
    let made = kehoach(&db, &["--format", "json", "audit", "checkpoint"]);
    assert!(made.status.success(), "{}", stderr(&made));
    let root = serde_json::from_slice::<serde_json::Value>(&made.stdout).unwrap()["root"]
        .as_str()
        .unwrap()
        .to_string();
    // The latest checkpoint (the scripted history ends with one, so nothing new is recorded).
    let roots = checkpoint_roots(&engine).await;
    assert_eq!(roots.last(), Some(&root));
    assert_ne!(roots[0], root);

    let text = stdout(&verified(&db, &["--root", &root, "--root", &roots[0].to_uppercase()]));
    assert!(text.contains("2 gốc đã lưu khớp"), "{text}");
    let json = verified(&db, &["--format", "json", "--root", &root]);
    let json: serde_json::Value = serde_json::from_slice(&json.stdout).unwrap();
    assert_eq!(json["summary"]["kept_roots"], 1, "{json}");
    assert_eq!(json["ok"], true);

    let err = fails(&db, &["--root", &root, "--root", MADE_UP]);
    assert!(
        err.contains(MADE_UP) && err.contains("không phải gốc của điểm kiểm"),
        "{err}"
    );
    let json = kehoach(&db, &["--format", "json", "audit", "verify", "--root", MADE_UP]);
    assert_eq!(json.status.code(), Some(5));
    let json: serde_json::Value = serde_json::from_slice(&json.stdout).unwrap();
    assert_eq!(json["ok"], false);
    assert!(json["problem"]["what"].as_str().unwrap().contains(MADE_UP), "{json}");

    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("roots.txt");
    std::fs::write(
        &file,
        format!("# gốc từ thư của UBKT\n\n{}  # tháng 1\n{root}\n", roots[0]),
    )
    .unwrap();
    let file = file.to_str().unwrap();
    let text = stdout(&verified(&db, &["--roots", file]));
    assert!(text.contains("2 gốc đã lưu khớp"), "{text}");

    std::fs::write(dir.path().join("bad.txt"), format!("# gốc\n{root}\nabc123\n")).unwrap();
    let bad_file = dir.path().join("bad.txt");
    let bad = kehoach(&db, &["audit", "verify", "--roots", bad_file.to_str().unwrap()]);
    assert_eq!(bad.status.code(), Some(2), "{}", stderr(&bad));
    let err = stderr(&bad);
    assert!(err.contains(&format!("{}:3:", bad_file.display())), "{err}");
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    let bad = kehoach(&db, &["audit", "verify", "--root", "xyz"]);
    assert_eq!(bad.status.code(), Some(2), "{}", stderr(&bad));
    assert!(stderr(&bad).contains("xyz"), "{}", stderr(&bad));
}
on_both_stores!(kept_roots, kept_roots_are_checked);

/// Deleting the checkpoints and rewriting a chain consistently, views
/// rebuilt, leaves a store that checks in itself: only a kept root catches it.
async fn kept_roots_catch_deleted_checkpoints_and_a_rewritten_chain(kind: &str) {
    let (db, engine) = scripted(kind).await;
    let roots = checkpoint_roots(&engine).await;
    assert_eq!(roots.len(), 2);
    verified(&db, &["--root", &roots[0], "--root", &roots[1]]);

    // Checkpoints deleted: nothing else in the store misses them.
    let delete = "DELETE FROM events WHERE aggregate_type = 'Checkpoint'";
    sql(&engine.store, delete, delete).await;
    verified(&db, &[]);
    let err = fails(&db, &["--root", &roots[1]]);
    assert!(
        err.contains(&roots[1]) && err.contains("không phải gốc của điểm kiểm"),
        "{err}"
    );

    // And a chain rewritten, the views rebuilt to match: still only the root tells.
    rewrite_ii_1_2(&engine).await;
    kehoach::projections::rebuild(&engine.store).await.unwrap();
    verified(&db, &[]);
    let err = fails(&db, &["--root", &roots[0]]);
    assert!(err.contains(&roots[0]), "{err}");
}
on_both_stores!(
    kept_roots_deleted_checkpoints,
    kept_roots_catch_deleted_checkpoints_and_a_rewritten_chain
);

/// A chain rewritten under a kept checkpoint: the checkpoint no longer
/// matches, and the message names the kept root.
async fn a_rewritten_chain_no_longer_matches_a_kept_root(kind: &str) {
    let (db, engine) = scripted(kind).await;
    let roots = checkpoint_roots(&engine).await;
    rewrite_ii_1_2(&engine).await;
    let err = fails(&db, &["--root", &roots[0]]);
    assert!(
        err.contains(&format!("gốc đã lưu {} không còn khớp", roots[0])) && err.contains("II.1.2"),
        "{err}"
    );
}
on_both_stores!(kept_root_rewritten, a_rewritten_chain_no_longer_matches_a_kept_root);
