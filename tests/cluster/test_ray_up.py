"""A real ``ray up`` over SSH on loopback: launch cluster.yaml, submit a driver, ``ray down``.

The node is this machine, reached as a real SSH node would be: an OpenSSH server started here on
127.0.0.1 (a free port, a throwaway host key, its own sshd_config; started and killed by PID),
logged into with a throwaway client key as a throwaway Unix user (``srt-<random>``, created with
``useradd`` and removed with ``userdel -r``). Ray's launcher has no SSH-port setting, so the test
reaches the port through ``auth.ssh_proxy_command`` (``tcp_relay.py``, what ``nc %h PORT`` does).

Why a throwaway user: ``ray up``/``ray down`` run ``ray stop`` on the head, which ends every Ray
process its user may signal. As that user it can reach only the processes of this test's cluster,
never root's (the test session's Ray, other engineers' tests); the test proves it by checking
that the session's Ray is alive and working after ``ray down``. The user's environment (set by
the sshd_config, like a node image would) keeps its Ray on loopback and its files in its home
(``RAY_TMPDIR``), so even the launcher's cluster state and ``ray stop``'s clean-up stay there.

What runs unchanged from cluster.yaml: the file mounts, the setup commands (a venv in the user's
home, this package pip-installed from the mounted sources, the venv put on PATH) and the start
commands' flags; the test rewrites only the addresses, ports, object-store size and the token's
source, and adds loopback and free-port flags (each rewrite must match, so a change to
cluster.yaml that the test no longer covers fails here). Offline, the test user's node "image"
provides the dependencies: a venv (Debian's python3.11, ``--without-pip``) holding its own copy
of the dependencies (``node_image.py``; owned by the user, so it works wherever the checkout
lives, a 0700 directory included), a ``ray`` launcher, and a pip.conf with no index and no build
isolation. So ``pip install ~/spark-ray`` builds and installs the package itself from the mount
while every dependency is already satisfied, as on a node whose image ships them.
"""

from __future__ import annotations

import contextlib
import getpass
import hashlib
import json
import os
import pwd
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psutil
import pytest
import ray
import yaml

from spark_ray.app.session import Session

from helpers import REPO, free_port
from node_image import copy_distributions, node_image_distributions

pytestmark = pytest.mark.slow

BIN = Path(sys.executable).parent
RELAY = Path(__file__).with_name("tcp_relay.py")
PREFIX = "SPARK_RAY_RESULT "
SSHD = "/usr/sbin/sshd"


def _sh(*cmd: str, user: str | None = None, check: bool = True, timeout: float = 120,
        **kw: Any) -> subprocess.CompletedProcess[str]:
    argv = ["runuser", "-u", user, "--", *cmd] if user else list(cmd)
    return subprocess.run(argv, capture_output=True, text=True, check=check, timeout=timeout,
                          **kw)


def _ensure_system_packages() -> str | None:
    """sshd and rsync (``ray up`` syncs file mounts with it); apt-get them if missing.
    Returns why the test cannot run, or None."""
    if os.geteuid() != 0:
        return "needs root (useradd, an sshd that can switch users)"
    missing = [pkg for pkg, path in (("openssh-server", SSHD), ("rsync", "/usr/bin/rsync"),
                                     ("openssh-client", "/usr/bin/ssh"))
               if not os.path.exists(path)]
    if missing and shutil.which("apt-get"):
        env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        with contextlib.suppress(subprocess.SubprocessError, OSError):
            _sh("apt-get", "update", "-qq", timeout=300, env=env, check=False)
            _sh("apt-get", "install", "-y", "-qq", *missing, timeout=600, env=env, check=False)
    still = [p for p, path in (("openssh-server", SSHD), ("rsync", "/usr/bin/rsync"),
                               ("openssh-client", "/usr/bin/ssh")) if not os.path.exists(path)]
    if still:
        return f"cannot install {', '.join(still)} (apt-get failed or is unavailable)"
    return None


