//! The admin API client: JSON in, JSON out, the server's error message kept whole.

use std::time::Duration;

use serde_json::Value;

use crate::error_chain;

/// Why a command did not do what it was asked.
#[derive(Debug, thiserror::Error)]
pub enum Failure {
    /// The server answered with an error: its message (and the status code).
    #[error("{message} ({status})")]
    Refused { status: u16, message: String, body: Value },
    #[error("cannot reach the admin API at {url}: {reason}")]
    Unreachable { url: String, reason: String },
    /// Something the CLI itself decided (a timeout, an answer it cannot use).
    #[error("{0}")]
    Other(String),
}

impl Failure {
    pub fn exit_code(&self) -> u8 {
        match self {
            Failure::Refused { .. } | Failure::Other(_) => 1,
            Failure::Unreachable { .. } => 3,
        }
    }
}

pub struct Admin {
    base: String,
    token: Option<String>,
    client: reqwest::blocking::Client,
}

impl Admin {
    pub fn new(url: &str, token: Option<String>) -> Self {
        let client = reqwest::blocking::Client::builder()
            .timeout(Duration::from_secs(120))
            .build()
            .expect("a client with a timeout only always builds");
        Self { base: url.trim_end_matches('/').to_owned(), token, client }
    }

    pub fn get(&self, path: &str) -> Result<Value, Failure> {
        self.send(reqwest::Method::GET, path, None)
    }

    pub fn post(&self, path: &str, body: Value) -> Result<Value, Failure> {
        self.send(reqwest::Method::POST, path, Some(body))
    }

    pub fn patch(&self, path: &str, body: Option<Value>) -> Result<Value, Failure> {
        self.send(reqwest::Method::PATCH, path, body)
    }

    pub fn delete(&self, path: &str) -> Result<Value, Failure> {
        self.send(reqwest::Method::DELETE, path, None)
    }

    /// One request; a 2xx answer's JSON (or null for an empty body), else a [`Failure`].
    fn send(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> Result<Value, Failure> {
        let url = format!("{}{path}", self.base);
        let mut request = self.client.request(method, &url);
        if let Some(token) = &self.token {
            request = request.bearer_auth(token);
        }
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response =
            request.send().map_err(|e| Failure::Unreachable { url: self.base.clone(), reason: error_chain(&e) })?;
        let status = response.status().as_u16();
        let text =
            response.text().map_err(|e| Failure::Unreachable { url: self.base.clone(), reason: error_chain(&e) })?;
        let value: Value = if text.trim().is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text).unwrap_or(Value::String(text.clone()))
        };
        if (200..300).contains(&status) {
            return Ok(value);
        }
        let message = match &value {
            Value::Object(o) => {
                o.get("message").and_then(Value::as_str).map(str::to_owned).unwrap_or_else(|| text.clone())
            }
            Value::String(s) => s.clone(),
            _ => format!("HTTP {status}"),
        };
        Err(Failure::Refused { status, message, body: value })
    }
}

impl Admin {
    /// A deployment named by its id (`dp_…`) or by its address (the URL or Lambda ARN it was
    /// registered with): its id. Pipelines know the address they deployed, not the id.
    pub fn deployment_id(&self, reference: &str) -> Result<String, Failure> {
        if reference.starts_with("dp_") {
            return Ok(reference.to_owned());
        }
        let answer = self.get("/deployments")?;
        let found = answer["deployments"].as_array().into_iter().flatten().find(|d| {
            [&d["uri"], &d["arn"]]
                .into_iter()
                .any(|a| a.as_str().is_some_and(|a| a.trim_end_matches('/') == reference.trim_end_matches('/')))
        });
        match found.and_then(|d| d["id"].as_str()) {
            Some(id) => Ok(id.to_owned()),
            None => Err(Failure::Refused {
                status: 404,
                message: format!(
                    "no deployment is registered at '{reference}' (give its id, dp_…, or the exact URL or ARN it was registered with)"
                ),
                body: Value::Null,
            }),
        }
    }
}

/// Percent-encodes a path segment (service names and ids are plain, but keys may not be).
pub fn segment(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}
