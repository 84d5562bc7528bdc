#!/usr/bin/python3
"""fakegw: a fake Bankr LLM gateway (and agent API) for tests and benchmarks.

Standard library only.  It listens on 127.0.0.1 (never any other address), port 0 by
default, speaks HTTP/1.1 with keep-alive from a threaded server, and imitates the wire
formats described in shared/reference/wire-protocols.md and bankr-cli-behaviour.md.

In-process use
--------------
    from fakegw import FakeGateway, Fault
    gw = FakeGateway().start()       # or: with FakeGateway() as gw: ...
    gw.url, gw.port                  # "http://127.0.0.1:PORT"
    gw.stop()

State (plain attributes, change them at any time; reset() restores all defaults):
    llm_keys       set of keys accepted by /v1/* (default {FakeGateway.DEFAULT_KEY})
    api_keys       set of keys accepted by the agent API (default {DEFAULT_API_KEY})
    models         list of model dicts as the gateway returns them (5 realistic ones,
                   including claude-haiku-4.5 (anthropic) and gpt-5-mini (openai))
    balance        float for /v1/credits -> {"balanceUsd": balance}; None -> 402 there
                   and on the chat endpoints (credits exhausted).  A balance <= 0 also
                   makes chat requests fail with 402.
    reply_text     default answer text of the chat endpoints ("Hello, world!")
    usage          None (derived) or a dict overriding token counts, keys
                   input / output / cache_read / cache_write (the wire names
                   input_tokens, output_tokens, prompt_tokens, completion_tokens,
                   cache_read_input_tokens, cache_creation_input_tokens, cached_tokens
                   are accepted too).  "input" means input not served from or written to
                   the cache.  Derived: input = number of words in the system prompt and
                   messages (at least 1), output = number of deltas.
                   OpenAI format: prompt_tokens = input + cache_read + cache_write,
                   prompt_tokens_details.cached_tokens = cache_read, and
                   prompt_tokens_details.cache_write_tokens = cache_write when non-zero
                   (OpenRouter's spelling).  Anthropic format: input_tokens = input,
                   cache_read_input_tokens, cache_creation_input_tokens.
    stream_options dict applied to every chat request (keys below)
    auto_topup     the agent API's auto top-up config dict
    verbose        log each request to stderr

Records (thread-safe snapshots):
    gw.requests            list of Request: .method .path (no query) .query .headers
                           (dict, lower-case names) .body (bytes) .json (parsed or None)
                           .endpoint .time (time.monotonic() at arrival) .wall_time
                           .status (sent, None until answered) .fault .model
                           .reused (it came on a connection that had served one before)
    gw.requests_for(ep)    only those of one endpoint
    gw.clear_requests()
    gw.disconnects         list of Disconnect(endpoint, bytes_sent): the client closed
                           the connection before the body was complete (also while we
                           waited in a delay, a drip or a hang).  bytes_sent counts body
                           payload bytes, without chunked framing.
    gw.wait_for(pred, timeout) poll helper; gw.reset() back to defaults.
    gw.pending_faults(ep=None) faults still queued (for "the fault was used" asserts).
To prove that a client closed the connection mid-stream (a cancelled chat), give the
stream a drip (e.g. stream_options={"drip": 0.02}) so the fake is still sending when the
client leaves; the disconnect is noticed within one drip interval.
Helpers for expectations: split_deltas(text) gives the deltas an answer is sent as, and
error_body(endpoint, status, message) the error body an endpoint sends.

Endpoints (the names used by requests_for and push_fault)
    models       GET  /v1/models, /v1/models/<id>   auth X-API-Key or Bearer
    credits      GET  /v1/credits                  auth X-API-Key or Bearer
    chat         POST /v1/chat/completions         auth Authorization: Bearer
    messages     POST /v1/messages                 auth x-api-key or Bearer; needs
                      anthropic-version and max_tokens
    count_tokens POST /v1/messages/count_tokens    -> {"input_tokens": n}
    images       POST /v1/images/generations       -> {"created", "data": [{"b64_json"}]}
    topup        POST /llm/credits/topup           agent API, X-API-Key in api_keys
    auto-topup   GET/POST /llm/credits/auto-topup  agent API, X-API-Key in api_keys
    images       POST /v1/images/generations       auth Bearer; {"model","prompt","n"<=4}
                      -> {"created","data":[{"b64_json"}],"usage"}; model must be in
                      image_models (or a models entry with "image" in output_modalities)
    other        HEAD / and GET / (200), anything else (404 / 405)
Every gateway path works with and without the /v1 prefix, and under the /zdr and
/private prefixes (Request.path is without the prefix, Request.path_tier names it);
query strings are ignored.

Privacy tiers, deprecations and budgets (as the real gateway, bankr skill reference):
    The tier of a chat or image request is the strongest of: account_privacy, a path
    prefix /zdr or /private (a tier endpoint, rec.path_tier; rec.path is without it),
    the body field "privacy" ("standard", "zdr", "private"; anything else -> 400
    invalid_privacy) and a trailing model suffix ":zdr"/":private" (any case, stripped
    before the model lookup).  A tier endpoint is authoritative: a body field or suffix
    naming another tier -> 400 privacy_conflict.  It fails closed: a zdr request for a
    model without "zdr" (or "private") in its dict -> 422 zdr_unavailable; a private one
    for a model without "private" -> 422 without a code ("no confidential provider").
    Every answer (also the errors after the tier is known) carries X-Privacy-Tier.
    deprecated     {model: replacement}: answers carry X-Model-Deprecated: true and
                   X-Model-Replacement
    retired        {model: replacement}: 410 {"error":{"type":"model_retired"}} with
                   X-Model-Replacement (replacement None: no header)
    daily_budget   None, or a dict: requests that spend (chat, images) get 402 type
                   daily_budget_exceeded (not insufficient_credits); keys "retry_after"
                   (a Retry-After header value) and "resets_at" (a body field) optional
    image_models   set of image model ids (default {"gpt-image-2"})
    image_bytes    what each generated image is (default: a 1x1 PNG)
Error bodies follow the endpoint: OpenAI {"error":{"message","type","param","code"}} for
models/credits/chat/other, Anthropic {"type":"error","error":{"type","message"}} for
messages, {"error": msg} for the agent API.  Unknown model -> 404, bad key -> 401,
bad request -> 400.  Streams always use chunked transfer encoding, so a dropped
connection is an incomplete body; other bodies carry Content-Length.

Chat behaviour: the answer (reply_text, or the stream option "reply") is split into
deltas at word boundaries (whitespace stays with the word before it; a multi-byte
character is never split inside a delta).  max_tokens / max_completion_tokens smaller
than the number of deltas truncates the answer (finish_reason "length", stop_reason
"max_tokens"); a stop sequence (`stop` / `stop_sequences`) found in the answer cuts it
there (finish_reason "stop", stop_reason "stop_sequence").  The OpenAI usage chunk is
sent only when the request asks for stream_options.include_usage, as real servers do.

Faults
------
    gw.push_fault(endpoint, Fault(...))   endpoint as above or '*' (any endpoint).
Each endpoint has a queue; a request takes the first queued fault that matches it (the
endpoint's own queue first, then '*'), and each use counts against `times`.
Fault fields, all optional and combinable:
    status        int.  Without a body: a JSON error in the endpoint's format (>= 400) or
                  the normal body with this status.
    body          bytes or str, sent as is (status defaults to 200).  A hand-written
                  stream: Fault(body=sse_bytes, content_type="text/event-stream",
                  chunked=True)
    headers       dict of extra response headers, e.g. {"Retry-After": "1"}
    content_type  override the Content-Type
    delay         seconds to wait before the status line
    drop_after    close the socket after N body bytes (no proper end of body; a chunked
                  body gets no final chunk even when everything was sent)
    drip          seconds between body pieces (pieces: stream events, chunk_sizes, or
                  64-byte pieces for other bodies)
    chunk_sizes   list of piece sizes (cycled), or "random" for sizes 1..chunk_max drawn
                  from random.Random(seed); each piece is one write and, when chunked,
                  one HTTP chunk.  chunk_max (default 64), seed (default 0).
    chunked       force chunked transfer encoding for a non-stream body
    times         how many requests it applies to (default 1; None: forever)
    model         apply only to requests whose JSON "model" equals it (or is in a list)
    close         read the request, then close without any answer
    reused_only   apply only to a request that came on a kept-alive connection which
                  had served a request before (with close=True: a gateway closing a
                  reused connection right after reading the POST, which makes
                  libcurl send the POST again on a new connection by itself)
    reset         read the request, then close with a TCP reset
    hang          never answer; released by stop() or the client closing
    any stream option below (reply, crlf, error_after, ...): merged over
                  gw.stream_options for that one chat request
Constructors (the body is rendered for the endpoint that takes the fault):
    Fault.http(status, message=None, type=None, **kw)  a JSON error in the right format
    Fault.html(status=502)      an HTML error page, as proxies send
    Fault.malformed()           truncated JSON (for streams: one event's JSON truncated)
    Fault.wrong_types(variant=0)  valid JSON with wrong field types ("balanceUsd":
                                "lots", "data": {}, ...); variant=1 gives a second shape
    Fault.huge(nbytes)          a huge valid-looking body of at least nbytes
    Fault.hang()                never answers until stop()

Stream options (gw.stream_options, or as Fault fields for one request)
    reply          answer text for this request
    deltas         explicit list of delta strings (overrides reply splitting)
    echo           answer "You said: <last user text>" (tells concurrent requests apart)
    crlf / cr      CRLF or bare CR line endings; mixed_eol: cycle LF, CRLF, CR per line
    comments       ": keep-alive" comment lines between events (and inside events);
                   Anthropic streams also get extra ping events
    bom            a UTF-8 BOM before the first event
    multiline_data split each JSON data payload over two data: lines (joined by "\\n")
    no_space       "data:{...}" without the optional space
    ascii          \\uXXXX escapes instead of raw UTF-8 in JSON
    error_after    after N deltas send a mid-stream error event and end the stream:
                   OpenAI data: {"error":{...}}, Anthropic event: error.  error_type,
                   error_message override its contents.
    no_terminator  end without data: [DONE] / message_stop (the body itself ends properly)
    unknown_events extra fields (obfuscation, service_tier, system_fingerprint, logprobs),
                   id:/retry: lines, a content-less chunk, an unknown event type, and for
                   Anthropic a thinking block (thinking_delta, signature_delta) before the
                   text block: everything a client must ignore
    stop_reason    Anthropic stop_reason override; finish_reason: OpenAI override
    role_chunk     False to omit OpenAI's first {"role":"assistant","content":""} chunk
    fast_deltas    N: emit N deltas of fast_text (default "tok ") as fast as possible in
                   large writes (benchmarks); usage output = N
    drop_after, drip, chunk_sizes, chunk_max, seed   transport, as the Fault fields
                   (a Fault's own transport fields win)

TLS
---
    gw = FakeGateway(); gw.use_tls(certfile, keyfile).start()
serves HTTPS (HTTP/1.1 only, no ALPN h2) with that certificate; gw.url is then
"https://127.0.0.1:PORT".  gw.tls_connections counts completed handshakes (= TCP
connections carrying requests), gw.tls_failures the handshakes that failed (a client
that refused our certificate).  Stream drips and disconnect detection do not work over
TLS (no MSG_PEEK on an SSL socket); tests of those use plain HTTP.
tests/test-tls.py makes the certificates (make_test_pki()).

Out of process
--------------
    /usr/bin/python3 tests/fakegw.py [--port N] [--port-file F] [--verbose]
                                     [--tls-cert PEM --tls-key PEM]
prints the URL on one stdout line, writes the port number to F (atomically), and serves
until SIGTERM/SIGINT.  Control endpoints (no auth, not recorded):
    POST /_control/reset
    GET  /_control/state            the current state
    POST /_control/state            JSON with any of balance, models, reply_text,
                                    stream_options, llm_keys, api_keys, usage, auto_topup
    POST /_control/fault            JSON {"endpoint": ..., Fault fields...}; "kind":
                                    "http"|"html"|"malformed"|"wrong_types"|"huge"|"hang"
                                    with message/type/nbytes/variant; "body_b64" for
                                    binary bodies
    GET  /_control/requests         JSON list of request records (body as text)
    POST /_control/clear_requests
    GET  /_control/disconnects      JSON list of {"endpoint", "bytes_sent"}
"""

