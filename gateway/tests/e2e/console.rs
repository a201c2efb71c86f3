//! The web console at `/ui` in a real headless Chromium, driven over WebDriver
//! (`chromedriver` and `chromium`, Debian's packages): against a server with
//! `admin.auth-tokens`, the page asks for the token, shows a deployment draining while an
//! invocation sleeps on it, that invocation's journal with its sleep, cancels it through the
//! confirmation dialog, and sees it end and the old deployment drain and go.
//!
//! With `PERDURE_CONSOLE_SCREENSHOTS=<dir>` the test saves the main views there (the
//! pictures of `docs/operations.md` in `docs/console/` come from it).

use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::{Value, json};

use crate::harness::*;

const TOKEN: &str = "console-test-token";
const WAIT: Duration = Duration::from_secs(30);

/// `chromedriver` on a free loopback port with one headless Chromium session; both end with it.
struct Browser {
    rt: tokio::runtime::Runtime,
    client: Option<Client>,
    driver: Child,
    _profile: tempfile::TempDir,
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0").local_addr().expect("local addr").port()
}

impl Browser {
    fn start() -> Self {
        let chromedriver = which("chromedriver");
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
        // A port taken between our probe and chromedriver's bind makes it exit: try another.
        let (driver, port) = (0..5)
            .find_map(|_| {
                let port = free_port();
                let mut child = Command::new(&chromedriver)
                    .arg(format!("--port={port}"))
                    .arg("--allowed-ips=127.0.0.1")
                    .stdout(Stdio::null())
                    .stderr(Stdio::null())
                    .spawn()
                    .expect("spawn chromedriver");
                let start = Instant::now();
                while start.elapsed() < Duration::from_secs(20) {
                    if child.try_wait().ok().flatten().is_some() {
                        return None;
                    }
                    if http()
                        .get(format!("http://127.0.0.1:{port}/status"))
                        .send()
                        .is_ok_and(|r| r.status().is_success())
                    {
                        return Some((child, port));
                    }
                    std::thread::sleep(Duration::from_millis(50));
                }
                let _ = child.kill();
                let _ = child.wait();
                None
            })
            .expect("chromedriver did not start");
        let profile = tempfile::tempdir().expect("profile dir");
        let mut capabilities = serde_json::Map::new();
        capabilities.insert(
            "goog:chromeOptions".into(),
            json!({
                "binary": "/usr/bin/chromium",
                "args": [
                    "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                    "--window-size=1360,1000", "--no-first-run", "--no-default-browser-check",
                    format!("--user-data-dir={}", profile.path().display()),
                ],
            }),
        );
        let client = rt
            .block_on(
                ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
                    .capabilities(capabilities)
                    .connect(&format!("http://127.0.0.1:{port}")),
            )
            .expect("a Chromium session");
        Self { rt, client: Some(client), driver, _profile: profile }
    }

    fn client(&self) -> &Client {
        self.client.as_ref().expect("session open")
    }

    fn goto(&self, url: &str) {
        self.rt.block_on(self.client().goto(url)).unwrap_or_else(|e| panic!("open {url}: {e}"));
    }

    /// Evaluates `expression` in the page.
    fn eval(&self, expression: &str) -> Value {
        self.rt
            .block_on(self.client().execute(&format!("return ({expression});"), vec![]))
            .unwrap_or_else(|e| panic!("evaluate {expression}: {e}"))
    }

    /// The text of the first element matching `css`, once there is one.
    fn text(&self, css: &str) -> Option<String> {
        let found = self.eval(&format!("document.querySelector({})?.textContent ?? null", json!(css)));
        found.as_str().map(|s| s.trim().to_owned())
    }

