//! `https://` deployments: the TypeScript SDK behind Node's TLS server (HTTP/2 by ALPN, and
//! HTTP/1.1 for `use_http_11`), verified against `invoker.trusted-ca-file`; an untrusted
//! certificate is refused with an error saying so.

use std::path::Path;
use std::process::Command;

use serde_json::json;

use crate::harness::*;

/// A CA and a certificate it signed for 127.0.0.1 / localhost, made with the openssl CLI:
/// (ca.pem, server.key, server.pem).
fn certificates(dir: &Path) {
    let openssl = |args: &[&str]| {
        let out = Command::new("openssl")
            .args(args)
            .current_dir(dir)
            .output()
            .expect("openssl (scripts/system-deps.sh installs it)");
        assert!(out.status.success(), "openssl {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    };
    let ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"];
    openssl(
        &[
            &["req", "-x509"][..],
            &ec,
            &["-keyout", "ca.key", "-out", "ca.pem", "-days", "2", "-subj", "/CN=perdure test CA"],
        ]
        .concat(),
    );
    openssl(&[&["req"][..], &ec, &["-keyout", "server.key", "-out", "server.csr", "-subj", "/CN=127.0.0.1"]].concat());
    std::fs::write(dir.join("ext.cnf"), "subjectAltName=IP:127.0.0.1,DNS:localhost\nbasicConstraints=CA:FALSE\n")
        .expect("ext");
    openssl(&[
        "x509",
        "-req",
        "-in",
        "server.csr",
        "-CA",
        "ca.pem",
        "-CAkey",
        "ca.key",
        "-CAcreateserial",
        "-out",
        "server.pem",
        "-days",
        "2",
        "-extfile",
        "ext.cnf",
    ]);
}

#[test]
fn https_deployments_are_verified_and_served_over_tls() {
    let dir = tempfile::tempdir().expect("temp dir");
    certificates(dir.path());
    let key = dir.path().join("server.key");
    let cert = dir.path().join("server.pem");
    let services = TsServices::start_with_env(
        0,
        "h2tls",
        "v1",
        "",
        &[("TLS_KEY_FILE", key.to_str().unwrap()), ("TLS_CERT_FILE", cert.to_str().unwrap())],
    );
    let uri = format!("https://127.0.0.1:{}", services.port);

    // Without the CA: the certificate is not trusted, and the registration says so.
    let untrusting = Perdure::start();
    let (status, body) = untrusting.register(&uri, json!({}));
    assert!(!(200..300).contains(&status), "{status} {body}");
    assert!(body.to_string().to_lowercase().contains("certificate"), "names the certificate problem: {body}");

    let ca = dir.path().join("ca.pem");
    let perdure = Perdure::start_with(&[("PERDURE_INVOKER__TRUSTED_CA_FILE", ca.to_str().unwrap())]);
    let (status, body) = perdure.register(&uri, json!({}));
    assert_eq!(status, 201, "HTTP/2 over TLS: {body}");
    let r = post_json(&format!("{}/Greeter/greet", perdure.ingress), "\"tls\"");
    assert_eq!((r.status, r.body.as_str()), (200, "\"Hello, tls!\""));
    let r = post_json(&format!("{}/Greeter/sleepy", perdure.ingress), "50");
    assert_eq!(r.status, 200, "a sleep and its resume over TLS: {}", r.body);
    let r = post_json(&format!("{}/Counter/tls/add", perdure.ingress), "5");
    assert_eq!((r.status, r.body.as_str()), (200, "5"));

    // HTTP/1.1 over TLS (a second deployment of the same services, at another address).
    let (status, body) =
        perdure.register(&format!("https://localhost:{}", services.port), json!({ "use_http_11": true }));
    assert!(status == 201 || status == 200, "HTTP/1.1 over TLS: {status} {body}");
    let r = post_json(&format!("{}/Greeter/greet", perdure.ingress), "\"h1\"");
    assert_eq!((r.status, r.body.as_str()), (200, "\"Hello, h1!\""));
}

#[test]
fn a_ca_file_that_cannot_be_used_stops_the_server_naming_it() {
    let dir = tempfile::tempdir().expect("temp dir");
    let empty = dir.path().join("empty.pem");
    std::fs::write(&empty, "no certificates here\n").expect("write");
    for file in [empty, dir.path().join("missing.pem")] {
        let stderr = serve_refused(&dir.path().join("data"), &[("PERDURE_INVOKER__TRUSTED_CA_FILE", file.as_os_str())]);
        assert!(stderr.contains("invoker.trusted-ca-file") && stderr.contains(&*file.to_string_lossy()), "{stderr}");
    }
}
