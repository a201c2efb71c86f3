//! The crash test: a mixed workload of objects, workflows, sleeps and calls while the server
//! is killed with SIGKILL at (pseudo-)random points and restarted on the same data directory.
//! Every acknowledged invocation must complete exactly once with the right result and state.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use serde_json::json;

use crate::harness::*;

/// A small deterministic generator, so a failure can be replayed with the same seed.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

#[derive(Clone, Debug)]
enum Op {
    /// Counter/<key>/add 1
    Add { key: String },
    /// SleepWorkflow/<key>/run
    Workflow { key: String },
    /// Greeter/sleepy
    Sleepy,
    /// Greeter/greetAndCount <name> (a call into Counter/<name>)
    Visit { name: String },
}

impl Op {
    fn path(&self) -> String {
        match self {
            Op::Add { key } => format!("Counter/{key}/add"),
            Op::Workflow { key } => format!("SleepWorkflow/{key}/run"),
            Op::Sleepy => "Greeter/sleepy".into(),
            Op::Visit { .. } => "Greeter/greetAndCount".into(),
        }
    }

    fn body(&self) -> String {
        match self {
            Op::Add { .. } => "1".into(),
            Op::Workflow { .. } => "300".into(),
            Op::Sleepy => "200".into(),
            Op::Visit { name } => format!("\"{name}\""),
        }
    }
}

/// Sends until the server answers (it may be down while being restarted).
fn send_until_accepted(ingress: &str, op: &Op, idempotency_key: &str) -> String {
    let mut headers = vec![("content-type", "application/json")];
    if !matches!(op, Op::Workflow { .. }) {
        headers.push(("idempotency-key", idempotency_key));
    }
    eventually(Duration::from_secs(60), &format!("{op:?} to be accepted"), || {
        let mut req = http().post(format!("{ingress}/{}/send", op.path())).body(op.body());
        for (k, v) in &headers {
            req = req.header(*k, *v);
        }
        let r = req.send().ok().filter(|r| r.status().as_u16() == 202)?;
        let v: serde_json::Value = r.json().expect("send answer");
        Some(v["invocationId"].as_str().unwrap().to_owned())
    })
}

fn attach_until_done(ingress: &str, id: &str) -> Reply {
    eventually(Duration::from_secs(60), &format!("{id} to complete"), || {
        let r = http().get(format!("{ingress}/restate/invocation/{id}/attach")).send().ok()?;
        let status = r.status().as_u16();
        let body = r.text().unwrap_or_default();
        (status != 503 && !body.is_empty()).then(|| Reply { status, headers: Default::default(), body })
    })
}

#[test]
fn sigkill_at_random_points_loses_nothing_acknowledged() {
    let seed = std::env::var("CRASH_SEED").ok().and_then(|s| s.parse().ok()).unwrap_or(0x9e37_79b9_7f4a_7c15);
    let mut rng = Rng(seed);
    let (mut perdure, _svc) = Perdure::start_with(&[("PERDURE_RETRY_POLICY__INITIAL_INTERVAL", "50ms")])
        .serving(TsServices::start("h2", "crash"), json!({}));
    let ingress = perdure.ingress.clone();

    let mut ops = Vec::new();
    for n in 0..40 {
        ops.push(Op::Add { key: format!("ck{}", n % 4) });
    }
    for n in 0..6 {
        ops.push(Op::Workflow { key: format!("wf{n}") });
    }
    for _ in 0..8 {
        ops.push(Op::Sleepy);
    }
    for n in 0..10 {
        ops.push(Op::Visit { name: format!("visitor{}", n % 2) });
    }
    // Shuffle deterministically.
    for i in (1..ops.len()).rev() {
        let j = rng.below(i as u64 + 1) as usize;
        ops.swap(i, j);
    }
    let kill_gaps: Vec<u64> = (0..3).map(|_| 150 + rng.below(600)).collect();

    let done = AtomicBool::new(false);
    let accepted: Vec<(Op, String)> = std::thread::scope(|s| {
        let workers: Vec<_> = ops
            .chunks(ops.len().div_ceil(4))
            .enumerate()
            .map(|(w, chunk)| {
                let ingress = &ingress;
                s.spawn(move || {
                    chunk
                        .iter()
                        .enumerate()
                        .map(|(n, op)| {
                            let id = send_until_accepted(ingress, op, &format!("op-{w}-{n}"));
                            std::thread::sleep(Duration::from_millis(40 + (n as u64 * 7) % 50));
                            (op.clone(), id)
                        })
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        // The killer: SIGKILL a few times while the workload runs.
        for gap in &kill_gaps {
            std::thread::sleep(Duration::from_millis(*gap));
            perdure.crash_and_restart_in_place();
        }
        let all = workers.into_iter().flat_map(|w| w.join().expect("worker")).collect();
        done.store(true, Ordering::Release);
        all
    });
    assert!(done.load(Ordering::Acquire));
    assert_eq!(accepted.len(), ops.len());

    // One more crash with everything in flight, then check every acknowledged invocation.
    perdure.crash_and_restart_in_place();
    let mut adds: BTreeMap<String, u64> = BTreeMap::new();
    let mut visits: BTreeMap<String, Vec<u64>> = BTreeMap::new();
    for (op, id) in &accepted {
        let r = attach_until_done(&ingress, id);
        assert_eq!(r.status, 200, "{op:?} {id}: {}", r.body);
        match op {
            Op::Add { key } => *adds.entry(key.clone()).or_default() += 1,
            Op::Workflow { .. } => assert_eq!(r.body, "\"woke up (crash)\""),
            Op::Sleepy => assert!(r.json()["slept_ms"].as_u64().unwrap() >= 200, "{}", r.body),
            Op::Visit { name } => {
                let text = r.json().as_str().unwrap().to_owned();
                let n: u64 = text.split('#').nth(1).unwrap().split(' ').next().unwrap().parse().unwrap();
                visits.entry(name.clone()).or_default().push(n);
            }
        }
    }
    // Exactly once: every add counted once, every visit numbered once.
    for (key, n) in &adds {
        assert_eq!(get(&format!("{ingress}/Counter/{key}/get")).body, n.to_string(), "Counter/{key}");
    }
    for (name, mut seen) in visits {
        seen.sort();
        let expected: Vec<u64> = (1..=seen.len() as u64).collect();
        assert_eq!(seen, expected, "visits of {name}");
        assert_eq!(get(&format!("{ingress}/Counter/{name}/get")).body, expected.len().to_string());
    }
}
