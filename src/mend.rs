//! Pages with bytes that are not UTF-8. JSON is UTF-8, so one bad byte inside one item's string
//! would fail the whole page, every run, and stall its stream behind it. Instead, each run of
//! invalid bytes is replaced by a marker that is valid inside a JSON string and says how many
//! bytes it stands for and which (the first few); the page then parses, and the item holding a
//! marker goes to quarantine (see `streams::Stream::read`) while the rest of the page is
//! stored. Bytes outside any string still make the page unreadable, as they should; so does a
//! body with more than `MAX_INVALID` bad bytes (it is not text with a stray byte, it is not
//! text, and mending it would multiply its size).

/// Starts every marker: the JSON escape of U+10FFFF, a noncharacter no real text holds.
const MARKER: &str = "\\uDBFF\\uDFFF<";

/// Bad bytes a body may hold and still be mended.
const MAX_INVALID: usize = 4096;

/// Bytes of one run shown in its marker; the rest are counted.
const SHOWN: usize = 8;

/// `body` with every run of invalid UTF-8 replaced by a marker; `None` when it is valid UTF-8,
/// or holds too many bad bytes to be worth mending.
pub(crate) fn mend(body: &[u8]) -> Option<Vec<u8>> {
    if std::str::from_utf8(body).is_ok() {
        return None;
    }
    let mut out = Vec::with_capacity(body.len() + 64);
    let mut invalid = 0;
    let mut chunks = body.utf8_chunks().peekable();
    while let Some(chunk) = chunks.next() {
        out.extend_from_slice(chunk.valid().as_bytes());
        if chunk.invalid().is_empty() {
            continue;
        }
        // A run of bad bytes, however the decoder split it.
        let mut run: Vec<u8> = chunk.invalid().to_vec();
        while let Some(next) = chunks.peek() {
            if !next.valid().is_empty() || next.invalid().is_empty() {
                break;
            }
            run.extend_from_slice(next.invalid());
            chunks.next();
        }
        invalid += run.len();
        if invalid > MAX_INVALID {
            return None;
        }
        out.extend_from_slice(MARKER.as_bytes());
        out.extend_from_slice(format!("{}:", run.len()).as_bytes());
        for b in run.iter().take(SHOWN) {
            out.extend_from_slice(format!("{b:02X}").as_bytes());
        }
        out.push(b'>');
    }
    Some(out)
}

/// For an item's raw JSON: `None` if it holds no marker; otherwise what the bad bytes were (a
/// short description) and the item with each marker written as `\\xNN` escapes (the first few
/// bytes of each run, then how many more), which is valid JSON text.
pub(crate) fn invalid_bytes(raw: &str) -> Option<(String, String)> {
    if !raw.contains(MARKER) {
        return None;
    }
    let mut shown = String::with_capacity(raw.len());
    let mut bytes: Vec<String> = Vec::new();
    let mut total = 0usize;
    let mut rest = raw;
    while let Some(at) = rest.find(MARKER) {
        shown.push_str(&rest[..at]);
        let after = &rest[at + MARKER.len()..];
        let end = after.find('>').unwrap_or(after.len());
        let (count, hex) = after[..end].split_once(':').unwrap_or(("0", ""));
        let count: usize = count.parse().unwrap_or(0);
        total += count;
        for pair in hex.as_bytes().chunks(2).filter(|p| p.len() == 2 && p.is_ascii()) {
            let pair = std::str::from_utf8(pair).unwrap_or("3F");
            shown.push_str("\\\\x");
            shown.push_str(pair);
            if bytes.len() < SHOWN {
                bytes.push(pair.to_ascii_lowercase());
            }
        }
        if count > SHOWN {
            shown.push_str(&format!("…({} more)", count - SHOWN));
        }
        rest = after.get(end + 1..).unwrap_or_default();
    }
    shown.push_str(rest);
    let more = if total > bytes.len() {
        format!(" …, {total} in all")
    } else {
        String::new()
    };
    Some((format!("{}{more}", bytes.join(" ")), shown))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bad_byte_inside_a_string_is_marked_and_shown_back() {
        let body = b"{\"items\":[{\"id\":\"a\",\"name\":\"J\xf8rgen\"},{\"id\":\"b\"}]}";
        assert_eq!(mend(b"{\"ok\":\"\xc3\xb8\"}"), None, "valid UTF-8 is left alone");
        let mended = mend(body).unwrap();
        assert!(serde_json::from_slice::<serde_json::Value>(&mended).is_ok());
        let raw = std::str::from_utf8(&mended).unwrap();
        let item = &raw[raw.find("{\"id\":\"a\"").unwrap()..raw.find("},").unwrap() + 1];
        let (bytes, shown) = invalid_bytes(item).unwrap();
        assert_eq!(bytes, "f8");
        assert_eq!(shown, r#"{"id":"a","name":"J\\xF8rgen"}"#);
        assert!(
            serde_json::from_str::<serde_json::Value>(&shown).is_ok(),
            "{shown}"
        );
        assert_eq!(invalid_bytes(r#"{"id":"b"}"#), None);
    }

    #[test]
    fn a_long_run_is_one_short_marker_and_a_body_of_junk_is_not_mended() {
        let mut body = b"{\"items\":[{\"id\":\"a\",\"name\":\"".to_vec();
        body.extend(std::iter::repeat_n(0xff, 1000));
        body.extend_from_slice(b"\"}]}");
        let mended = mend(&body).unwrap();
        assert!(mended.len() < 200, "{} bytes", mended.len());
        let (bytes, shown) = invalid_bytes(std::str::from_utf8(&mended).unwrap()).unwrap();
        assert_eq!(bytes, "ff ff ff ff ff ff ff ff …, 1000 in all");
        assert!(shown.contains("(992 more)") && shown.len() < 200, "{shown}");
        let junk = vec![0xffu8; MAX_INVALID + 1];
        assert_eq!(mend(&junk), None);
    }
}
