"""The README's tour, followed as a new user would: every shell and Python
block from "Five-minute tour" up to the next top-level section runs in
order, in one shell, in an empty directory holding the files the tour
names, against a fresh `tern up` started there. A comment
`<!-- tour: up --tls -->` before a block restarts the deployment as that
command would. The tour's own comments say what each step shows; the
checks at the end hold it to them."""

import os
import re
import shlex
import subprocess
import tempfile
from pathlib import Path

from conftest import ROOT, _binary, free_ports

TOUR_START = "## Five-minute tour"
DIRECTIVE = re.compile(r"<!-- tour: (.+) -->")


def tour_steps(readme: str) -> list[tuple[str, str, int]]:
    """(kind, text, line) for each step: `sh` and `python` blocks, and
    `up` directives, in the order the README gives them."""
    lines = readme.splitlines()
    start = lines.index(TOUR_START)
    steps, block, kind = [], None, None
    for number, line in enumerate(lines[start + 1:], start + 2):
        if block is None and line.startswith("## "):
            break
        if block is not None:
            if line == "```":
                if kind in ("sh", "python"):
                    steps.append((kind, "\n".join(block), number - len(block) - 1))
                block = None
            else:
                block.append(line)
        elif line.startswith("```"):
            block, kind = [], line[3:].strip()
        elif match := DIRECTIVE.fullmatch(line.strip()):
            steps.append(("directive", match.group(1), number))
    assert block is None, "the README ends inside a code block"
    return steps


def script(steps, ports: dict[str, int]) -> str:
    """One bash script running the tour: the README's fixed ports become the
    free ones this test took, and `tern up` runs in the background as it
    would in the user's other shell."""
    out = [
        "set -eo pipefail",
        "exec 3<&0   # the test's pipe: tern exits when the test does",
        'up() { tern --exit-on-stdin-close up --config tern.toml "$@" <&3 >>tern.log 2>&1 & tern_pid=$!;'
        f' python3 wait_healthy.py "$@"; }}',
        "up",
        "for _ in $(seq 100); do grep -q '^export AWS_SECRET' tern.log && break; sleep 0.1; done",
        "grep '^export AWS_' tern.log > pasted.sh   # the two lines the tour says to paste",
        ". ./pasted.sh",
    ]
    for kind, text, line in steps:
        for default, port in (("9100", ports["us-east-1"]), ("9101", ports["eu-west-1"])):
            text = text.replace(f"127.0.0.1:{default}", f"127.0.0.1:{port}")
        out.append(f"echo {shlex.quote(f'### README line {line}: {kind}')} >&2")
        if kind == "sh":
            out.append(f"{{\n{text}\n}} </dev/null")
        elif kind == "python":
            out.append(f"python3 - <<'TOUR_PYTHON'\n{text}\nTOUR_PYTHON")
        else:
            command = text.split()
            assert command[0] == "up", f"unknown tour directive {text!r}"
            out.append(f"kill $tern_pid; wait $tern_pid || true; up {shlex.join(command[1:])}")
    out.append("kill $tern_pid; wait $tern_pid || true")
    return "\n".join(out) + "\n"


WAIT_HEALTHY = """
import ssl, sys, time, tomllib, urllib.request
tls = "--tls" in sys.argv
for region in tomllib.load(open("tern.toml", "rb"))["region"]:
    url = f"{'https' if tls else 'http'}://{region['listen']}/_tern/health"
    for _ in range(400):
        try:
            # The CA file appears once `tern up --tls` has made it.
            context = ssl.create_default_context(cafile="tern-data/tls/ca.pem") if tls else None
            if urllib.request.urlopen(url, context=context).status == 200:
                break
        except OSError:
            time.sleep(0.05)
    else:
        sys.exit(f"{url} never answered; see tern.log")
"""


def user_files(home: Path) -> None:
    """The files the tour names, small but of the kinds it says."""
    (home / "holiday.jpg").write_bytes(os.urandom(300_000))
    (home / "album").mkdir()
    for i in range(3):
        (home / "album" / f"{i}.jpg").write_bytes(os.urandom(50_000))
    (home / "big.iso").write_bytes(os.urandom(9 * 1024 * 1024))  # over boto3's multipart threshold
    (home / "secret.txt").write_text("the launch code is 0000\n")
    (home / "contract.pdf").write_bytes(b"%PDF-1.7\n" + os.urandom(20_000))


def test_the_readme_tour_works_in_order():
    steps = tour_steps((ROOT / "README.md").read_text())
    assert [s for s in steps if s[0] == "directive"], "the HTTPS section must restart the deployment with --tls"
    # A tour that stopped early may leave tern writing for a moment after
    # its lifeline closes; that must not hide the tour's own error.
    with tempfile.TemporaryDirectory(ignore_cleanup_errors=True) as workdir:
        home = Path(workdir)
        user_files(home)
        ports = dict(zip(["us-east-1", "eu-west-1"], free_ports(2)))
        config = 'data_dir = "tern-data"\n'
        for region, port in ports.items():
            config += f'[[region]]\nname = "{region}"\nlisten = "127.0.0.1:{port}"\n'
        (home / "tern.toml").write_text(config)
        (home / "wait_healthy.py").write_text(WAIT_HEALTHY)
        venv = Path(os.environ.get("VIRTUAL_ENV", ROOT / ".venv"))
        env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "TERN_ROOT_"))}
        env.update(
            PATH=f"{_binary().resolve().parent}:{venv / 'bin'}:{env['PATH']}",
            AWS_CONFIG_FILE="/dev/null",
            AWS_SHARED_CREDENTIALS_FILE="/dev/null",
            AWS_EC2_METADATA_DISABLED="true",
            AWS_PAGER="",
        )
        # Tern's lifeline: a pipe this test holds open until the tour ends.
        lifeline, hold = os.pipe()
        try:
            done = subprocess.run(
                ["bash", "-c", script(steps, ports)], cwd=home, env=env, stdin=lifeline,
                capture_output=True, text=True, timeout=600,
            )
        finally:
            os.close(lifeline)
            os.close(hold)
        log = (home / "tern.log").read_text()
        assert done.returncode == 0, f"the tour stopped:\n{done.stderr[-4000:]}\n--- tern.log\n{log[-3000:]}"
        said = done.stdout

        # What the tour's comments promise.
        assert "rule all -> photos-eu: ok" in said
        assert re.search(r"PENDING\s+0\b", said) and re.search(r"COMPLETED\s+1\b", said)
        assert '"COMPLETED"' in said
        assert re.search(r'"REPLICA",\s*"arn:aws:kms:eu-west-1:000000000000:key/', said)
        assert "the same bytes" in said
        assert (home / "copy.pdf").read_bytes() == (home / "contract.pdf").read_bytes()
        assert "album/0.jpg" in said  # the tarball, listed back out of `tern cse get`
        assert "PutBucketReplication" in said  # the audit trail's record of the rule
        assert "handed over sealed: the same key" in said and "re-encrypted under this region's key" in said
        assert "removed bucket tern-demo-cse-mrk-eu-west-1" in said  # tern demo --cleanup
