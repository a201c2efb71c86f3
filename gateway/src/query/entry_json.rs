//! `sys_journal.entry_json`: a journal entry as JSON, in the shape Restate 1.7 gives it
//! (`{"Command":{"Output":{"result":{"Success":[…]},"name":""}}}`, byte strings as arrays of
//! numbers), which the `restate` CLI reads to show a journal. Input, Output, state, Sleep and
//! Call entries follow Restate's recorded answers field for field; the rest keep the same
//! style with the fields their messages carry.

use serde_json::{Value as Json, json};

use crate::protocol::messages::*;

fn bytes(b: &[u8]) -> Json {
    Json::Array(b.iter().map(|x| Json::from(*x)).collect())
}

fn text(b: &[u8]) -> Json {
    Json::String(String::from_utf8_lossy(b).into_owned())
}

fn headers(hs: &[Header]) -> Json {
    Json::Array(hs.iter().map(|h| json!({ "name": h.key, "value": h.value })).collect())
}

fn failure(f: &Failure) -> Json {
    json!({ "Failure": { "code": f.code, "message": f.message } })
}

fn value(v: &Option<Value>) -> Json {
    bytes(v.as_ref().map(|v| &v.content[..]).unwrap_or_default())
}

fn completion(r: &Option<CompletionResult>) -> Json {
    match r {
        Some(CompletionResult::Value(v)) => json!({ "Success": bytes(&v.content) }),
        Some(CompletionResult::Failure(f)) => failure(f),
        None => Json::Null,
    }
}

fn attach_target(t: &Option<AttachTarget>) -> Json {
    match t {
        Some(AttachTarget::InvocationId(id)) => json!({ "InvocationId": id }),
        Some(AttachTarget::IdempotentRequestTarget(t)) => json!({ "IdempotentRequest": format!("{t:?}") }),
        Some(AttachTarget::WorkflowTarget(t)) => json!({ "Workflow": format!("{t:?}") }),
        None => Json::Null,
    }
}

/// The call's target the way Restate's `invocation_target` names it.
fn invocation_target(service: &str, key: &str, handler: &str) -> Json {
    if key.is_empty() {
        json!({ "Service": { "name": service, "handler": handler } })
    } else {
        json!({ "Keyed": { "name": service, "key": key, "handler": handler } })
    }
}

/// What a call or send asks for.
fn request(
    invoked_id: Option<&str>,
    (service, key, handler): (&str, &str, &str),
    parameter: &[u8],
    hs: &[Header],
    idempotency_key: &Option<String>,
) -> Json {
    json!({
        "invocation_id": invoked_id,
        "invocation_target": invocation_target(service, key, handler),
        "parameter": bytes(parameter),
        "headers": headers(hs),
        "idempotency_key": idempotency_key,
    })
}

