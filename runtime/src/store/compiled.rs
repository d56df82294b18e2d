//! Compiled code shared through the store, so that a fresh machine or pod
//! runs a large component (a 12-18 MB Python or JavaScript flow takes about
//! 11 s to compile) without compiling it.
//!
//! Compiled code is native code: loading it runs whatever it says, and
//! wasmtime cannot check it. So an object is only ever used when its
//! HMAC-SHA256 under the operator's code key (`WEFT_CODE_KEY`, held by
//! agents and runners, never by the tenants who push flows) checks out:
//! a tenant who can write to the store can write `compiled/...` objects but
//! cannot make one that is used.
//!
//! ```text
//! compiled/<engine hash>/<component hex>.cwasm   32-byte MAC, then the code
//! ```

use std::path::Path;

use hmac::{Hmac, Mac};
use sha2::Sha256;

use super::{Store, StoreError};
use crate::model::Digest;

/// The environment variable that holds the code key.
pub const CODE_KEY_ENV: &str = "WEFT_CODE_KEY";

/// The operator's secret that authenticates compiled code in the store.
#[derive(Clone)]
pub struct CodeKey(Vec<u8>);

impl std::fmt::Debug for CodeKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("CodeKey(..)")
    }
}

impl CodeKey {
    /// The key from `WEFT_CODE_KEY`, if it is set: at least 32 characters.
    pub fn from_env() -> Result<Option<CodeKey>, StoreError> {
        match std::env::var(CODE_KEY_ENV) {
            Err(_) => Ok(None),
            Ok(text) if text.is_empty() => Ok(None),
            Ok(text) if text.len() < 32 => Err(StoreError::BadUrl {
                url: CODE_KEY_ENV.into(),
                reason: format!(
                    "{CODE_KEY_ENV} is {} characters long; it must be at least 32 (make one with `openssl rand -hex 32`)",
                    text.len()
                ),
            }),
            Ok(text) => Ok(Some(CodeKey(text.into_bytes()))),
        }
    }

    fn mac(&self, folder: &str, digest: &Digest, code: &[u8]) -> Hmac<Sha256> {
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(&self.0).expect("an HMAC takes a key of any length");
        mac.update(b"weft compiled code v1\0");
        mac.update(folder.as_bytes());
        mac.update(b"\0");
        mac.update(digest.hex().as_bytes());
        mac.update(b"\0");
        mac.update(code);
        mac
    }
}

fn path(folder: &str, digest: &Digest) -> String {
    format!("compiled/{folder}/{}.cwasm", digest.hex())
}

impl Store {
    /// Fetches the compiled code of `digest` into `local` (the local cache
    /// entry) if the store has it and its MAC checks out. Returns whether it
    /// did; failures are logged and cost only a compile.
    pub async fn fetch_compiled(&self, folder: &str, digest: &Digest, key: &CodeKey, local: &Path) -> bool {
        let object = path(folder, digest);
        let bytes = match self.get(&object).await {
            Ok(Some(bytes)) => bytes,
            Ok(None) => return false,
            Err(e) => {
                tracing::warn!(store = self.url(), error = %e, "cannot read compiled code from the store; compiling");
                return false;
            }
        };
        let Some((tag, code)) = bytes.split_at_checked(32) else { return false };
        if key.mac(folder, digest, code).verify_slice(tag).is_err() {
            tracing::warn!(
                store = self.url(),
                object,
                "compiled code in the store failed its check (written without this code key, or altered); \
                 compiling instead and never loading it"
            );
            return false;
        }
        let write = || -> std::io::Result<()> {
            let dir = local.parent().ok_or_else(|| std::io::Error::other("no cache folder"))?;
            std::fs::create_dir_all(dir)?;
            let temp = dir.join(format!(".{}.{}.fetched", digest.hex(), std::process::id()));
            std::fs::write(&temp, code)?;
            std::fs::rename(&temp, local)
        };
        match write() {
            Ok(()) => {
                tracing::info!(%digest, "loaded compiled code from the store");
                true
            }
            Err(e) => {
                tracing::warn!(error = %e, "cannot write fetched compiled code to the local cache; compiling");
                false
            }
        }
    }

    /// Puts the compiled code in `local` into the store with its MAC, unless
    /// it is there; failures are logged and cost later runs a compile.
    pub async fn publish_compiled(&self, folder: &str, digest: &Digest, key: &CodeKey, local: &Path) {
        let Ok(code) = std::fs::read(local) else { return };
        let tag = key.mac(folder, digest, &code).finalize().into_bytes();
        let mut object = Vec::with_capacity(32 + code.len());
        object.extend_from_slice(&tag);
        object.extend_from_slice(&code);
        match self.create(&path(folder, digest), object.into()).await {
            Ok(_) => tracing::info!(%digest, "shared compiled code through the store"),
            Err(e) => tracing::warn!(store = self.url(), error = %e, "cannot share compiled code through the store"),
        }
    }
}
