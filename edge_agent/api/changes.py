"""One way to change the config: validate whole, save atomically, apply live, say what needs a restart.

Used by PUT /api/config and PATCH /api/cameras/{name}. Errors never echo the submitted values
(they may be secrets): each names the key and the rule it broke.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError

from edge_agent.api.deps import AgentPort, ApiState
from edge_agent.api.masking import keys_holding_mask, masked_data, restore_secrets, revealed_data
from edge_agent.api.path_roots import path_root_errors
from edge_agent.config.live import changed_keys, dotted
from edge_agent.config.loader import ConfigError
from edge_agent.config.schema import AgentConfig

log = logging.getLogger(__name__)

MAX_DEPTH = 16


class ChangeRefused(Exception):
    """422: the change was refused whole. `errors` items: {"loc": [...], "key": "a.b", "msg": "..."}."""

    def __init__(self, errors: list[dict[str, Any]]):
        self.errors = errors
        super().__init__("; ".join(f"{e['key']}: {e['msg']}" for e in errors))


class ChangeFailed(Exception):
    """503: the change was valid but could not be applied or saved; nothing changed."""


def _problems(exc: ConfigError) -> list[dict[str, Any]]:
    """ConfigError lines ("key (line n): message" or "key: message") as error items."""
    out = []
    for p in exc.problems:
        key, sep, msg = p.partition(": ")
        if not sep or " " in key.split(" (line")[0]:
            key, msg = "(top level)", p
        key = key.split(" (line")[0]
        loc = [int(x) if x.isdigit() else x for x in key.split(".")] if key != "(top level)" else []
        out.append({"loc": loc, "key": key, "msg": msg, "type": "config_error"})
    return out


def _roll_back(agent: AgentPort, old: AgentConfig) -> None:
    try:
        agent.apply_config(old)
    except Exception:
        log.exception("could not re-apply the previous config; restart the agent")


@dataclass
class ChangeOutcome:
    config: AgentConfig
    changed: list[str]
    restart_required: list[str]


def _depth(value: Any, limit: int = MAX_DEPTH) -> int:
    if limit < 0:
        return 1
    if isinstance(value, dict):
        return 1 + max((_depth(v, limit - 1) for v in value.values()), default=0)
    if isinstance(value, list):
        return 1 + max((_depth(v, limit - 1) for v in value), default=0)
    return 0


def check_depth(data: Any) -> None:
    if _depth(data) > MAX_DEPTH:
        raise ChangeRefused(
            [{"loc": [], "key": "(top level)", "msg": f"nested deeper than {MAX_DEPTH} levels"}]
        )


def validation_errors(err: ValidationError) -> list[dict[str, Any]]:
    out = []
    for e in err.errors(include_input=False, include_url=False):
        msg = "unknown key" if e["type"] == "extra_forbidden" else e["msg"]
        out.append({"loc": list(e["loc"]), "key": dotted(e["loc"]), "msg": msg, "type": e["type"]})
    return out


def merge_patch(target: Any, patch: Any) -> Any:
    """RFC 7396 JSON merge patch: objects merge, null deletes (back to the default), the rest replaces."""
    if not isinstance(patch, dict):
        return patch
    out = dict(target) if isinstance(target, dict) else {}
    for k, v in patch.items():
        if v is None:
            out.pop(k, None)
        else:
            out[k] = merge_patch(out.get(k), v)
    return out


def apply_change(state: ApiState, agent: AgentPort, incoming: dict[str, Any]) -> ChangeOutcome:
    """Validate a whole config document (secrets may be masked), save it, apply it live."""
    check_depth(incoming)
    store = state.store
    with store.lock:
        old = store.config
        old_revealed = revealed_data(old)
        data = restore_secrets(incoming, masked_data(old), old_revealed)
        masked_left = keys_holding_mask(data)
        if masked_left:
            raise ChangeRefused(
                [
                    {
                        "loc": k.split("."),
                        "key": k,
                        "msg": "holds the secret mask but no stored secret matches; give the real value",
                    }
                    for k in masked_left
                ]
            )
        try:
            new = AgentConfig.model_validate(data)
        except ValidationError as exc:
            raise ChangeRefused(validation_errors(exc)) from None
        outside = path_root_errors(old, new)  # before anything may open a file
        if outside:
            raise ChangeRefused(outside)
        changed = changed_keys(old_revealed, revealed_data(new))
        if not changed:
            return ChangeOutcome(old, [], [])
        try:
            store.check(new)  # the YAML round trip, before anything is applied
        except ConfigError as exc:
            raise ChangeRefused(_problems(exc)) from None
        # Apply first: a config the running agent cannot build (ConfigError) is refused whole and
        # never reaches the file, so the next start cannot fail on it either.
        try:
            restart = list(agent.apply_config(new))
        except ConfigError as exc:
            raise ChangeRefused(_problems(exc)) from None
        except Exception:
            log.exception("the agent failed to apply a config change; nothing was saved")
            _roll_back(agent, old)
            raise ChangeFailed("the running agent could not apply the change; nothing was saved") from None
        try:
            saved = store.save(new)
        except (ConfigError, OSError) as exc:
            log.error(
                "could not save the config file: %s", getattr(exc, "strerror", None) or type(exc).__name__
            )
            _roll_back(agent, old)
            raise ChangeFailed("could not save the config file; the change was undone") from None
    if any(k.startswith("api.auth.password_hash") for k in changed):
        state.tokens.revoke_all()  # a new password ends every session
    log.info(
        "config saved through the API; changed: %s; restart needed for: %s", changed, restart or "nothing"
    )
    return ChangeOutcome(saved, changed, sorted(set(restart)))
