"""The container files stay true to the code: compose.yaml is valid, and every command it or
the Dockerfile runs is an entry point the package really installs. Pure: no network, no Docker.
"""

from __future__ import annotations

import json
import shlex
import subprocess
import sys
import tomllib
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
COMPOSE = ROOT / "compose.yaml"
DOCKERFILE = ROOT / "Dockerfile"
CLI_SOURCE = ROOT / "services" / "cli"


def _compose() -> dict[str, Any]:
    data = yaml.safe_load(COMPOSE.read_text(encoding="utf-8"))
    assert isinstance(data, dict)
    return data


def _services() -> dict[str, dict[str, Any]]:
    services = _compose()["services"]
    assert isinstance(services, dict)
    return services


def _entry_points() -> dict[str, str]:
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    scripts = pyproject["project"]["scripts"]
    assert isinstance(scripts, dict)
    return {str(name): str(target) for name, target in scripts.items()}


def _scripts() -> set[str]:
    return set(_entry_points())


def _module_file(target: str) -> Path:
    """``services.cli.main:main`` → the file that module lives in."""
    module = target.partition(":")[0]
    return ROOT.joinpath(*module.split(".")).with_suffix(".py")


def _built_here(service: dict[str, Any]) -> bool:
    build = service.get("build")
    context = build.get("context") if isinstance(build, dict) else build
    return context in (".", "./")


def _project_services() -> dict[str, dict[str, Any]]:
    return {name: svc for name, svc in _services().items() if _built_here(svc)}


def _dockerfile_final_stage() -> list[str]:
    """The Dockerfile's instructions after its last FROM, continuation lines joined."""
    text = DOCKERFILE.read_text(encoding="utf-8").replace("\\\n", " ")
    lines = [line.strip() for line in text.splitlines()]
    lines = [line for line in lines if line and not line.startswith("#")]
    last_from = max(i for i, line in enumerate(lines) if line.upper().startswith("FROM "))
    return lines[last_from:]


def _exec_form(instruction: str) -> list[str]:
    _, _, argument = instruction.partition(" ")
    argument = argument.strip()
    if argument.startswith("["):
        words = json.loads(argument)
        assert isinstance(words, list)
        return [str(word) for word in words]
    return shlex.split(argument)


def test_compose_file_matches_the_compose_spec() -> None:
    checker = Path(sys.executable).with_name("check-jsonschema")
    assert checker.exists(), f"check-jsonschema not installed next to {sys.executable}"
    result = subprocess.run(
        [str(checker), "--builtin-schema", "vendor.compose-spec", str(COMPOSE)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_every_command_is_a_list() -> None:
    for name, service in _services().items():
        for key in ("command", "entrypoint"):
            if key in service:
                assert isinstance(service[key], list), f"{name}.{key} must be a list"
        test = service.get("healthcheck", {}).get("test")
        if test is not None:
            assert isinstance(test, list), f"{name}.healthcheck.test must be a list"


def test_project_services_run_installed_entry_points() -> None:
    project = _project_services()
    assert {"migrate", "gateway", "importer"} <= set(project)
    scripts = _scripts()
    for name, service in project.items():
        command = service.get("command")
        assert isinstance(command, list), f"{name} has no command list"
        assert command, f"{name} has an empty command"
        assert command[0] in scripts, f"{name} runs {command[0]!r}, not one of {sorted(scripts)}"


def test_dm_subcommands_exist_in_the_cli() -> None:
    if not _module_file(_entry_points()["dm"]).exists():
        pytest.skip("the dm command line (services/cli) is not written yet")
    sources = sorted(CLI_SOURCE.rglob("*.py"))
    cli_text = "\n".join(path.read_text(encoding="utf-8") for path in sources)
    used = {
        svc["command"][1]
        for svc in _project_services().values()
        if svc.get("command", [None])[0] == "dm" and len(svc["command"]) > 1
    }
    assert "migrate" in used
    for subcommand in used:
        assert subcommand in cli_text, f"`dm {subcommand}` is not in services/cli"


def test_dockerfile_runs_an_entry_point() -> None:
    stage = _dockerfile_final_stage()
    starts = [line for line in stage if line.upper().startswith(("CMD ", "ENTRYPOINT "))]
    assert starts, "the final stage has no CMD or ENTRYPOINT"
    first_word = _exec_form(starts[0])[0]
    assert first_word in _scripts()
    assert any(line.upper() == "EXPOSE 8000" for line in stage)


def test_dockerfile_runs_as_a_user_and_installs_from_the_lock() -> None:
    stage = _dockerfile_final_stage()
    users = [line.split()[1] for line in stage if line.upper().startswith("USER ")]
    assert users, "the final stage runs as root"
    assert users[-1].split(":")[0] not in ("root", "0")
    text = DOCKERFILE.read_text(encoding="utf-8")
    assert "-r requirements.lock" in text
    assert "pip install --no-deps ." in text


def test_importers_scale_and_gateway_publishes_8000() -> None:
    services = _services()
    importer, gateway = services["importer"], services["gateway"]
    assert importer.get("deploy", {}).get("replicas", 1) > 1
    assert "container_name" not in importer, "a fixed name prevents scaling"
    assert not importer.get("ports"), "a fixed host port prevents scaling"
    published = [str(port) for port in gateway.get("ports", [])]
    assert any(port.endswith("8000:8000") for port in published), published
    assert gateway["environment"]["DM_GATEWAY_HOST"] == "0.0.0.0"


def test_gateway_and_importers_share_the_imports_volume() -> None:
    services = _services()
    root = "/srv/imports"
    for name in ("gateway", "importer"):
        service = services[name]
        assert service["environment"]["DM_IMPORTS_ROOT"] == root
        mounts = [str(volume) for volume in service.get("volumes", [])]
        assert f"imports:{root}" in mounts, f"{name} does not mount the imports volume"
