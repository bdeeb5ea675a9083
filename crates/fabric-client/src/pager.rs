//! Pagination: every list is a `Stream` of items that follows `continuationUri`
//! (or `continuationToken`) until the last page.

use std::fmt;
use std::pin::Pin;
use std::task::{Context, Poll};

use futures::stream::{self, BoxStream, Stream, StreamExt, TryStreamExt};
use reqwest::Method;
use serde::de::DeserializeOwned;
use url::Url;

use crate::client::{Call, FabricClient};
use crate::error::FabricError;
use crate::models::Page;

/// The items of a paginated list, fetched page by page as the stream is polled.
pub struct Paged<T> {
    inner: BoxStream<'static, Result<T, FabricError>>,
}

impl<T> fmt::Debug for Paged<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Paged").finish_non_exhaustive()
    }
}

impl<T> Stream for Paged<T> {
    type Item = Result<T, FabricError>;
    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.inner.as_mut().poll_next(cx)
    }
}

impl<T: Send + 'static> Paged<T> {
    /// Every item of every page, or the first error.
    pub async fn collect_all(self) -> Result<Vec<T>, FabricError> {
        self.inner.try_collect().await
    }
}

impl FabricClient {
    /// A paginated list starting at `first`.
    pub(crate) fn paged<T>(&self, first: Call) -> Paged<T>
    where
        T: DeserializeOwned + Send + 'static,
    {
        let client = self.clone();
        let pages = stream::try_unfold(Some(first), move |next| {
            let client = client.clone();
            async move {
                let Some(call) = next else {
                    return Ok::<_, FabricError>(None);
                };
                let page: Page<T> = client.fetch(call.clone()).await?;
                let following = client.next_page(&call, &page)?;
                Ok(Some((page.value, following)))
            }
        });
        Paged {
            inner: pages
                .map_ok(|items| stream::iter(items.into_iter().map(Ok)))
                .try_flatten()
                .boxed(),
        }
    }

    fn next_page<T>(&self, current: &Call, page: &Page<T>) -> Result<Option<Call>, FabricError> {
        let next = if let Some(uri) = page.continuation_uri.as_deref().filter(|u| !u.is_empty()) {
            self.call_url(Method::GET, current.route, uri, &current.url)?
        } else if let Some(token) = page.continuation_token.as_deref().filter(|t| !t.is_empty()) {
            let mut call = current.clone();
            set_query(&mut call.url, "continuationToken", &percent_decode(token));
            call
        } else {
            return Ok(None);
        };
        if next.url == current.url {
            return Err(FabricError::Decode {
                operation: current.operation(),
                status: 200,
                message: "the next page link points at the current page".into(),
            });
        }
        Ok(Some(next))
    }
}

/// Sets `key` to `value` in the query, replacing an earlier value.
fn set_query(url: &mut Url, key: &str, value: &str) {
    let kept: Vec<(String, String)> = url
        .query_pairs()
        .filter(|(k, _)| k != key)
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect();
    let mut q = url.query_pairs_mut();
    q.clear();
    for (k, v) in kept {
        q.append_pair(&k, &v);
    }
    q.append_pair(key, value);
}

/// Undoes `%XX` escapes only: the service sends the body's token sometimes encoded
/// (`LDEsMTAwMDAwLDA%3D`), sometimes raw (`+RID:…`), and `+` must stay a plus.
fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let hex = |c: u8| (c as char).to_digit(16);
        if b[i] == b'%'
            && i + 2 < b.len()
            && let (Some(h), Some(l)) = (hex(b[i + 1]), hex(b[i + 2]))
        {
            out.push((h * 16 + l) as u8);
            i += 3;
            continue;
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8(out).unwrap_or_else(|_| s.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_decoded_once_and_plus_is_kept() {
        assert_eq!(percent_decode("LDEsMTAwMDAwLDA%3D"), "LDEsMTAwMDAwLDA=");
        assert_eq!(percent_decode("+RID:~a%2Bb"), "+RID:~a+b");
        assert_eq!(percent_decode("abc%"), "abc%");
        assert_eq!(percent_decode("abc%4"), "abc%4");
        assert_eq!(percent_decode("%zz"), "%zz");
        let mut u = Url::parse("http://h/v1/items?type=Lakehouse&continuationToken=old").unwrap();
        set_query(&mut u, "continuationToken", "a=b+c");
        assert_eq!(
            u.query(),
            Some("type=Lakehouse&continuationToken=a%3Db%2Bc")
        );
    }
}
