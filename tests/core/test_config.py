"""Configuration: Backstage's shape, merged files, ${VAR}, defaults, and errors that name file and key."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from greenroom.core.config import load_settings
from greenroom.core.errors import ConfigError

GREENROOM = str(Path(sys.executable).parent / "greenroom")


def test_no_file_gives_working_defaults(tmp_path: Path) -> None:
    s = load_settings([], env={"GREENROOM_HOME": str(tmp_path)})
    assert s.backend.listen.port == 7007 and s.backend.listen.host == "127.0.0.1"
    assert s.backend.database.client == "sqlite"
    assert s.catalog.refreshIntervalSeconds == 300
    assert "Component" in s.catalog.rules[0].allow


def test_later_files_win_and_maps_merge(tmp_path: Path) -> None:
    a = tmp_path / "a.yaml"
    a.write_text("backend:\n  listen: {host: 0.0.0.0, port: 8000}\ncatalog:\n  refreshIntervalSeconds: 60\n")
    b = tmp_path / "b.yaml"
    b.write_text("backend:\n  listen: {port: 9000}\n")
    s = load_settings([a, b], env={})
    assert (s.backend.listen.host, s.backend.listen.port) == ("0.0.0.0", 9000)
    assert s.catalog.refreshIntervalSeconds == 60


def test_environment_substitution(tmp_path: Path) -> None:
    f = tmp_path / "app-config.yaml"
    f.write_text("backend:\n  auth:\n    externalAccess:\n      - {type: static, options: {token: '${API_TOKEN}', subject: ci-bot}}\n"
                 "app:\n  title: 'costs $${DOLLARS}'\n")
    s = load_settings([f], env={"API_TOKEN": "s3cret-token-value"})
    assert s.backend.auth.externalAccess[0].options.token == "s3cret-token-value"
    assert s.app.title == "costs ${DOLLARS}"


def test_missing_variable_names_file_key_and_variable(tmp_path: Path) -> None:
    f = tmp_path / "app-config.yaml"
    f.write_text("backend:\n  auth:\n    externalAccess:\n      - {type: static, options: {token: '${API_TOKEN}'}}\n")
    with pytest.raises(ConfigError) as e:
        load_settings([f], env={})
    assert str(f) in e.value.message and "API_TOKEN" in e.value.message
    assert "backend.auth.externalAccess[0].options.token" in e.value.message


def test_wrong_type_names_file_key_and_expectation(tmp_path: Path) -> None:
    good = tmp_path / "base.yaml"
    good.write_text("app: {title: Portal}\n")
    bad = tmp_path / "override.yaml"
    bad.write_text("backend:\n  listen:\n    port: seven\n")
    with pytest.raises(ConfigError) as e:
        load_settings([good, bad], env={})
    msg = e.value.message
    assert msg.startswith(str(bad)) and "backend.listen.port" in msg and "integer" in msg


def test_malformed_yaml_reports_the_line(tmp_path: Path) -> None:
    f = tmp_path / "app-config.yaml"
    f.write_text("app:\n  title: ok\n  baseUrl: [unclosed\n")
    with pytest.raises(ConfigError) as e:
        load_settings([f], env={})
    assert f"{f}:" in e.value.message


def test_serve_exits_non_zero_before_serving_on_bad_config(tmp_path: Path) -> None:
    f = tmp_path / "app-config.yaml"
    f.write_text("backend:\n  database: {client: mysql}\n")
    r = subprocess.run([GREENROOM, "serve", "--config", str(f)], capture_output=True, text=True, timeout=60,
                       env={"GREENROOM_HOME": str(tmp_path), "PATH": "/usr/bin:/bin"})
    assert r.returncode == 2
    assert "backend.database.client" in r.stderr and str(f) in r.stderr
