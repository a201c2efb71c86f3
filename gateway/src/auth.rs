//! The shared secret that guards the admin API, the node port and the PostgreSQL port
//! (`admin.auth-tokens`): one check for all three, comparing in constant time. A leaf.

/// Whether `given` is one of `tokens`, compared in time that does not depend on where they
/// differ.
pub fn is_one_of(tokens: &[String], given: &str) -> bool {
    tokens.iter().any(|t| constant_time_eq(t.as_bytes(), given.as_bytes()))
}

/// Checks `Authorization: Bearer` against `tokens`; the error says what is wrong, naming
/// `what` wants a token.
pub fn bearer(tokens: &[String], headers: &http::HeaderMap, what: &str) -> Result<(), String> {
    let given = headers
        .get(http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim);
    match given {
        Some(g) if is_one_of(tokens, g) => Ok(()),
        Some(_) => Err("the bearer token is not one of admin.auth-tokens".into()),
        None => Err(format!("{what} needs `Authorization: Bearer <token>` with one of admin.auth-tokens")),
    }
}

/// Compares secrets in time that does not depend on where they differ.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_compare_whole() {
        assert!(constant_time_eq(b"secret", b"secret"));
        assert!(!constant_time_eq(b"secret", b"secreT"));
        assert!(!constant_time_eq(b"secret", b"secret2"));
        assert!(!constant_time_eq(b"", b"x"));
    }

    #[test]
    fn a_bearer_token_must_be_one_of_them() {
        let tokens = vec!["a".to_owned(), "b".to_owned()];
        let mut headers = http::HeaderMap::new();
        assert!(bearer(&tokens, &headers, "the node port").unwrap_err().contains("the node port needs"));
        headers.insert(http::header::AUTHORIZATION, "Bearer c".parse().unwrap());
        assert!(bearer(&tokens, &headers, "x").unwrap_err().contains("not one of"));
        headers.insert(http::header::AUTHORIZATION, "Bearer b".parse().unwrap());
        assert_eq!(bearer(&tokens, &headers, "x"), Ok(()));
    }
}
