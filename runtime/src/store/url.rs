//! Store URLs: which backend, where, and with which options. Credentials are
//! read from the environment the way each cloud's own tools read them.

use std::sync::Arc;
use std::time::Duration;

use object_store::ObjectStore;
use object_store::ObjectStoreScheme;
use object_store::path::Path;
use url::Url;

use super::{DEFAULT_RETRY_TIMEOUT, StoreError};

/// A parsed store URL.
#[derive(Debug, Clone)]
pub struct StoreLocation {
    url: String,
    parsed: Url,
    scheme: ObjectStoreScheme,
    prefix: Path,
}

/// weft's home directory: `WEFT_HOME`, else `~/.weft`.
pub fn weft_home() -> Result<std::path::PathBuf, StoreError> {
    if let Some(home) = std::env::var_os("WEFT_HOME").filter(|h| !h.is_empty()) {
        return Ok(home.into());
    }
    match std::env::var_os("HOME").filter(|h| !h.is_empty()) {
        Some(home) => Ok(std::path::PathBuf::from(home).join(".weft")),
        None => Err(StoreError::BadUrl {
            url: String::new(),
            reason: "no store given and neither WEFT_HOME nor HOME is set; pass --store or set WEFT_STORE".into(),
        }),
    }
}

/// The store to use when none is given: `WEFT_STORE`, else the local
/// directory `file://$WEFT_HOME` (`~/.weft`).
pub fn default_store_url() -> Result<String, StoreError> {
    if let Ok(url) = std::env::var("WEFT_STORE")
        && !url.is_empty()
    {
        return Ok(url);
    }
    let home = weft_home()?;
    let home =
        if home.is_absolute() { home } else { std::env::current_dir().map(|cwd| cwd.join(&home)).unwrap_or(home) };
    Url::from_directory_path(&home).map(|u| u.to_string().trim_end_matches('/').to_owned()).map_err(|()| {
        StoreError::BadUrl {
            url: home.display().to_string(),
            reason: "WEFT_HOME is not a usable directory path".into(),
        }
    })
}

impl StoreLocation {
    /// Parses a store URL.
    pub fn parse(url: &str) -> Result<Self, StoreError> {
        let bad = |reason: String| StoreError::BadUrl { url: url.to_owned(), reason };
        if url.starts_with("file:") && !url.starts_with("file:///") {
            // `file:relative` would quietly become `/relative`.
            return Err(bad("a file URL needs an absolute path: file:///var/lib/weft".into()));
        }
        let parsed = Url::parse(url).map_err(|e| bad(format!("it does not parse ({e})")))?;
        let container = match parsed.scheme() {
            "s3" | "s3a" | "gs" => Some("bucket"),
            "az" | "abfs" | "abfss" | "azure" => Some("container"),
            _ => None,
        };
        if let Some(container) = container
            && parsed.host_str().is_none_or(str::is_empty)
        {
            return Err(bad(format!("it names no {container}")));
        }
        let (scheme, prefix) = ObjectStoreScheme::parse(&parsed).map_err(|_| match parsed.scheme() {
            "file" => bad("a file URL needs an absolute path and no host: file:///var/lib/weft".into()),
            other => bad(format!("the scheme `{other}` is not one weft knows")),
        })?;
        if scheme == ObjectStoreScheme::Http {
            return Err(bad("plain HTTP(S) servers cannot hold a store; use s3://, gs://, az:// or file://".into()));
        }
        // `s3://b/p/` and `s3://b/p` are the same store; `memory://` keeps its slashes.
        let trimmed = url.trim_end_matches('/');
        let url = if trimmed.ends_with(':') { url } else { trimmed };
        Ok(StoreLocation { url: url.to_owned(), parsed, scheme, prefix })
    }

    /// The URL as given (without a trailing slash).
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The folder of a `file://` store.
    pub(super) fn local_dir(&self) -> Option<std::path::PathBuf> {
        match self.scheme {
            ObjectStoreScheme::Local => self.parsed.to_file_path().ok(),
            _ => None,
        }
    }

    pub(super) fn is_cloud(&self) -> bool {
        matches!(
            self.scheme,
            ObjectStoreScheme::AmazonS3 | ObjectStoreScheme::GoogleCloudStorage | ObjectStoreScheme::MicrosoftAzure
        )
    }

