"""The package as a new user installs it: build the wheel, install it WITHOUT the lock.

    python3 scripts/wheel_smoke.py [--extras all] [--keep]

In a temporary directory: build the wheel from this checkout, create a fresh venv,
`pip install` the wheel alone (plain resolution: today's releases within the declared
ranges, no requirements.lock), check that no optional package came with the base
install, then in a temporary working and data directory: start `assay serve` on its
embedded defaults (SQLite, in-process cache) on a free loopback port, wait for /readyz,
fetch /docs and its assets, and the console's page and scripts, run `assay demo` against
the same data directory (it trains the pack shipped in the wheel), score one startup
with the demo's API key, and stop the server with SIGTERM, which must exit 0.

Any failure exits 1 with one line naming the step, and the server's log. Only the
standard library is used, so any Python 3.11+ runs it (`make smoke`, CI). The network is
used for pip (PyPI) only; everything else is loopback.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
READY_SECONDS = 120.0
DEMO_SECONDS = 600.0
STOP_SECONDS = 60.0
INSTALL_SECONDS = 1200.0
# What the extras bring; none of it may come with the base install, or the smoke could
# no longer show that Assay starts without it.
EXTRA_MODULES = (
    "sentry_sdk",
    "opentelemetry.sdk",
    "opentelemetry.instrumentation",
    "xgboost",
    "sklearn",
    "skops",
)
DOCS_ASSETS = ("swagger-ui-bundle.js", "swagger-ui.css", "favicon.png", "swagger-init.js")
SHOWN_VERSIONS = (
    "fastapi",
    "starlette",
    "pydantic",
    "sqlalchemy",
    "uvicorn",
    "numpy",
    "lightgbm",
    "onnxruntime",
    "cryptography",
)


class SmokeFailure(Exception):
    """A step failed; the message says which and why."""

    def __init__(self, message: str, log: str = "") -> None:
        super().__init__(message)
        self.log = log


def say(message: str) -> None:
    sys.stdout.write(f"smoke: {message}\n")
    sys.stdout.flush()


@contextmanager
def step(name: str) -> Iterator[None]:
    started = time.monotonic()
    say(f"{name} ...")
    yield
    say(f"{name}: ok ({time.monotonic() - started:.1f} s)")


def run(command: list[str], *, what: str, timeout: float, **options: object) -> str:
    try:
        done = subprocess.run(  # noqa: S603 - our own commands, no shell
            command,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
            **options,
        )
    except subprocess.TimeoutExpired as exc:
        raise SmokeFailure(f"{what} took longer than {timeout:.0f} s") from exc
    if done.returncode != 0:
        raise SmokeFailure(
            f"{what} exited with {done.returncode}", done.stdout + "\n" + done.stderr
        )
    return str(done.stdout)


def clean_environment(data_dir: Path, port: int) -> dict[str, str]:
    """This process's environment without what would change the install or Assay."""
    env = {
        name: value
        for name, value in os.environ.items()
        if not name.startswith(("ASSAY_", "PIP_CONSTRAINT", "PYTHON", "VIRTUAL_ENV"))
    }
    env.update(ASSAY_DATA_DIR=str(data_dir), ASSAY_HOST="127.0.0.1", ASSAY_PORT=str(port))
    return env


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def http(method: str, url: str, body: bytes | None = None, **headers: str) -> tuple[int, bytes]:
    if not url.startswith("http://127.0.0.1:"):
        raise ValueError(f"loopback only: {url}")
    request = urllib.request.Request(url, data=body, method=method, headers=headers)  # noqa: S310 - loopback http only, checked above
    try:
        with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310 - as above
            return int(response.status), bytes(response.read())
    except urllib.error.HTTPError as exc:
        return int(exc.code), bytes(exc.read())


