//! Tables and small formatting helpers for people.

use comfy_table::presets::NOTHING;
use comfy_table::{ContentArrangement, Table};
use serde_json::Value;

/// A borderless table with a header row.
pub fn table(header: &[&str], rows: Vec<Vec<String>>) -> String {
    let mut t = Table::new();
    t.load_preset(NOTHING).set_content_arrangement(ContentArrangement::Disabled).set_header(header.to_vec());
    for row in rows {
        t.add_row(row);
    }
    t.to_string()
}

/// A field as text: strings bare, null as `-`, anything else as JSON.
pub fn text(v: &Value) -> String {
    match v {
        Value::Null => "-".into(),
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// A list of strings joined with `, ` (or `-`).
pub fn list(v: &Value) -> String {
    match v.as_array() {
        Some(items) if !items.is_empty() => items.iter().map(text).collect::<Vec<_>>().join(", "),
        _ => "-".into(),
    }
}

/// `pinned_invocations` as `N (running R, suspended S, …)`, leaving out zero counts.
pub fn pinned(v: &Value) -> String {
    let total = v["total"].as_u64().unwrap_or(0);
    let parts: Vec<String> = ["running", "suspended", "backing_off", "paused", "scheduled", "inboxed"]
        .iter()
        .filter_map(|k| v[*k].as_u64().filter(|n| *n > 0).map(|n| format!("{} {n}", k.replace('_', " "))))
        .collect();
    if parts.is_empty() { total.to_string() } else { format!("{total} ({})", parts.join(", ")) }
}

/// A deployment's address: its URI or ARN.
pub fn address(d: &Value) -> String {
    d.get("uri").or_else(|| d.get("arn")).map(text).unwrap_or_else(|| "-".into())
}

/// The `changes` of a registration or a move, one line each (breaking ones marked).
pub fn changes(v: &Value) -> String {
    let Some(items) = v.as_array().filter(|a| !a.is_empty()) else { return String::new() };
    let rows = items
        .iter()
        .map(|c| {
            let target = match c["handler"].as_str() {
                Some(h) => format!("{}/{h}", text(&c["service"])),
                None => text(&c["service"]),
            };
            vec![target, text(&c["change"]), if c["breaking"] == true { "breaking".into() } else { String::new() }]
        })
        .collect();
    table(&["SERVICE", "CHANGE", ""], rows)
}
