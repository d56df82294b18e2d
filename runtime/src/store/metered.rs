//! Counts the requests weft makes to its object store, by operation, and
//! those that failed (after the client's own retries): the agent's
//! `/metrics` shows them. Recording costs nothing in processes that
//! install no metrics recorder.

use std::fmt;
use std::ops::Range;
use std::sync::Arc;

use bytes::Bytes;
use futures::StreamExt;
use futures::stream::BoxStream;
use object_store::path::Path;
use object_store::{
    CopyOptions, GetOptions, GetResult, ListResult, MultipartUpload, ObjectMeta, ObjectStore, PutMultipartOptions,
    PutOptions, PutPayload, PutResult, Result,
};

use crate::model::metric_names::{STORE_ERRORS, STORE_REQUESTS};

/// An object store whose requests are counted.
#[derive(Debug)]
pub(super) struct Metered {
    inner: Arc<dyn ObjectStore>,
}

impl Metered {
    pub(super) fn new(inner: Arc<dyn ObjectStore>) -> Self {
        Metered { inner }
    }
}

impl fmt::Display for Metered {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.inner.fmt(f)
    }
}

/// Counts one request of `operation`, and its failure. A missing object or
/// a lost create race is an answer, not a failure.
/// Each request is also a trace event (`WEFT_LOG=weft::store::requests=trace`
/// prints every request a command makes).
fn count<T>(operation: &'static str, result: &Result<T>) {
    metrics::counter!(STORE_REQUESTS, "operation" => operation).increment(1);
    let failed = result
        .as_ref()
        .err()
        .filter(|e| !matches!(e, object_store::Error::NotFound { .. } | object_store::Error::AlreadyExists { .. }));
    tracing::trace!(target: "weft::store::requests", operation, failed = failed.is_some(), "store request");
    if failed.is_some() {
        metrics::counter!(STORE_ERRORS, "operation" => operation).increment(1);
    }
}

#[async_trait::async_trait]
impl ObjectStore for Metered {
    async fn put_opts(&self, location: &Path, payload: PutPayload, opts: PutOptions) -> Result<PutResult> {
        let result = self.inner.put_opts(location, payload, opts).await;
        count("put", &result);
        result
    }

    async fn put_multipart_opts(&self, location: &Path, opts: PutMultipartOptions) -> Result<Box<dyn MultipartUpload>> {
        let result = self.inner.put_multipart_opts(location, opts).await;
        count("put_multipart", &result);
        result
    }

    async fn get_opts(&self, location: &Path, options: GetOptions) -> Result<GetResult> {
        let operation = if options.head { "head" } else { "get" };
        let result = self.inner.get_opts(location, options).await;
        count(operation, &result);
        result
    }

    async fn get_ranges(&self, location: &Path, ranges: &[Range<u64>]) -> Result<Vec<Bytes>> {
        let result = self.inner.get_ranges(location, ranges).await;
        count("get", &result);
        result
    }

    fn delete_stream(&self, locations: BoxStream<'static, Result<Path>>) -> BoxStream<'static, Result<Path>> {
        self.inner
            .delete_stream(locations)
            .map(|result| {
                count("delete", &result);
                result
            })
            .boxed()
    }

    fn list(&self, prefix: Option<&Path>) -> BoxStream<'static, Result<ObjectMeta>> {
        metrics::counter!(STORE_REQUESTS, "operation" => "list").increment(1);
        tracing::trace!(target: "weft::store::requests", operation = "list", "store request");
        self.inner
            .list(prefix)
            .inspect(|item| {
                if item.is_err() {
                    metrics::counter!(STORE_ERRORS, "operation" => "list").increment(1);
                }
            })
            .boxed()
    }

    async fn list_with_delimiter(&self, prefix: Option<&Path>) -> Result<ListResult> {
        let result = self.inner.list_with_delimiter(prefix).await;
        count("list", &result);
        result
    }

    async fn copy_opts(&self, from: &Path, to: &Path, options: CopyOptions) -> Result<()> {
        let result = self.inner.copy_opts(from, to, options).await;
        count("copy", &result);
        result
    }
}
