"""Workflow files that live outside .github/workflows/, written out so that actionlint and zizmor lint them.

`make lint-workflows` and tests/test_action.py run ``python -m tests.workflow_lint OUTDIR``, which writes:

- ``readme-example.yml``: the calling workflow of README's "Use it in your workflow" section (its first
  ```yaml block), exactly as a user would copy it;
- ``action-steps.yml``: action.yml's composite steps as one job of a reusable workflow whose ``workflow_call``
  inputs are the action's inputs. actionlint checks workflows only; this way it checks the action's
  expressions, contexts, step outputs and shell steps too. (zizmor audits action.yml itself.)
"""

from __future__ import annotations

import re
import sys
from pathlib import Path
from typing import Any

import yaml

REPO_ROOT = Path(__file__).resolve().parent.parent
README_SECTION = "## Use it in your workflow"


def readme_example(readme: Path = REPO_ROOT / "README.md") -> str:
    """The first ```yaml block of README's "Use it in your workflow" section."""
    text = readme.read_text(encoding="utf-8")
    start = text.index(README_SECTION)
    end = text.find("\n## ", start + len(README_SECTION))
    section = text[start : end if end != -1 else len(text)]
    found = re.search(r"^```yaml\n(.*?)^```$", section, re.MULTILINE | re.DOTALL)
    if found is None:
        raise ValueError(f"no ```yaml block in README's {README_SECTION!r}")
    return found.group(1)


def action_as_workflow(action: Path = REPO_ROOT / "action.yml") -> str:
    """action.yml's composite steps as a workflow actionlint can check."""
    definition: dict[str, Any] = yaml.safe_load(action.read_text(encoding="utf-8"))
    inputs = {
        name: {"description": spec.get("description", ""), "required": bool(spec.get("required", False)),
               "type": "string", **({"default": spec["default"]} if "default" in spec else {})}
        for name, spec in definition["inputs"].items()
    }  # fmt: skip
    workflow = {
        "name": f"{definition['name']} (action.yml's steps, for actionlint)",
        "on": {"workflow_call": {"inputs": inputs}},
        "permissions": {},
        "jobs": {"action": {"runs-on": "ubuntu-latest", "steps": definition["runs"]["steps"]}},
    }
    return yaml.safe_dump(workflow, sort_keys=False, width=1000)


def write(outdir: Path) -> list[Path]:
    outdir.mkdir(parents=True, exist_ok=True)
    written = []
    for name, text in (("readme-example.yml", readme_example()), ("action-steps.yml", action_as_workflow())):
        path = outdir / name
        path.write_text(text, encoding="utf-8")
        written.append(path)
    return written


if __name__ == "__main__":
    for path in write(Path(sys.argv[1])):
        print(path)
