//! `application/x-www-form-urlencoded` bodies that keep `~` literal.
//!
//! Understory's auth server has been seen rejecting `%7E` where the secret had `~`
//! (`docs/understory-api.md` §3, quirk 1), and `form_urlencoded` escapes `~`. Escaping every byte
//! outside RFC 3986's unreserved set (and space as `%20`) is valid form encoding that such a
//! server still decodes, so secrets with `~ + & = % /` or spaces arrive intact.

pub(crate) fn encode(pairs: &[(&str, &str)]) -> String {
    let mut out = String::new();
    for (n, (k, v)) in pairs.iter().enumerate() {
        if n > 0 {
            out.push('&');
        }
        escape(k, &mut out);
        out.push('=');
        escape(v, &mut out);
    }
    out
}

fn escape(s: &str, out: &mut String) {
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn special_characters_round_trip_and_tilde_stays_literal() {
        let secret = "a~b+c&d=e%f/g h";
        let body = encode(&[("client_secret", secret), ("scope", "openid booking.read")]);
        assert!(body.contains('~'));
        assert!(!body.contains("%7E"));
        let back: Vec<(String, String)> = form_urlencoded::parse(body.as_bytes()).into_owned().collect();
        assert_eq!(back[0].1, secret);
        assert_eq!(back[1].1, "openid booking.read");
    }
}
