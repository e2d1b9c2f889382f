"""Every command in the README's "Use it" section runs against a live mesh."""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

from semantik_runner.mesh import Mesh
from tests.conftest import ADMIN_PASSWORD, ADMIN_USER
from tests.e2e.conftest import CORPUS

REPO = Path(__file__).resolve().parents[2]


def readme_commands() -> list[str]:
    text = (REPO / "README.md").read_text(encoding="utf-8")
    section = text.split("## Use it", 1)[1].split("\n## ", 1)[0]
    return re.findall(r"```sh\n(.*?)```", section, flags=re.DOTALL)


def test_readme_examples_work(mesh: Mesh, tmp_path: Path) -> None:
    blocks = readme_commands()
    assert len(blocks) >= 7
    for relative, content in CORPUS.items():
        path = tmp_path / "docs" / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(content, encoding="utf-8")
    script = "set -euo pipefail\n" + "\n".join(
        f"echo '=== block {number}'\n{block}" for number, block in enumerate(blocks)
    )
    script = script.replace("localhost:8080", f"127.0.0.1:{mesh.ports.envoy}")
    script = script.replace("localhost:50051", mesh.grpc_target)
    env = {
        **os.environ,
        "PATH": f"{REPO / '.venv' / 'bin'}:{os.environ['PATH']}",
        "SEMANTIK_TARGET": mesh.grpc_target,
        "SEMANTIK_PASSWORD": ADMIN_PASSWORD,
    }
    assert "--user admin" in blocks[0] and ADMIN_USER == "admin"
    result = subprocess.run(
        ["bash", "-c", script],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=150,
        check=False,
    )
    output = result.stdout
    assert result.returncode == 0, output + result.stderr
    outputs = output.split("=== block ")[1:]
    cli, json_api, api_key, grpc_api, bad_input, sources = outputs[1:7]
    # The CLI's best hit for the lift question is the wings document.
    first_hit = next(line for line in cli.splitlines() if line.strip().startswith("1."))
    assert first_hit.rstrip().endswith("aero/wings.md")
    assert "collections/notes" in cli
    assert "space/orbits.txt" in json_api
    # The two-collection keyword search found the bread note in both, nothing else.
    assert '"collection":"collections/notes"' in json_api
    assert '"collection":"collections/papers"' in json_api
    assert "kitchen/bread.txt" in api_key
    assert "semantik.v1.SearchService" in grpc_api
    assert "kitchen/bread.txt" in grpc_api
    assert '"field":"top_k"' in bad_input.replace(" ", "")
    # The admin's `index ./docs` registered docs/ as the admin's source; ann
    # sees only the source granted to her, imports from it, and is refused a
    # server path.
    admin_sources, _, ann_part = sources.partition("registered sources/kitchen")
    assert "owner" in admin_sources and str(tmp_path / "docs") in admin_sources
    assert "sources/kitchen\treader" in ann_part
    assert "sources/default" not in ann_part
    assert "SUCCEEDED" in ann_part
    assert '"code":7' in ann_part.replace(" ", "") and "admin role" in ann_part
    # Her own files: the CLI uploaded the folder no source of hers holds, and
    # a JSON upload queued the import of a single file.
    assert "uploading 1 of 1 files" in ann_part
    assert "OPERATION_KIND_UPLOAD_DOCUMENTS" in ann_part
