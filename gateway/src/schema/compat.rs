//! What a new revision changes against the latest one, and which changes break running or
//! pending work (ARCHITECTURE.md, "Where perdure differs"): a service type change, a handler
//! that turns exclusive <-> shared (or workflow `run` <-> shared), a handler that goes while
//! invocations of it are pending, a changed input or output content type, and a JSON schema
//! that no longer accepts what the old one did (input) or may produce what the old one did
//! not (output). Everything else is reported, and accepted.

use std::collections::BTreeMap;

use serde::Serialize;
use serde_json::Value;

use super::model::{HandlerSchema, InputRules, ServiceRevision};
use crate::engine::records::handler_key;

/// One difference between two revisions of a service.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Change {
    pub service: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub handler: Option<String>,
    /// What changed, in words.
    pub change: String,
    /// Whether it is refused without `breaking`.
    pub breaking: bool,
}

impl Change {
    pub(super) fn new(service: &str, handler: Option<&str>, change: String, breaking: bool) -> Self {
        Self { service: service.to_owned(), handler: handler.map(str::to_owned), change, breaking }
    }

    /// `service` or `service/handler`, then what changed.
    pub fn describe(&self) -> String {
        match &self.handler {
            None if self.service.is_empty() => self.change.clone(),
            Some(h) => format!("{}/{h}: {}", self.service, self.change),
            None => format!("{}: {}", self.service, self.change),
        }
    }
}

/// What `new` changes against `previous` (the latest revision, if any). `pending` counts the
/// not-completed invocations of each `service/handler`.
pub fn changes(
    previous: Option<&ServiceRevision>,
    new: &ServiceRevision,
    pending: &BTreeMap<String, u64>,
) -> Vec<Change> {
    let name = new.name.as_str();
    let Some(prev) = previous else {
        return vec![Change::new(name, None, "new service".into(), false)];
    };
    let mut out = vec![Change::new(name, None, format!("revision {} -> {}", prev.revision, new.revision), false)];
    if prev.ty != new.ty {
        out.push(Change::new(
            name,
            None,
            format!("the service type changes from {} to {}", prev.ty.as_str(), new.ty.as_str()),
            true,
        ));
        return out;
    }
    for old in &prev.handlers {
        let Some(h) = new.handler(&old.name) else {
            let waiting = pending.get(&handler_key(name, &old.name)).copied().unwrap_or(0);
            let change = if waiting > 0 {
                format!("removed, while {waiting} invocations of it are not completed")
            } else {
                "removed".into()
            };
            out.push(Change::new(name, Some(&old.name), change, waiting > 0));
            continue;
        };
        out.extend(handler_changes(name, old, h));
    }
    for h in &new.handlers {
        if prev.handler(&h.name).is_none() {
            out.push(Change::new(name, Some(&h.name), "added".into(), false));
        }
    }
    out
}

fn kind(h: &HandlerSchema) -> &'static str {
    h.ty.map_or("a service handler", |t| t.as_str())
}

fn handler_changes(service: &str, old: &HandlerSchema, new: &HandlerSchema) -> Vec<Change> {
    let h = Some(new.name.as_str());
    let mut out = Vec::new();
    if old.ty != new.ty {
        out.push(Change::new(service, h, format!("turns from {} into {}", kind(old), kind(new)), true));
    }
    let content_type = |i: &InputRules| match i {
        InputRules::Any => None,
        InputRules::Empty => Some("none".to_owned()),
        InputRules::ContentType { content_type, .. } => Some(content_type.clone()),
    };
    let (old_in, new_in) = (content_type(&old.input), content_type(&new.input));
    if old_in != new_in {
        let show = |c: &Option<String>| c.clone().unwrap_or_else(|| "any".into());
        // Accepting any input after a specific one is a widening, not a break.
        let breaking = new_in.is_some();
        out.push(Change::new(
            service,
            h,
            format!("input content type {} -> {}", show(&old_in), show(&new_in)),
            breaking,
        ));
    }
    if old.output.content_type != new.output.content_type {
        out.push(Change::new(
            service,
            h,
            format!(
                "output content type {} -> {}",
                old.output.content_type.as_deref().unwrap_or("none"),
                new.output.content_type.as_deref().unwrap_or("none")
            ),
            true,
        ));
    }
    let schema_of = |i: &InputRules| match i {
        InputRules::ContentType { json_schema, .. } => json_schema.clone(),
        _ => None,
    };
    if let (Some(a), Some(b)) = (schema_of(&old.input), schema_of(&new.input))
        && a != b
    {
        match narrower(&a, &b) {
            Some(why) => out.push(Change::new(
                service,
                h,
                format!("the input schema no longer accepts what it did: {why}"),
                true,
            )),
            None => out.push(Change::new(
                service,
                h,
                "the input schema changed (it still accepts what it did)".into(),
                false,
            )),
        }
    }
    if let (Some(a), Some(b)) = (&old.output.json_schema, &new.output.json_schema)
        && a != b
    {
        match narrower(b, a) {
            Some(why) => {
                out.push(Change::new(service, h, format!("the output schema allows what it did not: {why}"), true))
            }
            None => {
                out.push(Change::new(service, h, "the output schema changed (within what it allowed)".into(), false))
            }
        }
    }
    out
}

/// Why some value valid under `wide` is not valid under `narrow` (so `narrow` does not
/// accept everything `wide` does), if that can be seen. Keywords this check does not model
/// are taken as compatible: it refuses only what it can show breaks.
pub fn narrower(wide: &Value, narrow: &Value) -> Option<String> {
    narrower_at(wide, narrow, "")
}

