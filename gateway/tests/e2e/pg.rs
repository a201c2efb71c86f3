//! SQL over the PostgreSQL wire protocol: psql itself (Debian's postgresql-client), psycopg 3,
//! and tokio-postgres (extended protocol with binary results, cancel requests, passwords).

use std::process::Command;
use std::time::Duration;

use serde_json::json;

use crate::harness::*;

/// A query that runs for minutes unless stopped.
const ENDLESS: &str = "SELECT count(*) FROM range(1000000000000)";

fn host_port(perdure: &Perdure) -> (String, String) {
    let addr = perdure.pg.trim_start_matches("postgresql://");
    let (host, port) = addr.rsplit_once(':').expect("host:port");
    (host.to_owned(), port.to_owned())
}

/// `psql -c` for each command, in one session: (success, stdout, stderr).
fn psql(perdure: &Perdure, commands: &[&str]) -> (bool, String, String) {
    let (host, port) = host_port(perdure);
    let mut cmd = Command::new("psql");
    cmd.args(["-X", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-h", &host, "-p", &port, "-U", "operator", "-d", "anything"]);
    for c in commands {
        cmd.args(["-c", c]);
    }
    let out =
        cmd.env("PGCONNECT_TIMEOUT", "10").env_remove("PGPASSWORD").output().expect("run psql (postgresql-client)");
    let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
    (out.status.success(), text(&out.stdout), text(&out.stderr))
}

fn psql_ok(perdure: &Perdure, command: &str) -> String {
    let (ok, out, err) = psql(perdure, &[command]);
    assert!(ok, "{command}: {err}");
    out
}

fn psql_err(perdure: &Perdure, command: &str) -> String {
    let (ok, out, err) = psql(perdure, &[command]);
    assert!(!ok, "{command} should fail, answered {out}");
    err
}

/// A deployment with one completed greeting and one invocation sleeping for `sleep_ms`.
fn with_work(perdure: &Perdure, sleep_ms: u64) -> (TsSdk, String, String) {
    let sdk = TsServices::start("h2", "v1");
    let dp = perdure.deploy(&sdk.url(), json!({}));
    let r = post_json(&format!("{}/Greeter/greet", perdure.ingress), "\"sql\"");
    assert_eq!(r.status, 200, "{}", r.body);
    let r = post_json(&format!("{}/Greeter/sleepy/send", perdure.ingress), &sleep_ms.to_string());
    let sleeper = r.json()["invocationId"].as_str().unwrap().to_owned();
    (sdk, dp, sleeper)
}

type TsSdk = SdkProcess;

#[test]
fn psql_reads_the_tables_describes_them_and_refuses_writes() {
    let perdure = Perdure::start();
    let (_sdk, dp, sleeper) = with_work(&perdure, 8000);

    let running = eventually(Duration::from_secs(10), "the sleeper to show", || {
        let out = psql_ok(&perdure, "SELECT id, target FROM sys_invocation WHERE status <> 'completed'");
        out.contains(&sleeper).then_some(out)
    });
    assert!(running.contains("Greeter/sleepy"), "{running}");
    // Joins, aggregates, ORDER BY and LIMIT.
    let joined = psql_ok(
        &perdure,
        "SELECT d.id, count(i.id) AS n FROM sys_deployment d JOIN sys_invocation i ON i.pinned_deployment_id = d.id \
         GROUP BY d.id ORDER BY n DESC LIMIT 5",
    );
    assert_eq!(joined.trim(), format!("{dp}|2"));
    let statuses = psql_ok(&perdure, "SELECT status, count(*) FROM sys_invocation GROUP BY status ORDER BY status");
    assert!(statuses.contains("completed|1"), "{statuses}");

    // What psql asks for \dt and \d.
    let tables = psql_ok(&perdure, "\\dt");
    for t in ["sys_invocation", "sys_journal", "sys_deployment", "state", "sys_idempotency"] {
        assert!(tables.contains(t), "\\dt lacks {t}: {tables}");
    }
    let columns = psql_ok(&perdure, "\\d sys_invocation");
    for c in ["target_service_name", "pinned_deployment_id", "created_at"] {
        assert!(columns.contains(c), "\\d sys_invocation lacks {c}: {columns}");
    }

    // COPY … TO STDOUT (psql's \copy), text and CSV with a header.
    let csv = psql_ok(
        &perdure,
        "COPY (SELECT id, target FROM sys_invocation ORDER BY id) TO STDOUT WITH (FORMAT csv, HEADER)",
    );
    assert!(csv.starts_with("id,target\n") && csv.contains(&format!("{sleeper},Greeter/sleepy")), "{csv}");
    let text = psql_ok(&perdure, "COPY sys_deployment (id) TO STDOUT");
    assert_eq!(text.trim(), dp);

    // Reads only, errors that name what is wrong.
    for write in [
        "DELETE FROM sys_invocation",
        "CREATE TABLE t (a INT)",
        "DROP TABLE state",
        "SET datafusion.execution.batch_size = 1",
        "COPY state FROM STDIN",
    ] {
        let err = psql_err(&perdure, write);
        assert!(err.contains("read-only"), "{write}: {err}");
    }
    let err = psql_err(&perdure, "SELECT * FROM no_such_table");
    assert!(err.contains("no_such_table"), "{err}");
    let err = psql_err(&perdure, "SELEC 1");
    assert!(err.contains("SELEC"), "{err}");

    // The client's statement_timeout stops a statement that runs too long; the session goes on.
    let (ok, _, err) = psql(&perdure, &["SET statement_timeout = 300", ENDLESS]);
    assert!(!ok && err.contains("statement timeout"), "{err}");
    assert_eq!(psql_ok(&perdure, "SELECT 1 + 1").trim(), "2");
    assert!(psql_ok(&perdure, "SELECT version()").starts_with("PostgreSQL 16"), "tools parse version()");
}

#[test]
fn psycopg_binds_parameters_prepares_statements_and_gets_typed_errors() {
    let mut perdure = Perdure::start_capturing(&[]);
    let (_sdk, dp, _) = with_work(&perdure, 100);
    let (host, port) = host_port(&perdure);
    let dsn = format!("host={host} port={port} user=psycopg dbname=restate connect_timeout=10");
    let out = Command::new(venv_python())
        .arg(repo_root().join("tests/sql/psycopg_check.py"))
        .args([&dsn, &dp])
        .output()
        .expect("run python");
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success() && text.contains("ok"), "{text}");
    // After SQL sessions the server still closes its database cleanly.
    assert!(perdure.stop().success());
    assert!(!perdure.log().contains("outlived"), "{}", perdure.log());
}

#[test]
fn the_jdbc_driver_prepares_statements_binds_parameters_and_gets_sqlstates() {
    let perdure = Perdure::start();
    let (_sdk, dp, _) = with_work(&perdure, 100);
    let (host, port) = host_port(&perdure);
    let out = Command::new("java")
        .args(["-cp", "/usr/share/java/postgresql.jar"])
        .arg(repo_root().join("tests/sql/JdbcCheck.java"))
        .arg(format!("jdbc:postgresql://{host}:{port}/restate?connectTimeout=10"))
        .arg(&dp)
        .output()
        .expect("run java (the test command installs libpostgresql-jdbc-java)");
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success() && text.contains("ok"), "{text}");
}

