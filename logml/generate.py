"""Synthetic multi-service log streams with labelled incidents (``logml generate``).

Each service writes Filebeat 8 (ECS) JSON events from one *log family* (HTTP access, database,
auth, queue worker, payments, scheduler, cache, search): 12-17 message templates with
realistic variable parts (ids, IPs, uuids, hex tokens, latencies, user names) and a skewed
(Zipf) template mix, a small background share of error-level templates, a daily rhythm
(peak in the afternoon UTC, night trough at 30-40 % of the peak), slow multiplicative noise
and Poisson counts per second. Every template of the family appears in the first eighth of the
stream, so only incidents bring templates the detector has not seen.

Incidents of four types are placed after a warm-up (the first 25 % of the stream), never
overlapping on one service, and written to the labels:

* ``spike``: one existing template's volume x5-x20 for 5-15 min;
* ``drop``: the service's whole volume falls to 0-10 % (sometimes silent) for 5-15 min;
* ``new_template``: a never-seen template (mostly error level) at 5-30 lines/min;
* ``error_rate``: the service's error-level share rises to 10-40 % for 5-15 min.

Everything random comes from one ``numpy.random.Generator(PCG64(seed))``: the same seed
(and the same ``start``) gives byte-identical events and labels.

Implementation: per service a matrix of expected counts per (second, template) is built
with numpy (rhythm x noise x template mix, incidents applied as column/row factors) and
drawn as Poisson counts; variable parts are drawn per template as vectors, messages are
formatted with precompiled ``%`` formats that are already JSON-escaped and hold the rest of
the line (milliseconds, level, service, host), and lines are assembled from cached
per-second timestamp prefixes.
"""
from __future__ import annotations

import math
import re
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import orjson

from .progress import Progress

__all__ = ["generate", "write", "service_names", "SERVICE_NAMES", "FAMILIES", "INCIDENT_TYPES"]

INCIDENT_TYPES = ("spike", "drop", "new_template", "error_rate")
SERVICE_NAMES = ("api", "db", "auth", "worker", "payments", "scheduler", "cache", "search")
WARMUP_FRACTION = 0.25
MIN_INCIDENT_S = 300
MAX_INCIDENT_S = 900
MIN_GAP_S = 900  # wanted gap between incidents (kept when the stream is long enough)
TAIL_S = 300     # no incident in the last 5 minutes: the detector needs a few windows

# ---------------------------------------------------------------------------------------
# log families: (level, template); slots are {kind} or {kind:args}, listed by frequency
# ---------------------------------------------------------------------------------------

_JOBS = "cleanup_sessions|rebuild_sitemap|send_digest|sync_inventory|rotate_logs|expire_carts"
_QUEUES = "emails|thumbnails|exports|webhooks"
_QUERIES = "running+shoes|laptop+stand|coffee+mug|noise+cancelling+headphones|desk+lamp|backpack"

