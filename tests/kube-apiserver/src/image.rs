//! Container image references as the kubelet and containerd read them:
//! parsing and normalising (`busybox:1.36` is
//! `docker.io/library/busybox:1.36`) with the messages of the reference
//! parser the kubelet uses, the default `imagePullPolicy`, which images
//! cannot be pulled (a registry under `.invalid`, a top-level domain that
//! never resolves, RFC 6761), and the kubelet's way of writing a pull's
//! duration.

use std::time::Duration;

/// A parsed image reference.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct ImageReference {
    /// The registry: `docker.io`, `registry.invalid`, `localhost:5000`.
    pub domain: String,
    /// The repository within it: `library/busybox`, `weft/weft`.
    pub path: String,
    pub tag: Option<String>,
    pub digest: Option<String>,
}

const INVALID_FORMAT: &str = "invalid reference format";

/// `[a-z0-9]+` runs joined by `.`, `_`, `__` or one or more `-`.
fn is_path_component(text: &str) -> bool {
    let bytes = text.as_bytes();
    let alphanumeric = |b: u8| b.is_ascii_lowercase() || b.is_ascii_digit();
    let mut i = 0;
    loop {
        let run = bytes[i..].iter().take_while(|b| alphanumeric(**b)).count();
        if run == 0 {
            return false;
        }
        i += run;
        match bytes.get(i) {
            None => return true,
            Some(b'.') => i += 1,
            Some(b'_') => i += if bytes.get(i + 1) == Some(&b'_') { 2 } else { 1 },
            Some(b'-') => i += bytes[i..].iter().take_while(|b| **b == b'-').count(),
            Some(_) => return false,
        }
    }
}

/// Host name labels (letters, digits, inner `-`) joined by `.`, and an
/// optional `:port`.
fn is_domain(text: &str) -> bool {
    let (host, port) = match text.split_once(':') {
        Some((host, port)) => (host, Some(port)),
        None => (text, None),
    };
    let label_ok = |label: &str| {
        let bytes = label.as_bytes();
        !bytes.is_empty()
            && bytes.iter().all(|b| b.is_ascii_alphanumeric() || *b == b'-')
            && bytes.first().is_some_and(u8::is_ascii_alphanumeric)
            && bytes.last().is_some_and(u8::is_ascii_alphanumeric)
    };
    host.split('.').all(label_ok) && port.is_none_or(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()))
}

/// `[\w][\w.-]{0,127}`.
fn is_tag(text: &str) -> bool {
    let word = |b: &u8| b.is_ascii_alphanumeric() || *b == b'_';
    let bytes = text.as_bytes();
    bytes.first().is_some_and(word) && bytes.len() <= 128 && bytes.iter().all(|b| word(b) || *b == b'.' || *b == b'-')
}

/// `algorithm:hex` with at least 32 hex digits.
fn is_digest(text: &str) -> bool {
    let Some((algorithm, hex)) = text.split_once(':') else { return false };
    let algorithm_ok = algorithm.split(['-', '_', '+', '.']).all(|part| {
        part.as_bytes().first().is_some_and(u8::is_ascii_alphabetic) && part.bytes().all(|b| b.is_ascii_alphanumeric())
    });
    algorithm_ok && hex.len() >= 32 && hex.bytes().all(|b| b.is_ascii_hexdigit())
}

