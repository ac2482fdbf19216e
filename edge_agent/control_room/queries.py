"""What the operators' console reads from the store: events grouped by (site, event id) with
filters and pages, one event with its messages and images (each image's sha256 checked again
against the file now), alerts, and site availability; and the one thing an operator writes:
an event's hold (kept from retention)."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from typing import Any

from edge_agent.media import sha256_hex

MAX_PER_PAGE = 200


@dataclass(frozen=True)
class EventFilter:
    site: str | None = None
    camera: str | None = None
    since: float | None = None  # epoch seconds, on the event's start
    until: float | None = None
    has_faces: bool | None = None
    flagged: bool | None = None
    held: bool | None = None


_GROUPED = """
SELECT e.site, e.camera, e.event_id,
       MIN(COALESCE(e.started_at, e.ts)) AS started_at, MAX(e.ts) AS last_ts, MAX(e.id) AS last_row,
       MAX(CASE WHEN e.phase = 'end' THEN 1 ELSE 0 END) AS ended,
       (SELECT COUNT(*) FROM images i WHERE i.site = e.site AND i.event_id = e.event_id AND i.role = 'face') AS faces,
       (SUM(CASE WHEN e.flag IS NOT NULL THEN 1 ELSE 0 END) + (SELECT COUNT(*) FROM images i WHERE i.site = e.site
            AND i.event_id = e.event_id AND (i.flag IS NOT NULL OR i.status = 'mismatch'))) AS flags,
       MAX(CASE WHEN e.signature = 'invalid' THEN 1 ELSE 0 END) AS bad_signature,
       MAX(h.operator) AS held_by
