//! Differences between two JSON values, for people: the changed keys, the list
//! entries removed and added, and whole objects created or removed.
//!
//! Lists of objects that carry a key (`name`, with `edge` when present, or
//! `sha256`) are matched by that key, so a changed connector shows only its changed
//! fields, wherever it stands in the list.

use serde_json::Value;

/// One changed place: `path` (`send_connectors[Internet].fqdn`; empty for the value
/// itself) with the lines removed (`-`) and added (`+`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Difference {
    /// Where: keys joined by `.`, keyed list entries as `[key]`.
    pub path: String,
    /// What was there, one line each.
    pub removed: Vec<String>,
    /// What is there now, one line each.
    pub added: Vec<String>,
}

/// The differences from `before` to `after`; empty when they are the same
/// (a keyed list in another order is the same; a plain list in another order is not).
pub fn differences(before: &Value, after: &Value) -> Vec<Difference> {
    let mut out = Vec::new();
    compare(String::new(), before, after, &mut out);
    out
}

fn compare(path: String, before: &Value, after: &Value, out: &mut Vec<Difference>) {
    if before == after {
        return;
    }
    match (before, after) {
        (Value::Object(old), Value::Object(new)) => {
            for (key, old_value) in old {
                let child = join(&path, key);
                match new.get(key) {
                    Some(new_value) => compare(child, old_value, new_value, out),
                    None => out.push(Difference { path: child, removed: lines(old_value), added: vec![] }),
                }
            }
            for (key, new_value) in new.iter().filter(|(key, _)| !old.contains_key(*key)) {
                out.push(Difference { path: join(&path, key), removed: vec![], added: lines(new_value) });
            }
        }
        (Value::Array(old), Value::Array(new)) => match (keyed(old), keyed(new)) {
            (Some(old), Some(new)) => compare_keyed(&path, &old, &new, out),
            _ => compare_list(path, old, new, out),
        },
        (Value::Null, new) => out.push(Difference { path, removed: vec![], added: lines(new) }),
        (old, Value::Null) => out.push(Difference { path, removed: lines(old), added: vec![] }),
        (old, new) => out.push(Difference { path, removed: vec![compact(old)], added: vec![compact(new)] }),
    }
}

/// Entries matched by key: removed, changed (field by field), added.
fn compare_keyed(path: &str, old: &[(String, &Value)], new: &[(String, &Value)], out: &mut Vec<Difference>) {
    for (key, old_value) in old {
        let child = format!("{path}[{key}]");
        match find(new, key) {
            Some(new_value) => compare(child, old_value, new_value, out),
            None => out.push(Difference { path: child, removed: lines(old_value), added: vec![] }),
        }
    }
    for (key, new_value) in new.iter().filter(|(key, _)| find(old, key).is_none()) {
        out.push(Difference { path: format!("{path}[{key}]"), removed: vec![], added: lines(new_value) });
    }
}

/// A plain list: the entries removed and added; a reordering shows both orders.
/// Linear (a multiset of each side's entries): the secure-domain lists run to 100,000.
fn compare_list(path: String, old: &[Value], new: &[Value], out: &mut Vec<Difference>) {
    let old_entries: Vec<String> = old.iter().map(compact).collect();
    let new_entries: Vec<String> = new.iter().map(compact).collect();
    let removed = unmatched(&old_entries, &new_entries);
    let added = unmatched(&new_entries, &old_entries);
    if removed.is_empty() && added.is_empty() {
        let whole = |list: &[Value]| compact(&Value::Array(list.to_vec()));
        out.push(Difference { path, removed: vec![whole(old)], added: vec![format!("{} (order)", whole(new))] });
        return;
    }
    out.push(Difference { path, removed, added });
}

/// The entries of `these` (in order, with repeats) that `those` does not hold as often.
fn unmatched(these: &[String], those: &[String]) -> Vec<String> {
    let mut available: std::collections::HashMap<&str, usize> = std::collections::HashMap::new();
    for entry in those {
        *available.entry(entry.as_str()).or_default() += 1;
    }
    these
        .iter()
        .filter(|entry| match available.get_mut(entry.as_str()) {
            Some(count) if *count > 0 => {
                *count -= 1;
                false
            }
            _ => true,
        })
        .cloned()
        .collect()
}

fn find<'a>(list: &[(String, &'a Value)], key: &str) -> Option<&'a Value> {
    list.iter().find(|(k, _)| k == key).map(|(_, v)| *v)
}

/// The entries with their keys, when every entry is an object with a key.
fn keyed(list: &[Value]) -> Option<Vec<(String, &Value)>> {
    if list.is_empty() {
        return Some(Vec::new());
    }
    list.iter().map(|value| key(value).map(|key| (key, value))).collect()
}