    pub(super) fn credentials_hint(&self) -> &'static str {
        match self.scheme {
            ObjectStoreScheme::AmazonS3 => {
                "check AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (or the pod's IAM role), AWS_REGION, and the bucket policy"
            }
            ObjectStoreScheme::GoogleCloudStorage => {
                "check GOOGLE_APPLICATION_CREDENTIALS or GOOGLE_SERVICE_ACCOUNT (or workload identity) and the bucket's IAM"
            }
            ObjectStoreScheme::MicrosoftAzure => {
                "check AZURE_STORAGE_ACCOUNT_NAME with AZURE_STORAGE_ACCOUNT_KEY or AZURE_STORAGE_SAS_KEY (or workload identity)"
            }
            _ => "check the directory's permissions",
        }
    }

    /// Which settings decide where the store's server is.
    pub(super) fn endpoint_hint(&self) -> &'static str {
        match self.scheme {
            ObjectStoreScheme::AmazonS3 => {
                "Check the store option `endpoint` (or AWS_ENDPOINT_URL) for S3-compatible servers, AWS_REGION for \
                 AWS, and that the server is up and reachable from here"
            }
            ObjectStoreScheme::GoogleCloudStorage => {
                "Check the store option `base_url` (or GOOGLE_BASE_URL) for a GCS emulator, and that the server is \
                 up and reachable from here"
            }
            ObjectStoreScheme::MicrosoftAzure => {
                "Check the store options `endpoint` (AZURE_STORAGE_ENDPOINT) or `use_emulator`, and that the server \
                 is up and reachable from here"
            }
            _ => "Check that the store's server is up and reachable from here",
        }
    }

    /// Builds the object store and the prefix of weft's root in it.
    pub(super) fn connect(&self, options: &[(String, String)]) -> Result<(Arc<dyn ObjectStore>, Path), StoreError> {
        let bad_option =
            |key: &str, reason: String| StoreError::BadOption { url: self.url.clone(), key: key.to_owned(), reason };
        let mut retry = object_store::RetryConfig { retry_timeout: DEFAULT_RETRY_TIMEOUT, ..Default::default() };
        let mut backend_options = Vec::new();
        for (key, value) in options {
            match key.as_str() {
                "retry_timeout" => {
                    retry.retry_timeout = humantime::parse_duration(value)
                        .map_err(|e| bad_option(key, format!("{e} (write a duration such as 30s)")))?;
                }
                "max_retries" => {
                    retry.max_retries = value.parse().map_err(|e| bad_option(key, format!("{e} (write a number)")))?;
                }
                _ => backend_options.push((key.as_str(), value.as_str())),
            }
        }
        retry.backoff.max_backoff = retry.backoff.max_backoff.min(retry.retry_timeout.max(Duration::from_millis(100)));

        let build_error = |e: object_store::Error| StoreError::BadUrl { url: self.url.clone(), reason: e.to_string() };
        let store: Arc<dyn ObjectStore> = match self.scheme {
            ObjectStoreScheme::Local => {
                let dir = self.parsed.to_file_path().map_err(|()| StoreError::BadUrl {
                    url: self.url.clone(),
                    reason: "a file URL needs an absolute path: file:///var/lib/weft".into(),
                })?;
                if let Some((key, _)) = backend_options.first() {
                    return Err(bad_option(key, "a file:// store takes no options".into()));
                }
                std::fs::create_dir_all(&dir).map_err(|e| StoreError::Request {
                    url: self.url.clone(),
                    action: format!("creating the directory `{}`", dir.display()),
                    detail: e.to_string(),
                })?;
                let local = object_store::local::LocalFileSystem::new_with_prefix(&dir).map_err(build_error)?;
                return Ok((Arc::new(local), Path::default()));
            }
            ObjectStoreScheme::Memory => Arc::new(object_store::memory::InMemory::new()),
            ObjectStoreScheme::AmazonS3 => {
                let mut builder = object_store::aws::AmazonS3Builder::from_env().with_url(self.parsed.as_str());
                for (key, value) in backend_options {
                    let parsed = key
                        .parse()
                        .map_err(|_| bad_option(key, unknown_option("S3", "endpoint, region, allow_http")))?;
                    builder = builder.with_config(parsed, value);
                }
                Arc::new(builder.with_retry(retry).build().map_err(build_error)?)
            }
            ObjectStoreScheme::GoogleCloudStorage => {
                let mut builder =
                    object_store::gcp::GoogleCloudStorageBuilder::from_env().with_url(self.parsed.as_str());
                for (key, value) in backend_options {
                    let parsed = key.parse().map_err(|_| {
                        bad_option(key, unknown_option("GCS", "service_account_key, base_url, allow_http"))
                    })?;
                    builder = builder.with_config(parsed, value);
                }
                Arc::new(builder.with_retry(retry).build().map_err(build_error)?)
            }
            ObjectStoreScheme::MicrosoftAzure => {
                let mut builder = object_store::azure::MicrosoftAzureBuilder::from_env().with_url(self.parsed.as_str());
                for (key, value) in backend_options {
                    let parsed = key.parse().map_err(|_| {
                        bad_option(key, unknown_option("Azure", "account_name, access_key, endpoint, use_emulator"))
                    })?;
                    builder = builder.with_config(parsed, value);
                }
                Arc::new(builder.with_retry(retry).build().map_err(build_error)?)
            }
            ObjectStoreScheme::Http => unreachable!("refused by StoreLocation::parse"),
            _ => {
                return Err(StoreError::BadUrl {
                    url: self.url.clone(),
                    reason: "this kind of store is not supported".into(),
                });
            }
        };
        Ok((store, self.prefix.clone()))
    }
}

fn unknown_option(backend: &str, examples: &str) -> String {
    format!("not an option of {backend} stores (for example: {examples}; see the README's store section)")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_are_parsed_or_refused_with_the_fix() {
        let s3 = StoreLocation::parse("s3://bucket/some/prefix/").expect("s3");
        assert_eq!(s3.url(), "s3://bucket/some/prefix");
        assert_eq!(s3.prefix.as_ref(), "some/prefix");
        assert!(StoreLocation::parse("gs://bucket").is_ok());
        assert_eq!(StoreLocation::parse("memory://").expect("memory").url(), "memory://");
        assert!(StoreLocation::parse("az://container/p").is_ok());
        assert!(StoreLocation::parse("file:///var/lib/weft").is_ok());
        assert!(StoreLocation::parse("file:relative").is_err());

        let error = StoreLocation::parse("ftp://host/x").expect_err("unknown scheme").to_string();
        assert!(error.contains("the scheme `ftp` is not one weft knows"), "{error}");
        assert!(error.contains("s3://bucket/prefix"), "says what to write: {error}");
        for (url, missing) in [("s3://", "bucket"), ("gs://", "bucket"), ("az://", "container"), ("s3:///p", "bucket")]
        {
            let error = StoreLocation::parse(url).expect_err("no bucket").to_string();
            assert!(error.contains(&format!("it names no {missing}")), "{error}");
        }
        let error = StoreLocation::parse("not a url").expect_err("unparsable").to_string();
        assert!(error.starts_with("store URL `not a url` is not usable: it does not parse"), "{error}");
    }
}