FAMILIES: dict[str, dict[str, list[tuple[str, str]]]] = {
    "http": {
        "normal": [
            ("info", '{ip} "GET /api/v1/products/{id:5} HTTP/1.1" 200 {int:350:9000} {ms:22}ms'),
            ("info", '{ip} "GET /api/v1/orders/{id:7} HTTP/1.1" 200 {int:500:6000} {ms:30}ms'),
            ("info", '{ip} "GET /api/v1/users/{id:6}/cart HTTP/1.1" 200 {int:200:4000} {ms:18}ms'),
            ("info", '{ip} "GET /api/v1/products?page={int:1:40}&limit=50 HTTP/1.1" 200 '
                     '{int:2000:48000} {ms:45}ms'),
            ("info", '{ip} "POST /api/v1/orders HTTP/1.1" 201 {int:150:900} {ms:80}ms'),
            ("info", '{ip} "GET /healthz HTTP/1.1" 200 2 {ms:1}ms'),
            ("info", '{ip} "PUT /api/v1/users/{id:6}/cart/items/{id:5} HTTP/1.1" 204 0 {ms:35}ms'),
            ("debug", "upstream inventory-svc responded in {ms:12}ms (pool {int:1:16}/16)"),
            ("info", "request {uuid} user={user} authenticated via bearer token"),
            ("warn", '{ip} "GET /api/v1/products/{id:5} HTTP/1.1" 404 {int:60:120} {ms:6}ms'),
            ("info", '{ip} "DELETE /api/v1/users/{id:6}/cart/items/{id:5} HTTP/1.1" 204 0 '
                     '{ms:20}ms'),
            ("warn", "slow request: POST /api/v1/orders took {int:1200:4800}ms (threshold 1000ms) "
                     "trace_id={hex:16}"),
            ("warn", "rate limit exceeded for client {ip}: {int:101:300} requests in 60s"),
        ],
        "error": [
            ("error", '{ip} "POST /api/v1/orders HTTP/1.1" 500 {int:80:200} {ms:150}ms'),
            ("error", "upstream timeout after {int:3000:5000}ms calling inventory-svc "
                      "GET /stock/{id:5} trace_id={hex:16}"),
            ("error", '{ip} "GET /api/v1/orders/{id:7} HTTP/1.1" 502 {int:150:170} {ms:3000}ms'),
            ("error", "unhandled exception in handler /api/v1/checkout: ValueError: invalid "
                      "quantity {int:-5:0}"),
        ],
    },
    "database": {
        "normal": [
            ("info", "duration: {f:0.05:3} ms  statement: SELECT id, status, total FROM orders "
                     "WHERE id = {id:7}"),
            ("info", "duration: {f:0.05:2} ms  statement: SELECT * FROM users WHERE email = "
                     "'{email}'"),
            ("info", "duration: {f:0.3:9} ms  statement: UPDATE inventory SET qty = qty - "
                     "{int:1:5} WHERE sku = 'SKU-{id:6}'"),
            ("info", "duration: {f:0.5:12} ms  statement: INSERT INTO order_items (order_id, sku, "
                     "qty) VALUES ({id:7}, 'SKU-{id:6}', {int:1:9})"),
            ("info", "connection received: host={ip} port={int:32768:60999}"),
            ("info", "connection authorized: user=app database=shop "
                     "application_name=api-{int:1:3}"),
            ("info", "disconnection: session time: 0:0{int:0:9}:{int:10:59}.{int:100:999} user=app "
                     "database=shop host={ip}"),
            ("debug", "pool stats: active={int:3:40} idle={int:0:20} waiting={int:0:3} max=50"),
            ("info", "replication lag {f:0.01:0.9}s on replica db-replica-{int:1:2}"),
            ("warn", "slow query ({int:1000:6000} ms): SELECT o.id, sum(i.qty) FROM orders o JOIN "
                     "order_items i ON i.order_id = o.id WHERE o.created_at > now() - interval "
                     "'{int:1:30} days' GROUP BY o.id"),
            ("info", 'automatic vacuum of table "shop.public.{choice:orders|order_items|sessions|'
                     'events}": index scans: {int:0:2}'),
            ("warn", "connection pool nearly exhausted: {int:45:49}/50 in use"),
            ("info", "checkpoint complete: wrote {int:50:4000} buffers ({f:0.1:9.9}%); 0 WAL "
                     "file(s) added, 0 removed, {int:0:3} recycled; write={f:1:30} s, "
                     "sync={f:0.01:0.5} s, total={f:1:31} s"),
        ],
        "error": [
            ("error", "deadlock detected: Process {int:1000:30000} waits for ShareLock on "
                      "transaction {id:7}; blocked by process {int:1000:30000}"),
            ("error", "could not serialize access due to concurrent update on table orders "
                      "(txid {id:7})"),
            ("error", "canceling statement due to statement timeout: UPDATE inventory SET qty = "
                      "qty - {int:1:5} WHERE sku = 'SKU-{id:6}'"),
            ("error", "remaining connection slots are reserved for non-replication superuser "
                      "connections (client {ip})"),
        ],
    },
    "auth": {
        "normal": [
            ("info", "session {hex:24} validated for user {user}"),
            ("info", "token refreshed for user {user} session={hex:24} expires_in=3600"),
            ("info", "login succeeded for user {user} from {pubip} (method=password, mfa=totp)"),
            ("info", "issued access token for client_id=web-{choice:shop|admin|mobile} "
                     'user={user} scope="read write"'),
            ("warn", "login failed for user {user} from {pubip}: invalid password "
                     "(attempt {int:1:4}/5)"),
            ("info", "logout for user {user} session={hex:24}"),
            ("info", "mfa challenge sent to user {user} via {choice:sms|email|push}"),
            ("info", "oauth callback from provider {choice:google|github|apple} for user {user} "
                     "ok in {ms:90}ms"),
            ("info", "password reset requested for {email}"),
            ("warn", "token refresh rejected for user {user}: refresh token expired"),
            ("debug", "jwks cache refreshed: {int:2:4} keys, next refresh in {int:250:350}s"),
            ("warn", "account {user} locked after 5 failed attempts from {pubip}"),
        ],
        "error": [
            ("error", "ldap bind failed for cn={user},ou=people: connection reset by peer "
                      "{ip}:636"),
            ("error", "user store query failed: timeout after {int:2000:5000}ms (user {user})"),
            ("error", "failed to sign token: key {hex:8} not found in keystore"),
        ],
    },
    "queue": {
        "normal": [
            ("info", "job {uuid} processed in {ms:120} ms (queue={choice:" + _QUEUES + "})"),
            ("info", "picked job {uuid} from queue {choice:" + _QUEUES + "} (attempt 1)"),
            ("info", "sent email template=order_confirmation to {email} in {ms:200}ms"),
            ("info", "generated thumbnail for image {id:8}.jpg {int:64:512}x{int:64:512} in "
                     "{ms:60}ms"),
            ("debug", "heartbeat: worker-{int:1:8} alive, {int:0:4} jobs in flight"),
            ("info", "webhook delivered to https://hooks.example.com/{hex:12} status=200 in "
                     "{ms:150}ms"),
            ("warn", "job {uuid} failed (attempt {int:1:4}/5), retrying in {int:2:60}s: "
                     "{choice:timeout|ECONNRESET|HTTP_503}"),
            ("info", "queue depth {choice:" + _QUEUES + "}={int:0:250}"),
            ("info", "export {id:6} finished: {int:100:50000} rows written to "
                     "s3://exports/{hex:10}.csv"),
            ("warn", "job {uuid} exceeded soft time limit ({int:30:60}s)"),
            ("info", "scaled consumer pool to {int:2:16} workers"),
        ],
        "error": [
            ("error", "job {uuid} moved to dead letter queue after 5 attempts: "
                      "{choice:timeout|ECONNRESET|HTTP_500}"),
            ("error", "failed to deliver webhook to https://hooks.example.com/{hex:12}: "
                      "HTTP 5{int:0:4}"),
            ("error", "smtp error sending to {email}: 421 4.7.0 try again later"),
        ],
    },
    "payment": {
        "normal": [
            ("info", "payment intent pi_{hex:24} created amount={int:500:50000} "
                     "currency={choice:USD|EUR|GBP} order={id:7}"),
            ("info", "charge ch_{hex:24} succeeded amount={int:500:50000} card=****{int:1000:9999} "
                     "in {ms:400}ms"),
            ("info", "checkout session cs_{hex:20} started for cart {id:6} ({int:1:12} items)"),
            ("info", "order {id:7} marked paid, emitting event order.paid"),
            ("info", "fraud check passed for order {id:7} score={f:0.01:0.3}"),
            ("info", "webhook event evt_{hex:24} type=charge.succeeded verified"),
            ("warn", "card declined for order {id:7}: "
                     "{choice:insufficient_funds|do_not_honor|expired_card}"),
            ("debug", "fx rate {choice:EUR/USD|GBP/USD|USD/JPY} = {f:0.8:150}"),
            ("warn", "fraud check review for order {id:7} score={f:0.6:0.9}"),
            ("info", "refund re_{hex:24} issued amount={int:500:20000} for order {id:7}"),
            ("info", "payout po_{hex:24} scheduled amount={int:10000:900000}"),
        ],
        "error": [
            ("error", "charge failed for order {id:7}: gateway timeout after "
                      "{int:10000:30000}ms"),
            ("error", "webhook signature verification failed for event evt_{hex:24}"),
            ("error", "idempotency conflict for key {uuid} on POST /v1/charges"),
        ],
    },
    "cron": {
        "normal": [
            ("debug", "scheduler tick: {int:0:5} jobs due, {int:10:40} registered"),
            ("info", "running job {choice:" + _JOBS + "} (run id {id:6})"),
            ("info", "job {choice:" + _JOBS + "} finished in {ms:2500}ms, status=success"),
            ("info", "acquired lock cron:{choice:" + _JOBS + "} holder=scheduler-{int:1:2} "
                     "ttl=300s"),
            ("info", "released lock cron:{choice:" + _JOBS + "} after {ms:2500}ms"),
            ("info", "next run of {choice:" + _JOBS + "} in {int:60:3600}s"),
            ("info", "deleted {int:0:5000} expired sessions"),
            ("warn", "job {choice:" + _JOBS + "} skipped: previous run {id:6} still in progress"),
            ("info", "sitemap rebuilt: {int:10000:90000} urls in {int:3:40} files"),
            ("warn", "job {choice:" + _JOBS + "} took {int:300:900}s, exceeds expected 300s"),
        ],
        "error": [
            ("error", "job {choice:" + _JOBS + "} failed: "
                      "{choice:exit_status_1|deadline_exceeded|OOMKilled}"),
            ("error", "could not acquire lock cron:{choice:" + _JOBS + "}: redis timeout after "
                      "{int:500:2000}ms"),
        ],
    },
    "cache": {
        "normal": [
            ("info", "GET product:{id:5} hit in {f:0.05:0.9}ms"),
            ("info", "GET session:{hex:24} hit in {f:0.05:0.9}ms"),
            ("info", "GET product:{id:5} miss, loaded from db in {ms:8}ms"),
            ("info", "SET product:{id:5} ttl={choice:300|600|3600}s size={int:200:9000}b"),
            ("info", "DEL cart:{id:6}"),
            ("debug", "evicted {int:1:200} keys (policy=allkeys-lru, used_memory={f:1.1:3.9}G)"),
            ("info", "client connected from {ip}:{int:32768:60999} (clients={int:20:300})"),
            ("info", "client {ip}:{int:32768:60999} closed connection"),
            ("warn", "slowlog: KEYS session:* took {int:20:300}ms"),
            ("info", "background save started by pid {int:100:9999}"),
            ("info", "DB saved on disk: {int:10000:900000} keys in {ms:400}ms"),
            ("warn", "memory usage {int:80:95}% of maxmemory"),
        ],
        "error": [
            ("error", "connection to replica {ip}:6379 lost"),
            ("error", "READONLY You can't write against a read only replica (key cart:{id:6})"),
            ("error", "MISCONF unable to persist to disk: No space left on device"),
        ],
    },
    "search": {
        "normal": [
            ("info", 'query "{choice:' + _QUERIES + '}" index=products hits={int:0:5000} '
                     "took={ms:15}ms"),
            ("info", "indexed document products/{id:6} version={int:1:40} in {ms:4}ms"),
            ("info", 'suggest "{choice:sho|lap|cof|hea|des|bac}" index=products took={ms:3}ms'),
            ("info", "bulk request: {int:10:500} docs indexed in {ms:80}ms"),
            ("debug", "refresh of index products completed in {ms:20}ms"),
            ("info", "scroll {hex:16} fetched {int:100:1000} hits"),
            ("warn", 'slow query took {int:500:3000}ms: "{choice:' + _QUERIES + '}" '
                     "index=products from={int:0:1000}"),
            ("info", "reindex task {hex:10}:{int:100:9999} progress {int:0:100}%"),
            ("info", "cluster health: green ({int:3:5} nodes, {int:10:40} shards)"),
            ("warn", "circuit breaker [request] estimated {int:400:600}mb of 1gb"),
        ],
        "error": [
            ("error", 'all shards failed for index products (query "{choice:' + _QUERIES + '}")'),
            ("error", "failed to index products/{id:6}: version conflict, current version "
                      "[{int:2:40}] is different than the one provided [{int:1:39}]"),
            ("error", "node search-{int:1:3} left the cluster: disconnected"),
        ],
    },
}
# the family of each default service name; more services cycle through this order
_SERVICE_FAMILY = dict(zip(SERVICE_NAMES, ["http", "database", "auth", "queue", "payment",
                                          "cron", "cache", "search"]))
