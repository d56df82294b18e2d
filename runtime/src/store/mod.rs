//! The store: the object-store root under which weft keeps everything, so that
//! the same code serves a laptop (`file://`) and a fleet (S3, GCS, Azure).
//!
//! ```text
//! artifacts/sha256/<hex>.wasm     content-addressed components
//! artifacts/names/<name>.json     names given with `weft push --name`
//! runs/<id>/run.json              created once: flow, component digest, parameters, attempt
//! runs/<id>/states/<seq>.json     state history, append-only, create-only writes
//! runs/<id>/logs/<seq>.jsonl      log chunks, written behind
//! runs/<id>/tasks/<seq>.jsonl     task run snapshots, written behind in batches
//! runs/<id>/result.json           the flow's result
//! cache/<sha256 of key>.json      task results cached across runs, create-only
//! compiled/<engine>/<hex>.cwasm   compiled code, authenticated by the operator's code key
//! pools/<name>/<revision>.json    work pools, one create-only file per revision
//! ```
//!
//! Sequence numbers are zero-padded so that listing order is numeric order.
//! This module owns URLs, credentials and the layout; it calls `model` for
//! the records and nothing above it.

mod artifacts;
mod cache;
mod compiled;
mod deploy;
mod index;
mod metered;
mod pools;
mod queue;
mod recorder;
mod runs;
mod url;

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures::TryStreamExt;
use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt, PutMode, PutOptions, PutPayload};

pub use artifacts::{ArtifactError, Check, ComponentSource, Pushed, split_artifact_url};
pub use compiled::{CODE_KEY_ENV, CodeKey};
pub use deploy::{DeployError, ScheduleError};
pub use pools::PoolError;
pub use queue::{Heartbeat, Queued, Slot};
pub use recorder::StoreRecorder;
pub use runs::{Cancelled, RunSummary, STALE_AFTER, StoredTaskRuns, TaskRunPage, TransitionOutcome};
pub use url::{StoreLocation, default_store_url, weft_home};

/// Why a store operation failed. Every message names the store URL.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The URL cannot be used.
    #[error(
        "store URL `{url}` is not usable: {reason}. Write s3://bucket/prefix, gs://bucket/prefix, \
         az://container/prefix, file:///absolute/path or memory://"
    )]
    BadUrl {
        /// The URL as given.
        url: String,
        /// Why.
        reason: String,
    },
    /// A `--store-option` is wrong.
    #[error("store `{url}`: option `{key}`: {reason}")]
    BadOption {
        /// The store URL.
        url: String,
        /// The option's key.
        key: String,
        /// Why.
        reason: String,
    },
    /// The bucket or container does not exist.
    #[error("store `{url}`: the bucket or container does not exist ({detail}); create it, or check the URL")]
    NoBucket {
        /// The store URL.
        url: String,
        /// What the service said.
        detail: String,
    },
    /// Credentials are missing or refused.
    #[error("store `{url}`: access denied while {action} ({detail}); {hint}")]
    Denied {
        /// The store URL.
        url: String,
        /// What weft was doing.
        action: String,
        /// What the service said.
        detail: String,
        /// Which credentials to check.
        hint: &'static str,
    },
    /// No connection could be made to the store's server, after retries.
    #[error(
        "store `{url}` is unreachable: {action} could not connect to {endpoint} ({detail}). {hint}; \
         `--store-option retry_timeout=5s` gives up sooner"
    )]
    Unreachable {
        /// The store URL.
        url: String,
        /// What weft was doing.
        action: String,
        /// The server weft tried, as found in the error.
        endpoint: String,
        /// The last error, and the retries made.
        detail: String,
        /// Which settings to check.
        hint: &'static str,
    },
    /// Anything else: timed out after retries, a server error.
    #[error("store `{url}`: {action} failed: {detail}")]
    Request {
        /// The store URL.
        url: String,
        /// What weft was doing.
        action: String,
        /// What went wrong, after retries.
        detail: String,
    },
    /// A record in the store is not what weft wrote.
    #[error("store `{url}`: `{path}` is corrupt: {reason}")]
    Corrupt {
        /// The store URL.
        url: String,
        /// The object.
        path: String,
        /// Why it does not parse.
        reason: String,
    },
}

/// An open store: the object store and the prefix of weft's root in it.
#[derive(Clone)]
pub struct Store {
    objects: Arc<dyn ObjectStore>,
    prefix: Path,
    location: StoreLocation,
    index: index::IndexState,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store").field("url", &self.location.url()).finish_non_exhaustive()
    }
}

impl Store {
    /// Opens the store at `url` with `key=value` options (endpoint, region,
    /// allow_http, ... and weft's `retry_timeout`, `max_retries`).
    /// Credentials come from the environment as each cloud's tools expect.
    pub fn open(url: &str, options: &[(String, String)]) -> Result<Store, StoreError> {
        let location = StoreLocation::parse(url)?;
        let (objects, prefix) = location.connect(options)?;
        let objects: Arc<dyn ObjectStore> = Arc::new(metered::Metered::new(objects));
        Ok(Store { objects, prefix, location, index: index::IndexState::default() })
    }