import argparse
import base64
import collections
import copy
import hashlib
import itertools
import json
import os
import random
import re
import select
import signal
import socket
import ssl
import struct
import sys
import threading
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

__all__ = ["FakeGateway", "Fault", "Request", "Disconnect"]

Disconnect = collections.namedtuple("Disconnect", ["endpoint", "bytes_sent"])

MAX_REQUEST_BODY = 64 * 1024 * 1024
PLAIN_DRIP_PIECE = 64
FAST_BLOCK = 64 * 1024

STREAM_KEYS = frozenset({
        "reply", "deltas", "echo", "crlf", "cr", "mixed_eol", "comments", "bom",
        "multiline_data", "no_space", "ascii", "error_after", "error_type",
        "error_message", "no_terminator", "unknown_events", "stop_reason",
        "finish_reason", "role_chunk", "fast_deltas", "fast_text",
        "drop_after", "drip", "chunk_sizes", "chunk_max", "seed",
})
TRANSPORT_KEYS = ("drop_after", "drip", "chunk_sizes", "chunk_max", "seed")

DEFAULT_MODELS = [
        {"id": "claude-haiku-4.5", "object": "model", "created": 1760000000,
         "owned_by": "anthropic", "name": "Claude Haiku 4.5",
         "context_window": 200000, "max_output_tokens": 64000,
         "input_modalities": ["text", "image"], "zdr": True,
         "pricing": {"input": 1, "output": 5, "cache_read": 0.1, "cache_write": 1.25}},
        {"id": "claude-sonnet-4.5", "object": "model", "created": 1759000000,
         "owned_by": "anthropic", "name": "Claude Sonnet 4.5",
         "context_window": 1000000, "max_output_tokens": 64000,
         "input_modalities": ["text", "image"],
         "pricing": {"input": 3, "output": 15, "cache_read": 0.3, "cache_write": 3.75}},
        {"id": "gpt-5-mini", "object": "model", "created": 1754000000,
         "owned_by": "openai", "name": "GPT 5 Mini",
         "context_window": 400000, "max_output_tokens": 128000,
         "input_modalities": ["text"],
         "pricing": {"input": 0.25, "output": 2, "cache_read": 0.025, "cache_write": 0}},
        {"id": "gemini-3-flash", "object": "model", "created": 1765000000,
         "owned_by": "google", "name": "Gemini 3 Flash",
         "context_window": 1048576, "max_output_tokens": 65535,
         "input_modalities": ["text", "image"],
         "pricing": {"input": 0.5, "output": 3, "cache_read": 0.05, "cache_write": 0.0833}},
        {"id": "deepseek-v3.2", "object": "model", "created": 1764000000,
         "owned_by": "deepseek", "name": "DeepSeek V3.2",
         "context_window": 163840, "max_output_tokens": 65536,
         "input_modalities": ["text"], "zdr": True, "private": True,
         "pricing": {"input": 0.26, "output": 0.38, "cache_read": 0.13, "cache_write": 0}},
]

KNOWN_TOKENS = {
        "USDC": {"address": "0x833589fCD6eDb6E08f4c7C32D4f71b54bdA02913", "chain": "base",
                 "symbol": "USDC", "name": "USD Coin", "decimals": 6},
        "WETH": {"address": "0x4200000000000000000000000000000000000006", "chain": "base",
                 "symbol": "WETH", "name": "Wrapped Ether", "decimals": 18},
        "BNKR": {"address": "0x22aF33FE49fD1Fa80c7149773dDe5890D3c76F3b", "chain": "base",
                 "symbol": "BNKR", "name": "BankrCoin", "decimals": 18},
}

DEFAULT_AUTO_TOPUP = {"enabled": False, "amountUsd": 25, "thresholdUsd": 5,
                      "tokens": [KNOWN_TOKENS["USDC"]]}

REASONS = {400: "Bad Request", 401: "Unauthorized", 402: "Payment Required",
           403: "Forbidden", 404: "Not Found", 405: "Method Not Allowed",
           408: "Request Timeout", 409: "Conflict", 413: "Payload Too Large",
           429: "Too Many Requests", 500: "Internal Server Error", 502: "Bad Gateway",
           503: "Service Unavailable", 504: "Gateway Timeout", 529: "Overloaded"}

OPENAI_ERR = {400: ("invalid_request_error", None), 401: ("invalid_request_error", "invalid_api_key"),
              402: ("insufficient_quota", "insufficient_credits"),
              403: ("permission_error", "forbidden"), 404: ("invalid_request_error", "model_not_found"),
              408: ("timeout", "timeout"), 409: ("conflict", None),
              413: ("invalid_request_error", "request_too_large"),
              429: ("rate_limit_error", "rate_limit_exceeded"), 500: ("server_error", None),
              502: ("server_error", "bad_gateway"), 503: ("server_error", "service_unavailable"),
              504: ("server_error", "gateway_timeout"), 529: ("overloaded_error", "overloaded")}

ANTHROPIC_ERR = {400: "invalid_request_error", 401: "authentication_error", 402: "billing_error",
                 403: "permission_error", 404: "not_found_error", 413: "request_too_large",
                 429: "rate_limit_error", 500: "api_error", 529: "overloaded_error"}

DEFAULT_MESSAGES = {
        "topup": {402: "Insufficient wallet balance", 403: "LLM gateway not enabled for this API key",
                  502: "Token swap failed"},
        "*": {400: "Bad request", 401: "Invalid API key", 402: "Insufficient credits",
              403: "Forbidden", 404: "Not found", 408: "Request timed out",
              409: "Conflict", 413: "Request too large", 429: "Rate limit exceeded, please retry later",
              500: "Internal server error", 502: "Upstream provider error",
              503: "Service temporarily unavailable", 504: "Upstream timed out",
              529: "Overloaded"},
}


def _default_message(endpoint, status):
        for table in (DEFAULT_MESSAGES.get(endpoint, {}), DEFAULT_MESSAGES["*"]):
                if status in table:
                        return table[status]
        return REASONS.get(status, "HTTP %d" % status)


def _error_format(endpoint):
        if endpoint in ("messages", "count_tokens"):
                return "anthropic"
        if endpoint in ("topup", "auto-topup"):
                return "agent"
        return "openai"


def error_body(endpoint, status, message=None, etype=None):
        """The JSON error body (bytes) the real service sends for this endpoint."""
        message = message if message is not None else _default_message(endpoint, status)
        fmt = _error_format(endpoint)
        if fmt == "anthropic":
                t = etype or ANTHROPIC_ERR.get(status, "api_error" if status >= 500 else "invalid_request_error")
                obj = {"type": "error", "error": {"type": t, "message": message}}
        elif fmt == "agent":
                obj = {"error": message}
        else:
                t, code = OPENAI_ERR.get(status, ("server_error" if status >= 500 else "invalid_request_error", None))
                obj = {"error": {"message": message, "type": etype or t, "param": None, "code": code}}
        return json.dumps(obj).encode()


def split_deltas(text):
        """Split text into word-sized deltas; whitespace stays with the word before it."""
        if not text:
                return []
        parts = re.findall(r"\s*\S+\s*", text) if text.strip() else [text]
        # A leading run of whitespace is glued to the first word by the regex.
        return [p for p in parts if p]


def _count_words(obj):
        n = 0
        if isinstance(obj, str):
                return len(obj.split())
        if isinstance(obj, list):
                for part in obj:
                        if isinstance(part, dict) and isinstance(part.get("text"), str):
                                n += len(part["text"].split())
                        elif isinstance(part, str):
                                n += len(part.split())
        return n


TIERS = ["standard", "zdr", "private"]

# A 1x1 transparent PNG: what the fake "generates".
TINY_PNG = base64.b64decode(
        "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNkYPhfDwAChwGA60e6kgAAAABJRU5ErkJggg==")


def _text_of(content):
        if isinstance(content, str):
                return content
        if isinstance(content, list):
                return "".join(p.get("text", "") for p in content
                               if isinstance(p, dict) and isinstance(p.get("text"), str))
        return ""


