"""The installer's base config + the box's overlay: merge, errors, saves and reset (real files)."""

from __future__ import annotations

import logging

import pytest
import yaml

from edge_agent.cli import main as edge_agent
from edge_agent.config import overlay as ov
from edge_agent.config.check import main as check_main
from edge_agent.config.layers import load_layers
from edge_agent.config.loader import ConfigError, config_to_data, load_config
from edge_agent.config.schema import AgentConfig, MotionConfig
from edge_agent.config.store import ConfigStore

BASE = """\
site: lab
cameras:
  - name: door
    source: {file: door.avi}
  - name: yard
    source: {url: "rtsp://viewer:cam-pass-9@10.0.0.5/s"}
    motion:
      sensitivity: 0.7
      threshold: 30
publish:
  sink: mqtt
  mqtt: {host: broker, password: mqtt-pass-123}
"""

ZONE = {"name": "gate", "points": [[0.1, 0.1], [0.9, 0.1], [0.9, 0.9]]}
MASK = {"points": [[0.0, 0.0], [0.2, 0.0], [0.2, 0.2]]}


@pytest.fixture
def base(tmp_path):
    path = tmp_path / "agent.yaml"
    path.write_text(BASE)
    return path


def write_overlay(base, text: str):
    path = ov.overlay_path_for(base)
    path.write_text(text)
    return path


def changed(cfg: AgentConfig, edit) -> AgentConfig:
    data = config_to_data(cfg, reveal_secrets=True)
    edit(data)
    return AgentConfig.model_validate(data)


def test_overlay_path_is_derived_from_the_base_path(tmp_path):
    assert ov.overlay_path_for(tmp_path / "agent.yaml") == tmp_path / "agent.local.yaml"
    assert ov.overlay_path_for("/etc/nw/site.yml").name == "site.local.yml"
    assert ov.overlay_path_for("/etc/nw/agent").name == "agent.local"


def test_overlay_wins_and_untouched_keys_come_from_the_base(base):
    write_overlay(base, "site: north\ncameras:\n  - name: yard\n    motion:\n      sensitivity: 0.9\n")
    cfg = load_config(base)
    assert cfg.site == "north"
    yard = cfg.camera("yard")
    assert yard.motion.sensitivity == 0.9  # the overlay wins
    assert yard.motion.threshold == 30  # the base's value, the overlay does not name it
    assert yard.source.url == "rtsp://viewer:cam-pass-9@10.0.0.5/s"
    assert cfg.camera("door").motion == MotionConfig()
    assert cfg.publish.mqtt.password.get_secret_value() == "mqtt-pass-123"


def test_cameras_are_matched_by_name_not_position(base):
    # the overlay lists yard first and door second; the base has door first
    write_overlay(base, f"""\
cameras:
  - name: yard
    motion: {{zones: [{yaml.safe_dump(ZONE, default_flow_style=True).strip()}]}}
  - name: door
    motion: {{masks: [{yaml.safe_dump(MASK, default_flow_style=True).strip()}]}}
""")
    cfg = load_config(base)
    assert [c.name for c in cfg.cameras] == ["door", "yard"]  # the base's list and order
    assert [m.points for m in cfg.camera("door").motion.masks] == [MASK["points"]]
    assert cfg.camera("door").motion.zones == []
    assert [z.name for z in cfg.camera("yard").motion.zones] == ["gate"]
    assert cfg.camera("yard").motion.masks == []


def test_null_in_the_overlay_removes_the_key_so_the_default_applies(base):
    write_overlay(base, "cameras:\n  - name: door\n    source: {file: null, url: 'rtsp://cam.local/1'}\n"
                        "  - name: yard\n    motion: {sensitivity: null}\n")
    cfg = load_config(base)
    assert cfg.camera("door").source.url == "rtsp://cam.local/1" and cfg.camera("door").source.file is None
    assert cfg.camera("yard").motion.sensitivity == MotionConfig().sensitivity


def test_a_bad_overlay_value_is_refused_whole_naming_the_overlay_file_key_and_line(base, capsys):
    overlay = write_overlay(base, """\
site: north
cameras:
  - name: yard
    motion:
      sensitivity: 5
      treshold: 3
""")
    with pytest.raises(ConfigError) as info:
        load_config(base)
    err = info.value
    assert err.source == str(overlay)
    assert "cameras.yard.motion.sensitivity (line 5): Input should be less than or equal to 1" in err.problems
    assert "cameras.yard.motion.treshold (line 6): unknown key" in err.problems
    assert any(str(base) in p and "DELETE /api/config/overlay" in p for p in err.problems)
    # refused whole: the valid key (site) does not apply either; the agent and check-config refuse
    assert edge_agent(["check-config", str(base)]) == 2
    printed = capsys.readouterr().err
    assert str(overlay) in printed and "sensitivity (line 5)" in printed


