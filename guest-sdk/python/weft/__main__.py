"""``python -m weft build SOURCE.py -o OUT.wasm``: builds a Python flow or
task component.

1. imports SOURCE.py here to find its ``@weft.flow`` (or
   ``@weft.task_component``) and derive the flow's parameter schema from
   its signature;
2. runs componentize-py on a small app module that exports it;
3. for a flow, embeds the flow's name and schema with ``weft component
   annotate`` (componentize-py cannot write custom sections).
"""

import argparse
import importlib.util
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

SDK = Path(__file__).resolve().parent


def wit_dir() -> Path:
    for candidate in (SDK / "wit", SDK.parents[2] / "wit" / "weft-flow@0.2.0"):
        if (candidate / "worlds.wit").is_file():
            return candidate
    sys.exit("weft build: cannot find the weft WIT files (weft/wit or the repository's wit/weft-flow@0.2.0)")


def tool(flag, env: str, name: str) -> str:
    found = flag or os.environ.get(env) or shutil.which(name)
    if not found:
        sys.exit(f"weft build: `{name}` not found: put it on PATH, set {env}, or pass --{name}")
    return found


def load(source: Path):
    sys.path.insert(0, str(source.parent))
    sys.path.insert(0, str(SDK.parent))
    spec = importlib.util.spec_from_file_location(source.stem, source)
    if spec is None or spec.loader is None:
        sys.exit(f"weft build: cannot import `{source}`")
    module = importlib.util.module_from_spec(spec)
    sys.modules[source.stem] = module
    spec.loader.exec_module(module)
    from weft._flows import registry

    return registry


def build(args) -> None:
    source = Path(args.source).resolve()
    if not source.is_file():
        sys.exit(f"weft build: `{args.source}` is not a Python file")
    registry = load(source)
    flow, task = registry["flow"], registry["task_component"]
    if flow and task:
        sys.exit(f"weft build: `{args.source}` marks both a flow and a task component; a component is one or the other")
    if not flow and not task:
        sys.exit(f"weft build: `{args.source}` marks no function with @weft.flow or @weft.task_component")
    world, entry = ("flow", "FlowEntry") if flow else ("task", "TaskEntry")
    output = Path(args.output).resolve()

    with tempfile.TemporaryDirectory(prefix="weft-build-") as temp:
        app = Path(temp) / "weft_app.py"
        app.write_text(f"import {source.stem}  # noqa: F401 (registers the entry point)\nfrom weft._entry import {entry}\n")
        command = [
            tool(args.componentize_py, "COMPONENTIZE_PY", "componentize-py"),
            "-d", str(wit_dir()), "-w", world,
            "componentize", "weft_app",
            "-p", temp, "-p", str(source.parent), "-p", str(SDK.parent),
            "-o", str(output),
        ]
        subprocess.run(command, check=True)
        if flow:
            from weft._schema import SchemaError, parameters_schema

            function, name = flow
            try:
                schema = parameters_schema(function)
            except SchemaError as e:
                sys.exit(f"weft build: {e}")
            schema_file = Path(temp) / "schema.json"
            schema_file.write_text(json.dumps(schema))
            subprocess.run(
                [tool(args.weft, "WEFT", "weft"), "component", "annotate", str(output),
                 "--flow-name", name, "--parameters-schema", str(schema_file)],
                check=True,
            )
    print(f"Built {world} component `{output}`", file=sys.stderr)


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m weft", description="Build weft components written in Python.")
    commands = parser.add_subparsers(dest="command", required=True)
    build_parser = commands.add_parser("build", help="build a flow or task component")
    build_parser.add_argument("source", help="the Python file with the @weft.flow or @weft.task_component")
    build_parser.add_argument("-o", "--output", required=True, help="the component file to write")
    build_parser.add_argument("--weft", help="the weft binary [default: $WEFT, else weft on PATH]")
    build_parser.add_argument("--componentize-py", dest="componentize_py",
                              help="componentize-py [default: $COMPONENTIZE_PY, else on PATH]")
    args = parser.parse_args()
    try:
        build(args)
    except subprocess.CalledProcessError as e:
        sys.exit(f"weft build: `{Path(e.cmd[0]).name}` failed (exit status {e.returncode})")


if __name__ == "__main__":
    main()
