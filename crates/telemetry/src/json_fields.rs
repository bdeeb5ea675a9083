//! Span fields for the JSON console, written straight out as a JSON object.
//!
//! tracing-subscriber's own `JsonFields` collects every span's fields into a `BTreeMap` of
//! `serde_json::Value`s and serializes it, and re-parses the object whenever `Span::record`
//! adds a field. That is a good part of a span's cost on the calling thread with the JSON
//! console on; this writes the same object directly. A field recorded again is appended, and
//! the console's JSON parser keeps the last value of a repeated key.

use std::cell::RefCell;
use std::fmt::{self, Write as _};

use tracing::field::{Field, Visit};
use tracing_subscriber::field::RecordFields;
use tracing_subscriber::fmt::FormatFields;
use tracing_subscriber::fmt::FormattedFields;
use tracing_subscriber::fmt::format::Writer;

/// Formats span fields as a JSON object for the JSON console.
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct JsonFields;

impl<'writer> FormatFields<'writer> for JsonFields {
    fn format_fields<R: RecordFields>(
        &self,
        mut writer: Writer<'writer>,
        fields: R,
    ) -> fmt::Result {
        // Written whole from a reused buffer: the span's own string is then allocated once
        // at its final size rather than regrown field by field.
        BUFFER.with(|buffer| match buffer.try_borrow_mut() {
            Ok(mut buffer) => {
                buffer.clear();
                write_object(&mut *buffer, fields)?;
                writer.write_str(&buffer)
            }
            // A field's Debug or Display formatted a span of its own.
            Err(_) => write_object(&mut writer, fields),
        })
    }

    fn add_fields(
        &self,
        current: &'writer mut FormattedFields<Self>,
        fields: &tracing::span::Record<'_>,
    ) -> fmt::Result {
        if current.fields.is_empty() {
            return self.format_fields(current.as_writer(), fields);
        }
        current.fields.pop(); // the closing brace
        let first = current.fields.ends_with('{');
        let mut writer = current.as_writer();
        let mut visitor = Visitor::new(&mut writer, first);
        fields.record(&mut visitor);
        let result = visitor.result;
        current.fields.push('}');
        result
    }
}

thread_local! {
    static BUFFER: RefCell<String> = const { RefCell::new(String::new()) };
}

fn write_object<W: fmt::Write + ?Sized>(out: &mut W, fields: impl RecordFields) -> fmt::Result {
    out.write_char('{')?;
    let mut visitor = Visitor::new(out, true);
    fields.record(&mut visitor);
    visitor.result?;
    out.write_char('}')
}

struct Visitor<'a, W: fmt::Write + ?Sized> {
    out: &'a mut W,
    first: bool,
    result: fmt::Result,
}

impl<'a, W: fmt::Write + ?Sized> Visitor<'a, W> {
    fn new(out: &'a mut W, first: bool) -> Self {
        Self {
            out,
            first,
            result: Ok(()),
        }
    }

    /// Writes `"key":` (with the separating comma), unless an earlier write failed or the
    /// field is one tracing-log adds for its own use.
    fn key(&mut self, field: &Field) -> bool {
        if self.result.is_err() || field.name().starts_with("log.") {
            return false;
        }
        let separator = if self.first { "\"" } else { ",\"" };
        self.first = false;
        self.result = self
            .out
            .write_str(separator)
            .and_then(|()| Escaped(&mut *self.out).write_str(field.name()))
            .and_then(|()| self.out.write_str("\":"));
        self.result.is_ok()
    }

    fn string(&mut self, field: &Field, value: fmt::Arguments<'_>) {
        if self.key(field) {
            self.result = self
                .out
                .write_char('"')
                .and_then(|()| Escaped(&mut *self.out).write_fmt(value))
                .and_then(|()| self.out.write_char('"'));
        }
    }

    fn raw(&mut self, field: &Field, value: fmt::Arguments<'_>) {
        if self.key(field) {
            self.result = self.out.write_fmt(value);
        }
    }
}

impl<W: fmt::Write + ?Sized> Visit for Visitor<'_, W> {
    fn record_str(&mut self, field: &Field, value: &str) {
        self.string(field, format_args!("{value}"));
    }
    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        self.string(field, format_args!("{value:?}"));
    }
    fn record_error(&mut self, field: &Field, value: &(dyn std::error::Error + 'static)) {
        self.string(field, format_args!("{value}"));
    }
    fn record_i64(&mut self, field: &Field, value: i64) {
        self.raw(field, format_args!("{value}"));
    }
    fn record_u64(&mut self, field: &Field, value: u64) {
        self.raw(field, format_args!("{value}"));
    }
    fn record_i128(&mut self, field: &Field, value: i128) {
        self.raw(field, format_args!("{value}"));
    }
    fn record_u128(&mut self, field: &Field, value: u128) {
        self.raw(field, format_args!("{value}"));
    }
    fn record_bool(&mut self, field: &Field, value: bool) {
        self.raw(field, format_args!("{value}"));
    }
    fn record_f64(&mut self, field: &Field, value: f64) {
        if value.is_finite() {
            // `{:?}` keeps a decimal point or exponent, so the value reads back as a float.
            self.raw(field, format_args!("{value:?}"));
        } else {
            self.raw(field, format_args!("null")); // JSON has no NaN or infinity
        }
    }
}