def test_a_merge_that_breaks_a_rule_across_keys_names_the_overlay(base):
    # the box switched door to a URL without removing the base's file: two sources
    write_overlay(base, "cameras:\n  - name: door\n    source:\n      url: 'rtsp://cam.local/1'\n")
    with pytest.raises(ConfigError) as info:
        load_config(base)
    assert info.value.source.endswith("agent.local.yaml")
    assert info.value.problems[0].startswith("cameras.door.source (line 3): Value error, give exactly one")


@pytest.mark.parametrize(
    "text,expected",
    [
        ("cameras: {door: {}}\n", "cameras (line 1): must be a list"),
        ("cameras:\n  - motion: {sensitivity: 0.2}\n", "cameras.0 (line 2): each entry needs the name"),
        ("cameras:\n  - name: door\n  - name: door\n", "cameras.door (line 3): named twice"),
        ("api:\n  path_roots: [/]\n", "api.path_roots (line 2): may be set only in the base config file"),
        ("site: [unclosed\n", "not valid YAML (line 2)"),
        ("- just\n- a list\n", "must hold a mapping"),
        ("a: &x 1\nb: *x\n", "anchors and aliases"),
    ],
)
def test_overlay_shape_errors_name_the_line(base, text, expected):
    write_overlay(base, text)
    with pytest.raises(ConfigError) as info:
        load_config(base)
    assert info.value.source.endswith("agent.local.yaml")
    assert any(expected in p for p in info.value.problems), info.value.problems


def test_base_errors_still_name_the_base(base):
    base.write_text(BASE.replace("threshold: 30", "threshold: 300"))
    write_overlay(base, "site: north\n")
    with pytest.raises(ConfigError) as info:
        load_config(base)
    assert info.value.source == str(base)
    assert info.value.problems == ["cameras.1.motion.threshold (line 9): Input should be less than or equal to 255"]


def test_a_camera_the_base_no_longer_has_is_ignored_with_a_warning(base, caplog):
    write_overlay(base, "cameras:\n  - name: garage\n    motion: {sensitivity: 0.1}\n"
                        "  - name: yard\n    motion: {sensitivity: 0.2}\n")
    with caplog.at_level(logging.WARNING):
        layers = load_layers(base)
    assert layers.ignored_cameras == ["garage"]
    assert [c.name for c in layers.config.cameras] == ["door", "yard"]
    assert layers.config.camera("yard").motion.sensitivity == 0.2  # the rest applies
    assert any("'garage'" in r.getMessage() and "ignored" in r.getMessage() for r in caplog.records)

    # the box keeps the entry on its next save (the camera may come back); a reset drops it
    store = ConfigStore(base)
    store.save(changed(store.config, lambda d: d.update(site="north")))
    on_disk = yaml.safe_load(store.overlay_path.read_text())
    assert on_disk["site"] == "north"
    assert {"name": "garage", "motion": {"sensitivity": 0.1}} in on_disk["cameras"]
    store.reset_overlay()
    assert load_layers(base).ignored_cameras == []


def test_check_reports_what_the_overlay_overrides(base, capsys):
    write_overlay(base, "cameras:\n  - name: yard\n    motion: {masks: []}\n  - name: gone\n    enabled: false\n")
    assert check_main([str(base)]) == 0
    out = capsys.readouterr().out
    assert "valid (2 camera(s), site lab)" in out
    assert "override 2 key(s) of the base: cameras.yard.motion.masks, cameras.gone.enabled" in out
    assert "camera 'gone' is not in the base" in out
    other = base.with_name("other.local.yaml")  # --overlay names the file (the deploy's temp base)
    other.write_text("cameras:\n  - name: yard\n    motion: {sensitivity: 3}\n")
    assert check_main([str(base), "--overlay", str(other)]) == 2
    assert "cameras.yard.motion.sensitivity (line 3)" in capsys.readouterr().err


