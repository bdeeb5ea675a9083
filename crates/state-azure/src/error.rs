//! Reading the SDK's errors: the HTTP status and the storage error code, and a message
//! that keeps the cause (azure_core's `Display` alone hides a connection failure's reason).

use azure_core::error::ErrorKind;

/// The HTTP status and storage error code of a service answer, if the error is one.
pub(crate) fn status_code(e: &azure_core::Error) -> Option<(u16, String)> {
    match e.kind() {
        ErrorKind::HttpResponse {
            status, error_code, ..
        } => Some((u16::from(*status), error_code.clone().unwrap_or_default())),
        _ => None,
    }
}

/// Whether the service answered with `code` (e.g. `LeaseAlreadyPresent`).
pub(crate) fn has_code(e: &azure_core::Error, code: &str) -> bool {
    status_code(e).is_some_and(|(_, c)| c == code)
}

/// Whether the service answered 404.
pub(crate) fn is_not_found(e: &azure_core::Error) -> bool {
    status_code(e).is_some_and(|(s, _)| s == 404)
}

/// The service refused a lease operation for good (409 conflict or 412 precondition: the
/// lease was broken, changed, or is not ours), as opposed to not being reached.
pub(crate) fn is_refusal(e: &azure_core::Error) -> bool {
    status_code(e).is_some_and(|(s, _)| matches!(s, 404 | 409 | 412))
}

/// A one-line description with the source chain: `HTTP 409 LeaseAlreadyPresent`, or the
/// connection error and its causes. Callers redact the SAS before showing it.
pub(crate) fn describe(e: &azure_core::Error) -> String {
    if let Some((status, code)) = status_code(e) {
        return if code.is_empty() {
            format!("HTTP {status}")
        } else {
            format!("HTTP {status} {code}")
        };
    }
    let mut text = e.to_string();
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        let s_text = s.to_string();
        if !text.contains(&s_text) {
            text.push_str(": ");
            text.push_str(&s_text);
        }
        source = s.source();
    }
    text
}