FROM events e LEFT JOIN holds h ON h.site = e.site AND h.event_id = e.event_id
"""


def _where(f: EventFilter) -> tuple[str, list[Any]]:
    """(inner WHERE ... GROUP BY, outer WHERE) over the grouped events, and their parameters."""
    inner, params = [], []
    for column, value in (("e.site", f.site), ("e.camera", f.camera)):
        if value is not None:
            inner.append(f"{column} = ?")
            params.append(value)
    outer = []
    if f.since is not None:
        outer.append("g.started_at >= ?")
        params.append(f.since)
    if f.until is not None:
        outer.append("g.started_at <= ?")
        params.append(f.until)
    for test, value in (("g.faces > 0", f.has_faces), ("g.flags > 0", f.flagged), ("g.held_by IS NOT NULL", f.held)):
        if value is not None:
            outer.append(f"(CASE WHEN {test} THEN 1 ELSE 0 END) = ?")
            params.append(int(value))
    where = ("WHERE " + " AND ".join(inner)) if inner else ""
    out = ("WHERE " + " AND ".join(outer)) if outer else ""
    return f"SELECT * FROM ({_GROUPED} {where} GROUP BY e.site, e.camera, e.event_id) AS g {out}", params


def list_events(store, f: EventFilter, page: int = 1, per_page: int = 50) -> dict[str, Any]:
    """Newest first; page counts from 1."""
    per_page = max(1, min(MAX_PER_PAGE, per_page))
    page = max(1, page)
    grouped, params = _where(f)
    total = store.query(f"SELECT COUNT(*) AS n FROM ({grouped}) AS c", tuple(params))[0]["n"]
    rows = store.query(f"{grouped} ORDER BY g.started_at DESC, g.event_id DESC LIMIT ? OFFSET ?",
                       tuple(params) + (per_page, (page - 1) * per_page))
    for r in rows:
        r["ended"] = bool(r["ended"])
        r["bad_signature"] = bool(r["bad_signature"])
        r["flagged"] = bool(r.pop("flags"))
        r["held"] = r["held_by"] is not None
    return {"total": total, "page": page, "per_page": per_page, "events": rows}


def latest_row(store) -> int:
    return store.query("SELECT COALESCE(MAX(id), 0) AS n FROM events")[0]["n"]


def events_after(store, row_id: int, limit: int = 100) -> list[dict[str, Any]]:
    """Event messages stored after row_id (the console's live updates)."""
    return store.query("SELECT id, site, camera, event_id, phase, seq, flag, signature FROM events"
                       " WHERE id > ? ORDER BY id LIMIT ?", (row_id, limit))


def _check_image(store, img: dict[str, Any]) -> dict[str, Any]:
    """The image's state now: its file hashed again and compared with what its event announced."""
    out = {k: img[k] for k in ("id", "name", "role", "seq", "enhanced", "expected_sha256", "status", "flag")}
    out["sha256_now"] = None
    if img["path"]:
        try:
            out["sha256_now"] = sha256_hex(store.read(img["path"]))
        except OSError:
            out["sha256_now"] = None
    if img["expected_sha256"] is None:
        out["check"] = "unannounced"  # bytes without an event (yet)
    elif out["sha256_now"] is None:
        out["check"] = "missing"
    else:
        out["check"] = "ok" if out["sha256_now"] == img["expected_sha256"] else "FAILED"
    return out


def event_detail(store, site: str, event_id: str) -> dict[str, Any] | None:
    messages = store.query("SELECT * FROM events WHERE site = ? AND event_id = ? ORDER BY seq, id", (site, event_id))
    if not messages:
        return None
    docs = [store.event_doc(m) for m in messages]
    # what the event shows: its last frame message (the 'end' carries no stages or images)
    latest_i = next((i for i in range(len(docs) - 1, -1, -1) if docs[i].get("phase") != "end"), len(docs) - 1)
    latest = docs[latest_i]
    ended_at = next((d.get("ended_at") or d.get("ts") for d in docs if d.get("phase") == "end"), None)
    images = [_check_image(store, i) for i in store.query(
        "SELECT * FROM images WHERE site = ? AND event_id = ? ORDER BY seq, name", (site, event_id))]
    signatures = sorted({m["signature"] for m in messages})
    if "invalid" in signatures:
        signature = "FAILED"
    elif signatures == ["valid"]:
        signature = "valid"
    elif "valid" in signatures:
        signature = "partly unsigned"
    else:
        signature = "unsigned" if "unsigned" in signatures else "unverified"
    failed = [i["name"] for i in images if i["check"] in ("FAILED", "missing")]
    held = store.query("SELECT operator, at FROM holds WHERE site = ? AND event_id = ?", (site, event_id))
    return {
        "site": site, "camera": messages[0]["camera"], "event_id": event_id,
        "started_at": latest.get("started_at"), "ended_at": ended_at,
        "stages": latest.get("stages", []), "models": latest.get("models", []),
        "stage_ms": latest.get("stage_ms", {}), "luma": latest.get("luma"), "errors": latest.get("errors", []),
        "faces": latest.get("faces", []), "faces_seq": messages[latest_i]["seq"],  # the message they describe
        "messages": [{"phase": m["phase"], "seq": m["seq"], "signature": m["signature"], "flag": m["flag"],
                      "received_at": m["received_at"]} for m in messages],
        "images": images,
        "integrity": {"signature": signature, "images_checked": len(images), "images_failed": failed,
                      "flags": [m["flag"] for m in messages if m["flag"]] + [i["flag"] for i in images if i["flag"]]},
        "held": bool(held), "held_by": held[0]["operator"] if held else None,
    }


def image_row(store, image_id: int) -> dict[str, Any] | None:
    rows = store.query("SELECT * FROM images WHERE id = ?", (image_id,))
    return rows[0] if rows else None


def set_hold(store, site: str, event_id: str, operator: str, hold: bool) -> bool:
    """Put an event on hold (or release it); False when there is no such event."""
    if not store.query("SELECT 1 AS x FROM events WHERE site = ? AND event_id = ? LIMIT 1", (site, event_id)):
        return False
    if hold:
        store.execute("INSERT INTO holds (site, event_id, operator, at) VALUES (?,?,?,?) ON CONFLICT (site, event_id)"
                      " DO UPDATE SET operator = excluded.operator, at = excluded.at",
                      (site, event_id, operator, time.time()))
    else:
        store.execute("DELETE FROM holds WHERE site = ? AND event_id = ?", (site, event_id))
    return True


def alerts(store, state: str | None = None, limit: int = 200) -> list[dict[str, Any]]:
    """Alerts by id (start and end joined): open = started and not ended."""
    out: dict[tuple, dict[str, Any]] = {}
    for row in store.query("SELECT site, camera, payload, signature, flag, received_at FROM alerts ORDER BY id"):
        doc = json.loads(row["payload"])
        key = (row["site"], doc.get("id") or doc.get("alert_id"))
        a = out.setdefault(key, {"site": row["site"], "camera": row["camera"], "id": key[1], "type": doc.get("type"),
                                 "severity": doc.get("severity"), "message": doc.get("message"),
                                 "since": doc.get("since") or doc.get("ts"), "ended": None, "open": True,
                                 "snapshot": bool(doc.get("snapshot")), "signature": row["signature"]})
        if doc.get("phase") == "end":
            a["open"], a["ended"] = False, doc.get("ts")
    rows = sorted(out.values(), key=lambda a: a["since"] or 0, reverse=True)
    if state in ("open", "closed"):
        rows = [a for a in rows if a["open"] is (state == "open")]
    return rows[:limit]


def sites(store) -> list[dict[str, Any]]:
    last = {r["site"]: r for r in store.query(
        "SELECT a.site, a.state, a.received_at AS last_seen FROM availability a"
        " WHERE a.id = (SELECT MAX(b.id) FROM availability b WHERE b.site = a.site)")}
    cams: dict[str, set] = {}
    for r in store.query("SELECT DISTINCT site, camera FROM events"):
        cams.setdefault(r["site"], set()).add(r["camera"])
    names = sorted(set(last) | set(cams))
    return [{"site": s, "state": last[s]["state"] if s in last else "unknown",
             "last_seen": last[s]["last_seen"] if s in last else None,
             "cameras": sorted(cams.get(s, ()))} for s in names]