class Fault:
        """One scripted misbehaviour; see the module docstring."""

        _FIELDS = ("status", "body", "headers", "content_type", "delay", "drop_after",
                   "drip", "chunk_sizes", "chunk_max", "seed", "chunked", "times", "model",
                   "close", "reset", "hanging", "reused_only")

        def __init__(self, status=None, body=None, headers=None, delay=0.0, drop_after=None,
                     drip=None, chunk_sizes=None, seed=None, chunk_max=None, content_type=None,
                     times=1, model=None, close=False, reset=False, hang=False, chunked=None,
                     reused_only=False, **stream):
                unknown = set(stream) - STREAM_KEYS
                if unknown:
                        raise TypeError("unknown Fault field(s): %s" % ", ".join(sorted(unknown)))
                if isinstance(body, str):
                        body = body.encode()
                if chunk_sizes is not None and chunk_sizes != "random":
                        chunk_sizes = [int(x) for x in chunk_sizes]
                        if not chunk_sizes or min(chunk_sizes) < 1:
                                raise ValueError("chunk_sizes must be positive")
                if times is not None and times < 1:
                        raise ValueError("times must be >= 1 or None (forever)")
                self.status = status
                self.body = body
                self.headers = dict(headers or {})
                self.content_type = content_type
                self.delay = delay or 0.0
                self.drop_after = drop_after
                self.drip = drip
                self.chunk_sizes = chunk_sizes
                self.seed = seed
                self.chunk_max = chunk_max
                self.chunked = chunked
                self.times = times
                self.model = model
                self.close = close
                self.reset = reset
                self.hanging = hang
                self.reused_only = bool(reused_only)
                self.stream = dict(stream)
                # kind-specific rendering: (name, args) done per endpoint at answer time
                self.kind = None
                self.kind_args = {}

        def __repr__(self):
                fields = ["%s=%r" % (f, getattr(self, f)) for f in self._FIELDS
                          if getattr(self, f) not in (None, False, {}, 0.0)]
                if self.kind:
                        fields.insert(0, "kind=%s%r" % (self.kind, self.kind_args))
                if self.stream:
                        fields.append("stream=%r" % self.stream)
                return "Fault(%s)" % ", ".join(fields)

        def transport(self):
                return {k: getattr(self, k) for k in TRANSPORT_KEYS if getattr(self, k) is not None}

        def matches(self, rec):
                if self.reused_only and not rec.reused:
                        return False
                if self.model is None:
                        return True
                want = self.model if isinstance(self.model, (list, tuple, set)) else [self.model]
                return rec.model in want

        @classmethod
        def _kind(cls, kind, kind_args, status=None, **kw):
                f = cls(status=status, **kw)
                f.kind = kind
                f.kind_args = kind_args
                return f

        @classmethod
        def http(cls, status, message=None, type=None, **kw):
                return cls._kind("http", {"message": message, "type": type}, status=status, **kw)

        @classmethod
        def html(cls, status=502, **kw):
                return cls._kind("html", {}, status=status, **kw)

        @classmethod
        def malformed(cls, status=200, **kw):
                return cls._kind("malformed", {}, status=status, **kw)

        @classmethod
        def wrong_types(cls, variant=0, status=200, **kw):
                return cls._kind("wrong_types", {"variant": variant}, status=status, **kw)

        @classmethod
        def huge(cls, nbytes=16 * 1024 * 1024, status=200, **kw):
                return cls._kind("huge", {"nbytes": int(nbytes)}, status=status, **kw)

        @classmethod
        def hang(cls, **kw):
                kw.setdefault("hang", True)
                return cls(**kw)

        @classmethod
        def from_dict(cls, d):
                """Build from the JSON of POST /_control/fault (without "endpoint")."""
                d = dict(d)
                kind = d.pop("kind", None)
                if "body_b64" in d:
                        d["body"] = base64.b64decode(d.pop("body_b64"))
                if kind is None:
                        return cls(**d)
                if kind == "http":
                        return cls.http(d.pop("status"), d.pop("message", None), d.pop("type", None), **d)
                if kind == "html":
                        return cls.html(d.pop("status", 502), **d)
                if kind == "malformed":
                        return cls.malformed(d.pop("status", 200), **d)
                if kind == "wrong_types":
                        return cls.wrong_types(d.pop("variant", 0), d.pop("status", 200), **d)
                if kind == "huge":
                        return cls.huge(d.pop("nbytes", 16 * 1024 * 1024), d.pop("status", 200), **d)
                if kind == "hang":
                        return cls.hang(**d)
                raise ValueError("unknown fault kind %r" % kind)


class Request:
        """One request as the fake received it."""

        def __init__(self, method, path, query, headers, body, endpoint):
                self.method = method
                self.path = path
                self.query = query
                self.headers = headers
                self.body = body
                self.endpoint = endpoint
                self.time = time.monotonic()
                self.wall_time = time.time()
                self.status = None
                self.fault = None
                self.reused = False
                self.json = None
                self.path_tier = None
                self.extra_headers = {}
                if body:
                        try:
                                self.json = json.loads(body)
                        except (ValueError, UnicodeDecodeError):
                                self.json = None

        @property
        def model(self):
                if isinstance(self.json, dict):
                        return self.json.get("model")
                return None

        def to_dict(self):
                return {"method": self.method, "path": self.path, "query": self.query,
                        "headers": self.headers, "body": self.body.decode("utf-8", "replace"),
                        "json": self.json, "endpoint": self.endpoint, "time": self.time,
                        "wall_time": self.wall_time, "status": self.status, "reused": self.reused,
                        "fault": repr(self.fault) if self.fault else None}

        def __repr__(self):
                return "<Request %s %s %s -> %s>" % (self.method, self.path, self.endpoint, self.status)


class _ClientGone(Exception):
        pass


class _Stopping(Exception):
        pass


class _Body:
        """A response body: an iterator of pieces and its length (None: chunked)."""

        def __init__(self, pieces, length=None, stream=False):
                self.pieces = pieces
                self.length = length
                self.stream = stream

        @classmethod
        def of(cls, data):
                return cls(iter([data] if data else []), len(data))


class _Response:
        def __init__(self, status, body=b"", content_type="application/json", headers=None):
                self.status = status
                self.body = body if isinstance(body, _Body) else _Body.of(body)
                self.content_type = content_type
                self.headers = dict(headers or {})


def _json_response(status, obj, headers=None):
        return _Response(status, json.dumps(obj).encode(), headers=headers)


def _resplit(pieces, sizes, rng, chunk_max):
        """Re-cut a stream of pieces into pieces of the given sizes."""
        if sizes == "random":
                next_size = lambda: rng.randint(1, chunk_max)
        else:
                cyc = itertools.cycle(sizes)
                next_size = lambda: next(cyc)
        buf = bytearray()
        n = next_size()
        for p in pieces:
                buf += p
                while len(buf) >= n:
                        yield bytes(buf[:n])
                        del buf[:n]
                        n = next_size()
        if buf:
                yield bytes(buf)


class _SSE:
        """Formats SSE events according to the stream options."""

        def __init__(self, o, separators):
                self.o = o
                self.separators = separators
                if o.get("mixed_eol"):
                        self._eols = itertools.cycle(["\n", "\r\n", "\r"])
                        self._prev = None
                        self.eol = None
                else:
                        self.eol = "\r\n" if o.get("crlf") else "\r" if o.get("cr") else "\n"

        def _nl(self):
                if self.eol is not None:
                        return self.eol
                eol = next(self._eols)
                if eol == "\n" and self._prev == "\r":
                        # "\r" then "\n" would read as one CRLF and lose a line
                        eol = next(self._eols)
                self._prev = eol
                return eol

        def dumps(self, obj):
                return json.dumps(obj, separators=self.separators, ensure_ascii=bool(self.o.get("ascii")))

        def event(self, data, name=None, extra_lines=()):
                o = self.o
                lines = []
                if o.get("comments"):
                        lines.append(": keep-alive")
                lines.extend(extra_lines)
                if name is not None:
                        lines.append("event: " + name)
                if not isinstance(data, str):
                        data = self.dumps(data)
                sep = "data:" if o.get("no_space") else "data: "
                if o.get("multiline_data") and data.startswith("{") and len(data) > 1:
                        lines.append(sep + data[0])
                        lines.append(sep + data[1:])
                else:
                        lines.append(sep + data)
                return ("".join(line + self._nl() for line in lines) + self._nl()).encode()

        def comment(self, text="keep-alive"):
                return (": " + text + self._nl() + self._nl()).encode()

        def preamble(self):
                """What precedes the first event: a BOM when asked for."""
                return b"\xef\xbb\xbf" if self.o.get("bom") else b""


