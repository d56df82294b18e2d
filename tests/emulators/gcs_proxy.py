#!/usr/bin/env python3
"""A test-only HTTP proxy between object_store's GCS client and fake-gcs-server.

Usage:

    gcs_proxy.py --listen-port PORT --upstream http://127.0.0.1:UPSTREAM --record FILE
                 [--list-page-size N] [--quiet]

It listens on 127.0.0.1:PORT only (HTTP/1.1, keep-alive, one thread per
connection), prints `ready` on stdout once it is listening, and exits with
status 0 on SIGTERM or SIGINT. Python 3.11 standard library only.

Why it exists
-------------
object_store 0.14.2 speaks the GCS *XML* API (see its src/gcp/client.rs),
while fake-gcs-server 1.54 implements the JSON API fully but only parts of
the XML API:

* `PUT /BUCKET/OBJECT` (object_store's `put`, with
  `x-goog-if-generation-match: 0` for `PutMode::Create` and
  `x-goog-if-generation-match: GEN` for `PutMode::Update`) is answered with
  400 "invalid uploadType" (or 404 without `-public-host`); the only upload
  form on which fake-gcs-server honours `ifGenerationMatch` is the JSON-API
  multipart upload.
* `GET /BUCKET?list-type=2&...` (object_store's `list`, `list_with_offset`,
  `list_with_delimiter`) works for `prefix`/`delimiter`, but ignores
  `start-after`, `max-keys` and `continuation-token`, writes ETags unquoted
  (HEAD/GET quote them) and answers 500 for a missing bucket, which
  object_store retries until its retry timeout.
* `GET`/`HEAD /BUCKET/OBJECT` work, but `If-Match`, `If-None-Match`,
  `If-Modified-Since` and `If-Unmodified-Since` are ignored, and a missing
  object or bucket gives a plain-text 404 without GCS's XML error code.
* `DELETE /BUCKET/OBJECT` works (200 `null` instead of 204).

What it does
------------
* `PUT /BUCKET/OBJECT` becomes
  `POST /upload/storage/v1/b/BUCKET/o?uploadType=multipart[&ifGenerationMatch=N][&ifMetagenerationMatch=M]`
  (N from `x-goog-if-generation-match`, M from
  `x-goog-if-metageneration-match`). Content-Type, Cache-Control,
  Content-Disposition, Content-Encoding, Content-Language,
  `x-goog-storage-class` and `x-goog-meta-*` go into the object's metadata.
  The answer is mapped back to what object_store expects from an XML PUT:
  200 with `ETag` (quoted, the same value a later GET/HEAD returns) and
  `x-goog-generation` taken from the JSON response; 412 with GCS's XML
  `PreconditionFailed` error (object_store turns this into `Precondition`,
  and into `AlreadyExists` for `PutMode::Create`); 404 with `NoSuchBucket`;
  any other error is passed through.
  The precondition itself is checked by fake-gcs-server, atomically; the
  proxy only moves it from the header into the query string.
* `PUT /BUCKET/OBJECT` with `x-goog-copy-source: BUCKET/SOURCE` (object_store's
  `copy`/`copy_if_not_exists`/`rename`) downloads the source through the
  JSON API and uploads it as above, so `x-goog-if-generation-match: 0` is
  again checked by fake-gcs-server (fake-gcs-server's own copyTo/rewriteTo
  ignore it).
* `GET /BUCKET?list-type=2&prefix=P&delimiter=D&start-after=S&continuation-token=T&max-keys=K`
  is answered from the JSON listing `GET /storage/v1/b/BUCKET/o?prefix=P`
  (all pages): the proxy applies start-after, groups by the delimiter,
  pages the result (at most min(K, --list-page-size) entries per page, with
  an opaque NextContinuationToken), and renders the XML `ListBucketResult`
  that object_store parses (Contents with Key/Size/LastModified/ETag, then
  CommonPrefixes/Prefix, then NextContinuationToken).
* `GET`/`HEAD`/`DELETE /BUCKET/OBJECT` are forwarded unchanged. For GET and
  HEAD the proxy evaluates `If-Match`/`If-None-Match`/`If-Modified-Since`/
  `If-Unmodified-Since` against the upstream's ETag and Last-Modified (412
  or 304, as GCS does). A 404 becomes GCS's XML `NoSuchKey` or
  `NoSuchBucket` error (no body for HEAD).
* The XML multipart-upload API (`?uploads`, `?uploadId`, `?partNumber`, used by
  object_store's `put_multipart`) is not supported: 501 `NotImplemented`.
* Everything else (the JSON API under /storage/, /upload/, /download/, and
  /_internal/healthcheck) is forwarded unchanged, so the bucket can be
  created through the proxy too.

The record file
---------------
Every request the proxy receives is appended to the record file, before it is
handled, as one JSON line and flushed at once:

    {"method": "PUT", "path": "/weft%2Dtest/runs%2F01ABC...", "query": "",
     "headers": {"x-goog-if-generation-match": "0", ...}}

`path` is the raw (still percent-encoded) path, `query` the raw query string
(without `?`), `headers` maps lower-cased names to values (repeated headers
are joined with ", "). Tests read it to prove which precondition headers the
client sent.
"""

