//! Integer request fields as JSON numbers: a JSON number with an integral value is an
//! integer whatever its notation (`1600` and `1600.0` are the same number, and JSON Schema's
//! `integer` type accepts both), so `1600.0` is read as 1600. A fractional value, or a
//! value in float notation beyond ±2^53 (where a float no longer holds every integer, so the
//! value read might not be the one sent), is rejected.

use std::fmt;

use serde::de::{self, Deserialize, Deserializer, Visitor};

/// The largest magnitude up to which every integer is exact in an `f64` (2^53).
const MAX_EXACT_FLOAT: f64 = 9_007_199_254_740_992.0;

struct IntegerVisitor;

impl<'de> Visitor<'de> for IntegerVisitor {
    type Value = i64;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an integer")
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<i64, E> {
        Ok(v)
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<i64, E> {
        i64::try_from(v).map_err(|_| E::invalid_value(de::Unexpected::Unsigned(v), &"a 64-bit signed integer"))
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<i64, E> {
        if v.fract() == 0.0 && v.abs() <= MAX_EXACT_FLOAT {
            // Exact: integral and within ±2^53.
            Ok(v as i64)
        } else {
            Err(E::invalid_value(de::Unexpected::Float(v), &"an integer (in float notation at most 2^53)"))
        }
    }
}

/// An `i64` from any integral JSON number.
///
/// # Errors
/// Not a number, fractional, or out of range.
pub fn integer<'de, D: Deserializer<'de>>(d: D) -> Result<i64, D::Error> {
    d.deserialize_i64(IntegerVisitor)
}

/// An optional `i64` (`null` is `None`) from any integral JSON number.
///
/// # Errors
/// As [`integer`].
pub fn optional_integer<'de, D: Deserializer<'de>>(d: D) -> Result<Option<i64>, D::Error> {
    struct Integer(i64);
    impl<'de> Deserialize<'de> for Integer {
        fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
            integer(d).map(Integer)
        }
    }
    Ok(Option::<Integer>::deserialize(d)?.map(|Integer(v)| v))
}

#[cfg(test)]
mod tests {
    use serde::Deserialize;

    #[derive(Debug, Deserialize)]
    struct T {
        #[serde(deserialize_with = "super::integer")]
        n: i64,
        #[serde(default, deserialize_with = "super::optional_integer")]
        o: Option<i64>,
    }

    fn parse(json: &str) -> Result<T, serde_json::Error> {
        serde_json::from_str(json)
    }

    #[test]
    fn integral_numbers_in_any_notation() {
        let t = parse(r#"{"n": 1600.0, "o": 7}"#).unwrap();
        assert_eq!((t.n, t.o), (1600, Some(7)));
        assert_eq!(parse(r#"{"n": -2, "o": null}"#).unwrap().o, None);
        assert_eq!(parse(r#"{"n": 1e3}"#).unwrap().n, 1000);
        assert_eq!(parse(r#"{"n": 9223372036854775807}"#).unwrap().n, i64::MAX);
        assert_eq!(parse(r#"{"n": 9007199254740992.0}"#).unwrap().n, 1 << 53);
    }

    #[test]
    fn rejects_fractions_inexact_floats_and_non_numbers() {
        for bad in [
            r#"{"n": 1.5}"#,
            r#"{"n": 1e300}"#,
            r#"{"n": 9007199254740994.0}"#,
            r#"{"n": 9223372036854775808}"#,
            r#"{"n": "1"}"#,
            r#"{"n": 1, "o": 0.5}"#,
        ] {
            assert!(parse(bad).is_err(), "{bad}");
        }
    }
}