class _Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        server_version = "fakegw/1.0"
        sys_version = ""

        # --- plumbing ---------------------------------------------------------------

        def setup(self):
                super().setup()
                try:
                        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                except OSError:
                        pass
                self.gw = self.server.gw
                self.n_served = 0  # requests this connection has carried
                self.gw._track(self.connection, True)

        def finish(self):
                try:
                        super().finish()
                except OSError:
                        pass
                self.gw._track(self.connection, False)

        def handle_one_request(self):
                try:
                        super().handle_one_request()
                except (ConnectionError, OSError, _Stopping):
                        self.close_connection = True

        def log_message(self, fmt, *args):
                if self.gw.verbose:
                        sys.stderr.write("fakegw: %s\n" % (fmt % args))

        def do_GET(self):
                self._dispatch()

        do_POST = do_PUT = do_DELETE = do_PATCH = do_OPTIONS = do_HEAD = do_GET

        def _write(self, data):
                try:
                        self.wfile.write(data)
                except (BrokenPipeError, ConnectionResetError, ConnectionAbortedError) as e:
                        raise _ClientGone() from e

        def _wait(self, seconds):
                """Sleep, noticing when the client goes away or the server stops."""
                deadline = time.monotonic() + seconds
                peekable = True
                while True:
                        if self.gw._stopping.is_set():
                                raise _Stopping()
                        remaining = deadline - time.monotonic()
                        if remaining <= 0:
                                return
                        step = min(remaining, 0.05)
                        if not peekable:
                                time.sleep(step)
                                continue
                        try:
                                r, _, _ = select.select([self.connection], [], [], step)
                        except (OSError, ValueError):
                                raise _ClientGone()
                        if r:
                                try:
                                        data = self.connection.recv(1, socket.MSG_PEEK)
                                except (ConnectionError, OSError):
                                        raise _ClientGone()
                                if not data:
                                        raise _ClientGone()
                                # A pipelined next request: stop polling for EOF.
                                peekable = False

        def _read_body(self):
                te = (self.headers.get("Transfer-Encoding") or "").lower()
                if "chunked" in te:
                        out = bytearray()
                        while True:
                                line = self.rfile.readline(65537)
                                size = int(line.split(b";")[0].strip() or b"0", 16)
                                if size == 0:
                                        while self.rfile.readline(65537) not in (b"\r\n", b"\n", b""):
                                                pass
                                        return bytes(out)
                                out += self.rfile.read(size)
                                self.rfile.readline(65537)
                                if len(out) > MAX_REQUEST_BODY:
                                        raise ValueError("request body too large")
                n = int(self.headers.get("Content-Length") or 0)
                if n > MAX_REQUEST_BODY:
                        raise ValueError("request body too large")
                return self.rfile.read(n) if n > 0 else b""

        # --- dispatch ----------------------------------------------------------------

        def _dispatch(self):
                split = urllib.parse.urlsplit(self.path)
                path, query = split.path or "/", split.query
                try:
                        body = self._read_body()
                except ValueError:
                        self.close_connection = True
                        self._send_simple(413, error_body("other", 413))
                        return
                if path.startswith("/_control/"):
                        self._control(path, body)
                        return
                path_tier = None
                for t in ("zdr", "private"):
                        if path == "/" + t or path.startswith("/" + t + "/"):
                                path_tier, path = t, path[len(t) + 1:] or "/"
                                break

                endpoint, route = self.gw._classify(self.command, path)
                headers = {k.lower(): v for k, v in self.headers.items()}
                rec = Request(self.command, path, query, headers, body, endpoint)
                rec.path_tier = path_tier
                rec.reused = self.n_served > 0
                self.n_served += 1
                fault = self.gw._record(rec)
                ex = {"rec": rec, "sent": 0}
                try:
                        self._serve(rec, route, fault, ex)
                except _ClientGone:
                        self.gw._disconnected(endpoint, ex["sent"])
                        self.close_connection = True
                except _Stopping:
                        self.close_connection = True
                if self.gw.verbose:
                        sys.stderr.write("fakegw: %s %s -> %s (%s)%s\n" % (
                                self.command, path, rec.status, endpoint,
                                " " + repr(fault) if fault else ""))

        def _serve(self, rec, route, fault, ex):
                gw = self.gw
                if fault is not None and (fault.close or fault.reset):
                        if fault.reset:
                                # linger 0 and no FIN first: close() then sends a RST
                                self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER,
                                                           struct.pack("ii", 1, 0))
                                self.server.abort_requests.add(self.connection)
                        self.close_connection = True
                        rec.status = 0
                        return
                if fault is not None and fault.delay:
                        self._wait(fault.delay)
                if fault is not None and fault.hanging:
                        self._wait(float("inf"))
                        return

                stream_opts = {}
                if rec.endpoint in ("chat", "messages"):
                        stream_opts.update(gw.stream_options or {})
                if fault is not None:
                        stream_opts.update(fault.stream)
                bad = set(stream_opts) - STREAM_KEYS
                if bad:
                        resp = _json_response(500, {"error": {"message": "fakegw: unknown stream option(s) %s" % sorted(bad),
                                                              "type": "fakegw_error", "param": None, "code": None}})
                else:
                        resp = self._make_response(rec, route, fault, stream_opts)
                for k, v in rec.extra_headers.items():
                        resp.headers.setdefault(k, v)

                tx = {k: stream_opts[k] for k in TRANSPORT_KEYS if k in stream_opts}
                if fault is not None:
                        tx.update(fault.transport())
                        if fault.content_type:
                                resp.content_type = fault.content_type
                        resp.headers.update(fault.headers)
                        if fault.chunked:
                                resp.body.length = None
                self._transmit(rec, resp, tx, ex)

        def _make_response(self, rec, route, fault, o):
                ep = rec.endpoint
                if fault is not None and fault.kind:
                        return self._kind_response(rec, route, fault, o)
                if fault is not None and fault.body is not None:
                        return _Response(fault.status or 200, fault.body)
                if fault is not None and fault.status is not None and fault.status >= 400:
                        return _Response(fault.status, error_body(ep, fault.status))
                resp = route(rec, o)
                if fault is not None and fault.status is not None:
                        resp.status = fault.status
                return resp

        def _kind_response(self, rec, route, fault, o):
                ep, kind, args = rec.endpoint, fault.kind, fault.kind_args
                status = fault.status if fault.status is not None else 200
                if kind == "http":
                        return _Response(status, error_body(ep, status, args.get("message"), args.get("type")))
                if kind == "html":
                        reason = REASONS.get(status, "Error")
                        page = ("<html>\r\n<head><title>%d %s</title></head>\r\n<body>\r\n"
                                "<center><h1>%d %s</h1></center>\r\n<hr><center>nginx</center>\r\n"
                                "</body>\r\n</html>\r\n" % (status, reason, status, reason))
                        return _Response(status, page.encode(), content_type="text/html")
                if kind == "malformed":
                        return self.gw._malformed(rec, route, o, status)
                if kind == "wrong_types":
                        return self.gw._wrong_types(rec, status, args["variant"])
                if kind == "huge":
                        return self.gw._huge(rec, status, args["nbytes"])
                raise ValueError(kind)

        # --- sending -----------------------------------------------------------------

        def _send_simple(self, status, data, content_type="application/json"):
                self.send_response(status, REASONS.get(status))
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                if self.command != "HEAD":
                        self.wfile.write(data)

        def _transmit(self, rec, resp, tx, ex):
                body = resp.body
                chunked = body.length is None
                self.send_response_only(resp.status, REASONS.get(resp.status))
                self.send_header("Date", self.date_time_string())
                if resp.content_type:
                        self.send_header("Content-Type", resp.content_type)
                if body.stream:
                        self.send_header("Cache-Control", "no-cache")
                if chunked:
                        self.send_header("Transfer-Encoding", "chunked")
                else:
                        self.send_header("Content-Length", str(body.length))
                self.send_header("x-request-id", "req_%d" % id(rec))
                for k, v in resp.headers.items():
                        self.send_header(k, str(v))
                rec.status = resp.status
                try:
                        self.end_headers()
                except (BrokenPipeError, ConnectionResetError, ConnectionAbortedError) as e:
                        raise _ClientGone() from e
                if self.command == "HEAD":
                        return

                pieces = body.pieces
                drip = tx.get("drip")
                sizes = tx.get("chunk_sizes")
                if sizes:
                        rng = random.Random(tx.get("seed") or 0)
                        pieces = _resplit(pieces, sizes, rng, int(tx.get("chunk_max") or 64))
                elif drip and not body.stream:
                        pieces = _resplit(pieces, [PLAIN_DRIP_PIECE], None, 0)
                drop_after = tx.get("drop_after")
                first = True
                for piece in pieces:
                        if not piece:
                                continue
                        if drip and not first:
                                self._wait(drip)
                        first = False
                        if drop_after is not None and ex["sent"] + len(piece) >= drop_after:
                                piece = piece[:max(0, drop_after - ex["sent"])]
                                if piece:
                                        self._write((b"%x\r\n" % len(piece)) + piece + b"\r\n" if chunked else piece)
                                        ex["sent"] += len(piece)
                                self._drop()
                                return
                        self._write((b"%x\r\n" % len(piece)) + piece + b"\r\n" if chunked else piece)
                        ex["sent"] += len(piece)
                        if self.gw._stopping.is_set():
                                raise _Stopping()
                if drop_after is not None:
                        self._drop()
                        return
                if chunked:
                        self._write(b"0\r\n\r\n")

        def _drop(self):
                self.close_connection = True
                try:
                        self.wfile.flush()
                        self.connection.shutdown(socket.SHUT_RDWR)
                except OSError:
                        pass

        # --- control -----------------------------------------------------------------

        def _control(self, path, body):
                gw = self.gw
                try:
                        data = json.loads(body) if body.strip() else {}
                except ValueError:
                        self._send_simple(400, json.dumps({"error": "invalid JSON"}).encode())
                        return
                cmd = path[len("/_control/"):].rstrip("/")
                m = self.command
                try:
                        if cmd == "reset" and m == "POST":
                                gw.reset()
                                out = {"ok": True}
                        elif cmd == "state" and m == "GET":
                                out = gw._state_dict()
                        elif cmd == "state" and m == "POST":
                                gw._set_state(data)
                                out = gw._state_dict()
                        elif cmd == "fault" and m == "POST":
                                data = dict(data)
                                endpoint = data.pop("endpoint", "*")
                                gw.push_fault(endpoint, Fault.from_dict(data))
                                out = {"ok": True}
                        elif cmd == "requests" and m == "GET":
                                out = [r.to_dict() for r in gw.requests]
                        elif cmd == "clear_requests" and m == "POST":
                                gw.clear_requests()
                                out = {"ok": True}
                        elif cmd == "disconnects" and m == "GET":
                                out = [d._asdict() for d in gw.disconnects]
                        else:
                                self._send_simple(404, json.dumps({"error": "unknown control " + cmd}).encode())
                                return
                except (TypeError, ValueError, KeyError) as e:
                        self._send_simple(400, json.dumps({"error": str(e)}).encode())
                        return
                self._send_simple(200, json.dumps(out).encode())


class _Server(ThreadingHTTPServer):
        daemon_threads = True
        allow_reuse_address = True
        request_queue_size = 512

        def __init__(self, *args, **kw):
                self.abort_requests = set()
                super().__init__(*args, **kw)

        def shutdown_request(self, request):
                if request in self.abort_requests:
                        self.abort_requests.discard(request)
                        self.close_request(request)
                        return
                super().shutdown_request(request)

        def handle_error(self, request, client_address):
                exc = sys.exc_info()[1]
                if isinstance(exc, (ConnectionError, _Stopping, _ClientGone)):
                        return
                super().handle_error(request, client_address)