_FAMILY_ORDER = list(_SERVICE_FAMILY.values())

# never-seen templates for new_template incidents (none is like a family template)
NOVEL: list[tuple[str, str]] = [
    ("error", "java.lang.NullPointerException at com.shop.OrderService.process"
              "(OrderService.java:412) request={uuid}"),
    ("error", "connection refused to 10.0.3.7:5432 (attempt {int:1:5})"),
    ("error", "TLS handshake failed with {ip}:443: certificate has expired"),
    ("error", "OutOfMemoryError: Java heap space (used {int:3900:4096}MB of 4096MB)"),
    ("error", "panic: runtime error: index out of range [{int:5:9}] with length {int:0:4}"),
    ("error", "disk full: could not write /var/lib/app/spool/{hex:8}.tmp"),
    ("warn", "circuit breaker OPEN for dependency "
             "{choice:inventory-svc|pricing-svc|shipping-svc} after {int:5:20} "
             "consecutive failures"),
    ("error", "DNS lookup failed for {choice:inventory|pricing|shipping}.internal.svc: SERVFAIL"),
    ("error", "KeyError: 'customer_id' in handler process_order (order {id:7})"),
    ("error", "too many open files (ulimit 1024) accepting connection from {ip}"),
    ("warn", "feature flag {choice:new-checkout|fast-search|beta-pricing} evaluation failed, "
             "falling back to default variant"),
    ("error", 'schema validation failed for event {uuid}: missing required field "amount"'),
]

