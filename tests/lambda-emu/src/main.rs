//! `perdure-lambda-emu [--port P] --config functions.json`: serves the functions of a JSON file
//! (see the crate docs for its format) until SIGTERM or Ctrl-C; prints `listening <port>` once
//! it serves.

use std::path::PathBuf;
use std::time::Duration;

use perdure_lambda_emu::{Emulator, FunctionSpec};
use serde_json::Value;

fn spec(v: &Value) -> Result<FunctionSpec, String> {
    let mut spec = if let Some(program) = v["program"].as_str() {
        let mut s = FunctionSpec::binary(program);
        if let perdure_lambda_emu::Runtime::Binary { args, .. } = &mut s.runtime {
            *args = v["args"].as_array().into_iter().flatten().filter_map(|a| a.as_str().map(str::to_owned)).collect();
        }
        s
    } else if let (Some(node), Some(dir), Some(handler)) =
        (v["node"].as_str(), v["dir"].as_str(), v["handler"].as_str())
    {
        FunctionSpec::node(PathBuf::from(node), PathBuf::from(dir), handler)
    } else {
        return Err(format!("a version needs \"program\", or \"node\", \"dir\" and \"handler\": {v}"));
    };
    for (k, val) in v["env"].as_object().into_iter().flatten() {
        spec = spec.env(k, val.as_str().ok_or_else(|| format!("env {k} must be a string"))?);
    }
    if let Some(t) = v["timeout_secs"].as_u64() {
        spec = spec.timeout(Duration::from_secs(t));
    }
    if let Some(n) = v["max_environments"].as_u64() {
        spec = spec.max_environments(n as usize);
    }
    Ok(spec)
}

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    let flag = |name: &str| args.iter().position(|a| a == name).and_then(|i| args.get(i + 1)).cloned();
    let port: u16 = match flag("--port").map(|p| p.parse()) {
        None => 0,
        Some(Ok(p)) => p,
        Some(Err(e)) => fail(&format!("--port: {e}")),
    };
    let Some(config) = flag("--config") else { fail("usage: perdure-lambda-emu [--port P] --config functions.json") };
    let text = std::fs::read_to_string(&config).unwrap_or_else(|e| fail(&format!("reading {config}: {e}")));
    let config: Value = serde_json::from_str(&text).unwrap_or_else(|e| fail(&format!("{config}: {e}")));
    let emu = Emulator::start_on(port).await.unwrap_or_else(|e| fail(&format!("listening on 127.0.0.1:{port}: {e}")));
    for f in config["functions"].as_array().into_iter().flatten() {
        let name = f["name"].as_str().unwrap_or_else(|| fail("a function needs a \"name\""));
        let versions =
            f["versions"].as_array().filter(|v| !v.is_empty()).unwrap_or_else(|| fail("a function needs \"versions\""));
        for (i, v) in versions.iter().enumerate() {
            let spec = spec(v).unwrap_or_else(|e| fail(&e));
            if i == 0 {
                emu.create_function(name, spec)
            } else {
                emu.update_function(name, spec)
            }
            emu.publish_version(name);
        }
        for (alias, version) in f["aliases"].as_object().into_iter().flatten() {
            emu.set_alias(
                name,
                alias,
                version.as_str().unwrap_or_else(|| fail("an alias names a version string")),
                &[],
            );
        }
    }
    let port = emu.endpoint().rsplit(':').next().unwrap_or_default().to_owned();
    println!("listening {port}");
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).expect("SIGTERM handler");
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
    emu.shutdown().await;
}

fn fail(message: &str) -> ! {
    eprintln!("perdure-lambda-emu: {message}");
    std::process::exit(2)
}