import argparse
import base64
import datetime
import email.utils
import http.client
import http.server
import json
import signal
import sys
import threading
import urllib.parse
import uuid
from xml.sax.saxutils import escape

# Headers that belong to one connection and are never forwarded.
HOP_BY_HOP = {
    "connection",
    "keep-alive",
    "proxy-authenticate",
    "proxy-authorization",
    "proxy-connection",
    "te",
    "trailer",
    "trailers",
    "transfer-encoding",
    "upgrade",
}

# Path prefixes of fake-gcs-server's own (JSON/internal) API: forwarded as is.
PASSTHROUGH_PREFIXES = ("/storage/", "/upload/", "/download/", "/_internal/", "/batch/")

# PUT request headers that become JSON object-metadata fields.
METADATA_HEADERS = {
    "content-type": "contentType",
    "cache-control": "cacheControl",
    "content-disposition": "contentDisposition",
    "content-encoding": "contentEncoding",
    "content-language": "contentLanguage",
    "x-goog-storage-class": "storageClass",
}

XML_DECL = "<?xml version='1.0' encoding='UTF-8'?>"

ERROR_MESSAGES = {
    "PreconditionFailed": "At least one of the pre-conditions you specified did not hold.",
    "NoSuchKey": "The specified key does not exist.",
    "NoSuchBucket": "The specified bucket does not exist.",
    "NotImplemented": "gcs_proxy.py does not translate this request for fake-gcs-server.",
}


def xml_error(code, message=None):
    message = message or ERROR_MESSAGES[code]
    return f"{XML_DECL}<Error><Code>{code}</Code><Message>{escape(message)}</Message></Error>".encode()


def quote_all(text):
    """Percent-encode everything but unreserved characters (slashes too)."""
    return urllib.parse.quote(text, safe="")


def quoted_etag(etag):
    return etag if etag.startswith('"') else f'"{etag}"'


def bare_etag(etag):
    etag = etag.strip()
    if etag.startswith("W/"):
        etag = etag[2:]
    return etag.strip('"')


class UpstreamError(Exception):
    """fake-gcs-server could not be reached or sent a broken answer."""


class Upstream:
    """fake-gcs-server, reached with one short-lived connection per request."""

    def __init__(self, url):
        parsed = urllib.parse.urlsplit(url)
        if parsed.scheme != "http" or not parsed.hostname:
            raise SystemExit(f"--upstream must be http://HOST:PORT, not {url!r}")
        self.host = parsed.hostname
        self.port = parsed.port or 80

    def request(self, method, target, headers=None, body=None):
        """Returns (status, [(name, value)], body bytes)."""
        connection = http.client.HTTPConnection(self.host, self.port, timeout=120)
        try:
            connection.request(method, target, body=body, headers=dict(headers or {}))
            response = connection.getresponse()
            data = response.read()
            return response.status, response.getheaders(), data
        except (OSError, http.client.HTTPException) as error:
            raise UpstreamError(f"{method} {target}: {error!r}") from error
        finally:
            connection.close()


