//! Content-addressed components: `artifacts/sha256/<hex>.wasm`, pushed once
//! and verified against their digest on every download.

use std::time::SystemTime;

use bytes::Bytes;
use serde::{Deserialize, Serialize};

use super::{Store, StoreError};
use crate::engine::{ComponentError, ComponentInfo};
use crate::model::Digest;

/// What `push_artifact` did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pushed {
    /// The component's digest.
    pub digest: Digest,
    /// Its URL in the store.
    pub url: String,
    /// False when the store already had these bytes (nothing was uploaded).
    pub uploaded: bool,
}

/// Why a component could not be had from the store.
#[derive(Debug, thiserror::Error)]
pub enum ArtifactError {
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The component is not one that can be used here (not a component,
    /// not a flow, not a task): refused before it was stored or compiled.
    #[error(transparent)]
    Refused(#[from] ComponentError),
    /// No component with that digest.
    #[error("component {digest} is not in store `{store}`: push it first with `weft push FILE.wasm --store {store}`")]
    Missing {
        /// The digest asked for.
        digest: Digest,
        /// The store URL.
        store: String,
    },
    /// The bytes do not match the digest: refused before compiling.
    #[error(
        "component `{url}` does not match its digest: expected {expected}, got {actual}. \
         It was changed or corrupted after it was pushed; push it again"
    )]
    Mismatch {
        /// Where it was downloaded from.
        url: String,
        /// The digest it is stored under.
        expected: Digest,
        /// The digest of the bytes downloaded.
        actual: Digest,
    },
    /// No component was pushed under that name.
    #[error("no component named `{name}` in store `{store}`: push one with `weft push FILE.wasm --name {name}`")]
    UnknownName {
        /// The name asked for.
        name: String,
        /// The store URL.
        store: String,
    },
    /// The name cannot be used.
    #[error("`{name}` cannot name a component: use letters, digits, `.`, `_` and `-`")]
    BadName {
        /// The name given.
        name: String,
    },
}

#[derive(Serialize, Deserialize)]
struct NameRecord {
    digest: Digest,
    #[serde(with = "crate::model::rfc3339")]
    pushed: SystemTime,
}

fn artifact_path(digest: &Digest) -> String {
    format!("artifacts/sha256/{}.wasm", digest.hex())
}

fn check_name(name: &str) -> Result<(), ArtifactError> {
    let ok = !name.is_empty()
        && name.len() <= 128
        && !name.starts_with('.')
        && name.bytes().all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b));
    if ok { Ok(()) } else { Err(ArtifactError::BadName { name: name.to_owned() }) }
}

/// Splits `<store-url>/artifacts/sha256/<hex>.wasm` into the store URL and
/// the digest.
pub fn split_artifact_url(url: &str) -> Option<(String, Digest)> {
    let (root, file) = url.rsplit_once("/artifacts/sha256/")?;
    let digest = file.strip_suffix(".wasm")?.parse().ok()?;
    Some((root.to_owned(), digest))
}

impl Store {
    /// The URL of a component in this store.
    pub fn artifact_url(&self, digest: &Digest) -> String {
        format!("{}/{}", self.url(), artifact_path(digest))
    }

    /// Uploads a component under its digest, unless the store has it
    /// already; with a name, also records `name → digest`.
    pub async fn push_artifact(&self, bytes: &[u8], name: Option<&str>) -> Result<Pushed, ArtifactError> {
        if let Some(name) = name {
            check_name(name)?;
        }
        let digest = Digest::of(bytes);
        let path = artifact_path(&digest);
        // Same digest, same bytes: a create that finds the object there is
        // the dedupe, and costs no second upload.
        let uploaded = !self.exists(&path).await? && self.create(&path, Bytes::copy_from_slice(bytes)).await?;
        if let Some(name) = name {
            let record = NameRecord { digest: digest.clone(), pushed: SystemTime::now() };
            let json = serde_json::to_vec(&record).map_err(|e| StoreError::Corrupt {
                url: self.url().to_owned(),
                path: format!("artifacts/names/{name}.json"),
                reason: e.to_string(),
            })?;
            self.put(&format!("artifacts/names/{name}.json"), json.into()).await?;
        }
        Ok(Pushed { url: self.artifact_url(&digest), digest, uploaded })
    }

    /// The digest last pushed under a name.
    pub async fn artifact_by_name(&self, name: &str) -> Result<Digest, ArtifactError> {
        check_name(name)?;
        match self.get_json::<NameRecord>(&format!("artifacts/names/{name}.json")).await? {
            Some(record) => Ok(record.digest),
            None => Err(ArtifactError::UnknownName { name: name.to_owned(), store: self.url().to_owned() }),
        }
    }