class _TLSServer(_Server):
        """HTTPS: the TLS handshake runs in the connection's own thread (never in
        the accept loop, so a client that stalls it cannot block the others)."""
        ssl_context = None

        def finish_request(self, request, client_address):
                try:
                        request.settimeout(10)
                        conn = self.ssl_context.wrap_socket(request, server_side=True)
                        conn.settimeout(None)
                except (ssl.SSLError, OSError):
                        with self.gw._lock:
                                self.gw.tls_failures += 1
                        return
                with self.gw._lock:
                        self.gw.tls_connections += 1
                try:
                        super().finish_request(conn, client_address)
                finally:
                        try:
                                conn.close()
                        except OSError:
                                pass


def _tls_context(certfile, keyfile):
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(certfile, keyfile)
        ctx.set_alpn_protocols(["http/1.1"])
        return ctx


class FakeGateway:
        """The fake gateway; see the module docstring."""

        DEFAULT_KEY = "bk_test_llm_0123456789"
        DEFAULT_API_KEY = "bk_test_api_0123456789"

        def __init__(self, port=0, verbose=False):
                self._lock = threading.Lock()
                self._port_wanted = port
                self._server = None
                self._thread = None
                self._stopping = threading.Event()
                self._conns = set()
                self.verbose = verbose
                self._tx_counter = itertools.count(1)
                self._id_counter = itertools.count(1)
                self.reset()

        # --- lifecycle ---------------------------------------------------------------

        def start(self):
                self._stopping.clear()
                tls = getattr(self, "_tls", None)
                self._server = (_TLSServer if tls else _Server)(("127.0.0.1", self._port_wanted), _Handler)
                self._server.gw = self
                self._server.ssl_context = tls
                self._thread = threading.Thread(target=self._server.serve_forever,
                                                kwargs={"poll_interval": 0.05},
                                                name="fakegw", daemon=True)
                self._thread.start()
                return self

        def use_tls(self, certfile, keyfile):
                """Serve HTTPS with this certificate from the next start() on."""
                self._tls = _tls_context(certfile, keyfile)
                self.tls_connections = 0
                self.tls_failures = 0
                return self

        def stop(self):
                if self._server is None:
                        return
                self._stopping.set()
                self._server.shutdown()
                with self._lock:
                        conns = list(self._conns)
                for c in conns:
                        try:
                                c.shutdown(socket.SHUT_RDWR)
                        except OSError:
                                pass
                self._server.server_close()
                self._thread.join(5)
                self._server = None

        def __enter__(self):
                if self._server is None:
                        self.start()
                return self

        def __exit__(self, *exc):
                self.stop()

        @property
        def port(self):
                return self._server.server_address[1]

        @property
        def url(self):
                return "%s://127.0.0.1:%d" % ("https" if getattr(self, "_tls", None) else "http", self.port)

        def _track(self, conn, add):
                with self._lock:
                        if add:
                                self._conns.add(conn)
                        else:
                                self._conns.discard(conn)

        # --- state -------------------------------------------------------------------

        def reset(self):
                with self._lock:
                        self.llm_keys = {self.DEFAULT_KEY}
                        self.api_keys = {self.DEFAULT_API_KEY}
                        self.models = copy.deepcopy(DEFAULT_MODELS)
                        self.balance = 12.5
                        self.reply_text = "Hello, world!"
                        self.usage = None
                        self.stream_options = {}
                        self.auto_topup = copy.deepcopy(DEFAULT_AUTO_TOPUP)
                        self.account_privacy = "standard"
                        self.deprecated = {}
                        self.retired = {}
                        self.daily_budget = None
                        self.image_models = {"gpt-image-2"}
                        self.image_bytes = TINY_PNG
                        self._faults = collections.OrderedDict()
                        self._requests = []
                        self._disconnects = []

        def _state_dict(self):
                return {"balance": self.balance, "models": self.models, "reply_text": self.reply_text,
                        "stream_options": self.stream_options, "llm_keys": sorted(self.llm_keys),
                        "api_keys": sorted(self.api_keys), "usage": self.usage,
                        "auto_topup": self.auto_topup, "account_privacy": self.account_privacy,
                        "deprecated": self.deprecated, "retired": self.retired,
                        "daily_budget": self.daily_budget, "image_models": sorted(self.image_models),
                        "url": self.url if self._server else None}

        def _set_state(self, d):
                allowed = {"balance", "models", "reply_text", "stream_options", "llm_keys",
                           "api_keys", "usage", "auto_topup", "account_privacy", "deprecated",
                           "retired", "daily_budget", "image_models"}
                bad = set(d) - allowed
                if bad:
                        raise ValueError("unknown state field(s): %s" % ", ".join(sorted(bad)))
                if "stream_options" in d:
                        so = d["stream_options"] or {}
                        if set(so) - STREAM_KEYS:
                                raise ValueError("unknown stream option(s): %s" % sorted(set(so) - STREAM_KEYS))
                for k, v in d.items():
                        if k in ("llm_keys", "api_keys", "image_models"):
                                v = set(v or [])
                        elif k == "stream_options":
                                v = dict(v or {})
                        setattr(self, k, v)

        @property
        def requests(self):
                with self._lock:
                        return list(self._requests)

        def requests_for(self, endpoint):
                return [r for r in self.requests if r.endpoint == endpoint]

        def clear_requests(self):
                with self._lock:
                        self._requests = []

        @property
        def disconnects(self):
                with self._lock:
                        return list(self._disconnects)

        def push_fault(self, endpoint, fault):
                if not isinstance(fault, Fault):
                        raise TypeError("push_fault needs a Fault")
                with self._lock:
                        self._faults.setdefault(endpoint, []).append([fault, fault.times])

        def pending_faults(self, endpoint=None):
                with self._lock:
                        return [f for ep, q in self._faults.items() if endpoint in (None, ep) for f, _ in q]

        def wait_for(self, predicate, timeout=5.0, interval=0.01):
                """Poll predicate() until it is true; returns its last value."""
                deadline = time.monotonic() + timeout
                while True:
                        v = predicate()
                        if v or time.monotonic() >= deadline:
                                return v
                        time.sleep(interval)

        def _record(self, rec):
                """Store the request and take the fault that applies to it, if any."""
                with self._lock:
                        self._requests.append(rec)
                        for ep in (rec.endpoint, "*"):
                                q = self._faults.get(ep)
                                if not q:
                                        continue
                                for i, entry in enumerate(q):
                                        fault, left = entry
                                        if not fault.matches(rec):
                                                continue
                                        if left is not None:
                                                entry[1] = left - 1
                                                if entry[1] <= 0:
                                                        del q[i]
                                        rec.fault = fault
                                        return fault
                return None

        def _disconnected(self, endpoint, sent):
                with self._lock:
                        self._disconnects.append(Disconnect(endpoint, sent))

        # --- routing -----------------------------------------------------------------

        def _classify(self, method, path):
                p = path.rstrip("/") or "/"
                # The gateway's privacy prefixes route like the plain paths.
                for prefix in ("/zdr", "/private"):
                        if p == prefix or p.startswith(prefix + "/"):
                                p = p[len(prefix):] or "/"
                                break
                if p == "/v1":
                        p = "/"
                elif p.startswith("/v1/"):
                        p = p[3:]

                def allow(endpoint, methods, fn):
                        if method in methods:
                                return endpoint, fn
                        return endpoint, lambda rec, o: self._method_not_allowed(rec, methods)

                if p == "/models":
                        return allow("models", ("GET",), self._models)
                if p.startswith("/models/"):
                        return allow("models", ("GET",), lambda rec, o: self._model_one(rec, p[8:]))
                if p == "/credits":
                        return allow("credits", ("GET",), self._credits)
                if p == "/chat/completions":
                        return allow("chat", ("POST",), self._chat)
                if p == "/messages":
                        return allow("messages", ("POST",), self._messages)
                if p == "/images/generations":
                        return allow("images", ("POST",), self._images)
                if p == "/messages/count_tokens":
                        return allow("count_tokens", ("POST",), self._count_tokens)
                if p == "/images/generations":
                        return allow("images", ("POST",), self._images)
                if p == "/llm/credits/topup":
                        return allow("topup", ("POST",), self._topup)
                if p == "/llm/credits/auto-topup":
                        return allow("auto-topup", ("GET", "POST"), self._auto_topup)
                if p == "/":
                        return allow("other", ("GET", "HEAD"),
                                     lambda rec, o: _Response(200, b"fakegw: Bankr LLM gateway imitation\n",
                                                              content_type="text/plain"))
                return "other", lambda rec, o: _Response(404, error_body("other", 404, "Not found: %s" % path))

        def _images(self, rec, o):
                # A 1x1 PNG per requested image, OpenAI's b64_json shape.
                png = ("iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk"
                       "YPhfDwAChwGA60e6kgAAAABJRU5ErkJggg==")
                n = 1
                if isinstance(rec.json, dict) and isinstance(rec.json.get("n"), int):
                        n = max(1, min(4, rec.json["n"]))
                return _json_response(200, {"created": int(time.time()), "data": [{"b64_json": png}] * n})

        def _method_not_allowed(self, rec, methods):
                return _Response(405, error_body(rec.endpoint, 405, "Method %s not allowed" % rec.method),
                                 headers={"Allow": ", ".join(methods)})

        # --- auth --------------------------------------------------------------------

        @staticmethod
        def _bearer(rec):
                a = rec.headers.get("authorization", "")
                if a[:7].lower() == "bearer ":
                        return a[7:].strip()
                return None

        def _auth(self, rec, header, bearer):
                """Returns None when authorized, else the error response."""
                key = rec.headers.get(header) if header else None
                if key is None and bearer:
                        key = self._bearer(rec)
                keys = self.api_keys if rec.endpoint in ("topup", "auto-topup") else self.llm_keys
                if key is None:
                        msg = "Missing API key"
                elif key in keys:
                        return None
                else:
                        msg = "Invalid API key"
                return _Response(401, error_body(rec.endpoint, 401, msg))

        # --- models and credits ------------------------------------------------------

        def _models(self, rec, o):
                err = self._auth(rec, "x-api-key", True)
                if err:
                        return err
                return _json_response(200, {"object": "list", "data": self.models})

        def _model_one(self, rec, mid):
                err = self._auth(rec, "x-api-key", True)
                if err:
                        return err
                for m in self.models:
                        if m.get("id") == mid:
                                return _json_response(200, m)
                return _Response(404, error_body("models", 404, "The model `%s` does not exist" % mid))

        def _credits(self, rec, o):
                err = self._auth(rec, "x-api-key", True)
                if err:
                        return err
                if self.balance is None:
                        return _Response(402, error_body("credits", 402,
                                                         "Insufficient credits: your LLM gateway balance is exhausted"))
                return _json_response(200, {"balanceUsd": self.balance})

        # --- chat ----------------------------------------------------------------------

        def _known_model(self, mid):
                if not isinstance(self.models, list):
                        return True
                return any(isinstance(m, dict) and m.get("id") == mid for m in self.models)

        def _chat_common(self, rec, fmt):
                """Validation shared by both formats: returns (error response, body)."""
                ep = rec.endpoint
                j = rec.json
                if not isinstance(j, dict):
                        return _Response(400, error_body(ep, 400, "Request body must be a JSON object")), None
                model = j.get("model")
                if not isinstance(model, str) or not model:
                        return _Response(400, error_body(ep, 400, "model: field required")), None
                msgs = j.get("messages")
                if not isinstance(msgs, list) or not msgs:
                        return _Response(400, error_body(ep, 400, "messages: at least one message is required")), None
                roles = ({"system", "user", "assistant", "tool", "developer", "function"} if fmt == "openai"
                         else {"user", "assistant", "system"})
                for i, m in enumerate(msgs):
                        if not isinstance(m, dict) or m.get("role") not in roles:
                                return _Response(400, error_body(ep, 400, "messages.%d.role: invalid role" % i)), None
                if fmt == "anthropic":
                        mt = j.get("max_tokens")
                        if "max_tokens" not in j:
                                return _Response(400, error_body(ep, 400, "max_tokens: Field required")), None
                        if not isinstance(mt, int) or isinstance(mt, bool) or mt < 1:
                                return _Response(400, error_body(ep, 400, "max_tokens: Input should be a valid positive integer")), None
                err, model = self._privacy(rec, j, model)
                if err:
                        return err, None
                if not self._known_model(model):
                        msg = ("model: %s" % model) if fmt == "anthropic" else \
                              "The model `%s` does not exist or you do not have access to it." % model
                        return _Response(404, error_body(ep, 404, msg)), None
                err = self._model_policy(rec, model)
                if err:
                        return err, None
                err = self._spend_check(rec)
                if err:
                        return err, None
                return None, j

        def _model_dict(self, mid):
                if isinstance(self.models, list):
                        for m in self.models:
                                if isinstance(m, dict) and m.get("id") == mid:
                                        return m
                return {}

        def _privacy(self, rec, j, model):
                """The effective tier (X-Privacy-Tier), or the error; the model without its suffix."""
                ep = rec.endpoint
                asked = []
                v = j.get("privacy")
                if v is not None:
                        if not isinstance(v, str) or v.lower() not in TIERS:
                                return _Response(400, error_body(ep, 400, "privacy: must be standard, zdr or private",
                                                                 "invalid_privacy")), model
                        asked.append(v.lower())
                low = model.lower()
                for t in ("zdr", "private"):
                        if low.endswith(":" + t) and len(model) > len(t) + 1:
                                asked.append(t)
                                model = model[:-(len(t) + 1)]
                                break
                if rec.path_tier and any(a != rec.path_tier for a in asked):
                        return _Response(400, error_body(ep, 400, "The request names another privacy tier than the "
                                                         "/%s endpoint it was sent to" % rec.path_tier,
                                                         "privacy_conflict")), model
                tier = max([self.account_privacy or "standard", rec.path_tier or "standard"] + asked, key=TIERS.index)
                rec.extra_headers["X-Privacy-Tier"] = tier
                rec.privacy_tier = tier
                rec.bare_model = model
                if ep == "images" or not self._known_model(model):
                        return None, model
                m = self._model_dict(model)
                if tier == "zdr" and not (m.get("zdr") or m.get("private")):
                        return _Response(422, error_body(ep, 422, "No provider can serve `%s` with zero data retention"
                                                         % model, "zdr_unavailable")), model
                if tier == "private" and not m.get("private"):
                        return _Response(422, error_body(ep, 422, "No confidential (TEE) provider serves `%s`" % model)), model
                return None, model

        def _model_policy(self, rec, model):
                """Deprecation headers, or the 410 of a retired model."""
                if model in (self.retired or {}):
                        repl = self.retired[model]
                        if repl:
                                rec.extra_headers["X-Model-Replacement"] = repl
                        return _Response(410, error_body(rec.endpoint, 410, "The model `%s` has been retired%s" % (
                                model, "; use `%s`" % repl if repl else ""), "model_retired"))
                if model in (self.deprecated or {}):
                        rec.extra_headers["X-Model-Deprecated"] = "true"
                        if self.deprecated[model]:
                                rec.extra_headers["X-Model-Replacement"] = self.deprecated[model]
                return None

        def _spend_check(self, rec):
                ep = rec.endpoint
                if self.daily_budget is not None:
                        db = self.daily_budget if isinstance(self.daily_budget, dict) else {}
                        if db.get("retry_after") is not None:
                                rec.extra_headers["Retry-After"] = str(db["retry_after"])
                        if _error_format(ep) == "anthropic":
                                obj = {"type": "error", "error": {"type": "daily_budget_exceeded",
                                                                  "message": "Daily spend budget exceeded"}}
                        else:
                                obj = {"error": {"message": "Daily spend budget exceeded", "type": "daily_budget_exceeded",
                                                 "param": None, "code": "daily_budget_exceeded"}}
                        if db.get("resets_at") is not None:
                                obj["error"]["resets_at"] = db["resets_at"]
                        return _Response(402, json.dumps(obj).encode())
                if self.balance is None or self.balance <= 0:
                        return _Response(402, error_body(ep, 402, "Insufficient credits: top up your Bankr LLM balance",
                                                         None if _error_format(ep) == "anthropic" else "insufficient_credits"))
                return None

        def _images(self, rec, o):
                err = self._auth(rec, None, True)
                if err:
                        return err
                j = rec.json
                if not isinstance(j, dict):
                        return _Response(400, error_body("images", 400, "Request body must be a JSON object"))
                model, prompt, n = j.get("model"), j.get("prompt"), j.get("n", 1)
                if not isinstance(model, str) or not model:
                        return _Response(400, error_body("images", 400, "model: field required"))
                if not isinstance(prompt, str) or not prompt.strip():
                        return _Response(400, error_body("images", 400, "prompt: field required"))
                if not isinstance(n, int) or isinstance(n, bool) or not 1 <= n <= 4:
                        return _Response(400, error_body("images", 400, "n: must be from 1 to 4"))
                if j.get("stream"):
                        return _Response(400, error_body("images", 400, "stream: streaming is not supported"))
                err, model = self._privacy(rec, j, model)
                if err:
                        return err
                known = model in (self.image_models or set()) or \
                        "image" in (self._model_dict(model).get("output_modalities") or [])
                if not known:
                        return _Response(404, error_body("images", 404, "The model `%s` does not exist or cannot "
                                                         "generate images" % model, "model_not_found"))
                err = self._model_policy(rec, model) or self._spend_check(rec)
                if err:
                        return err
                b = base64.b64encode(self.image_bytes).decode()
                return _json_response(200, {"created": int(time.time()),
                                            "data": [{"b64_json": b} for _ in range(n)],
                                            "usage": {"input_tokens": len(prompt.split()), "output_tokens": 0,
                                                      "images": n}})

        def _plan(self, j, o, fmt):
                """Decide the answer: deltas, stop reason, usage."""
                if o.get("fast_deltas"):
                        n = int(o["fast_deltas"])
                        return {"fast": n, "fast_text": o.get("fast_text", "tok "), "deltas": None,
                                "stop": "end_turn", "stop_sequence": None,
                                "usage": self._usage(j, n)}
                if o.get("deltas") is not None:
                        deltas = [str(d) for d in o["deltas"]]
                else:
                        if "reply" in o:
                                text = o["reply"]
                        elif o.get("echo"):
                                last = ""
                                for m in j.get("messages", []):
                                        if isinstance(m, dict) and m.get("role") == "user":
                                                last = _text_of(m.get("content"))
                                text = "You said: " + last
                        else:
                                text = self.reply_text
                        deltas = split_deltas(text)
                stop, stop_seq = "end_turn", None
                seqs = j.get("stop_sequences") if fmt == "anthropic" else j.get("stop")
                if isinstance(seqs, str):
                        seqs = [seqs]
                if isinstance(seqs, list) and seqs:
                        text = "".join(deltas)
                        cut = None
                        for s in seqs:
                                if isinstance(s, str) and s:
                                        i = text.find(s)
                                        if i >= 0 and (cut is None or i < cut[0]):
                                                cut = (i, s)
                        if cut is not None:
                                deltas = split_deltas(text[:cut[0]])
                                stop, stop_seq = "stop_sequence", cut[1]
                mt = j.get("max_completion_tokens", j.get("max_tokens"))
                if isinstance(mt, int) and not isinstance(mt, bool) and 0 < mt < len(deltas):
                        deltas = deltas[:mt]
                        stop, stop_seq = "max_tokens", None
                return {"fast": None, "deltas": deltas, "stop": stop, "stop_sequence": stop_seq,
                        "usage": self._usage(j, len(deltas))}

        def _usage(self, j, n_out):
                words = _count_words(j.get("system"))
                for m in j.get("messages", []):
                        if isinstance(m, dict):
                                words += _count_words(m.get("content"))
                u = {"input": max(1, words), "output": n_out, "cache_read": 0, "cache_write": 0}
                aliases = {"input_tokens": "input", "prompt_tokens": "input", "output_tokens": "output",
                           "completion_tokens": "output", "cache_read_input_tokens": "cache_read",
                           "cached_tokens": "cache_read", "cache_read_tokens": "cache_read",
                           "cache_creation_input_tokens": "cache_write", "cache_write_tokens": "cache_write"}
                for k, v in (self.usage or {}).items():
                        u[aliases.get(k, k)] = int(v)
                return u

        @staticmethod
        def _openai_usage(u):
                d = {"prompt_tokens": u["input"] + u["cache_read"] + u["cache_write"],
                     "completion_tokens": u["output"],
                     "total_tokens": u["input"] + u["cache_read"] + u["cache_write"] + u["output"],
                     "prompt_tokens_details": {"cached_tokens": u["cache_read"]}}
                if u["cache_write"]:
                        d["prompt_tokens_details"]["cache_write_tokens"] = u["cache_write"]
                return d

        @staticmethod
        def _finish_reason(stop):
                return {"end_turn": "stop", "stop_sequence": "stop", "max_tokens": "length"}.get(stop, stop)

        def _chat(self, rec, o):
                err = self._auth(rec, None, True)
                if err:
                        return err
                err, j = self._chat_common(rec, "openai")
                if err:
                        return err
                plan = self._plan(j, o, "openai")
                model = j["model"]
                cid = "chatcmpl-fake%06d" % next(self._id_counter)
                created = int(time.time())
                finish = o.get("finish_reason") or self._finish_reason(plan["stop"])
                if not j.get("stream"):
                        text = (plan["fast_text"] * plan["fast"]) if plan["fast"] else "".join(plan["deltas"])
                        return _json_response(200, {
                                "id": cid, "object": "chat.completion", "created": created, "model": model,
                                "choices": [{"index": 0, "message": {"role": "assistant", "content": text,
                                                                     "refusal": None},
                                             "logprobs": None, "finish_reason": finish}],
                                "usage": self._openai_usage(plan["usage"])})
                so = j.get("stream_options")
                include_usage = isinstance(so, dict) and so.get("include_usage") is True
                gen = self._openai_events(o, plan, cid, created, model, finish, include_usage)
                return _Response(200, _Body(gen, None, stream=True),
                                 content_type="text/event-stream; charset=utf-8")

        def _openai_events(self, o, plan, cid, created, model, finish, include_usage):
                sse = _SSE(o, (",", ":"))
                unknown = o.get("unknown_events")

                def chunk(choices, usage=None):
                        d = {"id": cid, "object": "chat.completion.chunk", "created": created, "model": model}
                        if unknown:
                                d["service_tier"] = "default"
                                d["system_fingerprint"] = "fp_fake0001"
                        d["choices"] = choices
                        if include_usage:
                                d["usage"] = usage
                        if unknown:
                                d["obfuscation"] = "x7Qp"
                        return d

                def delta_choice(delta, fr=None):
                        c = {"index": 0, "delta": delta}
                        if unknown:
                                c["logprobs"] = None
                        c["finish_reason"] = fr
                        return c

                extra = ("id: 1", "retry: 3000") if unknown else ()
                if sse.preamble():
                        yield sse.preamble()
                if o.get("role_chunk", True):
                        yield sse.event(chunk([delta_choice({"role": "assistant", "content": ""})]),
                                        extra_lines=extra)
                if unknown:
                        yield sse.event(chunk([delta_choice({})]))
                        yield sse.event({"type": "fakegw.future_event", "detail": {"x": 1}}, name="future")
                error_after = o.get("error_after")

                def error_event():
                        return sse.event({"error": {"message": o.get("error_message", "The upstream provider failed mid-stream"),
                                                    "type": o.get("error_type", "server_error"),
                                                    "param": None, "code": None}})

                if plan["fast"]:
                        unit = sse.event(chunk([delta_choice({"content": plan["fast_text"]})]))
                        yield from self._fast_blocks(unit, plan["fast"], error_after, error_event)
                        if error_after is not None:
                                return
                else:
                        for i, t in enumerate(plan["deltas"]):
                                if error_after is not None and i == error_after:
                                        yield error_event()
                                        return
                                yield sse.event(chunk([delta_choice({"content": t})]))
                                if o.get("comments"):
                                        yield sse.comment()
                        if error_after is not None and error_after >= len(plan["deltas"]):
                                yield error_event()
                                return
                yield sse.event(chunk([delta_choice({}, finish)]))
                if include_usage:
                        yield sse.event(chunk([], self._openai_usage(plan["usage"])))
                if not o.get("no_terminator"):
                        yield sse.event("[DONE]")

        @staticmethod
        def _fast_blocks(unit, n, error_after, error_event):
                limit = n if error_after is None else min(n, error_after)
                per = max(1, FAST_BLOCK // len(unit))
                block = unit * per
                full, rest = divmod(limit, per)
                for _ in range(full):
                        yield block
                if rest:
                        yield unit * rest
                if error_after is not None:
                        yield error_event()

        def _messages(self, rec, o):
                err = self._auth(rec, "x-api-key", True)
                if err:
                        return err
                if not rec.headers.get("anthropic-version"):
                        return _Response(400, error_body("messages", 400, "anthropic-version: header is required"))
                err, j = self._chat_common(rec, "anthropic")
                if err:
                        return err
                plan = self._plan(j, o, "anthropic")
                model = j["model"]
                mid = "msg_fake%06d" % next(self._id_counter)
                stop = o.get("stop_reason") or plan["stop"]
                u = plan["usage"]
                if not j.get("stream"):
                        text = (plan["fast_text"] * plan["fast"]) if plan["fast"] else "".join(plan["deltas"])
                        return _json_response(200, {
                                "id": mid, "type": "message", "role": "assistant", "model": model,
                                "content": [{"type": "text", "text": text}],
                                "stop_reason": stop, "stop_sequence": plan["stop_sequence"],
                                "usage": {"input_tokens": u["input"],
                                          "cache_creation_input_tokens": u["cache_write"],
                                          "cache_read_input_tokens": u["cache_read"],
                                          "output_tokens": u["output"]}})
                gen = self._anthropic_events(o, plan, mid, model, stop)
                return _Response(200, _Body(gen, None, stream=True),
                                 content_type="text/event-stream; charset=utf-8",
                                 headers={"request-id": "req_fake%06d" % next(self._id_counter)})

        def _anthropic_events(self, o, plan, mid, model, stop):
                sse = _SSE(o, (", ", ": "))
                unknown = o.get("unknown_events")
                u = plan["usage"]
                ev = lambda d: sse.event(d, name=d["type"])
                if sse.preamble():
                        yield sse.preamble()
                start = {"type": "message_start", "message": {
                        "id": mid, "type": "message", "role": "assistant", "content": [], "model": model,
                        "stop_reason": None, "stop_sequence": None,
                        "usage": {"input_tokens": u["input"], "cache_creation_input_tokens": u["cache_write"],
                                  "cache_read_input_tokens": u["cache_read"], "output_tokens": 1}}}
                if unknown:
                        start["message"]["container"] = None
                        start["message"]["usage"]["service_tier"] = "standard"
                yield ev(start)
                idx = 0
                if unknown:
                        yield ev({"type": "content_block_start", "index": 0,
                                  "content_block": {"type": "thinking", "thinking": "", "signature": ""}})
                        yield ev({"type": "content_block_delta", "index": 0,
                                  "delta": {"type": "thinking_delta", "thinking": "Let me think."}})
                        yield ev({"type": "content_block_delta", "index": 0,
                                  "delta": {"type": "signature_delta", "signature": "c2lnbmF0dXJl"}})
                        yield ev({"type": "content_block_stop", "index": 0})
                        yield sse.event({"type": "future_event", "payload": {"a": [1, 2]}}, name="future_event")
                        idx = 1
                yield ev({"type": "content_block_start", "index": idx, "content_block": {"type": "text", "text": ""}})
                yield ev({"type": "ping"})
                error_after = o.get("error_after")

                def error_event():
                        return sse.event({"type": "error", "error": {
                                "type": o.get("error_type", "overloaded_error"),
                                "message": o.get("error_message", "Overloaded")}}, name="error")

                def delta(t):
                        d = {"type": "content_block_delta", "index": idx, "delta": {"type": "text_delta", "text": t}}
                        if unknown:
                                d["delta"]["citations"] = None
                        return d

                if plan["fast"]:
                        yield from self._fast_blocks(ev(delta(plan["fast_text"])), plan["fast"], error_after, error_event)
                        if error_after is not None:
                                return
                else:
                        for i, t in enumerate(plan["deltas"]):
                                if error_after is not None and i == error_after:
                                        yield error_event()
                                        return
                                yield ev(delta(t))
                                if o.get("comments"):
                                        yield sse.comment()
                                        yield ev({"type": "ping"})
                        if error_after is not None and error_after >= len(plan["deltas"]):
                                yield error_event()
                                return
                yield ev({"type": "content_block_stop", "index": idx})
                yield ev({"type": "message_delta", "delta": {"stop_reason": stop, "stop_sequence": plan["stop_sequence"]},
                          "usage": {"output_tokens": u["output"]}})
                if not o.get("no_terminator"):
                        yield ev({"type": "message_stop"})

        def _count_tokens(self, rec, o):
                err = self._auth(rec, "x-api-key", True)
                if err:
                        return err
                j = rec.json if isinstance(rec.json, dict) else {}
                return _json_response(200, {"input_tokens": self._usage(j, 0)["input"]})

        # --- agent API -----------------------------------------------------------------

        def _topup(self, rec, o):
                err = self._auth(rec, "x-api-key", False)
                if err:
                        return err
                j = rec.json
                if not isinstance(j, dict):
                        return _Response(400, error_body("topup", 400, "Invalid JSON body"))
                amount = j.get("amountUsd")
                if not isinstance(amount, (int, float)) or isinstance(amount, bool) or not 1 <= amount <= 1000:
                        return _Response(400, error_body("topup", 400, "amountUsd must be a number between 1 and 1000"))
                src = j.get("sourceToken")
                if src is not None and (not isinstance(src, str) or not src):
                        return _Response(400, error_body("topup", 400, "sourceToken must be a non-empty string"))
                with self._lock:
                        self.balance = round((self.balance or 0) + amount, 6)
                        new = self.balance
                tx = "0x" + hashlib.sha256(b"fakegw-tx-%d" % next(self._tx_counter)).hexdigest()
                return _json_response(200, {"creditsGranted": amount, "newBalance": new, "txHash": tx})

        @staticmethod
        def _resolve_token(t):
                if isinstance(t, dict) and isinstance(t.get("address"), str):
                        out = {"address": t["address"], "chain": t.get("chain", "base"),
                               "symbol": t.get("symbol", "?"), "name": t.get("name", "Unknown token"),
                               "decimals": t.get("decimals", 18)}
                        return out
                if isinstance(t, str):
                        if t.upper() in KNOWN_TOKENS:
                                return dict(KNOWN_TOKENS[t.upper()])
                        for tok in KNOWN_TOKENS.values():
                                if tok["address"].lower() == t.lower():
                                        return dict(tok)
                        if re.fullmatch(r"0x[0-9a-fA-F]{40}", t):
                                return {"address": t, "chain": "base", "symbol": "?", "name": "Unknown token",
                                        "decimals": 18}
                return None

        def _auto_topup(self, rec, o):
                err = self._auth(rec, "x-api-key", False)
                if err:
                        return err
                if rec.method == "GET":
                        return _json_response(200, {"config": self.auto_topup})
                j = rec.json
                if not isinstance(j, dict):
                        return _Response(400, error_body("auto-topup", 400, "Invalid JSON body"))
                fields = {k: j[k] for k in ("enabled", "amountUsd", "thresholdUsd", "tokens") if k in j}
                if not fields:
                        return _Response(400, error_body("auto-topup", 400, "No fields to update"))
                num = lambda v: isinstance(v, (int, float)) and not isinstance(v, bool)
                if "enabled" in fields and not isinstance(fields["enabled"], bool):
                        return _Response(400, error_body("auto-topup", 400, "enabled must be a boolean"))
                if "amountUsd" in fields and not (num(fields["amountUsd"]) and 1 <= fields["amountUsd"] <= 1000):
                        return _Response(400, error_body("auto-topup", 400, "amountUsd must be between 1 and 1000"))
                if "thresholdUsd" in fields and not (num(fields["thresholdUsd"]) and 1 <= fields["thresholdUsd"] <= 500):
                        return _Response(400, error_body("auto-topup", 400, "thresholdUsd must be between 1 and 500"))
                if "tokens" in fields:
                        toks = fields["tokens"]
                        if not isinstance(toks, list) or not 1 <= len(toks) <= 3:
                                return _Response(400, error_body("auto-topup", 400, "tokens must list between 1 and 3 tokens"))
                        resolved = [self._resolve_token(t) for t in toks]
                        if None in resolved:
                                return _Response(400, error_body("auto-topup", 400, "Unknown token: %s" % toks[resolved.index(None)]))
                        fields["tokens"] = resolved
                with self._lock:
                        cfg = dict(self.auto_topup)
                        cfg.update(fields)
                        self.auto_topup = cfg
                return _json_response(200, {"config": cfg})

        # --- fault bodies ----------------------------------------------------------------

        def _normal_json(self, rec, route, o):
                """The body a normal answer would have (for malformed), as bytes."""
                resp = route(rec, o)
                return resp, b"".join(resp.body.pieces)

        def _malformed(self, rec, route, o, status):
                ep = rec.endpoint
                if ep in ("chat", "messages") and isinstance(rec.json, dict) and rec.json.get("stream"):
                        resp = route(rec, o)
                        if not resp.body.stream:
                                return resp
                        resp.status = status
                        resp.body.pieces = self._break_one_event(resp.body.pieces)
                        return resp
                resp, data = self._normal_json(rec, route, o)
                if len(data) < 4:
                        data = b'{"data": [1, 2, 3]}'
                cut = data[:max(2, len(data) * 2 // 3)]
                return _Response(status, cut)

        @staticmethod
        def _break_one_event(pieces):
                broken = False
                for p in pieces:
                        if not broken and (b"content_block_delta" in p or b'"content":"' in p):
                                i = p.find(b"{")
                                j = p.rfind(b"}")
                                if 0 <= i < j:
                                        # keep the event's framing, cut its JSON short
                                        body = p[i:j + 1]
                                        p = p[:i] + body[:len(body) // 2] + p[j + 1:]
                                        broken = True
                        yield p

        def _wrong_types(self, rec, status, variant):
                ep = rec.endpoint
                table = {
                        "models": [{"object": "list", "data": {}},
                                   {"object": "list", "data": [{"id": 42, "name": ["x"], "owned_by": 7,
                                                                "context_window": "big", "max_output_tokens": -1,
                                                                "input_modalities": "text",
                                                                "pricing": {"input": "cheap", "output": None}}]}],
                        "credits": [{"balanceUsd": "lots"}, [12.5]],
                        "chat": [{"id": 1, "object": "chat.completion", "choices": {"0": "hi"}, "usage": "many"},
                                 {"choices": [{"index": 0, "message": {"role": "assistant", "content": 42},
                                               "finish_reason": 0}], "usage": {"prompt_tokens": "ten"}}],
                        "messages": [{"type": "message", "content": "hi", "usage": []},
                                     {"type": "message", "content": [{"type": "text", "text": 5}],
                                      "usage": {"input_tokens": "x", "output_tokens": None}}],
                        "topup": [{"creditsGranted": "ten", "newBalance": None, "txHash": 7},
                                  {"creditsGranted": [], "newBalance": "high"}],
                        "auto-topup": [{"config": []},
                                       {"config": {"enabled": "yes", "amountUsd": "x", "thresholdUsd": None,
                                                   "tokens": {}}}],
                }
                opts = table.get(ep, [{"error": 5}, [1, 2]])
                obj = opts[variant % len(opts)]
                if ep in ("chat", "messages") and isinstance(rec.json, dict) and rec.json.get("stream"):
                        if ep == "chat":
                                evs = [{"id": 1, "object": "chat.completion.chunk", "choices": {"0": 1}},
                                       {"choices": [{"index": "0", "delta": {"content": 42}, "finish_reason": 7}]}]
                                data = "".join("data: %s\n\n" % json.dumps(e) for e in evs) + "data: [DONE]\n\n"
                        else:
                                evs = [{"type": "message_start", "message": []},
                                       {"type": "content_block_delta", "index": "0", "delta": {"type": "text_delta", "text": 5}},
                                       {"type": "message_delta", "delta": {"stop_reason": 3}, "usage": {"output_tokens": "x"}},
                                       {"type": "message_stop"}]
                                data = "".join("event: %s\ndata: %s\n\n" % (e["type"], json.dumps(e)) for e in evs)
                        return _Response(status, _Body(iter([data.encode()]), None, stream=True),
                                         content_type="text/event-stream; charset=utf-8")
                return _json_response(status, obj)

        def _huge(self, rec, status, nbytes):
                ep = rec.endpoint
                streaming = ep in ("chat", "messages") and isinstance(rec.json, dict) and rec.json.get("stream")
                if streaming:
                        # a long but well-formed stream: plenty of deltas
                        o = {"fast_deltas": max(1, nbytes // 100)}
                        route = self._chat if ep == "chat" else self._messages
                        resp = route(rec, o)
                        resp.status = status
                        return resp
                if ep == "models":
                        prefix, suffix = b'{"object":"list","data":[', b"]}"
                        tmpl = ('{"id":"huge-model-%08d","object":"model","created":1760000000,"owned_by":"fake",'
                                '"name":"Huge Model %08d","context_window":128000,"max_output_tokens":32768,'
                                '"input_modalities":["text"],"pricing":{"input":1,"output":2,"cache_read":0,"cache_write":0}}')
                        unit_len = len(tmpl % (0, 0)) + 1
                        count = max(1, -(-(nbytes - len(prefix) - len(suffix)) // unit_len))

                        def gen():
                                yield prefix
                                buf = []
                                for i in range(count):
                                        buf.append((tmpl % (i, i)) + ("," if i + 1 < count else ""))
                                        if len(buf) >= 256:
                                                yield "".join(buf).encode()
                                                buf = []
                                if buf:
                                        yield "".join(buf).encode()
                                yield suffix
                        length = len(prefix) + len(suffix) + count * unit_len - 1
                        return _Response(status, _Body(gen(), length))
                if ep == "credits":
                        prefix = b'{"balanceUsd":12.5,"note":"'
                elif ep in ("topup",):
                        prefix = b'{"creditsGranted":5,"newBalance":17.5,"txHash":"0x00","note":"'
                else:
                        prefix = b'{"error":{"message":"'
                suffix = b'"}' if ep in ("credits", "topup") else b'","type":"server_error"}}'
                pad = max(0, nbytes - len(prefix) - len(suffix))

                def gen_pad():
                        yield prefix
                        left = pad
                        block = b"x" * FAST_BLOCK
                        while left > 0:
                                n = min(left, FAST_BLOCK)
                                yield block[:n]
                                left -= n
                        yield suffix
                return _Response(status, _Body(gen_pad(), len(prefix) + pad + len(suffix)))


def main(argv=None):
        ap = argparse.ArgumentParser(description="Fake Bankr LLM gateway on 127.0.0.1 for tests.")
        ap.add_argument("--port", type=int, default=0, help="port to listen on (default: any free port)")
        ap.add_argument("--port-file", help="write the port number here once listening")
        ap.add_argument("--verbose", action="store_true", help="log requests to stderr")
        ap.add_argument("--tls-cert", help="serve HTTPS with this PEM certificate (needs --tls-key)")
        ap.add_argument("--tls-key", help="the PEM private key of --tls-cert")
        args = ap.parse_args(argv)
        if bool(args.tls_cert) != bool(args.tls_key):
                ap.error("--tls-cert and --tls-key go together")

        # Block the signals before any thread exists, then wait for them synchronously:
        # the server threads never see them and SIGTERM stops us at once.
        sigs = {signal.SIGTERM, signal.SIGINT}
        signal.pthread_sigmask(signal.SIG_BLOCK, sigs)
        gw = FakeGateway(port=args.port, verbose=args.verbose)
        if args.tls_cert:
                gw.use_tls(args.tls_cert, args.tls_key)
        gw.start()
        if args.port_file:
                tmp = args.port_file + ".tmp"
                with open(tmp, "w") as f:
                        f.write("%d\n" % gw.port)
                os.replace(tmp, args.port_file)
        sys.stdout.write(gw.url + "\n")
        sys.stdout.flush()
        signal.sigwait(sigs)
        gw.stop()
        return 0


if __name__ == "__main__":
        sys.exit(main())
