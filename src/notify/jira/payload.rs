//! What Herald writes to Jira, byte for byte as Alertmanager writes it: the
//! JQL of the search, the JSON bodies (Go's `encoding/json`: map keys
//! sorted, `<>&` escaped, a newline at the end), the custom `fields`
//! rendered as templates, and the API paths joined as Go's `URL.JoinPath`.

use std::collections::BTreeMap;

use serde_json::Value as Json;

use crate::gojson::write_str;
use crate::model::gostr::go_quote;

/// A value of the issue's `fields` object: JSON, or an ADF document kept as
/// the template rendered it (compacted), as Go sends a `json.RawMessage`.
pub(super) enum Field {
    Json(Json),
    Raw(String),
}

/// `{"fields":{...}}`: the body of a create (POST) or update (PUT).
pub(super) fn issue_body(fields: &BTreeMap<String, Field>) -> Vec<u8> {
    let mut out = Vec::with_capacity(1024);
    out.extend_from_slice(b"{\"fields\":{");
    for (i, (k, v)) in fields.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        write_str(&mut out, k);
        out.push(b':');
        match v {
            Field::Json(j) => write_json(&mut out, j),
            Field::Raw(r) => out.extend_from_slice(r.as_bytes()),
        }
    }
    out.extend_from_slice(b"}}\n");
    out
}

/// `{"transition":{"id":...}}`.
pub(super) fn transition_body(id: &str) -> Vec<u8> {
    let mut out = b"{\"transition\":".to_vec();
    if id.is_empty() {
        out.extend_from_slice(b"{}");
    } else {
        out.extend_from_slice(b"{\"id\":");
        write_str(&mut out, id);
        out.push(b'}');
    }
    out.extend_from_slice(b"}\n");
    out
}

/// The search request: only the status is asked for, and two issues at
/// most (the second only to warn that there are several).
pub(super) fn search_body(jql: &str) -> Vec<u8> {
    let mut out = b"{\"fields\":[\"status\"],\"jql\":".to_vec();
    write_str(&mut out, jql);
    out.extend_from_slice(b",\"maxResults\":2}\n");
    out
}

/// The JQL that finds the group's issue by its `ALERT{<hash>}` label:
/// open issues, or with a reopen transition and duration also those
/// resolved within the duration; never those resolved as won't-fix.
pub(super) fn jql(
    wont_fix_resolution: &str,
    firing: bool,
    reopen_transition: &str,
    reopen_minutes: u64,
    project: &str,
    label: &str,
) -> String {
    let mut q = String::new();
    if !wont_fix_resolution.is_empty() {
        // `resolution != X` alone would drop the unresolved issues, whose
        // resolution is EMPTY (alertmanager#4295).
        q.push_str(&format!(
            "(resolution is EMPTY or resolution != {}) and ",
            go_quote(wont_fix_resolution)
        ));
    }
    if firing && !reopen_transition.is_empty() && reopen_minutes > 0 {
        q.push_str(&format!(
            "(resolutiondate is EMPTY OR resolutiondate >= -{reopen_minutes}m) and "
        ));
    } else {
        q.push_str("statusCategory != Done and ");
    }
    q.push_str(&format!(
        "project={} and labels={} order by status ASC,resolutiondate DESC",
        go_quote(project),
        go_quote(label)
    ));
    q
}

/// Writes JSON as Go writes a decoded YAML value: map keys sorted, Go's
/// string escapes, whole floats without a fraction.
pub(super) fn write_json(out: &mut Vec<u8>, v: &Json) {
    match v {
        Json::Null => out.extend_from_slice(b"null"),
        Json::Bool(b) => out.extend_from_slice(if *b { b"true" } else { b"false" }),
        Json::Number(n) => {
            let s = match n.as_f64() {
                Some(f) if !n.is_i64() && !n.is_u64() && f.fract() == 0.0 && f.abs() < 1e15 => {
                    format!("{}", f as i64)
                }
                _ => n.to_string(),
            };
            out.extend_from_slice(s.as_bytes());
        }
        Json::String(s) => write_str(out, s),
        Json::Array(items) => {
            out.push(b'[');
            for (i, x) in items.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write_json(out, x);
            }
            out.push(b']');
        }
        Json::Object(map) => {
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort();
            out.push(b'{');
            for (i, k) in keys.into_iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write_str(out, k);
                out.push(b':');
                write_json(out, &map[k]);
            }
            out.push(b'}');
        }
    }
}

/// Go's `json.Compact` with HTML escaping, which `encoding/json` applies
/// to what a `MarshalJSON` returns: whitespace between tokens dropped,
/// `<`, `>`, `&`, U+2028 and U+2029 escaped. `raw` must be valid JSON.
pub(super) fn compact(raw: &str) -> String {
    let mut out = String::with_capacity(raw.len());
    let (mut in_string, mut escaped) = (false, false);
    for c in raw.chars() {
        match c {
            '<' => out.push_str("\\u003c"),
            '>' => out.push_str("\\u003e"),
            '&' => out.push_str("\\u0026"),
            '\u{2028}' => out.push_str("\\u2028"),
            '\u{2029}' => out.push_str("\\u2029"),
            ' ' | '\t' | '\n' | '\r' if !in_string => {}
            _ => out.push(c),
        }
        if in_string {
            if escaped {
                escaped = false;
            } else if c == '\\' {
                escaped = true;
            } else if c == '"' {
                in_string = false;
            }
        } else if c == '"' {
            in_string = true;
        }
    }
    out
}