    /// The store's root URL, as given.
    pub fn url(&self) -> &str {
        self.location.url()
    }

    /// Whether the store is a cloud bucket (S3, GCS, Azure Blob), which
    /// pods in a cluster can reach, rather than a folder or memory of this
    /// machine.
    pub fn is_cloud(&self) -> bool {
        self.location.is_cloud()
    }

    /// The folder of a `file://` store: one this machine can watch for
    /// changes instead of polling.
    pub fn local_dir(&self) -> Option<std::path::PathBuf> {
        self.location.local_dir()
    }

    fn path(&self, relative: &str) -> Path {
        if self.prefix.as_ref().is_empty() {
            Path::from(relative)
        } else {
            Path::from(format!("{}/{relative}", self.prefix))
        }
    }

    /// The part of `path` below the root.
    fn relative<'a>(&self, path: &'a Path) -> &'a str {
        let full = path.as_ref();
        let prefix = self.prefix.as_ref();
        if prefix.is_empty() {
            full
        } else {
            full.strip_prefix(prefix).map(|r| r.trim_start_matches('/')).unwrap_or(full)
        }
    }

    fn error(&self, action: impl Into<String>, error: object_store::Error) -> StoreError {
        let url = self.url().to_owned();
        let action = action.into();
        let detail = error.to_string();
        let hint = self.location.credentials_hint();
        match &error {
            object_store::Error::PermissionDenied { .. } | object_store::Error::Unauthenticated { .. } => {
                StoreError::Denied { url, action, detail, hint }
            }
            _ if [
                "NoSuchBucket",
                "ContainerNotFound",
                "The specified bucket does not exist",
                "bucket does not exist",
            ]
            .iter()
            .any(|needle| detail.contains(needle)) =>
            {
                StoreError::NoBucket { url, detail }
            }
            _ if [
                "AccessDenied",
                "403 Forbidden",
                "AuthorizationFailure",
                "AuthenticationFailed",
                "InvalidAccessKeyId",
                "SignatureDoesNotMatch",
            ]
            .iter()
            .any(|needle| detail.contains(needle)) =>
            {
                StoreError::Denied { url, action, detail, hint }
            }
            _ if [
                "error sending request",
                "Connection refused",
                "connection refused",
                "dns error",
                "failed to lookup address",
                "error trying to connect",
                "tcp connect error",
            ]
            .iter()
            .any(|needle| detail.contains(needle)) =>
            {
                StoreError::Unreachable {
                    url,
                    action,
                    endpoint: endpoint_in(&detail).unwrap_or_else(|| "its server".into()),
                    detail: unreachable_detail(&detail),
                    hint: self.location.endpoint_hint(),
                }
            }
            _ => StoreError::Request { url, action, detail },
        }
    }

    /// Reads an object under the root by its relative path; `None` when it
    /// does not exist. weft's own records are read with the typed methods.
    pub async fn get(&self, relative: &str) -> Result<Option<Bytes>, StoreError> {
        match self.objects.get(&self.path(relative)).await {
            Ok(result) => result.bytes().await.map(Some).map_err(|e| self.error(format!("reading `{relative}`"), e)),
            Err(object_store::Error::NotFound { .. }) if !self.location.is_cloud() => Ok(None),
            Err(object_store::Error::NotFound { source, .. }) => {
                // A missing bucket also answers 404; tell the two apart.
                let text = source.to_string();
                if ["NoSuchBucket", "ContainerNotFound", "bucket does not exist"].iter().any(|n| text.contains(n)) {
                    Err(StoreError::NoBucket { url: self.url().to_owned(), detail: text })
                } else {
                    Ok(None)
                }
            }
            Err(e) => Err(self.error(format!("reading `{relative}`"), e)),
        }
    }

    /// Reads a JSON record; `None` when it does not exist.
    pub(crate) async fn get_json<T: serde::de::DeserializeOwned>(
        &self,
        relative: &str,
    ) -> Result<Option<T>, StoreError> {
        match self.get(relative).await? {
            None => Ok(None),
            Some(bytes) => serde_json::from_slice(&bytes).map(Some).map_err(|e| StoreError::Corrupt {
                url: self.url().to_owned(),
                path: relative.to_owned(),
                reason: e.to_string(),
            }),
        }
    }

    /// Writes an object under the root by its relative path, replacing any
    /// that is there. weft's own records are written with the typed methods.
    pub async fn put(&self, relative: &str, bytes: Bytes) -> Result<(), StoreError> {
        self.objects
            .put(&self.path(relative), PutPayload::from_bytes(bytes))
            .await
            .map(|_| ())
            .map_err(|e| self.error(format!("writing `{relative}`"), e))
    }

    /// Creates an object only if none exists there: `Ok(false)` when one
    /// does. Every backend makes this atomic (S3 `If-None-Match: *`, GCS
    /// `x-goog-if-generation-match: 0`, Azure `If-None-Match: *`, a local
    /// hard link), which is what makes state writes safe between processes.
    pub(crate) async fn create(&self, relative: &str, bytes: Bytes) -> Result<bool, StoreError> {
        let options = PutOptions { mode: PutMode::Create, ..PutOptions::default() };
        match self.objects.put_opts(&self.path(relative), PutPayload::from_bytes(bytes), options).await {
            Ok(_) => Ok(true),
            Err(object_store::Error::AlreadyExists { .. }) => Ok(false),
            Err(e) => Err(self.error(format!("creating `{relative}`"), e)),
        }
    }

    /// Whether an object exists.
    pub(crate) async fn exists(&self, relative: &str) -> Result<bool, StoreError> {
        match self.objects.head(&self.path(relative)).await {
            Ok(_) => Ok(true),
            Err(object_store::Error::NotFound { .. }) => Ok(false),
            Err(e) => Err(self.error(format!("looking up `{relative}`"), e)),
        }
    }

    /// The names of the objects under a folder (not recursive), sorted.
    pub(crate) async fn list_names(&self, folder: &str) -> Result<Vec<String>, StoreError> {
        let prefix = self.path(folder);
        let objects: Vec<object_store::ObjectMeta> = self
            .objects
            .list(Some(&prefix))
            .try_collect()
            .await
            .map_err(|e| self.error(format!("listing `{folder}`"), e))?;
        let mut names: Vec<String> = objects
            .iter()
            .filter_map(|o| {
                self.relative(&o.location).strip_prefix(folder).map(|n| n.trim_start_matches('/').to_owned())
            })
            .filter(|n| !n.is_empty() && !n.contains('/'))
            .collect();
        names.sort();
        Ok(names)
    }

    /// The names of the folders under a folder, sorted.
    pub(crate) async fn list_folders(&self, folder: &str) -> Result<Vec<String>, StoreError> {
        let prefix = self.path(folder);
        let listing = self
            .objects
            .list_with_delimiter(Some(&prefix))
            .await
            .map_err(|e| self.error(format!("listing `{folder}`"), e))?;
        let mut names: Vec<String> =
            listing.common_prefixes.iter().filter_map(|p| p.filename().map(str::to_owned)).collect();
        names.sort();
        Ok(names)
    }

    /// Checks that the store answers, so that a wrong URL or missing
    /// credentials fail at once with a clear message.
    pub async fn check(&self) -> Result<(), StoreError> {
        self.objects
            .list_with_delimiter(Some(&self.path("runs")))
            .await
            .map(|_| ())
            .map_err(|e| self.error("listing the store's root", e))
    }
}