fn types(s: &Value) -> Option<Vec<String>> {
    match s.get("type")? {
        Value::String(t) => Some(vec![t.clone()]),
        Value::Array(ts) => Some(ts.iter().filter_map(|t| t.as_str().map(str::to_owned)).collect()),
        _ => None,
    }
}

fn narrower_at(wide: &Value, narrow: &Value, at: &str) -> Option<String> {
    let place = if at.is_empty() { "the value".to_owned() } else { format!("'{at}'") };
    // `true`/`{}` accept everything; `false` nothing.
    if narrow == &Value::Bool(true) || narrow.as_object().is_some_and(|o| o.is_empty()) {
        return None;
    }
    if narrow == &Value::Bool(false) && wide != &Value::Bool(false) {
        return Some(format!("{place} is no longer accepted at all"));
    }
    if let Some(narrow_types) = types(narrow) {
        let wide_types = types(wide).unwrap_or_else(|| {
            ["null", "boolean", "object", "array", "number", "string"].iter().map(|s| s.to_string()).collect()
        });
        for t in &wide_types {
            let covered = narrow_types.contains(t) || (t == "integer" && narrow_types.iter().any(|n| n == "number"));
            if !covered {
                return Some(format!("{place} may no longer be of type {t}"));
            }
        }
    }
    if let Some(Value::Array(allowed)) = narrow.get("enum") {
        match wide.get("enum") {
            Some(Value::Array(was)) => {
                if let Some(v) = was.iter().find(|v| !allowed.contains(v)) {
                    return Some(format!("{place} may no longer be {v}"));
                }
            }
            _ => return Some(format!("{place} is limited to {}", Value::Array(allowed.clone()))),
        }
    }
    let required = |s: &Value| -> Vec<String> {
        s.get("required")
            .and_then(Value::as_array)
            .map_or_else(Vec::new, |r| r.iter().filter_map(|v| v.as_str().map(str::to_owned)).collect())
    };
    let (was_required, now_required) = (required(wide), required(narrow));
    if let Some(p) = now_required.iter().find(|p| !was_required.contains(p)) {
        return Some(format!("{} becomes required", join(at, p)));
    }
    let props = |s: &Value| s.get("properties").and_then(Value::as_object).cloned().unwrap_or_default();
    let (wide_props, narrow_props) = (props(wide), props(narrow));
    if narrow.get("additionalProperties") == Some(&Value::Bool(false)) {
        let allowed_extra = wide.get("additionalProperties") != Some(&Value::Bool(false));
        if let Some(p) = wide_props.keys().find(|p| !narrow_props.contains_key(*p)) {
            return Some(format!("{} is no longer allowed", join(at, p)));
        }
        if allowed_extra && !wide_props.is_empty() {
            return Some(format!(
                "{place} no longer allows properties besides {}",
                narrow_props.keys().cloned().collect::<Vec<_>>().join(", ")
            ));
        }
    }
    for (p, w) in &wide_props {
        if let Some(n) = narrow_props.get(p)
            && let Some(why) = narrower_at(w, n, &join(at, p))
        {
            return Some(why);
        }
    }
    if let (Some(w), Some(n)) = (wide.get("items"), narrow.get("items")) {
        return narrower_at(w, n, &format!("{at}[]"));
    }
    None
}

fn join(at: &str, property: &str) -> String {
    if at.is_empty() { property.to_owned() } else { format!("{at}.{property}") }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn json_schemas_narrow_when_they_accept_less() {
        let person = json!({ "type": "object", "properties": { "name": { "type": "string" }, "age": { "type": "integer" } }, "required": ["name"] });
        assert_eq!(narrower(&person, &person), None);
        // Widening is fine: a new optional field, a number where an integer was.
        let wider = json!({ "type": "object", "properties": { "name": { "type": "string" }, "age": { "type": "number" }, "nick": { "type": "string" } }, "required": ["name"] });
        assert_eq!(narrower(&person, &wider), None);
        // Narrowing is not.
        let required = json!({ "type": "object", "properties": { "name": { "type": "string" }, "age": { "type": "integer" } }, "required": ["name", "age"] });
        assert_eq!(narrower(&person, &required).as_deref(), Some("age becomes required"));
        let retyped =
            json!({ "type": "object", "properties": { "name": { "type": "integer" } }, "required": ["name"] });
        assert_eq!(narrower(&person, &retyped).as_deref(), Some("'name' may no longer be of type string"));
        let closed =
            json!({ "type": "object", "properties": { "name": { "type": "string" } }, "additionalProperties": false });
        assert!(narrower(&person, &closed).unwrap().contains("age"));
        assert!(narrower(&json!({ "enum": ["a", "b"] }), &json!({ "enum": ["a"] })).unwrap().contains("\"b\""));
        assert!(narrower(&json!({ "type": "string" }), &json!({ "type": "string", "enum": ["x"] })).is_some());
        assert_eq!(
            narrower(
                &json!({ "type": "array", "items": { "type": "integer" } }),
                &json!({ "type": "array", "items": { "type": "number" } })
            ),
            None
        );
        assert_eq!(narrower(&json!({ "type": "integer" }), &json!({})), None, "{{}} accepts everything");
        // What the check does not model is taken as compatible.
        assert_eq!(narrower(&json!({ "$ref": "#/a" }), &json!({ "$ref": "#/b" })), None);
    }
}
