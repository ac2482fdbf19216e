"""ConfigStore: atomic saves with a backup, refusal of bad configs, and SIGKILL safety."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml
from agent_impl import write_config
from pydantic import SecretStr

from edge_agent.config.layers import load_layers
from edge_agent.config.loader import ConfigError, load_config
from edge_agent.config.store import ConfigStore

HERE = Path(__file__).resolve().parent


def test_save_keeps_backup(config_path):
    store = ConfigStore(config_path)
    base_bytes = config_path.read_bytes()
    saved = store.save(store.config.model_copy(update={"site": "north"}))
    assert saved.site == "north" and store.config.site == "north"
    assert load_config(config_path).site == "north"
    assert config_path.read_bytes() == base_bytes  # the installer's base is never written
    assert yaml.safe_load(store.overlay_path.read_text()) == {"site": "north"}
    assert store.overlay_path.stat().st_mode & 0o777 == 0o600
    store.save(store.config.model_copy(update={"site": "south"}))
    assert yaml.safe_load(store.backup_path.read_text()) == {"site": "north"}  # the previous overlay
    # a secret changed on the box is written to the overlay in clear (the file round-trips)
    mqtt = store.config.publish.mqtt.model_copy(update={"password": SecretStr("new-pass-1")})
    store.save(store.config.model_copy(update={"publish": store.config.publish.model_copy(update={"mqtt": mqtt})}))
    assert load_config(config_path).publish.mqtt.password.get_secret_value() == "new-pass-1"
    assert [p.name for p in config_path.parent.iterdir() if p.name.startswith(".")] == []


def test_config_that_does_not_round_trip_is_not_written(config_path):
    store = ConfigStore(config_path)
    before = config_path.read_bytes()
    bad = store.config.model_copy(update={"site": "x"})
    object.__setattr__(bad, "site", "not valid!")  # bypass validation: the store re-validates
    with pytest.raises(ConfigError):
        store.save(bad)
    assert config_path.read_bytes() == before and store.config.site == "lab"


def test_stale_temp_files_are_removed(config_path):
    stale = config_path.parent / f".{config_path.name}.tmp-abc"
    stale.write_text("half")
    ConfigStore(config_path)
    assert not stale.exists()


def test_sigkill_during_saves_never_leaves_a_bad_file(tmp_path):
    """A process saving in a loop is killed at random moments; the file always parses and validates."""
    path = tmp_path / "agent.yaml"
    write_config(path, None)
    rng = random.Random(7)
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(HERE.parents[1]), os.environ.get("PYTHONPATH", "")]),
    }
    sites = set()
    for _ in range(8):
        proc = subprocess.Popen(
            [sys.executable, str(HERE / "save_loop.py"), str(path)], stdout=subprocess.PIPE, env=env
        )
        assert proc.stdout.readline().strip() == b"ready"
        start_site = load_config(path).site
        deadline = time.monotonic() + 30
        while load_config(path).site == start_site:  # at least one save went through (busy machines)
            assert time.monotonic() < deadline, "the save loop made no progress"
            time.sleep(0.01)
        time.sleep(rng.uniform(0.0, 0.3))  # then kill at a random moment, often mid-save
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
        assert proc.returncode == -signal.SIGKILL
        assert path.stat().st_size > 0
        cfg = load_config(path)  # parses and validates, or raises
        assert cfg.site.startswith("s") or cfg.site == "lab"
        sites.add(cfg.site)
        bak = path.with_name("agent.local.yaml.bak")  # the previous overlay
        if bak.exists():
            load_layers(path, bak)
    assert len(sites) >= 6, sites  # the loop really did save between kills
    ConfigStore(path)  # a restart cleans up what the kills left
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []
