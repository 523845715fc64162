//! Request bodies read member by member.
//!
//! A refusal names the member and says what it should hold, in the API's
//! own words: no Rust type names, no schema internals.

use std::collections::BTreeMap;

use serde_json::{Map, Value};

use crate::request::RequestError;

/// How much of a member's name a refusal quotes.
const QUOTED_NAME_CHARS: usize = 40;

/// A member's name as a refusal quotes it: in quotes, escaped, and cut
/// short, since the name is the client's text of any length.
pub fn quoted_name(name: &str) -> String {
    let start: String = name.chars().take(QUOTED_NAME_CHARS).collect();
    format!("{start:?}")
}

/// A JSON object whose members are all among the ones it may hold.
#[derive(Debug, Clone, Copy)]
pub struct Fields<'a> {
    members: &'a Map<String, Value>,
}

impl<'a> Fields<'a> {
    /// Reads `body`, `what` the client sent (`the payment body`, say), which
    /// may hold only the members named in `known`.
    ///
    /// # Errors
    ///
    /// The body is not an object, or holds a member not in `known`.
    pub fn of(body: &'a Value, what: &str, known: &[&str]) -> Result<Self, RequestError> {
        let Value::Object(members) = body else {
            return Err(RequestError::whole(format!("{what} must be a JSON object")));
        };
        if let Some(unknown) = members.keys().find(|name| !known.contains(&name.as_str())) {
            return Err(RequestError::whole(format!(
                "{what} has no field {}; its fields are {}",
                quoted_name(unknown),
                known.join(", ")
            )));
        }
        Ok(Self { members })
    }

    /// A member that must be there and not `null`.
    fn required(&self, name: &'static str) -> Result<&'a Value, RequestError> {
        match self.members.get(name) {
            None | Some(Value::Null) => {
                Err(RequestError::field(name, format!("{name} is required")))
            }
            Some(value) => Ok(value),
        }
    }

    /// A member that may be absent or `null`.
    fn optional(&self, name: &'static str) -> Option<&'a Value> {
        self.members.get(name).filter(|value| !value.is_null())
    }

    /// A required integer.
    ///
    /// # Errors
    ///
    /// Absent, `null`, or not an integer (a fraction, a string, an integer
    /// beyond 64 bits).
    pub fn integer(&self, name: &'static str) -> Result<i64, RequestError> {
        self.required(name)?
            .as_i64()
            .ok_or_else(|| RequestError::field(name, format!("{name} must be an integer")))
    }

    /// A required string.
    ///
    /// # Errors
    ///
    /// Absent, `null`, or not a string.
    pub fn string(&self, name: &'static str) -> Result<&'a str, RequestError> {
        self.required(name)?
            .as_str()
            .ok_or_else(|| RequestError::field(name, format!("{name} must be a string")))
    }

    /// An optional string; absent and `null` are `None`.
    ///
    /// # Errors
    ///
    /// Present and neither a string nor `null`.
    pub fn optional_string(&self, name: &'static str) -> Result<Option<&'a str>, RequestError> {
        self.optional(name)
            .map(|value| {
                value.as_str().ok_or_else(|| {
                    RequestError::field(name, format!("{name} must be a string or null"))
                })
            })
            .transpose()
    }

    /// An optional object of string values; absent and `null` are `None`.
    ///
    /// # Errors
    ///
    /// Present and not an object, or one of its values is not a string.
    pub fn optional_string_map(
        &self,
        name: &'static str,
    ) -> Result<Option<BTreeMap<String, String>>, RequestError> {
        let Some(value) = self.optional(name) else {
            return Ok(None);
        };
        let refuse = || {
            let detail = format!("{name} must be an object whose values are strings, or null");
            RequestError::field(name, detail)
        };
        let members = value.as_object().ok_or_else(refuse)?;
        members
            .iter()
            .map(|(key, value)| Ok((key.clone(), value.as_str().ok_or_else(refuse)?.to_owned())))
            .collect::<Result<_, _>>()
            .map(Some)
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    const KNOWN: &[&str] = &["n", "s", "o", "m"];

    fn detail<T: std::fmt::Debug>(
        result: Result<T, RequestError>,
    ) -> (Option<&'static str>, String) {
        let error = result.expect_err("refused");
        (error.field, error.detail)
    }

    #[test]
    fn members_are_read_by_their_kind() -> Result<(), RequestError> {
        let body = json!({"n": -7, "s": "text", "o": null, "m": {"a": "1", "b": "2"}});

        let fields = Fields::of(&body, "the body", KNOWN)?;

        assert_eq!(fields.integer("n")?, -7);
        assert_eq!(fields.string("s")?, "text");
        assert_eq!(fields.optional_string("o")?, None);
        assert_eq!(fields.optional_string("s")?, Some("text"));
        assert_eq!(
            fields.optional_string_map("m")?,
            Some(BTreeMap::from([
                ("a".to_owned(), "1".to_owned()),
                ("b".to_owned(), "2".to_owned())
            ]))
        );
        Ok(())
    }

    #[test]
    fn every_refusal_names_the_member_in_plain_words() -> Result<(), RequestError> {
        let body = json!({"n": 2.5, "s": 3, "o": [], "m": {"a": {"b": "c"}}});
        let fields = Fields::of(&body, "the body", KNOWN)?;

        let refusals = [
            detail(fields.integer("n")),
            detail(fields.string("s")),
            detail(fields.optional_string("o")),
            detail(fields.optional_string_map("m")),
            detail(fields.integer("missing")),
        ];

        assert_eq!(refusals[0], (Some("n"), "n must be an integer".to_owned()));
        assert_eq!(refusals[1], (Some("s"), "s must be a string".to_owned()));
        assert_eq!(
            refusals[4],
            (Some("missing"), "missing is required".to_owned())
        );
        for (field, detail) in &refusals {
            let name = field.unwrap_or_default();
            assert!(detail.starts_with(name), "{detail}");
            for internal in ["i64", "struct", "invalid type", "`"] {
                assert!(!detail.contains(internal), "{detail}");
            }
        }
        Ok(())
    }

    #[test]
    fn an_unknown_member_or_a_body_that_is_no_object_is_refused_whole() {
        let unknown = detail(Fields::of(&json!({"n": 1, "tip": 5}), "the body", KNOWN));
        let array = detail(Fields::of(&json!([1, 2]), "the body", KNOWN));

        assert_eq!(unknown.0, None);
        assert!(unknown.1.contains("\"tip\""), "{}", unknown.1);
        assert_eq!(array, (None, "the body must be a JSON object".to_owned()));
    }
}