/// The JSON of one command.
fn command(c: &JournalCommand, invoked_id: Option<&str>) -> Json {
    let (name, body) = match c {
        JournalCommand::Input(m) => {
            ("Input", json!({ "headers": headers(&m.headers), "payload": value(&m.value), "name": m.name }))
        }
        JournalCommand::Output(m) => {
            let result = match &m.result {
                Some(OutputResult::Value(v)) => json!({ "Success": bytes(&v.content) }),
                Some(OutputResult::Failure(f)) => failure(f),
                None => Json::Null,
            };
            ("Output", json!({ "result": result, "name": m.name }))
        }
        JournalCommand::GetLazyState(m) => {
            ("GetLazyState", json!({ "key": text(&m.key), "completion_id": m.result_completion_id, "name": m.name }))
        }
        JournalCommand::SetState(m) => {
            ("SetState", json!({ "key": text(&m.key), "value": value(&m.value), "name": m.name }))
        }
        JournalCommand::ClearState(m) => ("ClearState", json!({ "key": text(&m.key), "name": m.name })),
        JournalCommand::ClearAllState(m) => ("ClearAllState", json!({ "name": m.name })),
        JournalCommand::GetLazyStateKeys(m) => {
            ("GetLazyStateKeys", json!({ "completion_id": m.result_completion_id, "name": m.name }))
        }
        JournalCommand::GetEagerState(m) => {
            let result = match &m.result {
                Some(EagerStateResult::Value(v)) => json!({ "Success": bytes(&v.content) }),
                _ => json!("Void"),
            };
            ("GetEagerState", json!({ "key": text(&m.key), "result": result, "name": m.name }))
        }
        JournalCommand::GetEagerStateKeys(m) => {
            let keys: Vec<Json> = m.value.iter().flat_map(|k| k.keys.iter()).map(|k| text(k)).collect();
            ("GetEagerStateKeys", json!({ "state_keys": keys, "name": m.name }))
        }
        JournalCommand::GetPromise(m) => {
            ("GetPromise", json!({ "key": m.key, "completion_id": m.result_completion_id, "name": m.name }))
        }
        JournalCommand::PeekPromise(m) => {
            ("PeekPromise", json!({ "key": m.key, "completion_id": m.result_completion_id, "name": m.name }))
        }
        JournalCommand::CompletePromise(m) => (
            "CompletePromise",
            json!({ "key": m.key, "value": completion(&m.completion), "completion_id": m.result_completion_id, "name": m.name }),
        ),
        JournalCommand::Sleep(m) => (
            "Sleep",
            json!({ "wake_up_time": m.wake_up_time, "completion_id": m.result_completion_id, "name": m.name }),
        ),
        JournalCommand::Call(m) => (
            "Call",
            json!({
                "request": request(invoked_id, (&m.service_name, &m.key, &m.handler_name), &m.parameter, &m.headers, &m.idempotency_key),
                "invocation_id_completion_id": m.invocation_id_notification_idx,
                "result_completion_id": m.result_completion_id,
                "name": m.name,
            }),
        ),
        JournalCommand::OneWayCall(m) => (
            "OneWayCall",
            json!({
                "request": request(invoked_id, (&m.service_name, &m.key, &m.handler_name), &m.parameter, &m.headers, &m.idempotency_key),
                "invoke_time": m.invoke_time,
                "invocation_id_completion_id": m.invocation_id_notification_idx,
                "name": m.name,
            }),
        ),
        JournalCommand::SendSignal(m) => {
            let id = match &m.signal_id {
                Some(SignalId::Idx(i)) => json!({ "Index": i }),
                Some(SignalId::Name(n)) => json!({ "Name": n }),
                None => Json::Null,
            };
            let result = match &m.result {
                Some(SignalResult::Value(v)) => json!({ "Success": bytes(&v.content) }),
                Some(SignalResult::Failure(f)) => failure(f),
                _ => json!("Void"),
            };
            (
                "SendSignal",
                json!({ "target_invocation_id": m.target_invocation_id, "signal_id": id, "result": result, "name": m.entry_name }),
            )
        }
        JournalCommand::Run(m) => ("Run", json!({ "completion_id": m.result_completion_id, "name": m.name })),
        JournalCommand::AttachInvocation(m) => (
            "AttachInvocation",
            json!({ "target": attach_target(&m.target), "completion_id": m.result_completion_id, "name": m.name }),
        ),
        JournalCommand::GetInvocationOutput(m) => (
            "GetInvocationOutput",
            json!({ "target": attach_target(&m.target), "completion_id": m.result_completion_id, "name": m.name }),
        ),
        JournalCommand::CompleteAwakeable(m) => {
            ("CompleteAwakeable", json!({ "id": m.awakeable_id, "value": completion(&m.result), "name": m.name }))
        }
    };
    json!({ "Command": { name: body } })
}

/// The JSON of one notification of type `ty`.
fn notification(ty: u16, n: &NotificationMessage) -> Json {
    let result = match &n.result {
        Some(NotificationResult::Void(_)) | None => Json::Null,
        Some(NotificationResult::Value(v)) => json!({ "Success": bytes(&v.content) }),
        Some(NotificationResult::Failure(f)) => failure(f),
        Some(NotificationResult::InvocationId(id)) => json!({ "InvocationId": id }),
        Some(NotificationResult::StateKeys(k)) => {
            json!({ "StateKeys": k.keys.iter().map(|k| text(k)).collect::<Vec<_>>() })
        }
    };
    let with_result = |mut body: Json| {
        if !result.is_null() {
            body["result"] = result.clone();
        }
        body
    };
    match &n.id {
        Some(NotificationId::CompletionId(c)) => {
            let kind =
                message_name(ty).trim_end_matches("CompletionNotification").trim_end_matches("Notification").to_owned();
            json!({ "Notification": { "Completion": { kind: with_result(json!({ "completion_id": c })) } } })
        }
        Some(NotificationId::SignalId(i)) => {
            json!({ "Notification": { "Signal": with_result(json!({ "id": { "Index": i } })) } })
        }
        Some(NotificationId::SignalName(s)) => {
            json!({ "Notification": { "Signal": with_result(json!({ "id": { "Name": s } })) } })
        }
        None => json!({ "Notification": with_result(json!({})) }),
    }
}

