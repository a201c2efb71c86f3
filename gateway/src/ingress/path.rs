//! Ingress paths (Restate 1.7): the legacy `/{Svc}[/{key}]/{handler}[/send]` form, the
//! `/restate/{call,send}/…` forms, attach/output by id, idempotency key or workflow key,
//! awakeables and health. Segments are percent-decoded.

use super::error::Error;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Op {
    /// Block until done.
    Attach,
    /// Answer now (470 while running).
    Output,
}

#[derive(Debug, PartialEq, Eq)]
pub enum Route {
    Health,
    /// A call or send; `parts` is `[key,] handler`, split once the service type is known.
    Call {
        service: String,
        parts: Vec<String>,
        send: bool,
    },
    ById {
        id: String,
        op: Op,
    },
    /// `/restate/invocation/{Svc}[/{key}]/{handler}/{idempotency key}/{op}`.
    ByIdempotencyKey {
        service: String,
        parts: Vec<String>,
        idempotency_key: String,
        op: Op,
    },
    Workflow {
        service: String,
        key: String,
        op: Op,
    },
    Awakeable {
        id: String,
        resolve: bool,
    },
    /// `POST /restate/{attach,output,lookup}` with the target in a JSON body (1.7).
    ByBody {
        action: BodyAction,
    },
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BodyAction {
    Result(Op),
    Lookup,
}

fn op(s: &str) -> Option<Op> {
    match s {
        "attach" => Some(Op::Attach),
        "output" => Some(Op::Output),
        _ => None,
    }
}

pub fn parse(path: &str) -> Result<Route, Error> {
    let bad = || Error::BadPath(path.to_owned());
    let trimmed = path.trim_end_matches('/');
    let slashes = trimmed.matches('/').count();
    if !((2..=7).contains(&slashes) || (slashes == 1 && trimmed.len() > 1)) {
        return Err(bad());
    }
    let segments: Vec<String> = trimmed
        .strip_prefix('/')
        .ok_or_else(bad)?
        .split('/')
        .map(percent_decode)
        .collect::<Option<_>>()
        .ok_or_else(bad)?;
    if segments.iter().any(String::is_empty) {
        return Err(bad());
    }
    let s: Vec<&str> = segments.iter().map(String::as_str).collect();
    if s[0] != "restate" {
        if s.len() < 2 {
            return Err(Error::BadCallPath);
        }
        let send = s.len() >= 3 && s[s.len() - 1] == "send";
        let end = if send { s.len() - 1 } else { s.len() };
        if end - 1 > 2 {
            return Err(Error::BadCallPath);
        }
        return Ok(Route::Call { service: s[0].to_owned(), parts: segments[1..end].to_vec(), send });
    }
    match &s[1..] {
        ["health"] => Ok(Route::Health),
        ["attach"] => Ok(Route::ByBody { action: BodyAction::Result(Op::Attach) }),
        ["output"] => Ok(Route::ByBody { action: BodyAction::Result(Op::Output) }),
        ["lookup"] => Ok(Route::ByBody { action: BodyAction::Lookup }),
        ["scope", ..] => Err(Error::Scoped),
        ["call" | "send", service, rest @ ..] if (1..=2).contains(&rest.len()) => Ok(Route::Call {
            service: (*service).to_owned(),
            parts: rest.iter().map(|p| (*p).to_owned()).collect(),
            send: s[1] == "send",
        }),
        ["invocation", id, o] => Ok(Route::ById { id: (*id).to_owned(), op: op(o).ok_or_else(bad)? }),
        ["attach", id] => Ok(Route::ById { id: (*id).to_owned(), op: Op::Attach }),
        ["output", id] => Ok(Route::ById { id: (*id).to_owned(), op: Op::Output }),
        ["invocation", service, rest @ .., ik, o] if (1..=2).contains(&rest.len()) => Ok(Route::ByIdempotencyKey {
            service: (*service).to_owned(),
            parts: rest.iter().map(|p| (*p).to_owned()).collect(),
            idempotency_key: (*ik).to_owned(),
            op: op(o).ok_or_else(bad)?,
        }),
        ["workflow", service, key, o] => {
            Ok(Route::Workflow { service: (*service).to_owned(), key: (*key).to_owned(), op: op(o).ok_or_else(bad)? })
        }
        ["awakeables" | "a", id, action @ ("resolve" | "reject")] => {
            Ok(Route::Awakeable { id: (*id).to_owned(), resolve: *action == "resolve" })
        }
        _ => Err(bad()),
    }
}

/// Decodes `%XX` escapes; `None` if an escape is malformed or the result is not UTF-8.
pub fn percent_decode(s: &str) -> Option<String> {
    if !s.contains('%') {
        return Some(s.to_owned());
    }
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = std::str::from_utf8(bytes.get(i + 1..i + 3)?).ok()?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn call(service: &str, parts: &[&str], send: bool) -> Route {
        Route::Call { service: service.into(), parts: parts.iter().map(|p| p.to_string()).collect(), send }
    }

    #[test]
    fn legacy_and_restate_call_paths() {
        assert_eq!(parse("/Greeter/greet").unwrap(), call("Greeter", &["greet"], false));
        assert_eq!(parse("/Greeter/greet/send").unwrap(), call("Greeter", &["greet"], true));
        assert_eq!(parse("/Counter/a%20b/add").unwrap(), call("Counter", &["a b", "add"], false));
        assert_eq!(parse("/Counter/k/add/send").unwrap(), call("Counter", &["k", "add"], true));
        assert_eq!(parse("/restate/send/Counter/k/add").unwrap(), call("Counter", &["k", "add"], true));
        assert_eq!(parse("/Greeter/greet/").unwrap(), call("Greeter", &["greet"], false));
    }

    #[test]
    fn restate_paths() {
        assert_eq!(parse("/restate/health").unwrap(), Route::Health);
        assert_eq!(
            parse("/restate/invocation/inv_1x/attach").unwrap(),
            Route::ById { id: "inv_1x".into(), op: Op::Attach }
        );
        assert_eq!(parse("/restate/output/inv_1x").unwrap(), Route::ById { id: "inv_1x".into(), op: Op::Output });
        assert_eq!(
            parse("/restate/invocation/Greeter/greet/k1/output").unwrap(),
            Route::ByIdempotencyKey {
                service: "Greeter".into(),
                parts: vec!["greet".into()],
                idempotency_key: "k1".into(),
                op: Op::Output
            }
        );
        assert_eq!(
            parse("/restate/workflow/Wf/w1/attach").unwrap(),
            Route::Workflow { service: "Wf".into(), key: "w1".into(), op: Op::Attach }
        );
        assert_eq!(
            parse("/restate/a/sign_1x/reject").unwrap(),
            Route::Awakeable { id: "sign_1x".into(), resolve: false }
        );
    }

    #[test]
    fn bad_paths() {
        assert!(matches!(parse("/"), Err(Error::BadPath(p)) if p == "/"));
        assert!(matches!(parse("/Counter"), Err(Error::BadCallPath)));
        assert!(matches!(parse("/a/b/c/d/e"), Err(Error::BadCallPath)));
        assert!(matches!(parse("/restate/nope"), Err(Error::BadPath(_))));
        assert!(parse("/a/b/c/d/e/f/g/h/i").is_err());
        assert!(parse("/Greeter/%zz").is_err());
        assert!(matches!(parse("/restate/scope/t1/call/Greeter/greet"), Err(Error::Scoped)));
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig { cases: crate::fuzz_cases(5000), failure_persistence: None, ..Default::default() })]

        /// Any path a client sends is a route or an error, never a panic.
        #[test]
        fn arbitrary_paths_route_or_fail(path in "(/([a-zA-Z0-9_.~-]|%[0-9a-fA-F]{0,2}|%|/|restate|send|call|invocation|workflow|attach|output|awakeables|a){0,4}){0,9}") {
            let _ = parse(&path);
        }

        #[test]
        fn arbitrary_text_routes_or_fails(path in "\\PC{0,64}") {
            let _ = parse(&path);
            let _ = percent_decode(&path);
        }
    }
}