# ---------------------------------------------------------------------------------------
# templates
# ---------------------------------------------------------------------------------------

_SLOT = re.compile(r"\{(\w+)(?::([^{}]*))?\}")
_SLOT_REGEX = {
    "int": r"-?\d+", "id": r"\d+", "ms": r"\d+", "f": r"-?\d+(?:\.\d+)?",
    "ip": r"[\d.]+", "pubip": r"[\d.]+", "uuid": r"[0-9a-f-]{36}", "hex": r"[0-9a-f]+",
    "user": r"[a-z0-9._]+", "email": r"[a-z0-9._]+@[a-z.]+",
}


@dataclass(frozen=True)
class Template:
    level: str
    spec: str
    jfmt: str        # JSON string literal (quotes included) with %s slots
    slots: tuple     # ((kind, args), ...)
    hint: str        # the spec with each slot as <*>
    regex: str       # full-match regex for messages of this template


def _compile(level: str, spec: str) -> Template:
    parts, slots, hint, rx = [], [], [], []
    pos = 0
    for m in _SLOT.finditer(spec):
        lit = spec[pos:m.start()]
        parts.append(lit.replace("%", "%%"))
        hint.append(lit)
        rx.append(re.escape(lit))
        kind, args = m.group(1), m.group(2)
        if kind == "choice":
            rx.append("(?:" + "|".join(re.escape(c) for c in args.split("|")) + ")")
        elif kind in _SLOT_REGEX:
            rx.append(_SLOT_REGEX[kind])
        else:
            raise ValueError(f"unknown slot kind {kind!r} in {spec!r}")
        parts.append("%s")
        hint.append("<*>")
        slots.append((kind, args))
        pos = m.end()
    lit = spec[pos:]
    parts.append(lit.replace("%", "%%"))
    hint.append(lit)
    rx.append(re.escape(lit))
    fmt = "".join(parts)
    # slot values never hold characters JSON escapes, so escaping the format is enough
    jfmt = orjson.dumps(fmt).decode()
    return Template(level, spec, jfmt, tuple(slots), "".join(hint), "".join(rx))