impl ImageReference {
    /// Parses `image` as the kubelet does (`ParseNormalizedNamed` of the
    /// distribution library): a first component with `.` or `:`, or
    /// `localhost`, or uppercase, is the registry, else it is `docker.io`
    /// (and a one-component name is under `library/`). `Err` is the
    /// parser's message, such as `invalid reference format: repository name
    /// (library/Weft) must be lowercase`.
    pub fn parse(image: &str) -> Result<Self, String> {
        if image.len() == 64 && image.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)) {
            return Err(format!("invalid repository name ({image}), cannot specify 64-byte hexadecimal strings"));
        }
        let (domain, remainder) = match image.split_once('/') {
            Some((first, rest))
                if first.contains(['.', ':']) || first == "localhost" || first.to_lowercase() != first =>
            {
                (first.to_owned(), rest.to_owned())
            }
            _ => ("docker.io".to_owned(), image.to_owned()),
        };
        let domain = if domain == "index.docker.io" { "docker.io".to_owned() } else { domain };
        let remainder =
            if domain == "docker.io" && !remainder.contains('/') { format!("library/{remainder}") } else { remainder };
        let remote = remainder.split_once(':').map_or(remainder.as_str(), |(name, _)| name);
        if remote.to_lowercase() != remote {
            return Err(format!("{INVALID_FORMAT}: repository name ({remote}) must be lowercase"));
        }
        let (name_and_tag, digest) = match remainder.split_once('@') {
            Some((name, digest)) => (name, Some(digest.to_owned())),
            None => (remainder.as_str(), None),
        };
        let (path, tag) = match name_and_tag.rsplit_once(':') {
            Some((path, tag)) => (path, Some(tag.to_owned())),
            None => (name_and_tag, None),
        };
        let valid = is_domain(&domain)
            && path.split('/').all(is_path_component)
            && tag.as_deref().is_none_or(is_tag)
            && digest.as_deref().is_none_or(is_digest);
        if !valid {
            return Err(INVALID_FORMAT.to_owned());
        }
        if domain.len() + 1 + path.len() > 255 {
            return Err("repository name must not be more than 255 characters".to_owned());
        }
        Ok(ImageReference { domain, path: path.to_owned(), tag, digest })
    }

    /// What containerd pulls and the node's cache holds:
    /// `docker.io/library/busybox:1.36`, with tag `latest` when the image
    /// names neither a tag nor a digest.
    pub fn normalized(&self) -> String {
        let mut text = format!("{}/{}", self.domain, self.path);
        match (&self.tag, &self.digest) {
            (Some(tag), _) => text = format!("{text}:{tag}"),
            (None, None) => text.push_str(":latest"),
            (None, Some(_)) => {}
        }
        if let Some(digest) = &self.digest {
            text = format!("{text}@{digest}");
        }
        text
    }

    /// Why a pull of this image fails, worded as containerd reports it, or
    /// `None` when it succeeds: only a registry host under `.invalid` fails
    /// here, as its name never resolves.
    pub fn pull_error(&self) -> Option<String> {
        let host = self.domain.split(':').next().unwrap_or_default();
        if !(host == "invalid" || host.ends_with(".invalid")) {
            return None;
        }
        let reference = self.normalized();
        let object = self.digest.clone().or_else(|| self.tag.clone()).unwrap_or_else(|| "latest".to_owned());
        Some(format!(
            "failed to pull and unpack image \"{reference}\": failed to resolve reference \"{reference}\": failed to do request: Head \"https://{domain}/v2/{path}/manifests/{object}\": dial tcp: lookup {host}: no such host",
            domain = self.domain,
            path = self.path,
        ))
    }
}

/// The kubelet's message for an image that does not parse, as shown in
/// the `InvalidImageName` waiting state and the `InspectFailed` event.
pub(crate) fn invalid_name_message(image: &str, error: &str) -> String {
    format!("Failed to apply default image tag \"{image}\": couldn't parse image name \"{image}\": {error}")
}

/// The API server's default `imagePullPolicy`: `Always` when the tag is
/// `latest` or there is neither tag nor digest, else `IfNotPresent` (also
/// for an image that does not parse).
pub(crate) fn default_pull_policy(image: &str) -> &'static str {
    match ImageReference::parse(image) {
        Ok(reference) if reference.tag.as_deref() == Some("latest") => "Always",
        Ok(reference) if reference.tag.is_none() && reference.digest.is_none() => "Always",
        _ => "IfNotPresent",
    }
}

