//! The state URL: which container (and prefix) holds fabrik's state, and its SAS if any.
//!
//! Two forms: `https://ACCOUNT.blob.core.windows.net/CONTAINER[/PREFIX]` (account in the host,
//! as in Azure) and `http(s)://HOST[:PORT]/ACCOUNT/CONTAINER[/PREFIX]` (account in the path,
//! as Azurite and other emulators serve it). A SAS may ride in the query string; it is split
//! off at once and kept only as a secret, so nothing that prints a [`StateUrl`] can leak it.

use std::fmt;

use fabrik_core::SecretString;
use secrecy::ExposeSecret;
use url::Url;

/// A parsed state URL. `Display` and `Debug` never show the SAS.
#[derive(Clone)]
pub struct StateUrl {
    container_url: Url,
    prefix: String,
    sas: Option<SecretString>,
}

impl fmt::Debug for StateUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StateUrl")
            .field("container_url", &self.container_url.as_str())
            .field("prefix", &self.prefix)
            .field("sas", &self.sas.as_ref().map(|_| "[redacted]"))
            .finish()
    }
}

impl fmt::Display for StateUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.container_url.as_str())?;
        if !self.prefix.is_empty() {
            write!(f, "/{}", self.prefix.trim_end_matches('/'))?;
        }
        Ok(())
    }
}

/// Whether `s` looks like a blob state URL rather than a local directory.
pub fn is_blob_url(s: &str) -> bool {
    s.starts_with("https://") || s.starts_with("http://")
}