    /// Downloads a component and checks it against its digest; bytes that do
    /// not match are refused before anything compiles them.
    pub async fn fetch_artifact(&self, digest: &Digest) -> Result<Vec<u8>, ArtifactError> {
        let Some(bytes) = self.get(&artifact_path(digest)).await? else {
            return Err(ArtifactError::Missing { digest: digest.clone(), store: self.url().to_owned() });
        };
        let actual = Digest::of(&bytes);
        if &actual != digest {
            return Err(ArtifactError::Mismatch { url: self.artifact_url(digest), expected: digest.clone(), actual });
        }
        Ok(bytes.to_vec())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn artifact_urls_split_into_store_and_digest() {
        let hex = "a".repeat(64);
        let (root, digest) = split_artifact_url(&format!("s3://b/weft/artifacts/sha256/{hex}.wasm")).expect("splits");
        assert_eq!(root, "s3://b/weft");
        assert_eq!(digest.hex(), hex);
        assert!(split_artifact_url("s3://b/weft/artifacts/sha256/short.wasm").is_none());
        assert!(check_name("etl-v2.1").is_ok());
        assert!(check_name("../etc").is_err());
    }
}

/// Where a flow component comes from, as a user names it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ComponentSource {
    /// A local `.wasm` file: pushed to the store before it runs.
    File(std::path::PathBuf),
    /// `sha256:<hex>`: a component in the store.
    Digest(Digest),
    /// `<store-url>/artifacts/sha256/<hex>.wasm`: a component in that store.
    Url {
        /// The store holding it.
        store: String,
        /// Its digest.
        digest: Digest,
    },
    /// A name given with `weft push --name`.
    Name(String),
}

/// What a component must be to be taken from a [`ComponentSource`]:
/// [`inspect_flow`](crate::engine::inspect_flow),
/// [`inspect_task`](crate::engine::inspect_task) or
/// [`inspect`](crate::engine::inspect).
pub type Check = fn(&[u8], &str) -> Result<ComponentInfo, ComponentError>;

impl ComponentSource {
    /// The reference as the user wrote it, for errors.
    pub fn label(&self) -> String {
        match self {
            ComponentSource::File(path) => path.display().to_string(),
            ComponentSource::Digest(digest) => digest.to_string(),
            ComponentSource::Url { store, digest } => format!("{store}/artifacts/sha256/{}.wasm", digest.hex()),
            ComponentSource::Name(name) => name.clone(),
        }
    }

    /// Reads a reference: an existing file, `sha256:<hex>`, an artifact URL,
    /// or a pushed name. The error says which forms are accepted.
    pub fn parse(text: &str) -> Result<Self, String> {
        let path = std::path::Path::new(text);
        if path.is_file() {
            return Ok(ComponentSource::File(path.to_path_buf()));
        }
        if path.is_dir() {
            return Err(format!(
                "`{text}` is a directory, not a component file: give the `.wasm` file built from it \
                 (for a Rust crate, target/wasm32-wasip2/release/NAME.wasm)"
            ));
        }
        if text.starts_with("sha256:") {
            return text.parse().map(ComponentSource::Digest);
        }
        if text.contains("://") {
            return split_artifact_url(text).map(|(store, digest)| ComponentSource::Url { store, digest }).ok_or_else(
                || {
                    format!(
                        "`{text}` is not a component URL: expected <store-url>/artifacts/sha256/<64 hex digits>.wasm"
                    )
                },
            );
        }
        if text.ends_with(".wasm") || text.contains(['/', '\\']) {
            return Err(format!("cannot read flow component `{text}`: no such file"));
        }
        if check_name(text).is_err() {
            return Err(format!(
                "`{text}` is not a file, a `sha256:` digest, a component URL, or a name given with `weft push --name`"
            ));
        }
        Ok(ComponentSource::Name(text.to_owned()))
    }
}

impl Store {
    /// The bytes and digest of a component, which `check` (such as
    /// [`inspect_flow`](crate::engine::inspect_flow)) accepts: a local file
    /// is checked and then pushed to this store; anything else is
    /// downloaded, verified and checked. Nothing `check` refuses is stored.
    pub async fn component(
        &self,
        source: &ComponentSource,
        options: &[(String, String)],
        check: Check,
    ) -> Result<(Vec<u8>, Digest), ArtifactError> {
        let label = source.label();
        let checked = |bytes: Vec<u8>, digest: Digest| match check(&bytes, &label) {
            Ok(_) => Ok((bytes, digest)),
            Err(e) => Err(ArtifactError::Refused(e)),
        };
        match source {
            ComponentSource::File(path) => {
                let bytes = std::fs::read(path).map_err(|e| StoreError::Request {
                    url: path.display().to_string(),
                    action: "reading the component file".into(),
                    detail: e.to_string(),
                })?;
                check(&bytes, &label)?;
                let pushed = self.push_artifact(&bytes, None).await?;
                Ok((bytes, pushed.digest))
            }
            ComponentSource::Digest(digest) => checked(self.fetch_artifact(digest).await?, digest.clone()),
            ComponentSource::Url { store, digest } if store == self.url() => {
                checked(self.fetch_artifact(digest).await?, digest.clone())
            }
            ComponentSource::Url { store, digest } => {
                let other = Store::open(store, options)?;
                let bytes = other.fetch_artifact(digest).await?;
                check(&bytes, &label)?;
                // The run's records live in this store; so does its component.
                self.push_artifact(&bytes, None).await?;
                Ok((bytes, digest.clone()))
            }
            ComponentSource::Name(name) => {
                let digest = self.artifact_by_name(name).await?;
                checked(self.fetch_artifact(&digest).await?, digest)
            }
        }
    }
}
