//! Compiled components cached on local disk, so that a process that runs a
//! component it has run before skips compilation.
//!
//! The cache holds only code this host compiled itself, from bytes whose
//! digest was verified: deserializing compiled code is `unsafe` because
//! wasmtime cannot check it, so code from anywhere else (the shared store
//! above all) is never deserialized. Entries are keyed by the component's
//! digest under a folder named after the engine's compatibility hash, so a
//! different wasmtime or different settings never read them.
#![allow(unsafe_code)]

use std::hash::{DefaultHasher, Hash, Hasher};
use std::path::{Path, PathBuf};

use wasmtime::component::Component;

use crate::model::Digest;

/// The name of the folder compiled code of this engine configuration and
/// this weft version lives in: code compiled otherwise is never read.
pub(super) fn compatibility(engine: &wasmtime::Engine) -> String {
    let mut hasher = DefaultHasher::new();
    engine.precompile_compatibility_hash().hash(&mut hasher);
    env!("CARGO_PKG_VERSION").hash(&mut hasher);
    format!("{:016x}", hasher.finish())
}

pub(super) struct CompiledCache {
    dir: PathBuf,
}

impl CompiledCache {
    pub(super) fn new(engine: &wasmtime::Engine, root: &Path) -> Self {
        CompiledCache { dir: root.join(compatibility(engine)) }
    }

    pub(super) fn path(&self, digest: &Digest) -> PathBuf {
        self.dir.join(format!("{}.cwasm", digest.hex()))
    }

    /// The cached compilation of `digest`, if there is a usable one.
    pub(super) fn load(&self, engine: &wasmtime::Engine, digest: &Digest) -> Option<Component> {
        let path = self.path(digest);
        if !path.is_file() {
            return None;
        }
        // SAFETY: the file was written by `store` below, from code this
        // engine configuration compiled (the folder is keyed by its
        // compatibility hash), in a directory of this host's user; or it
        // was fetched from the store by the runner after its HMAC under the
        // operator's code key checked out (`store/compiled.rs`), which only
        // runners holding that key, having compiled it themselves, write.
        match unsafe { Component::deserialize_file(engine, &path) } {
            Ok(component) => Some(component),
            Err(e) => {
                tracing::debug!(path = %path.display(), error = %e, "ignoring unusable cache entry");
                None
            }
        }
    }

    /// Takes the lock on compiling `digest` on this host, waiting while
    /// another process holds it: of many runners starting the same new
    /// component at once, one compiles and the others load its result.
    /// `None` when no lock can be had (the cache is then only slower).
    pub(super) fn lock(&self, digest: &Digest) -> Option<std::fs::File> {
        std::fs::create_dir_all(&self.dir).ok()?;
        let file = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(self.dir.join(format!(".{}.lock", digest.hex())))
            .ok()?;
        file.lock().ok()?;
        Some(file)
    }

    /// Saves a compilation; failures only cost a later recompile.
    pub(super) fn store(&self, component: &Component, digest: &Digest) {
        let write = || -> std::io::Result<()> {
            std::fs::create_dir_all(&self.dir)?;
            let bytes = component.serialize().map_err(std::io::Error::other)?;
            // Written aside and renamed, so a reader never sees half a file.
            let temp = self.dir.join(format!(".{}.{}.tmp", digest.hex(), std::process::id()));
            std::fs::write(&temp, bytes)?;
            std::fs::rename(&temp, self.path(digest))
        };
        if let Err(e) = write() {
            tracing::debug!(dir = %self.dir.display(), error = %e, "could not cache compiled code");
        }
    }
}