/// Escapes what passes through as the inside of a JSON string (RFC 8259, section 7).
struct Escaped<'a, W: fmt::Write + ?Sized>(&'a mut W);

impl<W: fmt::Write + ?Sized> fmt::Write for Escaped<'_, W> {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        let mut start = 0;
        for (i, b) in s.bytes().enumerate() {
            let escape = match b {
                b'"' => "\\\"",
                b'\\' => "\\\\",
                b'\n' => "\\n",
                b'\r' => "\\r",
                b'\t' => "\\t",
                0..=0x1f => "",
                _ => continue,
            };
            // An ASCII byte always starts a character, so these slices are on boundaries.
            self.0.write_str(&s[start..i])?;
            if escape.is_empty() {
                write!(self.0, "\\u{b:04x}")?;
            } else {
                self.0.write_str(escape)?;
            }
            start = i + 1;
        }
        self.0.write_str(&s[start..])
    }
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use serde_json::{Value, json};
    use tracing_subscriber::layer::SubscriberExt as _;

    use super::*;

    #[derive(Debug)]
    struct Odd;
    impl std::fmt::Display for Odd {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("line\none \"quoted\" \\ \u{1} é ☃")
        }
    }

    /// The span list of the one event logged inside `make_span`'s span, parsed.
    fn span_fields(make_span: impl FnOnce() -> tracing::Span) -> Value {
        let out = Arc::new(Mutex::new(Vec::new()));
        let sink = out.clone();
        let layer = tracing_subscriber::fmt::layer()
            .json()
            .with_current_span(false)
            .with_span_list(true)
            .fmt_fields(JsonFields)
            .with_writer(move || Writer(sink.clone()));
        let subscriber = tracing_subscriber::registry().with(layer);
        tracing::subscriber::with_default(subscriber, || {
            make_span().in_scope(|| tracing::info!("inside"));
        });
        let bytes = out.lock().unwrap().clone();
        let line: Value = serde_json::from_slice(&bytes).expect("one JSON line");
        let mut span = line["spans"][0].clone();
        span.as_object_mut().unwrap().remove("name");
        span
    }

    struct Writer(Arc<Mutex<Vec<u8>>>);
    impl std::io::Write for Writer {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn every_kind_of_value_reads_back_as_json() {
        let got = span_fields(|| {
            tracing::info_span!(
                "s",
                text = "plain",
                odd = %Odd,
                debug = ?Some("x"),
                int = -3i64,
                big = u64::MAX,
                wide = u128::MAX,
                ratio = 0.5,
                whole = 2.0,
                nan = f64::NAN,
                yes = true,
                "spaced \"key\"" = 1,
            )
        });
        assert_eq!(
            got,
            json!({
                "text": "plain",
                "odd": Odd.to_string(),
                "debug": "Some(\"x\")",
                "int": -3,
                "big": u64::MAX,
                "wide": u128::MAX.to_string().parse::<f64>().unwrap(),
                "ratio": 0.5,
                "whole": 2.0,
                "nan": null,
                "yes": true,
                "spaced \"key\"": 1,
            })
        );
    }

    /// Makes a span of its own while it is being formatted.
    struct Nested;
    impl std::fmt::Display for Nested {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            let inner = tracing::info_span!("inner", depth = 2, note = "a \"b\"");
            inner.in_scope(|| f.write_str("outer value"))
        }
    }

    #[test]
    fn a_value_that_makes_a_span_while_formatted_is_written_whole() {
        let got = span_fields(|| tracing::info_span!("s", v = %Nested, n = 1));
        assert_eq!(got, json!({"v": "outer value", "n": 1}));
    }

    #[test]
    fn recorded_fields_are_added_and_the_last_value_wins() {
        let got = span_fields(|| {
            let span = tracing::info_span!("s", status = tracing::field::Empty, attempt = 1);
            span.record("status", 200);
            span.record("attempt", 2);
            span
        });
        assert_eq!(got, json!({"status": 200, "attempt": 2}));
        // Recording into a span that had no fields at all.
        let got = span_fields(|| {
            let span = tracing::info_span!("s", late = tracing::field::Empty);
            span.record("late", "now");
            span
        });
        assert_eq!(got, json!({"late": "now"}));
        assert_eq!(span_fields(|| tracing::info_span!("s")), json!({}));
    }
}