impl StateUrl {
    /// Parses `input`. Errors name the offending value, with any query string removed.
    pub fn parse(input: &str) -> Result<Self, String> {
        let shown = input.split('?').next().unwrap_or_default();
        let url = Url::parse(input).map_err(|e| format!("state URL {shown:?}: {e}"))?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err(format!(
                "state URL {shown:?}: expected http:// or https://, got {}://",
                url.scheme()
            ));
        }
        let host = url
            .host_str()
            .ok_or_else(|| format!("state URL {shown:?}: no host"))?
            .to_owned();
        let segments: Vec<&str> = url
            .path_segments()
            .map(|s| s.filter(|p| !p.is_empty()).collect())
            .unwrap_or_default();
        // Account in the host (ACCOUNT.blob.core.windows.net and other clouds) or in the path.
        let account_in_host = host.contains(".blob.");
        let needed = if account_in_host { 1 } else { 2 };
        if segments.len() < needed {
            return Err(format!(
                "state URL {shown:?}: expected {}",
                if account_in_host {
                    "https://ACCOUNT.blob.core.windows.net/CONTAINER[/PREFIX]"
                } else {
                    "http(s)://HOST:PORT/ACCOUNT/CONTAINER[/PREFIX]"
                }
            ));
        }
        let container = segments[needed - 1];
        if !valid_container(container) {
            return Err(format!(
                "state URL {shown:?}: {container:?} is not a valid container name \
                 (3-63 lower-case letters, digits and single hyphens)"
            ));
        }
        let prefix: String = segments[needed..].iter().map(|s| format!("{s}/")).collect();
        let mut container_url = url.clone();
        container_url.set_query(None);
        container_url.set_fragment(None);
        container_url
            .path_segments_mut()
            .map_err(|()| format!("state URL {shown:?}: not a base URL"))?
            .clear()
            .extend(&segments[..needed]);
        let sas = url
            .query()
            .filter(|q| !q.is_empty())
            .map(|q| SecretString::from(q.to_owned()));
        let parsed = Self {
            container_url,
            prefix,
            sas,
        };
        parsed.check_sas_transport()?;
        Ok(parsed)
    }

    /// Refuses a SAS over plain http to anything but this machine (localhost, 127.0.0.0/8,
    /// ::1, where emulators listen): on the network it would travel in clear text, and the
    /// SAS is a bearer credential. The error names the URL without the SAS.
    pub(crate) fn check_sas_transport(&self) -> Result<(), String> {
        if self.sas.is_none() || self.is_https() || self.is_loopback() {
            return Ok(());
        }
        Err(format!(
            "state URL \"{self}\": a SAS token is sent over http only to this machine \
             (localhost, 127.0.0.0/8, ::1); use https"
        ))
    }

    fn is_loopback(&self) -> bool {
        match self.container_url.host() {
            Some(url::Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
            Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
            Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
            None => false,
        }
    }

    /// Uses `sas` (with or without its leading `?`) unless the URL carried one.
    pub fn with_sas(mut self, sas: Option<SecretString>) -> Self {
        if self.sas.is_none() {
            self.sas = sas
                .map(|s| SecretString::from(s.expose_secret().trim_start_matches('?').to_owned()))
                .filter(|s| !s.expose_secret().is_empty());
        }
        self
    }

    /// Whether a SAS was given (otherwise an Entra token is needed).
    pub fn has_sas(&self) -> bool {
        self.sas.is_some()
    }

    /// Whether the URL uses https.
    pub fn is_https(&self) -> bool {
        self.container_url.scheme() == "https"
    }

    /// The prefix inside the container, empty or ending in `/`.
    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    /// The container URL without credentials.
    pub fn container_url(&self) -> &Url {
        &self.container_url
    }

    /// The container URL the SDK is given: with the SAS in its query. Never print it.
    pub(crate) fn container_url_with_sas(&self) -> Url {
        let mut url = self.container_url.clone();
        if let Some(sas) = &self.sas {
            url.set_query(Some(sas.expose_secret()));
        }
        url
    }

    /// Removes the SAS from `text`, for error messages that might echo a URL: the SAS
    /// itself, its signature in any encoding, and the whole query of any URL that carries a
    /// `sig=` (the SDK reorders and re-encodes query parameters).
    pub(crate) fn redact(&self, text: &str) -> String {
        let mut out = text.to_owned();
        if let Some(sas) = &self.sas {
            let sas = sas.expose_secret();
            out = out.replace(sas, "***");
            for pair in sas.split('&') {
                if let Some(v) = pair.strip_prefix("sig=")
                    && !v.is_empty()
                {
                    let decoded: String = url::form_urlencoded::parse(pair.as_bytes())
                        .map(|(_, v)| v.into_owned())
                        .collect();
                    let encoded: String =
                        url::form_urlencoded::byte_serialize(decoded.as_bytes()).collect();
                    for form in [v, decoded.as_str(), encoded.as_str()] {
                        if !form.is_empty() {
                            out = out.replace(form, "***");
                        }
                    }
                }
            }
        }
        redact_signed_queries(&out)
    }
}

/// Replaces the query of every URL in `text` whose query has a `sig=` parameter.
fn redact_signed_queries(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(q) = rest.find('?') {
        let end = rest[q..]
            .find(|c: char| c.is_whitespace() || matches!(c, ')' | '"' | '\'' | '>'))
            .map_or(rest.len(), |i| q + i);
        let query = &rest[q + 1..end];
        out.push_str(&rest[..q]);
        if query.split('&').any(|p| p.starts_with("sig=")) {
            out.push_str("?[SAS redacted]");
        } else {
            out.push_str(&rest[q..end]);
        }
        rest = &rest[end..];
    }
    out.push_str(rest);
    out
}