class Recorder:
    def __init__(self, path):
        self.lock = threading.Lock()
        self.file = open(path, "a", encoding="utf-8")

    def record(self, method, path, query, headers):
        line = json.dumps({"method": method, "path": path, "query": query, "headers": headers})
        with self.lock:
            self.file.write(line + "\n")
            self.file.flush()


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as reqwest's pooled client expects
    server_version = "gcs-proxy"

    # Set on the class by main().
    upstream: Upstream
    recorder: Recorder
    list_page_size: int = 1000
    quiet: bool = False

    # ---- plumbing -------------------------------------------------------

    def log_message(self, format, *args):
        if not self.quiet:
            super().log_message(format, *args)

    def read_body(self):
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            chunks = []
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass  # trailers
                    break
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
            return b"".join(chunks)
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def respond(self, status, headers=(), body=b""):
        """Sends a complete response; the body is dropped for HEAD, 204 and 304."""
        self.send_response(status)
        for name, value in headers:
            lower = name.lower()
            if lower in HOP_BY_HOP or lower in ("date", "server", "content-length"):
                continue
            self.send_header(name, value)
        if self.command == "HEAD" and status < 300:
            # object_store reads the object's size from a HEAD's Content-Length.
            length = dict((k.lower(), v) for k, v in headers).get("content-length", str(len(body)))
            self.send_header("Content-Length", length)
            body = b""
        elif status in (204, 304) or self.command == "HEAD":
            if status != 204:
                self.send_header("Content-Length", "0")
            body = b""
        else:
            self.send_header("Content-Length", str(len(body)))
        if self.close_connection:
            self.send_header("Connection", "close")
        self.end_headers()
        if body:
            self.wfile.write(body)
        self.wfile.flush()

    def respond_xml(self, status, body, extra=()):
        self.respond(status, [("Content-Type", "application/xml; charset=UTF-8"), *extra], body)

    def forward_headers(self):
        skip = HOP_BY_HOP | {"host", "expect"}
        return [(k, v) for k, v in self.headers.items() if k.lower() not in skip]

    def bucket_exists(self, bucket):
        status, _, _ = self.upstream.request("GET", f"/storage/v1/b/{quote_all(bucket)}")
        return status != 404

    def not_found(self, bucket):
        code = "NoSuchKey" if self.bucket_exists(bucket) else "NoSuchBucket"
        self.respond_xml(404, xml_error(code))

    # ---- dispatch -------------------------------------------------------

    def handle_any(self):
        body = self.read_body()
        split = urllib.parse.urlsplit(self.path)
        raw_path, raw_query = split.path, split.query
        headers = {}
        for name, value in self.headers.items():
            lower = name.lower()
            headers[lower] = f"{headers[lower]}, {value}" if lower in headers else value
        self.recorder.record(self.command, raw_path, raw_query, headers)

        try:
            self.route(raw_path, raw_query, headers, body)
        except UpstreamError as error:
            self.close_connection = True
            self.respond(502, [("Content-Type", "text/plain")], f"gcs_proxy: upstream failed: {error}\n".encode())

    def route(self, raw_path, raw_query, headers, body):
        if raw_path.startswith(PASSTHROUGH_PREFIXES) or raw_path == "/":
            return self.forward(raw_path, raw_query, body)

        bucket_raw, _, object_raw = raw_path.lstrip("/").partition("/")
        bucket = urllib.parse.unquote(bucket_raw)
        name = urllib.parse.unquote(object_raw)
        query = dict(urllib.parse.parse_qsl(raw_query, keep_blank_values=True))

        if not name:
            if self.command == "GET":
                return self.list_objects(bucket, query)
            return self.forward(raw_path, raw_query, body)

        if {"uploads", "uploadId", "partNumber"} & query.keys():
            return self.respond_xml(501, xml_error("NotImplemented", "XML multipart uploads are not translated"))

        if self.command == "PUT":
            if "x-goog-copy-source" in headers:
                return self.copy_object(bucket, name, headers)
            return self.put_object(bucket, name, headers, body)
        if self.command in ("GET", "HEAD"):
            return self.get_object(bucket, raw_path, raw_query, headers)
        if self.command == "DELETE":
            status, response_headers, data = self.upstream.request("DELETE", self.target(raw_path, raw_query), self.forward_headers())
            if status == 404:
                return self.not_found(bucket)
            return self.respond(status, response_headers, data)
        return self.forward(raw_path, raw_query, body)

    do_GET = do_HEAD = do_PUT = do_POST = do_DELETE = do_PATCH = handle_any

    @staticmethod
    def target(raw_path, raw_query):
        return f"{raw_path}?{raw_query}" if raw_query else raw_path

    def forward(self, raw_path, raw_query, body):
        status, headers, data = self.upstream.request(
            self.command, self.target(raw_path, raw_query), self.forward_headers(), body or None
        )
        self.respond(status, headers, data)

    # ---- writes ---------------------------------------------------------

    def upload(self, bucket, name, content, metadata, headers):
        """JSON-API multipart upload with the request's preconditions; writes the XML-PUT-style answer."""
        metadata = {k: v for k, v in metadata.items() if v is not None}
        metadata["name"] = name
        metadata.setdefault("contentType", "application/octet-stream")
        query = {"uploadType": "multipart"}
        if "x-goog-if-generation-match" in headers:
            query["ifGenerationMatch"] = headers["x-goog-if-generation-match"]
        if "x-goog-if-metageneration-match" in headers:
            query["ifMetagenerationMatch"] = headers["x-goog-if-metageneration-match"]

        boundary = f"gcs_proxy_{uuid.uuid4().hex}"
        multipart = b"".join(
            [
                f"--{boundary}\r\nContent-Type: application/json; charset=UTF-8\r\n\r\n".encode(),
                json.dumps(metadata).encode(),
                f"\r\n--{boundary}\r\nContent-Type: {metadata['contentType']}\r\n\r\n".encode(),
                content,
                f"\r\n--{boundary}--\r\n".encode(),
            ]
        )
        status, response_headers, data = self.upstream.request(
            "POST",
            f"/upload/storage/v1/b/{quote_all(bucket)}/o?{urllib.parse.urlencode(query)}",
            {"Content-Type": f"multipart/related; boundary={boundary}"},
            multipart,
        )
        if status == 200:
            stored = json.loads(data)
            out = [
                ("ETag", quoted_etag(stored["etag"])),
                ("x-goog-generation", str(stored["generation"])),
                ("x-goog-metageneration", str(stored.get("metageneration", "1"))),
            ]
            if "crc32c" in stored and "md5Hash" in stored:
                out.append(("x-goog-hash", f"crc32c={stored['crc32c']},md5={stored['md5Hash']}"))
            return self.respond(200, out)
        if status == 412:
            return self.respond_xml(412, xml_error("PreconditionFailed"))
        if status == 404:
            return self.respond_xml(404, xml_error("NoSuchBucket"))
        return self.respond(status, response_headers, data)

    def put_object(self, bucket, name, headers, body):
        metadata = {field: headers.get(header) for header, field in METADATA_HEADERS.items()}
        user = {h[len("x-goog-meta-"):]: v for h, v in headers.items() if h.startswith("x-goog-meta-")}
        if user:
            metadata["metadata"] = user
        self.upload(bucket, name, body, metadata, headers)

    def copy_object(self, bucket, name, headers):
        source_bucket, _, source_name = headers["x-goog-copy-source"].lstrip("/").partition("/")
        source_bucket, source_name = urllib.parse.unquote(source_bucket), urllib.parse.unquote(source_name)
        source = f"/storage/v1/b/{quote_all(source_bucket)}/o/{quote_all(source_name)}"
        for suffix in ("", "?alt=media"):
            status, response_headers, data = self.upstream.request("GET", source + suffix)
            if status == 404:
                return self.not_found(source_bucket)
            if status != 200:
                return self.respond(status, response_headers, data)
            if not suffix:
                meta = json.loads(data)
        content = data
        fields = [*METADATA_HEADERS.values(), "metadata"]
        self.upload(bucket, name, content, {k: meta.get(k) for k in fields}, headers)

    # ---- reads ----------------------------------------------------------

    def get_object(self, bucket, raw_path, raw_query, headers):
        status, response_headers, data = self.upstream.request(
            self.command, self.target(raw_path, raw_query), self.forward_headers()
        )
        if status == 404:
            return self.not_found(bucket)
        if status in (200, 206):
            failed = self.failed_read_condition(headers, dict((k.lower(), v) for k, v in response_headers))
            if failed:
                keep = [(k, v) for k, v in response_headers if k.lower() in ("etag", "last-modified", "x-goog-generation")]
                if failed == 412:
                    return self.respond_xml(412, xml_error("PreconditionFailed"), keep)
                return self.respond(304, keep)
        self.respond(status, response_headers, data)

    @staticmethod
    def failed_read_condition(request, response):
        """RFC 9110 order: If-Match, If-Unmodified-Since, If-None-Match, If-Modified-Since."""
        etag = bare_etag(response.get("etag", ""))
        modified = response.get("last-modified")
        modified = email.utils.parsedate_to_datetime(modified) if modified else None

        def etag_in(value):
            tags = [bare_etag(t) for t in value.split(",")]
            return "*" in tags or etag in tags

        def date(value):
            try:
                return email.utils.parsedate_to_datetime(value)
            except (TypeError, ValueError):
                return None

        if "if-match" in request:
            if not etag_in(request["if-match"]):
                return 412
        elif "if-unmodified-since" in request and modified and date(request["if-unmodified-since"]):
            if modified > date(request["if-unmodified-since"]):
                return 412
        if "if-none-match" in request:
            if etag_in(request["if-none-match"]):
                return 304
        elif "if-modified-since" in request and modified and date(request["if-modified-since"]):
            if modified <= date(request["if-modified-since"]):
                return 304
        return None

    def list_objects(self, bucket, query):
        prefix = query.get("prefix", "")
        delimiter = query.get("delimiter", "")
        start_after = query.get("start-after", "")
        token = query.get("continuation-token", "")
        try:
            max_keys = int(query.get("max-keys", "1000"))
        except ValueError:
            max_keys = 1000
        page_size = max(0, min(max_keys, self.list_page_size))

        items, page_token, seen = [], None, set()
        while True:
            params = {"prefix": prefix} if prefix else {}
            if page_token:
                params["pageToken"] = page_token
            target = f"/storage/v1/b/{quote_all(bucket)}/o"
            if params:
                target += "?" + urllib.parse.urlencode(params)
            status, response_headers, data = self.upstream.request("GET", target)
            if status == 404:
                return self.respond_xml(404, xml_error("NoSuchBucket"))
            if status != 200:
                return self.respond(status, response_headers, data)
            page = json.loads(data)
            items.extend(page.get("items", []))
            page_token = page.get("nextPageToken")
            if not page_token or page_token in seen:
                break
            seen.add(page_token)

        objects, prefixes = {}, set()
        for item in items:
            key = item["name"]
            if not key.startswith(prefix) or (start_after and key <= start_after):
                continue
            rest = key[len(prefix):]
            if delimiter and delimiter in rest:
                prefixes.add(prefix + rest[: rest.index(delimiter) + len(delimiter)])
            else:
                objects[key] = item

        try:
            after = base64.urlsafe_b64decode(token.encode()).decode() if token else ""
        except ValueError:
            return self.respond_xml(400, xml_error("InvalidArgument", "Invalid continuation token"))
        entries = sorted(e for e in [*objects, *prefixes] if e > after)
        page, truncated = entries[:page_size], len(entries) > page_size and page_size > 0

        contents, common = [], []
        for entry in page:
            if entry in prefixes:
                common.append(f"<CommonPrefixes><Prefix>{escape(entry)}</Prefix></CommonPrefixes>")
                continue
            item = objects[entry]
            contents.append(
                "<Contents>"
                f"<Key>{escape(entry)}</Key>"
                f"<Generation>{escape(str(item.get('generation', '')))}</Generation>"
                f"<MetaGeneration>{escape(str(item.get('metageneration', '')))}</MetaGeneration>"
                f"<LastModified>{rfc3339_millis(item.get('updated') or item.get('timeCreated'))}</LastModified>"
                f"<ETag>{escape(quoted_etag(item.get('etag', '')))}</ETag>"
                f"<Size>{int(item.get('size', 0))}</Size>"
                "</Contents>"
            )
        head = [
            f"<Name>{escape(bucket)}</Name>",
            f"<Prefix>{escape(prefix)}</Prefix>",
            f"<Delimiter>{escape(delimiter)}</Delimiter>" if delimiter else "",
            f"<StartAfter>{escape(start_after)}</StartAfter>" if start_after else "",
            f"<ContinuationToken>{escape(token)}</ContinuationToken>" if token else "",
            f"<KeyCount>{len(page)}</KeyCount>",
            f"<MaxKeys>{max_keys}</MaxKeys>",
            f"<IsTruncated>{'true' if truncated else 'false'}</IsTruncated>",
        ]
        tail = []
        if truncated:
            next_token = base64.urlsafe_b64encode(page[-1].encode()).decode()
            tail.append(f"<NextContinuationToken>{next_token}</NextContinuationToken>")
        # Contents and CommonPrefixes must each be contiguous: object_store's
        # quick-xml reader rejects interleaved lists.
        xml = (
            f'{XML_DECL}<ListBucketResult xmlns="http://doc.s3.amazonaws.com/2006-03-01">'
            + "".join(head + contents + common + tail)
            + "</ListBucketResult>"
        )
        self.respond_xml(200, xml.encode())