    /// Polls until the element matching `css` has text that `check` accepts; that text.
    fn wait_text(&self, what: &str, css: &str, check: impl Fn(&str) -> bool) -> String {
        let start = Instant::now();
        loop {
            let text = self.text(css);
            if let Some(t) = text.as_deref().filter(|t| check(t)) {
                return t.to_owned();
            }
            assert!(start.elapsed() < WAIT, "timed out waiting for {what} ({css}); last text: {text:?}");
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    fn wait_for(&self, what: &str, css: &str) {
        self.wait_text(what, css, |_| true);
    }

    /// Polls until a page expression is true.
    fn wait_true(&self, what: &str, expression: &str) {
        let start = Instant::now();
        while self.eval(expression) != Value::Bool(true) {
            assert!(start.elapsed() < WAIT, "timed out waiting for {what} ({expression})");
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Clicks the element matching `css`, as a user would (a redraw of the view between
    /// finding and clicking it is retried).
    fn click(&self, css: &str) {
        let start = Instant::now();
        loop {
            let clicked = self.rt.block_on(async {
                let element = self.client().find(Locator::Css(css)).await?;
                element.click().await
            });
            match clicked {
                Ok(()) => return,
                Err(e) => assert!(start.elapsed() < WAIT, "could not click {css}: {e}"),
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    fn type_into(&self, css: &str, text: &str) {
        self.rt
            .block_on(async { self.client().find(Locator::Css(css)).await?.send_keys(text).await })
            .unwrap_or_else(|e| panic!("type into {css}: {e}"));
    }

    /// Confirms the open confirmation dialog.
    fn confirm(&self) {
        self.wait_true("the confirmation dialog", "document.getElementById('confirm').open");
        self.click("[data-testid=confirm-ok]");
        self.wait_true("the dialog to close", "!document.getElementById('confirm').open");
    }

    /// Saves what the browser shows as `<dir>/<name>.png`, when PERDURE_CONSOLE_SCREENSHOTS is set.
    fn screenshot(&self, name: &str) {
        let Some(dir) = std::env::var_os("PERDURE_CONSOLE_SCREENSHOTS").map(PathBuf::from) else { return };
        std::fs::create_dir_all(&dir).expect("screenshot dir");
        let png = self.rt.block_on(self.client().screenshot()).expect("screenshot");
        std::fs::write(dir.join(format!("{name}.png")), png).expect("write screenshot");
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        if let Some(client) = self.client.take() {
            let _ = self.rt.block_on(client.close());
        }
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}

fn which(program: &str) -> PathBuf {
    std::env::var_os("PATH")
        .and_then(|paths| std::env::split_paths(&paths).map(|p| p.join(program)).find(|p| p.is_file()))
        .unwrap_or_else(|| panic!("{program} not found: run scripts/system-deps.sh --with-nextest (it installs chromium and chromium-driver)"))
}

fn admin_get(perdure: &Perdure, path: &str) -> Reply {
    let r = http().get(format!("{}{path}", perdure.admin)).bearer_auth(TOKEN).send().expect("GET");
    let status = r.status().as_u16();
    let headers = r.headers().clone();
    Reply { status, headers, body: r.text().expect("body") }
}

fn send(perdure: &Perdure, path: &str, body: &str) -> String {
    let r = post_json(&format!("{}/{path}/send", perdure.ingress), body);
    assert_eq!(r.status, 202, "{path}: {}", r.body);
    r.json()["invocationId"].as_str().expect("an invocation id").to_owned()
}

fn register(perdure: &Perdure, svc: &SdkProcess) -> String {
    let (status, body) = perdure.register(&svc.url(), json!({}));
    assert!(status == 201 || status == 200, "{status}: {body}");
    body["id"].as_str().expect("a deployment id").to_owned()
}

fn row(testid: &str, attr: &str, id: &str) -> String {
    format!("[data-testid={testid}][{attr}=\"{id}\"]")
}

#[test]
fn the_console_shows_a_draining_deployment_and_cancels_the_invocation_sleeping_on_it() {
    let perdure = Perdure::start_with(&[("PERDURE_ADMIN__AUTH_TOKENS", TOKEN)]);
    let v1 = TsServices::start("h2", "v1");
    let dp1 = register(&perdure, &v1);
    // Some history for the lists: finished calls, a failure, object state.
    for name in ["ada", "grace"] {
        assert_eq!(post_json(&format!("{}/Greeter/greet", perdure.ingress), &format!("\"{name}\"")).status, 200);
    }
    assert_eq!(post_json(&format!("{}/Counter/console/add", perdure.ingress), "5").status, 200);
    let failed = post_json(&format!("{}/Greeter/fail", perdure.ingress), "\"on purpose\"");
    assert!(failed.status >= 400, "{}", failed.body);
    let sleeper = send(&perdure, "Greeter/sleepy", "600000");
    let dp1_path = format!("/deployments/{dp1}");
    eventually(WAIT, "the sleeper to be pinned to v1", || {
        (admin_get(&perdure, &dp1_path).json()["pinned_invocations"]["total"] == 1).then_some(())
    });
    let v2 = TsServices::start("h2", "v2");
    let dp2 = register(&perdure, &v2);

    let browser = Browser::start();
    // The shell loads without a token; the API calls then ask for one.
    browser.goto(&format!("{}/ui", perdure.admin));
    let asked = browser.wait_text("the token prompt", "[data-testid=auth-message]", |t| !t.is_empty());
    assert!(asked.contains("admin.auth-tokens"), "{asked}");
    browser.type_into("[data-testid=auth-token-input]", TOKEN);
    browser.click("[data-testid=auth-submit]");

    // Deployments: v1 draining with the sleeper pinned, v2 active; v1 cannot be removed yet.
    let old = row("deployment-row", "data-deployment-id", &dp1);
    let new = row("deployment-row", "data-deployment-id", &dp2);
    browser.wait_text("v1 draining", &format!("{old} [data-testid=deployment-status]"), |t| t == "draining");
    browser.wait_text("v2 active", &format!("{new} [data-testid=deployment-status]"), |t| t == "active");
    assert!(browser.eval("document.getElementById('auth').hidden").as_bool().unwrap(), "the token prompt went away");
    let pinned = browser.text(&format!("{old} [data-testid=deployment-pinned]")).unwrap();
    assert!(pinned.starts_with("1 not completed"), "{pinned}");
    assert_eq!(
        browser.eval(&format!("document.querySelector('{old} [data-testid=deployment-remove]').disabled")),
        json!(true)
    );
    let services = browser.text(&format!("{new} [data-testid=deployment-services]")).unwrap();
    assert!(services.contains("Greeter") && services.contains("revision 2"), "{services}");
    browser.screenshot("deployments");

    // Invocations: the sleeper is listed, and the text filter finds it alone.
    browser.click("[data-testid=nav-invocations]");
    let sleeper_row = row("invocation-row", "data-invocation-id", &sleeper);
    browser.wait_for("the sleeper in the list", &sleeper_row);
    browser.wait_true(
        "the other invocations listed",
        "document.querySelectorAll('[data-testid=invocation-row]').length >= 5",
    );
    browser.screenshot("invocations");
    browser.type_into("[data-testid=invocation-filter-text]", &sleeper[..sleeper.len() - 2]);
    browser
        .wait_true("only the sleeper listed", "document.querySelectorAll('[data-testid=invocation-row]').length === 1");
    assert!(browser.text(&sleeper_row).is_some());

    // Its timeline: the sleep, not completed, with when it wakes up.
    browser.click(&format!("{sleeper_row} [data-testid=invocation-link]"));
    let sleep = "[data-testid=journal-entry][data-entry-type=\"Command: Sleep\"]";
    let wakes =
        browser.wait_text("the sleep in the journal", &format!("{sleep} [data-testid=journal-sleep]"), |_| true);
    assert!(wakes.starts_with("Sleeps until") && wakes.contains("(in "), "{wakes}");
    assert_eq!(browser.eval(&format!("document.querySelector('{sleep}').dataset.completed")), json!("false"));
    assert_eq!(browser.text("[data-testid=invocation-deployment]").as_deref(), Some(dp1.as_str()));
    browser.screenshot("invocation");

    // Cancel it through the confirmation; it ends with the cancellation.
    browser.click("[data-testid=action-cancel]");
    browser.confirm();
    browser.wait_text("the sleeper to end", "[data-testid=invocation-detail-status]", |t| t == "completed: failed");
    let outcome = browser.wait_text("its outcome", "[data-testid=invocation-outcome]", |_| true);
    assert!(outcome.to_lowercase().contains("cancel"), "{outcome}");
    let ended =
        query_rows(&perdure, &format!("SELECT status, completion_result FROM sys_invocation WHERE id = '{sleeper}'"));
    assert_eq!(ended, vec![json!({ "status": "completed", "completion_result": "failure" })]);

    // v1 has drained: now it can be removed, and goes.
    browser.click("[data-testid=nav-deployments]");
    browser.wait_text("v1 drained", &format!("{old} [data-testid=deployment-status]"), |t| t == "drained");
    browser.wait_true(
        "Remove enabled",
        &format!("document.querySelector('{old} [data-testid=deployment-remove]').disabled === false"),
    );
    browser.click(&format!("{old} [data-testid=deployment-remove]"));
    browser.confirm();
    browser.wait_true("v1 gone from the list", &format!("document.querySelector('{old}') === null"));
    assert_eq!(admin_get(&perdure, &dp1_path).status, 404);
    browser.wait_for("v2 still listed", &new);
}