/// Go's `template.DeepCopyWithTemplate` over one custom field's value:
/// every string (nested map keys too) rendered; a rendered value (not a
/// key) that reads as structured YAML becomes that structure, so
/// `'{{ .CommonLabels.points }}'` sends a number and an empty rendering
/// sends `null`. What the decoding gives is final, never rendered again.
pub(super) fn render_field<E>(
    v: &Json,
    render: &mut dyn FnMut(&str) -> Result<String, E>,
) -> Result<Json, E> {
    Ok(match v {
        Json::String(s) => structured(render(s)?),
        Json::Array(items) => Json::Array(
            items
                .iter()
                .map(|x| render_field(x, render))
                .collect::<Result<_, _>>()?,
        ),
        Json::Object(map) => {
            let mut out = serde_json::Map::new();
            for (k, x) in map {
                let k = render(k)?;
                out.insert(k, render_field(x, render)?);
            }
            Json::Object(out)
        }
        other => other.clone(),
    })
}

/// What Go's YAML decoder makes of a rendered string: kept as the string
/// unless it decodes to something else.
fn structured(rendered: String) -> Json {
    let t = rendered.trim();
    if t.is_empty() || matches!(t, "~" | "null" | "Null" | "NULL") {
        return Json::Null;
    }
    match serde_saphyr::from_str::<Json>(&rendered) {
        Ok(Json::String(_)) | Err(_) => Json::String(rendered),
        Ok(v) => v,
    }
}

/// Go's `URL.JoinPath(elem)` as a string: the path elements joined and
/// cleaned (`.`/`..`/doubled slashes), a trailing slash of `elem` kept.
pub(super) fn join_path(base: &url::Url, elem: &str) -> String {
    let joined = format!("{}/{}", base.path(), elem);
    let mut parts: Vec<&str> = Vec::new();
    for p in joined.split('/') {
        match p {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            p => parts.push(p),
        }
    }
    let mut path = format!("/{}", parts.join("/"));
    if elem.ends_with('/') && !path.ends_with('/') {
        path.push('/');
    }
    let mut u = base.clone();
    u.set_path(&path);
    u.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn jql_as_go_builds_it() {
        assert_eq!(
            jql("", true, "", 0, "PROJ", "ALERT{1}"),
            r#"statusCategory != Done and project="PROJ" and labels="ALERT{1}" order by status ASC,resolutiondate DESC"#
        );
        assert_eq!(
            jql("Won't Fix", true, "REOPEN", 60, "P", "ALERT{1}"),
            r#"(resolution is EMPTY or resolution != "Won't Fix") and (resolutiondate is EMPTY OR resolutiondate >= -60m) and project="P" and labels="ALERT{1}" order by status ASC,resolutiondate DESC"#
        );
        // Resolved groups look only at open issues; a duration without a
        // transition reopens nothing.
        for (firing, transition) in [(false, "REOPEN"), (true, "")] {
            assert!(jql("", firing, transition, 60, "P", "L").starts_with("statusCategory != Done"));
        }
        assert!(jql("", true, "R", 0, "a\"b", "L").contains(r#"project="a\"b""#));
    }

    #[test]
    fn bodies_are_written_as_go_encodes_them() {
        let mut f = BTreeMap::new();
        f.insert("summary".to_string(), Field::Json(json!("a <b> & c")));
        f.insert(
            "description".to_string(),
            Field::Raw(compact("{ \"type\": \"doc\",\n \"t\": \"x  <y>\" }")),
        );
        f.insert(
            "customfield_1".to_string(),
            Field::Json(json!({"z": 1.0, "a": [true, null, 2.5]})),
        );
        assert_eq!(
            String::from_utf8(issue_body(&f)).unwrap(),
            "{\"fields\":{\"customfield_1\":{\"a\":[true,null,2.5],\"z\":1},\"description\":{\"type\":\"doc\",\"t\":\"x  \\u003cy\\u003e\"},\"summary\":\"a \\u003cb\\u003e \\u0026 c\"}}\n"
        );
        assert_eq!(
            String::from_utf8(transition_body("21")).unwrap(),
            "{\"transition\":{\"id\":\"21\"}}\n"
        );
        assert_eq!(
            String::from_utf8(search_body("labels=\"x\"")).unwrap(),
            "{\"fields\":[\"status\"],\"jql\":\"labels=\\\"x\\\"\",\"maxResults\":2}\n"
        );
    }

    #[test]
    fn fields_are_rendered_and_decoded() {
        let mut r = |s: &str| -> Result<String, ()> { Ok(s.replace("{{X}}", "7")) };
        let v = json!({"{{X}}k": ["{{X}}", "a {{X}}", "", "[1, b]", 3]});
        assert_eq!(
            render_field(&v, &mut r).unwrap(),
            json!({"7k": [7, "a 7", null, [1, "b"], 3]})
        );
    }

    #[test]
    fn paths_join_as_go_joins_them() {
        let u = |s: &str| url::Url::parse(s).unwrap();
        assert_eq!(
            join_path(&u("http://j/rest/api/2"), "issue"),
            "http://j/rest/api/2/issue"
        );
        assert_eq!(
            join_path(&u("http://j/rest/api/2/"), "/search"),
            "http://j/rest/api/2/search"
        );
        assert_eq!(
            join_path(&u("http://j"), "issue/OPS-1/transitions"),
            "http://j/issue/OPS-1/transitions"
        );
        assert_eq!(
            join_path(&u("http://j/a/b?x=1"), "../c/"),
            "http://j/a/c/?x=1"
        );
    }
}
