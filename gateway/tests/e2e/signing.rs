//! Signed requests to deployments (`request-identity.private-key-file`): the TypeScript SDK
//! configured with `identityKeys` (withIdentityV1) accepts perdure's signed discovery and
//! invocation requests and refuses unsigned ones and ones signed with another key.

use std::process::Command;

use serde_json::json;

use crate::harness::*;

/// `perdure keygen --out FILE`: the file and the public key it printed.
fn keygen(dir: &std::path::Path, name: &str) -> (std::path::PathBuf, String) {
    let path = dir.join(name);
    let out =
        Command::new(env!("CARGO_BIN_EXE_perdure")).arg("keygen").arg("--out").arg(&path).output().expect("keygen");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let public = String::from_utf8(out.stdout).expect("utf-8").trim().to_owned();
    assert!(public.starts_with("publickeyv1_"), "{public}");
    (path, public)
}

#[test]
fn the_typescript_sdk_accepts_signed_requests_and_refuses_the_rest() {
    let dir = tempfile::tempdir().expect("temp dir");
    let (key, public) = keygen(dir.path(), "perdure.pem");
    let (other_key, _) = keygen(dir.path(), "other.pem");
    let services = TsServices::start_with_env(0, "h1", "v1", "", &[("IDENTITY_KEYS", &public)]);

    // Unsigned: the SDK refuses discovery, and the registration says so.
    let unsigned = Perdure::start();
    let (status, body) = unsigned.register(&services.url(), json!({ "use_http_11": true }));
    assert!(!(200..300).contains(&status), "{status} {body}");
    assert!(body.to_string().contains("401"), "the SDK's 401 is reported: {body}");

    // Signed with another key: refused the same way.
    let other = Perdure::start_with(&[("PERDURE_REQUEST_IDENTITY__PRIVATE_KEY_FILE", other_key.to_str().unwrap())]);
    let (status, body) = other.register(&services.url(), json!({ "use_http_11": true }));
    assert!(!(200..300).contains(&status) && body.to_string().contains("401"), "{status} {body}");

    // Signed with the key the SDK knows: discovery, calls, keyed calls and a resume all pass.
    let signed = Perdure::start_with(&[("PERDURE_REQUEST_IDENTITY__PRIVATE_KEY_FILE", key.to_str().unwrap())]);
    let (status, body) = signed.register(&services.url(), json!({ "use_http_11": true }));
    assert_eq!(status, 201, "{body}");
    let r = post_json(&format!("{}/Greeter/greet", signed.ingress), "\"signed\"");
    assert_eq!((r.status, r.body.as_str()), (200, "\"Hello, signed!\""));
    let r = post_json(&format!("{}/Counter/alice/add", signed.ingress), "2");
    assert_eq!((r.status, r.body.as_str()), (200, "2"), "a keyed call carries the key as the token's subject");
    let r = post_json(&format!("{}/Greeter/sleepy", signed.ingress), "50");
    assert_eq!(r.status, 200, "a suspended invocation resumes with a fresh token: {}", r.body);

    // The public key of the file, printed again.
    let out = Command::new(env!("CARGO_BIN_EXE_perdure"))
        .arg("keygen")
        .arg("--public-key-of")
        .arg(&key)
        .output()
        .expect("keygen --public-key-of");
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), public);
    // An existing file is never overwritten.
    let out =
        Command::new(env!("CARGO_BIN_EXE_perdure")).arg("keygen").arg("--out").arg(&key).output().expect("keygen");
    assert!(!out.status.success());
    assert_eq!(std::fs::read_to_string(&key).map(|k| k.contains("BEGIN PRIVATE KEY")).ok(), Some(true));
}

#[test]
fn a_key_file_that_cannot_be_used_stops_the_server_naming_it() {
    let dir = tempfile::tempdir().expect("temp dir");
    let bad = dir.path().join("not-a-key.pem");
    std::fs::write(&bad, "hello\n").expect("write");
    for (file, expect) in [(bad.clone(), "PKCS#8"), (dir.path().join("missing.pem"), "cannot read")] {
        let stderr = serve_refused(
            &dir.path().join("data"),
            &[("PERDURE_REQUEST_IDENTITY__PRIVATE_KEY_FILE", file.as_os_str())],
        );
        assert!(stderr.contains(&*file.to_string_lossy()) && stderr.contains(expect), "{stderr}");
    }
    let stderr = serve_refused(&dir.path().join("data"), &[("PERDURE_REQUEST_IDENTITY__EXPIRATION", "0s".as_ref())]);
    assert!(stderr.contains("request-identity.expiration"), "{stderr}");
}
