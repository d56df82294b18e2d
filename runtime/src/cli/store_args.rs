//! The `--store` and `--store-option` flags every store command takes.

use clap::Args;

use super::CommandError;
use crate::store::{Store, default_store_url};

/// Which store to use.
#[derive(Debug, Clone, Args)]
pub struct StoreArgs {
    /// The store: s3://bucket/prefix, gs://bucket/prefix, az://container/prefix,
    /// file:///path. Default: $WEFT_STORE, else file://$WEFT_HOME (~/.weft).
    #[arg(long, value_name = "URL", global = true)]
    pub store: Option<String>,

    /// A store option, as KEY=VALUE: endpoint, region, allow_http, ... (see
    /// the README), and retry_timeout, max_retries. Repeatable.
    #[arg(long = "store-option", value_name = "KEY=VALUE", global = true, value_parser = parse_option)]
    pub options: Vec<(String, String)>,
}

fn parse_option(text: &str) -> Result<(String, String), String> {
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

    /// Opens the store.
    pub fn open(&self) -> Result<Store, CommandError> {
        Ok(Store::open(&self.url()?, &self.options)?)
    }
}
