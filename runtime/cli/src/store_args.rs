//! The `--store` and `--store-option` flags every store command takes.

use clap::Args;

use super::CommandError;
use weft::store::{Store, default_store_url};

/// Which store to use.
#[derive(Debug, Clone, Args)]
pub struct StoreArgs {
    /// The store: s3://bucket/prefix, gs://bucket/prefix, az://container/prefix,
    /// file:///path. Default: $WEFT_STORE, else file://$WEFT_HOME (~/.weft).
    #[arg(long, value_name = "URL")]
    pub store: Option<String>,

    /// A store option, as KEY=VALUE: endpoint, region, allow_http, ... (see
    /// the README), and retry_timeout, max_retries. Repeatable.
    #[arg(long = "store-option", value_name = "KEY=VALUE", value_parser = parse_option)]
    pub options: Vec<(String, String)>,
}

pub(super) fn parse_option(text: &str) -> Result<(String, String), String> {
    text.split_once('=')
        .map(|(k, v)| (k.trim().to_owned(), v.to_owned()))
        .filter(|(k, _)| !k.is_empty())
        .ok_or_else(|| format!("`{text}` is not KEY=VALUE (for example endpoint=http://127.0.0.1:9000)"))
}

impl StoreArgs {
    /// The store URL in force.
    pub fn url(&self) -> Result<String, CommandError> {
        match &self.store {
            Some(url) => Ok(url.clone()),
            None => Ok(default_store_url()?),
        }
    }

    /// The options in force: `WEFT_STORE_OPTIONS` (a JSON object, as an agent
    /// passes them to its runners), then `--store-option` flags.
    pub fn all_options(&self) -> Result<Vec<(String, String)>, CommandError> {
        let mut options = Vec::new();
        if let Ok(json) = std::env::var("WEFT_STORE_OPTIONS")
            && !json.is_empty()
        {
            let map: std::collections::BTreeMap<String, String> = serde_json::from_str(&json).map_err(|e| {
                CommandError(format!(
                    "WEFT_STORE_OPTIONS must be a JSON object of strings, such as {{\"region\":\"eu-west-1\"}}: {e}"
                ))
            })?;
            options.extend(map);
        }
        options.extend(self.options.iter().cloned());
        Ok(options)
    }

    /// Opens the store.
    pub fn open(&self) -> Result<Store, CommandError> {
        Ok(Store::open(&self.url()?, &self.all_options()?)?)
    }
}