#[test]
fn tokio_postgres_gets_binary_rows_cancels_and_the_admin_and_pg_ports_need_a_token_when_tokens_are_set() {
    const TOKEN: &str = "pg-token-0123456789";
    let perdure = Perdure::start_with(&[("PERDURE_ADMIN__AUTH_TOKENS", &format!("old-token-9876543210,{TOKEN}"))]);
    let (_sdk, dp, _) = with_work(&perdure, 100);
    let (host, port) = host_port(&perdure);

    // The same tokens guard the admin API: a bearer token on every route but /health.
    let r = get(&format!("{}/deployments", perdure.admin));
    assert_eq!(r.status, 401, "{}", r.body);
    assert!(r.json()["message"].as_str().unwrap().contains("Authorization: Bearer"), "{}", r.body);
    let with = |token: &str| {
        let r = http().get(format!("{}/deployments", perdure.admin)).bearer_auth(token).send().unwrap();
        r.status().as_u16()
    };
    assert_eq!(with("wrong-token-000000"), 401);
    assert_eq!(with(TOKEN), 200);
    assert_eq!(with("old-token-9876543210"), 200, "every listed token works (rotation)");
    assert_eq!(get(&format!("{}/health", perdure.admin)).status, 200, "health stays open");
    let (code, out, err) = perdure_cli(&perdure, &["dp", "list"]);
    assert!(code == 0 && out.contains(&dp), "{out}{err}");
    let (ok, out) = restate_cli(&perdure, &["deployments", "list"]);
    assert!(ok && out.contains(&dp), "the restate CLI sends RESTATE_AUTH_TOKEN: {out}");

    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    runtime.block_on(async {
        let config = |password: Option<&str>| {
            let mut c = tokio_postgres::Config::new();
            c.host(&host).port(port.parse().unwrap()).user("anyone").dbname("restate");
            c.connect_timeout(Duration::from_secs(10));
            if let Some(p) = password {
                c.password(p);
            }
            c
        };
        // Asked for a password it does not have, the client gives up.
        assert!(config(None).connect(tokio_postgres::NoTls).await.is_err(), "no password is refused");
        let e = config(Some("wrong-token-000000")).connect(tokio_postgres::NoTls).await.err().expect("a wrong one too");
        assert_eq!(e.code(), Some(&tokio_postgres::error::SqlState::INVALID_PASSWORD), "{e}");

        let (client, connection) =
            config(Some(TOKEN)).connect(tokio_postgres::NoTls).await.expect("connect with the token");
        tokio::spawn(connection);
        // Extended protocol: a typed parameter, binary results.
        let rows = client
            .query("SELECT id, created_at, pinned_invocations FROM sys_deployment WHERE id = $1", &[&dp])
            .await
            .unwrap();
        assert_eq!(rows.len(), 1);
        assert_eq!(rows[0].get::<_, String>(0), dp);
        let count: i64 = client.query_one("SELECT count(*) FROM sys_invocation", &[]).await.unwrap().get(0);
        assert!(count >= 1, "{count}");
        let statement =
            client.prepare("SELECT count(*) FROM sys_invocation WHERE target_service_name = $1").await.unwrap();
        for _ in 0..3 {
            let n: i64 = client.query_one(&statement, &[&"Greeter"]).await.unwrap().get(0);
            assert!(n >= 1);
        }
        let e = client.simple_query("UPDATE state SET value = NULL").await.expect_err("writes are refused");
        assert_eq!(e.code(), Some(&tokio_postgres::error::SqlState::READ_ONLY_SQL_TRANSACTION), "{e}");

        // A cancel request (what psql sends on Ctrl-C) stops a running statement. One that
        // arrives before the statement runs stops nothing: send them until it has ended.
        let token = client.cancel_token();
        let ended = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let canceller = tokio::spawn({
            let ended = ended.clone();
            async move {
                loop {
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    if ended.load(std::sync::atomic::Ordering::SeqCst) {
                        return Ok::<(), tokio_postgres::Error>(());
                    }
                    token.cancel_query(tokio_postgres::NoTls).await?;
                }
            }
        });
        let started = std::time::Instant::now();
        let e = client.simple_query(ENDLESS).await.expect_err("the endless query is cancelled");
        ended.store(true, std::sync::atomic::Ordering::SeqCst);
        assert_eq!(e.code(), Some(&tokio_postgres::error::SqlState::QUERY_CANCELED), "{e}");
        assert!(started.elapsed() < Duration::from_secs(20), "cancel took {:?}", started.elapsed());
        canceller.await.unwrap().unwrap();
        let n: i64 = client.query_one("SELECT count(*) FROM sys_deployment", &[]).await.unwrap().get(0);
        assert_eq!(n, 1, "the connection keeps working after a cancel");
    });
}