def build_and_install(work: Path, extras: str) -> Path:
    venv = work / "venv"
    env = clean_environment(work / "unused", 0)
    with step("building the wheel"):
        run([sys.executable, "-m", "venv", str(venv)], what="python -m venv", timeout=120)
        pip = [str(venv / "bin" / "python"), "-m", "pip", "--disable-pip-version-check"]
        dist = work / "dist"
        run(
            [*pip, "wheel", "--quiet", "--no-deps", "--wheel-dir", str(dist), str(REPO)],
            what="pip wheel (the build backend comes from PyPI, as for a release)",
            timeout=INSTALL_SECONDS,
            env=env,
        )
        [wheel] = dist.glob("assay-*.whl")
        say(f"built {wheel.name}")
    target = f"{wheel}[{extras}]" if extras else str(wheel)
    with step(f"pip install {wheel.name}{f'[{extras}]' if extras else ''} without the lock"):
        run(
            [*pip, "install", "--quiet", target],
            what="pip install of the wheel",
            timeout=INSTALL_SECONDS,
            env=env,
        )
        frozen = run([*pip, "freeze"], what="pip freeze", timeout=120, env=env)
        (work / "installed.txt").write_text(frozen, encoding="utf-8")
        pins = (line.split("==", 1) for line in frozen.splitlines() if "==" in line)
        versions = {name.lower().replace("_", "-"): version for name, version in pins}
        shown = ", ".join(f"{name} {versions[name]}" for name in SHOWN_VERSIONS if name in versions)
        say(f"resolved: {shown} (all: {work / 'installed.txt'})")
    if not extras:
        probe = (
            "import importlib.util, json, sys\n"
            "def present(name):\n"
            "    try:\n"
            "        return importlib.util.find_spec(name) is not None\n"
            "    except ModuleNotFoundError:\n"
            "        return False\n"
            f"print(json.dumps([m for m in {EXTRA_MODULES!r} if present(m)]))\n"
        )
        found = json.loads(
            run([str(venv / "bin" / "python"), "-c", probe], what="probe", timeout=60, env=env)
        )
        if found:
            raise SmokeFailure(
                "the base install brought optional packages "
                f"({', '.join(found)}): a base dependency now requires them, so this smoke "
                "no longer shows that Assay starts without them"
            )
        say("the base install has no optional package: " + ", ".join(EXTRA_MODULES))
    return venv


def wait_until_ready(server: subprocess.Popen[bytes], base: str, log: Path) -> None:
    deadline = time.monotonic() + READY_SECONDS
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise SmokeFailure(
                f"assay serve exited with {server.returncode} before /readyz answered",
                log.read_text(encoding="utf-8", errors="replace"),
            )
        try:
            status, body = http("GET", f"{base}/readyz")
        except OSError:
            status, body = 0, b""
        if status == 200 and json.loads(body).get("status") == "ok":
            return
        time.sleep(0.2)  # polling, bounded by the deadline
    raise SmokeFailure(
        f"/readyz did not answer 200 within {READY_SECONDS:.0f} s",
        log.read_text(encoding="utf-8", errors="replace"),
    )


def check_docs(base: str) -> None:
    status, page = http("GET", f"{base}/docs")
    if status != 200 or b"swagger-ui" not in page:
        raise SmokeFailure(f"GET /docs answered {status}")
    for name in DOCS_ASSETS:
        status, content = http("GET", f"{base}/docs/{name}")
        if status != 200 or not content:
            raise SmokeFailure(f"GET /docs/{name} answered {status} ({len(content)} bytes)")


def check_console(base: str) -> None:
    """The console ships inside the wheel: its page, and every script the page loads."""
    status, page = http("GET", f"{base}/console/models")
    if status != 200 or b'<div id="root">' not in page:
        raise SmokeFailure(f"GET /console/models answered {status}: is the console in the wheel?")
    scripts = re.findall(rb'src="(/console/assets/[^"]+\.js)"', page)
    if not scripts:
        raise SmokeFailure("the console's index.html loads no script from /console/assets/")
    for script in scripts:
        status, content = http("GET", base + script.decode())
        if status != 200 or not content:
            raise SmokeFailure(f"GET {script.decode()} answered {status} ({len(content)} bytes)")


