//! Several engine processes on one PostgreSQL database: each day of a
//! simulated year, three processes run a scheduling and dispatch pass at the
//! same instant (as three `serve` processes sharing a wall clock do), and one
//! of them dies right after a delivery. Every reminder is queued as a single
//! process would queue it and sent exactly once (the one caught by the crash
//! is re-sent with the same Message-ID), and the store verifies.

use crate::helpers::*;
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};

/// Every event of the store, from `audit export`.
fn events(db: &TestDb) -> Vec<Value> {
    let out = kehoach(db, &["--format", "jsonl", "audit", "export"]);
    assert!(out.status.success(), "{}", stderr(&out));
    stdout(&out)
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
        .filter(|e| e["kind"] == "event")
        .collect()
}

/// The payload of an event that records a reminder sent: an attempt at
/// which some address of the digest took it (`ReminderSent` in stores
/// written before digests were fixed).
fn sent_payload(e: &Value) -> Option<&Value> {
    let attempt = e["payload"].get("ReminderAttempted").filter(|a| {
        a["results"]
            .as_array()
            .is_some_and(|r| r.iter().any(|r| r["outcome"] == "accepted"))
    });
    e["payload"].get("ReminderSent").or(attempt)
}

type Key = (String, String, String);
type Queued = BTreeMap<Key, BTreeSet<String>>;
type Sent = BTreeMap<(Key, String), usize>;

/// (task, milestone, reminder key) → the agencies it was queued for, and
/// (task, milestone, key, agency) → how many times it was recorded as sent.
fn reminders(events: &[Value]) -> (Queued, Sent) {
    let mut queued = BTreeMap::new();
    let mut sent = BTreeMap::new();
    for e in events {
        let task = e["aggregate_id"].as_str().unwrap().to_string();
        if let Some(q) = e["payload"].get("ReminderQueued") {
            let key = (
                task.clone(),
                q["milestone"].as_str().unwrap().into(),
                q["key"].as_str().unwrap().into(),
            );
            let agencies: BTreeSet<String> = q["recipients"]
                .as_array()
                .unwrap()
                .iter()
                .map(|r| r["agency"].as_str().unwrap().to_string())
                .collect();
            queued.insert(key, agencies);
        }
        if let Some(s) = sent_payload(e) {
            let key = (
                task,
                s["milestone"].as_str().unwrap().into(),
                s["key"].as_str().unwrap().into(),
            );
            *sent
                .entry((key, s["agency"].as_str().unwrap().to_string()))
                .or_insert(0) += 1;
        }
    }
    (queued, sent)
}

#[test]
fn three_processes_share_a_year_of_the_shipped_plan() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let shared = rt.block_on(TestDb::postgres());
    let alone = rt.block_on(TestDb::postgres());
    let plan = shipped_plan_path();
    for db in [&shared, &alone] {
        let out = kehoach(db, &["--now", "2022-12-31", "plan", "load", plan.to_str().unwrap()]);
        assert!(out.status.success(), "{}", stderr(&out));
    }
    let smtp = SmtpServer::start();
    let files = tempfile::tempdir().unwrap();
    let crash_day = chrono::NaiveDate::from_ymd_opt(2023, 3, 24).unwrap();
    let mut crashed = 0;
    let mut day = chrono::NaiveDate::from_ymd_opt(2023, 1, 1).unwrap();
    while day <= chrono::NaiveDate::from_ymd_opt(2023, 12, 31).unwrap() {
        let now = format!("{day}T08:00:00+07:00");
        let children: Vec<_> = (0..3)
            .map(|i| {
                let mut c = bin();
                c.args(["--db", &shared.url(), "--now", &now, "remind", "--once"])
                    .env("KEHOACH_SMTP_URL", smtp.url())
                    .stdout(std::process::Stdio::null())
                    .stderr(std::process::Stdio::piped());
                if i == 1 && day >= crash_day && crashed == 0 {
                    c.env("KEHOACH_CRASH_AFTER_SEND", "1");
                }
                c.spawn().unwrap()
            })
            .collect();
        // The same day on a database served by one process alone, for comparison.
        let reference = bin()
            .args(["--db", &alone.url(), "--now", &now, "remind", "--once"])
            .env("KEHOACH_OUTBOX_DIR", files.path())
            .output()
            .unwrap();
        assert!(reference.status.success(), "{}", stderr(&reference));
        for (i, child) in children.into_iter().enumerate() {
            let out = child.wait_with_output().unwrap();
            match out.status.code() {
                Some(0) => {}
                // The crash hook: died right after the server accepted a digest.
                Some(70) if i == 1 => crashed += 1,
                other => panic!(
                    "process {i} on {day}: {other:?} {}",
                    String::from_utf8_lossy(&out.stderr)
                ),
            }
        }
        day = day.succ_opt().unwrap();
    }
    assert_eq!(crashed, 1, "one process died mid-work");

    let shared_events = events(&shared);
    let (queued, sent) = reminders(&shared_events);
    let (queued_alone, _) = reminders(&events(&alone));
    assert!(queued.len() > 100, "a year of reminders: {}", queued.len());
    let queued_events = shared_events
        .iter()
        .filter(|e| e["payload"].get("ReminderQueued").is_some())
        .count();
    assert_eq!(queued_events, queued.len(), "no reminder queued twice");
    assert_eq!(
        queued.keys().collect::<Vec<_>>(),
        queued_alone.keys().collect::<Vec<_>>(),
        "three processes queue what one process queues"
    );
    let mut missing = Vec::new();
    for (key, agencies) in &queued {
        for a in agencies {
            match sent.get(&(key.clone(), a.clone())) {
                Some(1) => {}
                n => missing.push(format!("{key:?} → {a}: sent {n:?} times")),
            }
        }
    }
    assert!(
        missing.is_empty(),
        "every reminder recorded as sent exactly once:\n{}",
        missing.join("\n")
    );

    // What the SMTP server received: one copy of each digest for each of its
    // addresses (one SMTP transaction per address), except the one the dying
    // process delivered without recording it, re-sent once with the same
    // Message-ID to the same addresses.
    let mut copies: BTreeMap<(String, String), usize> = BTreeMap::new();
    for m in smtp.messages() {
        let id = m["message_id"].as_str().unwrap().to_string();
        for rcpt in m["rcpt_to"].as_array().unwrap() {
            *copies
                .entry((id.clone(), rcpt.as_str().unwrap().to_string()))
                .or_insert(0) += 1;
        }
    }
    let twice: Vec<_> = copies.iter().filter(|(_, n)| **n > 1).collect();
    let twice_ids: BTreeSet<&String> = twice.iter().map(|((id, _), _)| id).collect();
    assert!(
        twice_ids.len() <= 1 && twice.iter().all(|(_, n)| **n == 2),
        "{} digests received more than once by an address, for example {:?}",
        twice_ids.len(),
        &twice[..twice.len().min(3)]
    );
    let recorded: BTreeSet<String> = shared_events
        .iter()
        .filter_map(sent_payload)
        .map(|s| s["message_id"].as_str().unwrap().to_string())
        .collect();
    let received: BTreeSet<String> = copies
        .keys()
        .map(|(id, _)| id.trim_start_matches('<').trim_end_matches('>').to_string())
        .collect();
    assert_eq!(
        received, recorded,
        "every digest received was recorded, and the other way round"
    );

    // Every view is right: chains, replay and views agree.
    let verify = kehoach(&shared, &["audit", "verify"]);
    assert!(verify.status.success(), "{}{}", stdout(&verify), stderr(&verify));
}