fn key(value: &Value) -> Option<String> {
    let object = value.as_object()?;
    if let Some(name) = object.get("name").and_then(Value::as_str) {
        return Some(match object.get("edge").and_then(Value::as_str) {
            Some(edge) => format!("{edge}/{name}"),
            None => name.to_owned(),
        });
    }
    object.get("sha256").and_then(Value::as_str).map(str::to_owned)
}

/// A value as lines: an object one `key: value` line per field, anything else one line.
fn lines(value: &Value) -> Vec<String> {
    match value {
        Value::Object(fields) => fields.iter().map(|(key, value)| format!("{key}: {}", compact(value))).collect(),
        Value::Null => vec![],
        other => vec![compact(other)],
    }
}

/// One line: strings bare, lists as `[a, b]`, a PEM block by its size.
fn compact(value: &Value) -> String {
    match value {
        Value::String(text) if text.starts_with("-----BEGIN ") => {
            format!("(PEM, {} lines)", text.lines().count())
        }
        Value::String(text) => text.replace('\n', "\\n"),
        Value::Array(items) => format!("[{}]", items.iter().map(compact).collect::<Vec<_>>().join(", ")),
        Value::Object(fields) => {
            let fields: Vec<String> = fields.iter().map(|(k, v)| format!("{k}: {}", compact(v))).collect();
            format!("{{{}}}", fields.join(", "))
        }
        other => other.to_string(),
    }
}

fn join(path: &str, key: &str) -> String {
    if path.is_empty() { key.to_owned() } else { format!("{path}.{key}") }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn render(differences: &[Difference]) -> String {
        let mut text = String::new();
        for difference in differences {
            text.push_str(&format!("{}\n", difference.path));
            for line in &difference.removed {
                text.push_str(&format!("  - {line}\n"));
            }
            for line in &difference.added {
                text.push_str(&format!("  + {line}\n"));
            }
        }
        text
    }

    #[test]
    fn the_same_value_has_no_differences() {
        let value = json!({"a": [1, 2], "b": {"c": null}});
        assert!(differences(&value, &value).is_empty());
    }

    #[test]
    fn changed_keys_show_old_and_new() {
        let before = json!({"domain_secure_enabled": false, "fqdn": null, "max_message_size": 10});
        let after = json!({"domain_secure_enabled": true, "fqdn": "relay.contoso.com", "max_message_size": 10});
        assert_eq!(
            render(&differences(&before, &after)),
            "domain_secure_enabled\n  - false\n  + true\nfqdn\n  + relay.contoso.com\n"
        );
    }

    #[test]
    fn plain_lists_show_entries_removed_and_added() {
        let before = json!({"list": ["a.com", "b.com", "c.com"]});
        let after = json!({"list": ["b.com", "c.com", "d.com"]});
        assert_eq!(render(&differences(&before, &after)), "list\n  - a.com\n  + d.com\n");
        let reordered = json!({"list": ["c.com", "b.com", "a.com"]});
        assert_eq!(
            render(&differences(&before, &reordered)),
            "list\n  - [a.com, b.com, c.com]\n  + [c.com, b.com, a.com] (order)\n"
        );
    }

    #[test]
    fn keyed_lists_match_entries_by_name_whatever_their_order() {
        let before = json!({"connectors": [
            {"edge": "mail1", "name": "Inet", "port": 25},
            {"edge": "mail2", "name": "Inet", "port": 25},
        ]});
        let after = json!({"connectors": [
            {"edge": "mail2", "name": "Inet", "port": 2525},
            {"edge": "mail3", "name": "Inet", "port": 25},
        ]});
        assert_eq!(
            render(&differences(&before, &after)),
            "connectors[mail1/Inet]\n  - edge: mail1\n  - name: Inet\n  - port: 25\n\
             connectors[mail2/Inet].port\n  - 25\n  + 2525\n\
             connectors[mail3/Inet]\n  + edge: mail3\n  + name: Inet\n  + port: 25\n"
        );
        let swapped = json!({"connectors": [before["connectors"][1].clone(), before["connectors"][0].clone()]});
        assert!(differences(&before, &swapped).is_empty(), "a keyed list in another order is the same");
    }

    #[test]
    fn created_and_removed_objects_list_their_fields() {
        let object = json!({"name": "mail1", "fqdn": "mail1.contoso.com"});
        assert_eq!(render(&differences(&Value::Null, &object)), "\n  + fqdn: mail1.contoso.com\n  + name: mail1\n");
        assert_eq!(render(&differences(&json!("contoso.com"), &Value::Null)), "\n  - contoso.com\n");
    }

    #[test]
    fn pem_blocks_are_summarised() {
        let pem = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n";
        let after = json!({"roots": [{"sha256": "ab", "certificate_pem": pem}]});
        let text = render(&differences(&json!({"roots": []}), &after));
        assert_eq!(text, "roots[ab]\n  + certificate_pem: (PEM, 3 lines)\n  + sha256: ab\n");
    }
}