def _node_python(user: str) -> str:
    """An interpreter the test user may run, of this venv's Python version (the node image's
    Python; this venv's own may live under /root, which other users cannot enter)."""
    want = f"{sys.version_info[0]}.{sys.version_info[1]}"
    candidates = [f"/usr/bin/python{want}", f"/usr/local/bin/python{want}",
                  shutil.which(f"python{want}") or "", os.path.realpath(sys.executable)]
    for cand in dict.fromkeys(c for c in candidates if c):
        out = _sh(cand, "-c", "import sys, venv; print('%d.%d' % sys.version_info[:2])",
                  user=user, check=False)
        if out.returncode == 0 and out.stdout.strip() == want:
            return cand
    pytest.skip(f"ray up over SSH: no python{want} that a new user may run (tried "
                f"{', '.join(dict.fromkeys(c for c in candidates if c))}); install it system-wide, "
                f"e.g. apt-get install python{want} python{want}-venv")


def _assert_self_contained(user: str, venv: Path, home: Path) -> None:
    """The node's Python imports ray, pip and the build backend from its own home only (plus
    the system interpreter's standard library): nothing points back into the checkout."""
    # pip imported last: on Python < 3.12 it turns setuptools' distutils shim off.
    probe = ("import json, sys, setuptools, wheel, ray, pip; "
             "print(json.dumps({'path': [p for p in sys.path if p], 'base': sys.base_prefix, "
             "'mods': [m.__file__ for m in (ray, pip, setuptools, wheel)]}))")
    out = _sh(str(venv / "bin" / "python"), "-c", probe, user=user, check=False)
    assert out.returncode == 0, f"the node image cannot import its dependencies:\n{out.stderr}"
    got = json.loads(out.stdout)
    allowed = (str(home), got["base"])
    outside = [p for p in [*got["path"], *got["mods"]] if not p.startswith(allowed)]
    assert outside == [], f"the node image reaches outside {allowed}: {outside}"


@dataclass
class Node:
    user: str
    home: Path
    port: int
    key: Path
    work: Path  # root-only: keys, sshd_config, logs, the test's cluster config


def _wait_port(port: int, proc: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + 30
    while True:
        assert proc.poll() is None, log.read_text()
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 1):
            return
        assert time.monotonic() < deadline, "sshd never listened"
        time.sleep(0.2)


def _kill_tree(pid: int) -> None:
    with contextlib.suppress(psutil.Error):
        parent = psutil.Process(pid)
        procs = [*parent.children(recursive=True), parent]
        for p in procs:
            with contextlib.suppress(psutil.Error):
                p.kill()
        psutil.wait_procs(procs, timeout=10)


def _user_processes(uid: int) -> list[psutil.Process]:
    out = []
    for p in psutil.process_iter(["uids"]):
        with contextlib.suppress(psutil.Error):
            if p.info["uids"] and p.info["uids"].real == uid:
                out.append(p)
    return out