_FIRST = ["james", "mary", "john", "linda", "wei", "aisha", "carlos", "fatima", "ivan", "yuki",
          "olga", "pedro", "nina", "omar", "sara", "li", "marta", "tom", "anna", "raj",
          "chen", "lucas", "emma", "noah", "mia", "hugo", "zoe", "kofi", "lena", "arjun"]
_LAST = ["smith", "garcia", "müller", "kim", "nguyen", "rossi", "silva", "kowalski", "ivanova",
         "tanaka", "okafor", "patel", "dubois", "jensen", "lopez", "cohen", "haddad", "novak",
         "berg", "santos"]
_LAST = [x.replace("ü", "u") for x in _LAST]
_DOMAINS = ["example.com", "mail.example.org", "shop.test", "corp.example.net"]


class _Pools:
    """Per-service value pools (client IPs, users) so values repeat as in real traffic."""

    def __init__(self, rng: np.random.Generator):
        n = 256
        o2 = rng.integers(0, 4, n)
        o3 = rng.integers(0, 256, n)
        o4 = rng.integers(2, 255, n)
        self.ip = np.array([f"10.{a}.{b}.{c}" for a, b, c in zip(o2.tolist(), o3.tolist(),
                                                                  o4.tolist())], dtype=object)
        n = 2048
        q = rng.integers(0, 256, (n, 4))
        q[:, 0] = rng.choice(np.array([23, 31, 45, 62, 78, 81, 88, 91, 103, 109, 151, 176, 185,
                                       188, 193, 203, 212, 217]), n)
        q[:, 3] = np.maximum(q[:, 3], 1)
        self.pubip = np.array([f"{a}.{b}.{c}.{d}" for a, b, c, d in q.tolist()], dtype=object)
        n = 600
        f = rng.integers(0, len(_FIRST), n).tolist()
        la = rng.integers(0, len(_LAST), n).tolist()
        style = rng.integers(0, 4, n).tolist()
        num = rng.integers(1, 99, n).tolist()
        users = []
        for a, b, s, k in zip(f, la, style, num):
            fi, lj = _FIRST[a], _LAST[b]
            users.append([f"{fi}.{lj}", f"{fi[0]}{lj}", f"{fi}{k}", f"{fi}_{lj}{k}"][s])
        self.user = np.array(users, dtype=object)
        dom = rng.integers(0, len(_DOMAINS), n).tolist()
        self.email = np.array([f"{u}@{_DOMAINS[d]}" for u, d in zip(users, dom)], dtype=object)


