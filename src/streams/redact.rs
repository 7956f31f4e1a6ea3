//! Fields named like secrets are stored as `"[redacted]"`, in rows and in quarantine.
//!
//! The job keeps every item whole in `raw_json`, and a list the API documents without secrets
//! may still carry one: a webhook subscription's signing `secret` is meant to be sent only
//! when it is created, but a server that lists it would otherwise put it in a file analysts
//! read. Secrets never reach the database in plain text, whatever the server sends.

use serde_json::Value;

/// Keys whose values are never stored, at any depth, compared without case: these names, and
/// any key ending in `secret` or `password` (`signing_secret`, `clientSecret`). A key merely
/// ending in `token` is not one: a ticket's `token` identifies it at the door, and analysts
/// need it.
const SECRET_KEYS: [&str; 10] = [
    "access_token",
    "accesstoken",
    "refresh_token",
    "refreshtoken",
    "id_token",
    "idtoken",
    "api_key",
    "apikey",
    "private_key",
    "privatekey",
];

/// Whether `key` names a secret (see [`SECRET_KEYS`]).
fn secret_named(key: &str) -> bool {
    let key = key.to_ascii_lowercase();
    key.ends_with("secret") || key.ends_with("password") || SECRET_KEYS.contains(&key.as_str())
}

/// Tails of a secret-named key as it appears in the text (its closing quote included), in the
/// cases a server writes them: one of them, or an escape, means the item is parsed to be sure.
const TELLTALES: [&str; 11] = [
    "ecret\"",
    "ECRET\"",
    "assword\"",
    "ASSWORD\"",
    "token\"",
    "Token\"",
    "TOKEN\"",
    "key\"",
    "Key\"",
    "KEY\"",
    "\\u",
];

/// What a secret's value is stored as.
pub(crate) const REDACTED: &str = "[redacted]";

/// What is kept of an item that may hold a secret but cannot be parsed to find it.
pub(crate) const UNREADABLE: &str =
    r#"{"redacted":"an item that may hold a secret and could not be parsed"}"#;

/// The item's text rewritten from its parsed value, with every secret-named field's value
/// replaced (its keys then in sorted order), or `None` when no key is secret-named: almost
/// always, decided by a substring test without parsing. A key written with `\u` escapes is
/// parsed to be sure; an item that may hold a secret and cannot be parsed is kept as
/// [`UNREADABLE`], never as sent.
///
/// Any secret-named key, even one whose value is `null`, means the text is rewritten and never
/// kept as sent: a key given twice (`{"secret":"whsec_…","secret":null}`) parses to its last
/// value, so the text as sent would keep the first one's secret.
pub(crate) fn redacted(raw: &str) -> Option<String> {
    if !TELLTALES.iter().any(|tail| raw.contains(tail)) {
        return None;
    }
    let Ok(mut value) = serde_json::from_str::<Value>(raw) else {
        return Some(UNREADABLE.to_owned());
    };
    redact(&mut value).then(|| value.to_string())
}

/// Replaces secret-named values in place (a `null` stays `null`: it holds nothing); whether
/// any key was secret-named.
fn redact(v: &mut Value) -> bool {
    match v {
        Value::Object(map) => {
            let mut hit = false;
            for (key, child) in map.iter_mut() {
                if secret_named(key) {
                    if !child.is_null() {
                        *child = Value::String(REDACTED.to_owned());
                    }
                    hit = true;
                } else {
                    hit |= redact(child);
                }
            }
            hit
        }
        Value::Array(items) => items.iter_mut().fold(false, |hit, child| redact(child) | hit),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_are_replaced_at_any_depth_and_nothing_else_changes() {
        let raw = r#"{"id":"w1","secret":"whsec_abc","meta":[{"access_token":"t0k"}],"url":"https://x"}"#;
        let kept = redacted(raw).expect("it has secrets");
        assert!(!kept.contains("whsec_abc") && !kept.contains("t0k"), "{kept}");
        let v: Value = serde_json::from_str(&kept).unwrap();
        assert_eq!(v["secret"], REDACTED);
        assert_eq!(v["meta"][0]["access_token"], REDACTED);
        assert_eq!(v["url"], "https://x");
    }

    #[test]
    fn an_escaped_key_is_found_and_an_unparsable_item_is_not_kept() {
        let kept = redacted(r#"{"id":"w1","secr\u0065t":"whsec_abc"}"#).expect("escaped key");
        assert!(!kept.contains("whsec_abc"), "{kept}");
        let deep = format!("{}\"secret\":\"s3\"{}", "[".repeat(200), "]".repeat(200));
        assert_eq!(redacted(&deep).as_deref(), Some(UNREADABLE));
    }

    #[test]
    fn a_secret_given_twice_is_never_kept_whatever_the_last_value() {
        // The parsed value holds only the last `secret`: the text as sent must not be kept.
        for raw in [
            r#"{"id":"w1","secret":"whsec_abc","secret":null}"#,
            r#"{"id":"w1","secret":"whsec_abc","secret":"other"}"#,
            r#"{"id":"w1","secr\u0065t":"whsec_abc","secret":null}"#,
            r#"{"id":"w1","meta":{"password":"whsec_abc","password":null}}"#,
        ] {
            let kept = redacted(raw).expect("a secret-named key");
            assert!(!kept.contains("whsec_abc"), "{raw} kept as {kept}");
            let v: Value = serde_json::from_str(&kept).unwrap();
            assert_eq!(v["id"], "w1", "{kept}");
        }
        // A lone null secret is rewritten too, and stays null.
        assert_eq!(
            redacted(r#"{"id":"b1","secret":null}"#).as_deref(),
            Some(r#"{"id":"b1","secret":null}"#)
        );
    }

    #[test]
    fn secret_names_are_matched_without_case_and_by_their_ending() {
        let raw = r#"{"id":"w1","signing_secret":"s1","clientSecret":"s2","Secret":"s3","apiKey":"s4","accessToken":"s5","PASSWORD":"s6","meta":{"webhook_secret":"s7"},"token":"t","ticket_token":"tt"}"#;
        let kept = redacted(raw).expect("it has secrets");
        for n in 1..=7 {
            assert!(!kept.contains(&format!("\"s{n}\"")), "s{n}: {kept}");
        }
        let v: Value = serde_json::from_str(&kept).unwrap();
        assert_eq!(
            (v["token"].as_str(), v["ticket_token"].as_str()),
            (Some("t"), Some("tt"))
        );
    }

    #[test]
    fn items_without_secrets_are_kept_as_sent() {
        assert_eq!(redacted(r#"{"id":"b1","status":"ACTIVE"}"#), None);
        // A key only ending like one is not one.
        assert_eq!(redacted(r#"{"id":"b1","ticket_token":"x"}"#), None);
    }
}