def test_save_writes_only_the_changed_keys_to_the_overlay_and_never_the_base(base):
    before = base.read_bytes()
    store = ConfigStore(base)

    def edit(d):
        d["cameras"][1]["motion"]["zones"] = [ZONE]
        d["cameras"][1]["motion"]["masks"] = [MASK]
        d["cameras"][0]["low_light"]["ratio"] = 4.0

    new = changed(store.config, edit)
    saved = store.save(new)
    assert saved == new and store.config == new
    assert base.read_bytes() == before
    data = yaml.safe_load(store.overlay_path.read_text())
    assert data == {
        "cameras": [
            {"name": "door", "low_light": {"ratio": 4.0}},
            {"name": "yard", "motion": {"masks": [MASK], "zones": [ZONE]}},
        ]
    }
    assert "mqtt-pass-123" not in store.overlay_path.read_text()  # unchanged secrets stay in the base
    assert store.overlay_path.stat().st_mode & 0o777 == 0o600
    assert load_config(base) == new  # the next start reads what was saved
    assert store.overlay_path.read_text().startswith("# On-box changes over agent.yaml")

    # the next save keeps the previous overlay as .bak; going back to the base's values removes it
    store.save(changed(new, lambda d: d.update(site="north")))
    assert yaml.safe_load(store.backup_path.read_text()) == data
    store.save(store.base)
    assert not store.overlay_path.exists() and load_config(base) == store.base
    assert sorted(p.name for p in base.parent.iterdir()) == ["agent.local.yaml.bak", "agent.yaml"]


def test_reset_removes_the_overlay_and_the_base_applies(base):
    store = ConfigStore(base)
    store.save(changed(store.config, lambda d: d["cameras"][1]["motion"].update(zones=[ZONE])))
    assert store.overlay_path.exists()
    applied = []
    result = store.reset_overlay(applied.append)
    assert applied == [result] and result == load_config(base) == store.config == store.base
    assert result.camera("yard").motion.zones == []
    assert not store.overlay_path.exists() and store.backup_path.exists()
    assert store.overlay == {}


def test_reset_refused_by_the_agent_keeps_the_overlay(base):
    store = ConfigStore(base)
    store.save(changed(store.config, lambda d: d["cameras"][1]["motion"].update(zones=[ZONE])))
    text = store.overlay_path.read_text()

    def refuse(_cfg):
        raise ConfigError("live config", ["cameras.0.faces: detector cannot be built"])

    with pytest.raises(ConfigError):
        store.reset_overlay(refuse)
    assert store.overlay_path.read_text() == text
    assert [z.name for z in store.config.camera("yard").motion.zones] == ["gate"]


@pytest.mark.parametrize(
    "edit",
    [
        lambda d: d["cameras"].append({**d["cameras"][0], "name": "garage"}),
        lambda d: d["cameras"].pop(0),
        lambda d: d["cameras"][0].update(name="front"),
        lambda d: d["cameras"].reverse(),
    ],
    ids=["add", "remove", "rename", "reorder"],
)
def test_the_camera_list_belongs_to_the_base(base, edit):
    store = ConfigStore(base)
    with pytest.raises(ConfigError) as info:
        store.save(changed(store.config, edit))
    assert info.value.problems[0].startswith("cameras: the camera list belongs to the base config")
    assert not store.overlay_path.exists()


def test_merge_of_the_diff_gives_back_the_new_config(base):
    store = ConfigStore(base)
    base_data = yaml.safe_load(BASE)

    def edit(d):
        d["site"] = "north"
        d["cameras"][0]["source"] = {"url": "rtsp://a:b@c/1", "loop": False}
        d["cameras"][1]["motion"] = {"sensitivity": 0.1}  # back to defaults except one key
        d["cameras"][1]["health"]["ignore"] = ["frozen"]
        d["publish"]["mqtt"]["password"] = "new-pass"
        d["api"]["auth"] = {"token_ttl_s": 120}

    new = changed(store.config, edit)
    patch = ov.diff(config_to_data(store.base, reveal_secrets=True), config_to_data(new, reveal_secrets=True))
    merged, ignored = ov.merge(base_data, patch)
    assert ignored == [] and AgentConfig.model_validate(merged) == new
    assert ov.leaf_keys(patch) == [
        "site",
        "cameras.door.source.file",
        "cameras.door.source.url",
        "cameras.yard.motion.threshold",
        "cameras.yard.motion.sensitivity",
        "cameras.yard.health.ignore",
        "publish.mqtt.password",
        "api.auth.token_ttl_s",
    ]
    assert patch["cameras"][0]["source"]["file"] is None


def test_stale_temp_files_of_both_files_are_removed(base):
    for name in (".agent.yaml.tmp-abc", ".agent.local.yaml.tmp-def"):
        (base.parent / name).write_text("half")
    ConfigStore(base)
    assert sorted(p.name for p in base.parent.iterdir()) == ["agent.yaml"]