def run_demo(venv: Path, work: Path, env: dict[str, str]) -> tuple[str, bytes]:
    output = run(
        [str(venv / "bin" / "assay"), "demo"],
        what="assay demo",
        timeout=DEMO_SECONDS,
        cwd=work,
        env=env,
    )
    key = re.search(r"API key \(shown once\): (\S+)", output)
    body = re.search(r"-d '(.+)'", output)
    if key is None or body is None:
        raise SmokeFailure("assay demo printed no API key or no curl command", output)
    data_dir = Path(env["ASSAY_DATA_DIR"])
    trained = sorted(p.name for p in data_dir.glob("demo/startup_success-*/build/*"))
    if trained != ["startup_success_lgbm.txt", "startup_success_logreg.onnx"]:
        raise SmokeFailure(f"the demo trained {trained} in the data directory", output)
    site_packages = next((venv / "lib").glob("python3*/site-packages"))
    if any((site_packages / "assay" / "examples").rglob("build")):
        raise SmokeFailure("the demo wrote into the installed package", output)
    return key.group(1), body.group(1).encode()


def predict(base: str, key: str, body: bytes) -> str:
    status, answer = http(
        "POST",
        f"{base}/v1/models/startup-success/predict",
        body,
        **{"x-api-key": key, "content-type": "application/json"},
    )
    if status != 200:
        raise SmokeFailure(f"the prediction answered {status}: {answer[:500]!r}")
    [result] = json.loads(answer)["results"]
    score, label = result.get("score"), result.get("label")
    if not (isinstance(score, float) and 0 <= score <= 1) or label not in {
        "PASS",
        "CONDITIONAL PASS",
        "FAIL",
    }:
        raise SmokeFailure(f"the prediction is not a scored startup: {result}")
    return f"{label} (score {score:.3f})"


def stop(server: subprocess.Popen[bytes], log: Path) -> None:
    server.send_signal(signal.SIGTERM)
    try:
        code = server.wait(timeout=STOP_SECONDS)
    except subprocess.TimeoutExpired as exc:
        raise SmokeFailure(
            f"assay serve did not stop within {STOP_SECONDS:.0f} s of SIGTERM",
            log.read_text(encoding="utf-8", errors="replace"),
        ) from exc
    if code != 0:
        raise SmokeFailure(
            f"assay serve exited with {code} after SIGTERM (expected 0)",
            log.read_text(encoding="utf-8", errors="replace"),
        )


def smoke(work: Path, extras: str) -> None:
    venv = build_and_install(work, extras)
    home = work / "home"  # the user's working directory: nothing of the checkout
    home.mkdir()
    port = free_port()
    env = clean_environment(home / "data", port)
    base = f"http://127.0.0.1:{port}"
    log = work / "serve.log"
    with log.open("wb") as output:
        server = subprocess.Popen(  # noqa: S603 - our own command, no shell
            [str(venv / "bin" / "assay"), "serve"],
            cwd=home,
            env=env,
            stdout=output,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        with step(f"assay serve on {base}, waiting for /readyz"):
            wait_until_ready(server, base, log)
            check_docs(base)
            check_console(base)
        with step("assay demo (trains the pack shipped in the wheel)"):
            key, body = run_demo(venv, home, env)
        with step("one prediction with the demo's API key"):
            say(f"scored: {predict(base, key, body)}")
        with step("SIGTERM"):
            stop(server, log)
    finally:
        if server.poll() is None:
            os.killpg(server.pid, signal.SIGKILL)
            server.wait()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--extras", default="", help="install the wheel with these extras")
    parser.add_argument("--keep", action="store_true", help="keep the temporary directory")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="assay-smoke-"))
    started = time.monotonic()
    try:
        smoke(work, args.extras)
    except SmokeFailure as failure:
        if failure.log:
            tail = failure.log.strip()[-6000:]
            sys.stdout.write(f"----- output -----\n{tail}\n------------------\n")
        say(f"FAILED: {failure} (kept {work})")
        return 1
    say(f"passed in {time.monotonic() - started:.0f} s")
    if args.keep:
        say(f"kept {work}")
    else:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