def rfc3339_millis(value):
    """fake-gcs-server's microsecond timestamps, as GCS's XML API writes them (milliseconds)."""
    if not value:
        return "1970-01-01T00:00:00.000Z"
    parsed = datetime.datetime.fromisoformat(value.replace("Z", "+00:00")).astimezone(datetime.timezone.utc)
    return parsed.strftime("%Y-%m-%dT%H:%M:%S.") + f"{parsed.microsecond // 1000:03d}Z"


class Server(http.server.ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--listen-port", type=int, required=True, help="port to listen on, on 127.0.0.1")
    parser.add_argument("--upstream", required=True, help="fake-gcs-server's URL, http://127.0.0.1:PORT")
    parser.add_argument("--record", required=True, help="file to append one JSON line per request to")
    parser.add_argument(
        "--list-page-size",
        type=int,
        default=1000,
        help="most entries per listing page (default 1000, as GCS); small values exercise continuation tokens",
    )
    parser.add_argument("--quiet", action="store_true", help="do not log requests to stderr")
    args = parser.parse_args()

    Handler.upstream = Upstream(args.upstream)
    Handler.recorder = Recorder(args.record)
    Handler.list_page_size = args.list_page_size
    Handler.quiet = args.quiet

    server = Server(("127.0.0.1", args.listen_port), Handler)

    def stop(signum, frame):
        # shutdown() waits for serve_forever() to return, so it cannot run on this thread.
        threading.Thread(target=server.shutdown, daemon=True).start()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)

    print("ready", flush=True)
    server.serve_forever()
    server.server_close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