fn valid_container(name: &str) -> bool {
    (3..=63).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !name.starts_with('-')
        && !name.ends_with('-')
        && !name.contains("--")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn azure_form_keeps_the_account_in_the_host() {
        let u = StateUrl::parse("https://acct.blob.core.windows.net/state/team/a?sv=1&sig=SECRET")
            .unwrap();
        assert_eq!(
            u.container_url().as_str(),
            "https://acct.blob.core.windows.net/state"
        );
        assert_eq!(u.prefix(), "team/a/");
        assert!(u.has_sas() && u.is_https());
        assert_eq!(
            u.to_string(),
            "https://acct.blob.core.windows.net/state/team/a"
        );
        assert!(!format!("{u:?}").contains("SECRET"));
        assert_eq!(
            u.container_url_with_sas().as_str(),
            "https://acct.blob.core.windows.net/state?sv=1&sig=SECRET"
        );
        assert_eq!(
            u.redact("GET ...?sv=1&sig=SECRET failed"),
            "GET ...?*** failed"
        );
        assert_eq!(u.redact("sig=SECRET"), "sig=***");
        // The SDK's own rendering: parameters reordered, values re-encoded.
        let sdk =
            "error sending request for url (http://h/a/c/b?comp=x&sig=SECRET%3D&sv=1): refused";
        let shown = u.redact(sdk);
        assert_eq!(
            shown,
            "error sending request for url (http://h/a/c/b?[SAS redacted]): refused"
        );
        assert_eq!(u.redact("no query? here"), "no query? here");
    }

    #[test]
    fn path_form_keeps_the_account_in_the_path() {
        let u = StateUrl::parse("http://127.0.0.1:10000/devstoreaccount1/fabrik").unwrap();
        assert_eq!(
            u.container_url().as_str(),
            "http://127.0.0.1:10000/devstoreaccount1/fabrik"
        );
        assert_eq!(u.prefix(), "");
        assert!(!u.has_sas());
        let u = u.with_sas(Some(SecretString::from("?sv=2&sig=X".to_owned())));
        assert_eq!(
            u.container_url_with_sas().query(),
            Some("sv=2&sig=X"),
            "a leading ? is dropped"
        );
    }

    #[test]
    fn a_sas_in_the_url_wins_over_one_given_separately() {
        let u = StateUrl::parse("http://127.0.0.1:1/a/cont?sig=URL")
            .unwrap()
            .with_sas(Some(SecretString::from("sig=ENV".to_owned())));
        assert_eq!(u.container_url_with_sas().query(), Some("sig=URL"));
    }

    #[test]
    fn bad_urls_are_named_without_their_query() {
        for (bad, says) in [
            ("ftp://h/a/c", "expected http:// or https://"),
            (
                "http://127.0.0.1:1/onlyaccount?sig=S",
                "HOST:PORT/ACCOUNT/CONTAINER",
            ),
            (
                "https://acct.blob.core.windows.net/?sig=S",
                "ACCOUNT.blob.core.windows.net",
            ),
            ("http://h:1/a/Bad_Name?sig=S", "not a valid container name"),
            ("not a url", "state URL"),
        ] {
            let e = StateUrl::parse(bad).unwrap_err();
            assert!(e.contains(says), "{bad}: {e}");
            assert!(!e.contains("sig=S"), "{e}");
        }
    }

    #[test]
    fn a_sas_over_http_goes_only_to_this_machine() {
        for local in [
            "http://127.0.0.1:10000/acct/cont?sv=1&sig=SECRET",
            "http://127.8.9.10:1/acct/cont?sig=SECRET",
            "http://localhost:10000/acct/cont?sig=SECRET",
            "http://LOCALHOST/acct/cont?sig=SECRET",
            "http://[::1]:10000/acct/cont?sig=SECRET",
            "https://acct.blob.core.windows.net/cont?sig=SECRET",
            "http://acct.blob.core.windows.net/cont",
        ] {
            let u = StateUrl::parse(local).unwrap_or_else(|e| panic!("{local}: {e}"));
            assert!(!format!("{u:?} {u}").contains("SECRET"), "{u:?}");
        }
        for remote in [
            "http://acct.blob.core.windows.net/cont?sv=1&sig=SECRET",
            "http://10.0.0.5:10000/acct/cont?sig=SECRET",
            "http://128.0.0.1/acct/cont?sig=SECRET",
            "http://[::2]/acct/cont?sig=SECRET",
            "http://localhost.example.com/acct/cont?sig=SECRET",
        ] {
            let e = StateUrl::parse(remote).unwrap_err();
            let shown = remote.split('?').next().unwrap();
            assert!(e.contains(shown), "{remote}: {e}");
            assert!(e.contains("use https"), "{remote}: {e}");
            assert!(!format!("{e} {e:?}").contains("SECRET"), "{e:?}");
        }
    }
}