@pytest.fixture(scope="module")
def node() -> Iterator[Node]:
    reason = _ensure_system_packages()
    if reason:
        pytest.skip(f"ray up over SSH: {reason}")
    work = Path(tempfile.mkdtemp(prefix="srt-up-"))
    user = f"srt-{uuid.uuid4().hex[:8]}"
    sshd: subprocess.Popen[bytes] | None = None
    _sh("useradd", "--create-home", "--shell", "/bin/bash", "--password", "*", user)
    try:
        pw = pwd.getpwnam(user)
        home = Path(pw.pw_dir)
        # Keys: a host key for the server, a client key for the launcher.
        _sh("ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(work / "host_key"))
        _sh("ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(work / "id_ed25519"))
        _sh("install", "-d", "-m", "700", str(home / ".ssh"), user=user)
        # Written as the user (so sshd's StrictModes accepts it), fed over stdin: the user
        # cannot read the root-only work dir.
        _sh("tee", str(home / ".ssh" / "authorized_keys"), user=user,
            input=(work / "id_ed25519.pub").read_text())
        _sh("chmod", "600", str(home / ".ssh" / "authorized_keys"), user=user)

        # The node "image": Python, the dependencies, a ray launcher, offline pip. The
        # dependencies are copied into the user's own venv (node_image.py), so the node never
        # reads the checkout's .venv, which may live where the user cannot look (a 0700 dir).
        py = _node_python(user)
        venv = home / "spark-ray-venv"
        _sh(py, "-m", "venv", "--without-pip", str(venv), user=user)
        (site,) = list((venv / "lib").glob("python*/site-packages"))
        copy_distributions(node_image_distributions(), site)
        _sh("chown", "-R", f"{user}:", str(venv))
        _assert_self_contained(user, venv, home)
        _sh("tee", str(venv / "bin" / "ray"), user=user,
            input=f"#!{venv}/bin/python\nimport sys\nfrom ray.scripts.scripts import main\n"
                  "sys.exit(main())\n")
        _sh("chmod", "755", str(venv / "bin" / "ray"), user=user)
        _sh("mkdir", "-p", str(home / ".config" / "pip"), user=user)
        # pip's quirk: "no-build-isolation = false" means *no* build isolation.
        _sh("tee", str(home / ".config" / "pip" / "pip.conf"), user=user,
            input="[global]\nno-index = true\nno-build-isolation = false\n")

        port = free_port()
        (work / "sshd_config").write_text(f"""\
Port {port}
ListenAddress 127.0.0.1
HostKey {work}/host_key
PidFile {work}/sshd.pid
AuthorizedKeysFile .ssh/authorized_keys
PubkeyAuthentication yes
PasswordAuthentication no
KbdInteractiveAuthentication no
PermitRootLogin no
AllowUsers {user}
UsePAM no
X11Forwarding no
PrintMotd no
PrintLastLog no
MaxStartups 100
MaxSessions 100
SetEnv RAY_TMPDIR={home}/t RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0 RAY_USAGE_STATS_ENABLED=0
Subsystem sftp internal-sftp
""")
        os.makedirs("/run/sshd", mode=0o755, exist_ok=True)  # sshd's privilege-separation dir
        _sh(SSHD, "-t", "-f", str(work / "sshd_config"))
        log = work / "sshd.log"
        with log.open("w") as fh:
            sshd = subprocess.Popen([SSHD, "-D", "-e", "-f", str(work / "sshd_config")],
                                    stdout=fh, stderr=subprocess.STDOUT)
        _wait_port(port, sshd, log)
        yield Node(user=user, home=home, port=port, key=work / "id_ed25519", work=work)
    finally:
        # Whatever of the cluster is still running belongs to the throwaway user (ray down
        # should have stopped it all): end those processes by PID, then the sshd tree.
        with contextlib.suppress(KeyError):
            uid = pwd.getpwnam(user).pw_uid
            for p in _user_processes(uid):
                with contextlib.suppress(psutil.Error):
                    p.kill()
        if sshd is not None:
            _kill_tree(sshd.pid)
        _sh("userdel", "--remove", user, check=False)
        shutil.rmtree(work, ignore_errors=True)
        # The launcher's SSH control-socket folder for this cluster (Ray's layout:
        # /tmp/ray_ssh_<user hash>/<cluster hash>); its sockets are gone with the sshd.
        with contextlib.suppress(OSError):
            h = (hashlib.sha256(getpass.getuser().encode()).hexdigest()[:10],
                 hashlib.sha256(user.encode()).hexdigest()[:10])
            Path(f"/tmp/ray_ssh_{h[0]}/{h[1]}").rmdir()


def _test_config(node: Node, token: Path) -> tuple[dict[str, Any], int]:
    """cluster.yaml with this machine's addresses, users and free ports; returns the config
    and the dashboard port."""
    cfg = yaml.safe_load((REPO / "cluster.yaml").read_text())
    cfg["cluster_name"] = node.user
    cfg["provider"].update(head_ip="127.0.0.1", worker_ips=[])
    cfg["auth"] = {"ssh_user": node.user, "ssh_private_key": str(node.key),
                   "ssh_proxy_command": f"{sys.executable} {RELAY} %h {node.port}"}
    # Absolute sources; a throwaway token instead of this machine's.
    cfg["file_mounts"] = {
        remote: str(token) if remote == "~/.ray/auth_token" else str((REPO / local).resolve())
        for remote, local in cfg["file_mounts"].items()}
    dash = free_port()
    rewrites = {
        r"--port=6379\b": f"--port={free_port()}",
        r"--dashboard-host=\S+": "--dashboard-host=127.0.0.1",
        r"--dashboard-port=8265\b": f"--dashboard-port={dash}",
        r"--metrics-export-port=8080\b": f"--metrics-export-port={free_port()}",
        r"--object-store-memory=\d+": "--object-store-memory=200000000",
    }
    start = cfg["head_start_ray_commands"]
    assert start[0] == "ray stop"  # kept: it runs as the throwaway user
    cmd = start[1]
    for pattern, repl in rewrites.items():
        cmd, n = re.subn(pattern, repl, cmd)
        assert n == 1, f"cluster.yaml head start command lacks {pattern}: {start[1]}"
    cmd += (f" --node-ip-address=127.0.0.1 --num-cpus=2"
            f" --ray-client-server-port={free_port()}"
            f" --dashboard-agent-listen-port={free_port()}"
            f" --dashboard-agent-grpc-port={free_port()}"
            f" --runtime-env-agent-port={free_port()}"
            f" --node-manager-port={free_port()} --object-manager-port={free_port()}")
    cfg["head_start_ray_commands"] = [start[0], cmd]
    return cfg, dash


def _launcher_env(node: Node, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "RAY_ADDRESS"}
    tmp = node.work / "launcher-tmp"
    tmp.mkdir(exist_ok=True)
    # The launcher's cluster state and config cache go to the test's dir, not /tmp/ray.
    env.update(RAY_TMPDIR=str(tmp), TMPDIR=str(tmp), RAY_USAGE_STATS_ENABLED="0",
               PATH=f"{BIN}{os.pathsep}{env.get('PATH', '')}", **extra)
    return env


def _ray(node: Node, *args: str, timeout: float = 300, **env: str) -> str:
    proc = subprocess.run([str(BIN / "ray"), *args], capture_output=True, text=True,
                          cwd=REPO, env=_launcher_env(node, **env), timeout=timeout,
                          stdin=subprocess.DEVNULL)
    out = proc.stdout + proc.stderr
    (node.work / "ray.log").open("a").write(f"\n$ ray {' '.join(args)}\n{out}")
    assert proc.returncode == 0, f"ray {args[0]} failed:\n{out[-5000:]}"
    return out


def _session_pids() -> list[int]:
    """PIDs of the test session's own Ray (root's): raylet, GCS, ..."""
    node = ray._private.worker.global_worker.node
    assert node is not None
    return [info.process.pid for infos in node.all_processes.values() for info in infos
            if info.process is not None]


@ray.remote(num_cpus=0)
def _ping() -> str:
    return "pong"


def test_ray_up_submit_a_driver_ray_down(node: Node, ray_session: Session) -> None:
    t0 = time.monotonic()
    root_pids = _session_pids()
    assert root_pids
    token = node.work / "auth_token"
    _sh(str(BIN / "ray"), "get-auth-token", "--generate",
        env={**os.environ, "HOME": str(node.work / "token-home")})
    shutil.copy(node.work / "token-home" / ".ray" / "auth_token", token)
    cfg, dash = _test_config(node, token)
    cfg_path = node.work / "cluster.yaml"
    cfg_path.write_text(yaml.safe_dump(cfg, sort_keys=False))
    timings: dict[str, float] = {}
    try:
        t = time.monotonic()
        up = _ray(node, "up", "-y", "--no-config-cache", "--log-style", "record",
                  str(cfg_path), timeout=600)
        timings["ray_up_s"] = time.monotonic() - t
        assert "Ray runtime started" in up or "ray start" in up, up[-3000:]

        # The setup commands installed the package from the mounted sources into the venv.
        where = _ray(node, "exec", "--no-config-cache", str(cfg_path),
                     "python -c 'import spark_ray; print(\"AT\", spark_ray.__file__)'")
        assert f"AT {node.home}/spark-ray-venv/lib/" in where, where[-3000:]

        # A driver as a Ray job, with the token the cluster was given.
        t = time.monotonic()
        lake = node.home / "lake"
        job = _ray(node, "job", "submit", "--address", f"http://127.0.0.1:{dash}",
                   "--working-dir", str(REPO), "--", "python", "drivers/ingest.py",
                   "--store", str(lake), "--synth", "BTCUSDT", "--interval", "1h",
                   "--start", "2024-01-01", "--end", "2024-01-08",
                   RAY_AUTH_MODE="token", RAY_AUTH_TOKEN_PATH=str(token))
        timings["job_s"] = time.monotonic() - t
        lines = [ln for ln in job.splitlines() if ln.startswith(PREFIX)]
        assert lines, job[-3000:]
        res = json.loads(lines[-1][len(PREFIX):])
        assert res["series"] == [{"symbol": "BTCUSDT", "interval": "1h", "present": 168,
                                  "missing": 0}]
        assert list(lake.glob("candles/**/*.parquet"))  # written by the cluster's user
        assert (lake / "candles").owner() == node.user
    finally:
        t = time.monotonic()
        down = _ray(node, "down", "-y", "--log-style", "record", str(cfg_path), timeout=300)
        timings["ray_down_s"] = time.monotonic() - t

    # ray down ran `ray stop` as the throwaway user: its cluster is gone ...
    uid = pwd.getpwnam(node.user).pw_uid
    deadline = time.monotonic() + 60
    while (left := [p.pid for p in _user_processes(uid)]) and time.monotonic() < deadline:
        time.sleep(1)
    assert left == [], f"processes of {node.user} outlived ray down: {left}\n{down[-3000:]}"
    # ... and root's Ray (this test session's) is untouched and still works, although that
    # `ray stop` did go for it (it signals every Ray process it finds; the kernel refused).
    assert "Could not terminate" in down, down[-3000:]
    assert all(psutil.pid_exists(pid) for pid in root_pids)
    assert ray.get(_ping.remote(), timeout=60) == "pong"
    timings["total_s"] = time.monotonic() - t0
    print("ray up timings:", json.dumps({k: round(v, 1) for k, v in timings.items()}))


def test_sshd_needs_the_throwaway_key(node: Node) -> None:
    """The server really authenticates: no key, no login (so the test's SSH is real SSH)."""
    proxy = f"ProxyCommand={sys.executable} {RELAY} %h {node.port}"
    base = ["ssh", "-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null",
            "-o", "BatchMode=yes", "-o", "IdentitiesOnly=yes", "-o", proxy]
    ok = subprocess.run([*base, "-i", str(node.key), f"{node.user}@127.0.0.1", "id -un"],
                        capture_output=True, text=True, timeout=60)
    assert ok.returncode == 0 and ok.stdout.strip() == node.user, ok.stderr
    other = node.work / "other_key"
    _sh("ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(other))
    bad = subprocess.run([*base, "-i", str(other), f"{node.user}@127.0.0.1", "id -un"],
                         capture_output=True, text=True, timeout=60)
    assert bad.returncode != 0 and "Permission denied" in bad.stderr