/// How long weft keeps retrying a store request that fails transiently, by
/// default; `--store-option retry_timeout=30s` changes it.
pub const DEFAULT_RETRY_TIMEOUT: Duration = Duration::from_secs(30);

/// The `scheme://host:port` of the first URL in an error's text.
fn endpoint_in(detail: &str) -> Option<String> {
    let start = detail.find("http://").or_else(|| detail.find("https://"))?;
    let url = &detail[start..];
    let host_start = url.find("://")? + 3;
    let end = url[host_start..].find(['/', ' ', '?']).map_or(url.len(), |i| host_start + i);
    Some(url[..end].to_owned())
}

/// The cause and the retries of an unreachable store's error, without the
/// request line: `HTTP error: error sending request; 10 retries over 3.8s`.
fn unreachable_detail(detail: &str) -> String {
    let cause = detail.rsplit(" - ").next().unwrap_or(detail).trim();
    let retries = detail.split(", ").find(|part| part.starts_with("after ") && part.ends_with(" retries"));
    let took = detail
        .split(" in ")
        .nth(1)
        .and_then(|rest| rest.split(',').next())
        .and_then(|t| t.strip_suffix('s'))
        .and_then(|t| t.parse::<f64>().ok())
        .map(|seconds| format!("{seconds:.1}s"));
    match (retries, took) {
        (Some(retries), Some(took)) => format!("{cause}; gave up {retries} over {took}"),
        _ => cause.to_owned(),
    }
}

#[cfg(test)]
mod unreachable_tests {
    #[test]
    fn an_unreachable_store_names_its_endpoint_and_the_retries() {
        let detail = "Generic S3 error: Error performing list request: Error performing GET \
                      http://127.0.0.1:1/bucket?delimiter=%2F in 3.762545561s, after 10 retries, max_retries: 10, \
                      retry_timeout: 30s  - HTTP error: error sending request";
        assert_eq!(super::endpoint_in(detail).as_deref(), Some("http://127.0.0.1:1"));
        assert_eq!(
            super::unreachable_detail(detail),
            "HTTP error: error sending request; gave up after 10 retries over 3.8s"
        );
    }
}