def _values(kind: str, args: str | None, n: int, rng: np.random.Generator, pools: _Pools):
    """n values of one slot, as a list (ints and floats are formatted by %s)."""
    if kind == "int":
        a, b = (int(x) for x in args.split(":"))
        return rng.integers(a, b + 1, n).tolist()
    if kind == "id":
        d = int(args)
        return rng.integers(10 ** (d - 1), 10 ** d, n).tolist()
    if kind == "ms":
        med = float(args)
        return np.maximum(1, rng.lognormal(math.log(med), 0.6, n)).astype(np.int64).tolist()
    if kind == "f":
        a, b = (float(x) for x in args.split(":"))
        return np.round(rng.uniform(a, b, n), 2).tolist()
    if kind == "choice":
        opts = np.array(args.split("|"), dtype=object)
        return opts[rng.integers(0, len(opts), n)].tolist()
    if kind in ("ip", "pubip", "user", "email"):
        pool = getattr(pools, kind)
        return pool[rng.integers(0, len(pool), n)].tolist()
    if kind == "hex":
        k = int(args)
        h = rng.bytes((k + 1) // 2 * n).hex()
        step = (k + 1) // 2 * 2
        return [h[i:i + k] for i in range(0, len(h), step)]
    if kind == "uuid":
        h = rng.bytes(16 * n).hex()
        return [f"{h[i:i + 8]}-{h[i + 8:i + 12]}-4{h[i + 13:i + 16]}-"
                f"{'89ab'[int(h[i + 16], 16) & 3]}{h[i + 17:i + 20]}-{h[i + 20:i + 32]}"
                for i in range(0, 32 * n, 32)]
    raise ValueError(kind)


def _tails(t: Template, head: str, tail: str, ms: list[int], rng: np.random.Generator,
           pools: _Pools) -> list[str]:
    """Line tails ``MMMZ","message":"..."<tail>`` of len(ms) events of template t."""
    f = head + t.jfmt + tail
    if not t.slots:
        return [f % v for v in ms]
    n = len(ms)
    cols = [_values(k, a, n, rng, pools) for k, a in t.slots]
    return [f % v for v in zip(ms, *cols)]


# ---------------------------------------------------------------------------------------
# plan: services, rhythm, incidents
# ---------------------------------------------------------------------------------------

def service_names(services: int) -> list[str]:
    return [SERVICE_NAMES[i] if i < len(SERVICE_NAMES) else f"svc-{i + 1}"
            for i in range(services)]


def _family_of(i: int) -> str:
    return _FAMILY_ORDER[i % len(_FAMILY_ORDER)]


def _plan_incidents(rng, n_seconds: int, services: int) -> list[dict]:
    """Incident slots (seconds from start), types and services; see the module doc."""
    lo = int(math.ceil(WARMUP_FRACTION * n_seconds))
    hi = n_seconds - TAIL_S
    span = hi - lo
    hours = n_seconds / 3600.0
    n = max(4, int(round(services * hours / 3.0)))
    min_slot = 2 * MIN_INCIDENT_S
    n = min(n, span // min_slot) if span > 0 else 0
    if n <= 0:
        return []
    slot = span / n
    gap = float(np.clip(slot - MAX_INCIDENT_S, min(MIN_INCIDENT_S, slot / 3), MIN_GAP_S))
    d_max = min(MAX_INCIDENT_S, slot - gap)
    d_min = min(MIN_INCIDENT_S, d_max)
    # types: every type once per round of four, shuffled
    types = []
    while len(types) < n:
        types.extend(rng.permutation(len(INCIDENT_TYPES)).tolist())
    types = [INCIDENT_TYPES[k] for k in types[:n]]
    types = [types[k] for k in rng.permutation(n).tolist()]
    # services: rounds of a permutation, no service twice in a row
    svcs: list[int] = []
    while len(svcs) < n:
        p = rng.permutation(services).tolist()
        if svcs and services > 1 and p[0] == svcs[-1]:
            p[0], p[-1] = p[-1], p[0]
        svcs.extend(p)
    out = []
    for k in range(n):
        d = int(rng.integers(int(d_min), int(d_max) + 1))
        s0 = lo + k * slot + gap / 2
        free = max(0.0, slot - gap - d)
        a = int(s0 + rng.uniform(0, free))
        out.append({"type": types[k], "service": svcs[k], "a": a, "b": a + d})
    return out


def _rhythm(rng, t_abs: np.ndarray) -> np.ndarray:
    """Daily multiplier (mean 1): peak mid-afternoon UTC, trough 30-40 % of the peak."""
    ratio = rng.uniform(0.30, 0.40)
    amp = (1 - ratio) / (1 + ratio)
    peak_h = 15.0 + rng.uniform(-1.0, 1.0)
    h = (t_abs % 86400.0) / 3600.0
    return 1.0 + amp * np.cos(2 * np.pi * (h - peak_h) / 24.0)


def _noise(rng, n_seconds: int) -> np.ndarray:
    """Slow multiplicative noise: AR(1) in log space per minute, interpolated per second."""
    m = n_seconds // 60 + 2
    eps = rng.normal(0.0, 0.03, m)
    x = np.empty(m)
    acc = 0.0
    for i, e in enumerate(eps.tolist()):
        acc = 0.8 * acc + e
        x[i] = acc
    return np.exp(np.interp(np.arange(n_seconds) / 60.0, np.arange(m), x))


# ---------------------------------------------------------------------------------------
# generation
# ---------------------------------------------------------------------------------------

def _ts_prefixes(base_sec: int, n: int) -> list[str]:
    """'{"@timestamp":"YYYY-MM-DDTHH:MM:SS.' for n seconds from base_sec."""
    out = []
    day_cache: dict[int, str] = {}
    for t in range(base_sec, base_sec + n):
        day, sod = divmod(t, 86400)
        d = day_cache.get(day)
        if d is None:
            d = day_cache[day] = '{"@timestamp":"' + time.strftime("%Y-%m-%dT",
                                                                  time.gmtime(day * 86400))
        h, r = divmod(sod, 3600)
        mi, s = divmod(r, 60)
        out.append(f"{d}{h:02d}:{mi:02d}:{s:02d}.")
    return out


_HEAD = '%03dZ","message":'


def _jstr(x: str) -> str:
    return orjson.dumps(x).decode()


def _build(seed: int, hours: float, services: int, start: float | None,
           rate: float) -> tuple[list[str], dict]:
    if services < 1:
        raise ValueError("services must be >= 1")
    if not hours > 0:
        raise ValueError("hours must be > 0")
    if not rate > 0:
        raise ValueError("rate must be > 0")
    if start is None:
        start = math.floor((time.time() - hours * 3600) / 3600) * 3600
    start = float(start)
    n_sec = int(round(hours * 3600))
    if n_sec < 1:
        raise ValueError("hours too small")
    rng = np.random.Generator(np.random.PCG64(seed))
    names = service_names(services)

    plan = _plan_incidents(rng, n_sec, services)
    novel_order = rng.permutation(len(NOVEL)).tolist()
    novel_next = 0

    start_ms = int(round(start * 1000))
    base_sec = start_ms // 1000
    t_abs = start + np.arange(n_sec, dtype=np.float64)

    all_ts: list[np.ndarray] = []
    all_msg: list[str] = []
    hosts_by_service: dict[str, list[str]] = {}
    families: dict[str, str] = {}
    incidents: list[dict] = []

    for si, svc in enumerate(names):
        fam_name = _family_of(si)
        fam = FAMILIES[fam_name]
        families[svc] = fam_name
        pools = _Pools(rng)
        normal = [_compile(lv, sp) for lv, sp in fam["normal"]]
        errors = [_compile(lv, sp) for lv, sp in fam["error"]]
        n_hosts = int(rng.integers(1, 4))
        hosts = [f"{svc}-{i + 1:02d}" for i in range(n_hosts)]
        hosts_by_service[svc] = hosts
        # template mix
        s = rng.uniform(1.0, 1.4)
        p_norm = 1.0 / np.arange(1, len(normal) + 1) ** s
        err_share = rng.uniform(0.005, 0.01)
        p_err = 1.0 / np.arange(1, len(errors) + 1) ** 1.5
        probs = np.concatenate([p_norm / p_norm.sum() * (1 - err_share),
                                p_err / p_err.sum() * err_share])
        base = rate * _rhythm(rng, t_abs) * _noise(rng, n_sec)
        templates = normal + errors
        n_norm = len(normal)
        # this service's incidents, with their extra (novel) templates
        mine = [inc for inc in plan if inc["service"] == si]
        extra_cols = []
        for inc in mine:
            if inc["type"] == "new_template":
                lv, sp = NOVEL[novel_order[novel_next % len(NOVEL)]]
                novel_next += 1
                inc["template"] = _compile(lv, sp)
                inc["col"] = len(templates) + len(extra_cols)
                extra_cols.append(inc["template"])
        templates = templates + extra_cols
        lam = np.zeros((n_sec, len(templates)))
        lam[:, :len(probs)] = base[:, None] * probs[None, :]
        for inc in mine:
            a, b = inc["a"], inc["b"]
            typ = inc["type"]
            label = {"service": svc, "type": typ}
            if typ == "spike":
                col = int(rng.integers(1, min(5, n_norm)))
                factor = float(np.round(rng.uniform(5.0, 20.0), 1))
                lam[a:b, col] *= factor
                t = templates[col]
                label.update(template_hint=t.hint, template_regex=t.regex, level=t.level,
                             factor=factor)
            elif typ == "drop":
                factor = 0.0 if rng.random() < 0.3 else float(np.round(rng.uniform(0.02, 0.1), 3))
                lam[a:b, :] *= factor
                label.update(template_hint=None, factor=factor)
            elif typ == "new_template":
                lpm = float(np.round(rng.uniform(5.0, 30.0), 1))
                lam[a:b, inc["col"]] = lpm / 60.0
                t = inc["template"]
                label.update(template_hint=t.hint, template_regex=t.regex, level=t.level,
                             lines_per_minute=lpm)
            else:  # error_rate
                share = float(np.round(rng.uniform(0.10, 0.40), 3))
                ne = lam[a:b, :n_norm].sum(axis=1)
                e = lam[a:b, n_norm:len(probs)].sum(axis=1)
                scale = share / (1.0 - share) * ne / np.maximum(e, 1e-12)
                lam[a:b, n_norm:len(probs)] *= scale[:, None]
                label.update(template_hint=None, level="error", error_share=share)
            label["start"] = start + a
            label["end"] = start + b
            incidents.append(label)
        # one Poisson column per (template, host): hosts share a service's load evenly
        lam /= n_hosts
        counts = rng.poisson(np.repeat(lam, n_hosts, axis=1))
        del lam
        # the service ran long before the stream starts: every baseline template (rare
        # error ones too) shows up at least twice in the first eighth, so none is "new" later
        early = max(1, n_sec // 8)
        for ti in range(len(probs)):
            k = rng.integers(0, early, 2)
            np.add.at(counts, (k, ti * n_hosts + rng.integers(0, n_hosts, 2)), 1)
        emit_lines(counts, np.arange(n_sec, dtype=np.int64), templates, hosts, svc, start_ms,
                   rng, pools, all_ts, all_msg)

    incidents.sort(key=lambda x: (x["start"], x["service"]))
    for k, inc in enumerate(incidents, 1):
        inc["id"] = f"inc-{k}"
    incidents = [{"id": i["id"], "service": i["service"], "type": i["type"],
                  "start": i["start"], "end": i["end"],
                  **{k: v for k, v in i.items()
                     if k not in ("id", "service", "type", "start", "end")}}
                 for i in incidents]
    labels = {
        "seed": seed, "start": start, "end": start + n_sec, "hours": n_sec / 3600.0,
        "rate": rate, "services": names, "families": families, "hosts": hosts_by_service,
        "window_seconds_hint": 60, "incidents": incidents,
    }
    if not all_ts:
        return [], labels
    ts = np.concatenate(all_ts)
    order = np.argsort(ts, kind="stable")
    sec_rel = (ts[order] // 1000 - base_sec).tolist()
    prefixes = _ts_prefixes(base_sec, n_sec + 2)
    msg = all_msg
    lines = [prefixes[a] + msg[i] for a, i in zip(sec_rel, order.tolist())]
    return lines, labels


def emit_lines(counts, secs_idx, templates, hosts, service: str, t0_ms, rng, pools,
               all_ts: list, all_msg: list) -> None:
    """Lines of every template and host from their per-second counts (columns template x
    host): millisecond timestamps to ``all_ts``, message tails to ``all_msg``, drawing from
    ``rng`` in a fixed order so a seed gives the same stream."""
    n_hosts = len(hosts)
    for ti, t in enumerate(templates):
        for hi, h in enumerate(hosts):
            c = counts[:, ti * n_hosts + hi]
            n = int(c.sum())
            if n == 0:
                continue
            secs = np.repeat(secs_idx, c)
            ms = rng.integers(0, 1000, n)
            all_ts.append(t0_ms + secs * 1000 + ms)
            tail = (',"log":{"level":"%s"},"service":{"name":%s},"host":{"name":%s},'
                    '"event":{"dataset":%s}}' % (t.level, _jstr(service), _jstr(h),
                                                 _jstr(service)))
            all_msg.extend(_tails(t, _HEAD, tail.replace("%", "%%"), ms.tolist(), rng, pools))


def generate(seed: int, hours: float, services: int, start: float | None = None,
             rate: float = 20.0, hard: bool = False) -> tuple[list[bytes], dict]:
    """(events, labels): events are Filebeat 8 ECS JSON objects (bytes, no newline), sorted
    by @timestamp; labels hold the incidents. ``rate`` is the mean lines/s per service;
    ``start`` (epoch seconds) defaults to the last whole hour at least ``hours`` ago
    (``hard``: see ``hardgen``; its start defaults to a fixed midnight)."""
    if hard:
        from .hardgen import build_chunks
        events, labels = [], None
        for lines, lab in build_chunks(seed, hours, services, start, rate):
            if lines:
                events.extend(line.encode() for line in lines)
            labels = lab or labels
        return events, labels
    lines, labels = _build(seed, hours, services, start, rate)
    return [line.encode() for line in lines], labels


def write(out_dir, seed: int, hours: float, services: int, start: float | None = None,
          rate: float = 20.0, hard: bool = False, progress: bool = False) -> tuple[Path, Path]:
    """Write OUT/events.jsonl (one event a line) and OUT/labels.json; returns their paths.
    ``progress``: a bar on stderr (a terminal only) of the hours of traffic written."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    if hard:
        from .hardgen import CHUNK_S, build_chunks
        chunks = build_chunks(seed, hours, services, start, rate)
        chunk_hours = CHUNK_S / 3600.0
    else:
        lines, labels = _build(seed, hours, services, start, rate)
        chunks = iter([(lines, None), (None, labels)])
        chunk_hours = hours
    bar = Progress(math.ceil(hours), "generate", "hours") if progress else None
    events_path, labels_path = out / "events.jsonl", out / "labels.json"
    written = 0.0
    with open(events_path, "wb") as f:
        for lines, lab in chunks:
            if lab is not None:
                labels = lab
                continue
            for i in range(0, len(lines), 20000):
                f.write(("\n".join(lines[i:i + 20000]) + "\n").encode())
            if bar:
                step = min(chunk_hours, hours - written)
                written += step
                bar.update(math.ceil(written) - bar.done)
    if bar:
        bar.close()
    labels_path.write_bytes(orjson.dumps(labels, option=orjson.OPT_INDENT_2) + b"\n")
    return events_path, labels_path