/// A duration cut to milliseconds and written as Go writes it (`20ms`,
/// `1.5s`, `1m2.003s`), as the kubelet's `Pulled` event shows it.
pub(crate) fn go_duration(duration: Duration) -> String {
    let ms = duration.as_millis();
    if ms == 0 {
        return "0s".to_owned();
    }
    if ms < 1000 {
        return format!("{ms}ms");
    }
    let (hours, minutes, rest) = (ms / 3_600_000, ms / 60_000 % 60, ms % 60_000);
    let seconds = format!("{}.{:03}", rest / 1000, rest % 1000);
    let seconds = seconds.trim_end_matches('0').trim_end_matches('.');
    match (hours, minutes) {
        (0, 0) => format!("{seconds}s"),
        (0, m) => format!("{m}m{seconds}s"),
        (h, m) => format!("{h}h{m}m{seconds}s"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn references_normalise_as_containerd_names_them() -> Result<(), String> {
        for (image, normalized) in [
            ("busybox", "docker.io/library/busybox:latest"),
            ("busybox:1.36", "docker.io/library/busybox:1.36"),
            ("weft/weft:test", "docker.io/weft/weft:test"),
            ("registry.invalid/weft/weft:missing", "registry.invalid/weft/weft:missing"),
            ("localhost:5000/a_b/c--d", "localhost:5000/a_b/c--d:latest"),
            ("localhost/x", "localhost/x:latest"),
        ] {
            assert_eq!(ImageReference::parse(image)?.normalized(), normalized, "{image}");
        }
        let digest = format!("x@sha256:{}", "a".repeat(64));
        assert_eq!(ImageReference::parse(&digest)?.normalized(), format!("docker.io/library/{digest}"));
        Ok(())
    }

    #[test]
    fn invalid_references_get_the_parser_messages() {
        assert_eq!(
            ImageReference::parse("Weft:Bad"),
            Err("invalid reference format: repository name (library/Weft) must be lowercase".to_owned())
        );
        for image in ["", "bad image", "busybox:", "a//b", "-a", "a:b:c", "x@sha256:abc", "a/b:-tag"] {
            assert_eq!(ImageReference::parse(image), Err(INVALID_FORMAT.to_owned()), "{image:?}");
        }
        assert_eq!(
            invalid_name_message("Weft:Bad", "invalid reference format"),
            "Failed to apply default image tag \"Weft:Bad\": couldn't parse image name \"Weft:Bad\": invalid reference format"
        );
    }

    #[test]
    fn only_invalid_registries_fail_to_pull() -> Result<(), String> {
        assert_eq!(ImageReference::parse("busybox:1.36")?.pull_error(), None);
        assert_eq!(ImageReference::parse("invalid/x")?.pull_error(), None, "a Docker Hub user named invalid");
        assert_eq!(
            ImageReference::parse("registry.invalid/weft/weft:missing")?.pull_error().as_deref(),
            Some(
                "failed to pull and unpack image \"registry.invalid/weft/weft:missing\": failed to resolve reference \"registry.invalid/weft/weft:missing\": failed to do request: Head \"https://registry.invalid/v2/weft/weft/manifests/missing\": dial tcp: lookup registry.invalid: no such host"
            )
        );
        let with_port = ImageReference::parse("registry.invalid:5000/w")?.pull_error().unwrap_or_default();
        assert!(with_port.contains("Head \"https://registry.invalid:5000/v2/w/manifests/latest\""), "{with_port}");
        assert!(with_port.ends_with("lookup registry.invalid: no such host"), "{with_port}");
        Ok(())
    }

    #[test]
    fn pull_policy_defaults_on_the_tag() {
        assert_eq!(default_pull_policy("busybox"), "Always");
        assert_eq!(default_pull_policy("busybox:latest"), "Always");
        assert_eq!(default_pull_policy("localhost:5000/busybox"), "Always");
        assert_eq!(default_pull_policy("busybox:1.36"), "IfNotPresent");
        assert_eq!(default_pull_policy(&format!("busybox@sha256:{}", "0".repeat(64))), "IfNotPresent");
        assert_eq!(default_pull_policy("Weft:Bad"), "IfNotPresent");
    }

    #[test]
    fn durations_read_as_go_writes_them() {
        assert_eq!(go_duration(Duration::from_micros(20_700)), "20ms");
        assert_eq!(go_duration(Duration::from_millis(1500)), "1.5s");
        assert_eq!(go_duration(Duration::from_secs(2)), "2s");
        assert_eq!(go_duration(Duration::from_millis(62_003)), "1m2.003s");
        assert_eq!(go_duration(Duration::ZERO), "0s");
    }
}