/// `entry_json` and `entry_lite_json` of one journal entry, `None` when its payload does not
/// decode. `invoked_id` is the invocation a call started, when known.
pub fn entry_json(ty: u16, payload: &bytes::Bytes, invoked_id: Option<&str>) -> Option<(String, String)> {
    use prost::Message as _;
    let json = if is_notification(ty) {
        notification(ty, &NotificationMessage::decode(payload.clone()).ok()?)
    } else {
        command(&JournalCommand::decode(ty, payload.clone()).ok()?, invoked_id)
    };
    Some((json.to_string(), lite(json).to_string()))
}

/// The entry without its payloads (as Restate's `entry_lite_json`): values, parameters,
/// headers and names left out, results named by their kind only, a call's request inlined.
fn lite(json: Json) -> Json {
    match json {
        Json::Object(map) => {
            let mut out = serde_json::Map::new();
            for (k, v) in map {
                match (k.as_str(), v) {
                    ("headers" | "payload" | "value" | "parameter" | "name", _) => {}
                    ("request", Json::Object(request)) => {
                        for (rk, rv) in request {
                            if !matches!(rk.as_str(), "headers" | "parameter") {
                                out.insert(rk, lite(rv));
                            }
                        }
                    }
                    (_, Json::Object(inner))
                        if inner.len() == 1 && (inner.contains_key("Success") || inner.contains_key("Failure")) =>
                    {
                        let kind = inner.keys().next().cloned().unwrap_or_default();
                        out.insert(k, Json::String(kind));
                    }
                    (_, v) => {
                        out.insert(k, lite(v));
                    }
                }
            }
            Json::Object(out)
        }
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::BytesMut;

    fn payload(c: &JournalCommand) -> bytes::Bytes {
        let mut out = BytesMut::new();
        c.encode(&mut out);
        // A frame: 8-byte header, then the message.
        out.split_off(8).freeze()
    }

    /// The shapes Restate 1.7 answers (recorded in its fixtures) for the entries the CLI shows.
    #[test]
    fn input_output_state_and_sleep_entries_read_as_restates() {
        let input = JournalCommand::Input(InputCommandMessage {
            headers: vec![Header { key: "accept".into(), value: "*/*".into() }],
            value: Some(Value::new(&b"1"[..])),
            name: String::new(),
        });
        assert_eq!(
            entry_json(ty::INPUT_COMMAND, &payload(&input), None).unwrap(),
            (
                r#"{"Command":{"Input":{"headers":[{"name":"accept","value":"*/*"}],"name":"","payload":[49]}}}"#
                    .into(),
                r#"{"Command":{"Input":{}}}"#.into()
            )
        );
        let output = JournalCommand::Output(OutputCommandMessage {
            result: Some(OutputResult::Value(Value::new(&b"7"[..]))),
            name: String::new(),
        });
        assert_eq!(
            entry_json(ty::OUTPUT_COMMAND, &payload(&output), None).unwrap().1,
            r#"{"Command":{"Output":{"result":"Success"}}}"#
        );
        let eager = JournalCommand::GetEagerState(GetEagerStateCommandMessage {
            key: "count".into(),
            result: Some(EagerStateResult::Void(Void {})),
            name: String::new(),
        });
        assert_eq!(
            entry_json(ty::GET_EAGER_STATE_COMMAND, &payload(&eager), None).unwrap().0,
            r#"{"Command":{"GetEagerState":{"key":"count","name":"","result":"Void"}}}"#
        );
        let sleep = JournalCommand::Sleep(SleepCommandMessage {
            wake_up_time: 1795350492347,
            result_completion_id: 1,
            name: String::new(),
        });
        assert_eq!(
            entry_json(ty::SLEEP_COMMAND, &payload(&sleep), None).unwrap(),
            (
                r#"{"Command":{"Sleep":{"completion_id":1,"name":"","wake_up_time":1795350492347}}}"#.into(),
                r#"{"Command":{"Sleep":{"completion_id":1,"wake_up_time":1795350492347}}}"#.into()
            )
        );
        let woke =
            NotificationMessage { id: Some(NotificationId::CompletionId(1)), result: Some(NotificationResult::void()) };
        let raw = prost::Message::encode_to_vec(&woke).into();
        assert_eq!(
            entry_json(ty::SLEEP_COMPLETION_NOTIFICATION, &raw, None).unwrap().0,
            r#"{"Notification":{"Completion":{"Sleep":{"completion_id":1}}}}"#
        );
        assert_eq!(entry_json(ty::SLEEP_COMMAND, &bytes::Bytes::from_static(&[0xff, 0xff]), None), None);
    }
}
