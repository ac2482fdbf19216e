"""Live tuning of one camera setting (the MQTT /set commands): validate whole, apply, persist.

The same path as a config change through the API: the new config is validated by the schema,
applied to the running agent, then saved atomically by the ConfigStore so it survives a restart.
The store saves it to the box's overlay (agent.local.yaml: only the keys that differ from the
installer's base), never to the base file a deploy renders (docs/config-ownership.md).
"""

from __future__ import annotations

import logging
from typing import Any

from pydantic import ValidationError

from edge_agent.config import commands
from edge_agent.config.loader import ConfigError, config_to_data, format_validation_error
from edge_agent.config.schema import AgentConfig
from edge_agent.publish.commands import CommandOutcome

log = logging.getLogger(__name__)


def with_setting(cfg: AgentConfig, camera: str, key: str, value: Any) -> AgentConfig:
    """A new validated config with one camera setting changed; raises ConfigError naming the key."""
    cmd = commands.BY_KEY.get(key)
    if cmd is None:
        raise ConfigError("command", [f"{key}: unknown setting; known: {', '.join(commands.KEYS)}"])
    data = config_to_data(cfg, reveal_secrets=True)
    for cam in data["cameras"]:
        if cam["name"] == camera:
            target = cam
            for name in cmd.path[:-1]:
                target = target.setdefault(name, {})
            target[cmd.path[-1]] = value
            break
    else:
        raise ConfigError("command", [f"cameras: no camera named {camera!r}"])
    try:
        return AgentConfig.model_validate(data)
    except ValidationError as exc:
        raise ConfigError("command", format_validation_error(exc)) from None


def apply_setting(agent: Any, store: Any, camera: str, key: str, value: Any) -> CommandOutcome:
    """Apply one setting to the running agent and save it (to the overlay, through the store);
    the outcome holds an error message (nothing changed) or the keys that need a restart."""
    lock = store.lock if store is not None else None
    try:
        if lock is not None:
            lock.acquire()
        current = store.config if store is not None else agent.config
        new = with_setting(current, camera, key, value)
        pending = agent.apply_config(new)
        if store is not None:
            try:
                store.save(new)
            except (ConfigError, OSError):
                agent.apply_config(current)
                raise
    except ConfigError as exc:
        return CommandOutcome(error="; ".join(exc.problems))
    except OSError as exc:
        return CommandOutcome(error=f"the on-box changes (overlay) could not be saved: {exc.strerror or exc}")
    finally:
        if lock is not None:
            lock.release()
    log.info("camera %s: %s set to %r%s", camera, key, value,
             f" (takes effect after a restart: {', '.join(pending)})" if pending else "")
    return CommandOutcome(restart_required=list(pending))
