"""The command line: --version, --help, --check with good and bad configs."""

import re
import subprocess

import pytest

from conftest import base_config, free_port, yaml_dump

pytestmark = pytest.mark.proxy_only


def run(binary, *args, timeout=15):
    return subprocess.run([str(binary), *map(str, args)], capture_output=True, text=True,
                          timeout=timeout, stdin=subprocess.DEVNULL)


def test_version(ringbouncer_bin):
    r = run(ringbouncer_bin, "--version")
    assert r.returncode == 0, r.stderr
    assert re.search(r"\d+\.\d+\.\d+", r.stdout), f"no version number in {r.stdout!r}"


def test_help(ringbouncer_bin):
    r = run(ringbouncer_bin, "--help")
    assert r.returncode == 0, r.stderr
    assert "--config" in r.stdout and "--check" in r.stdout, r.stdout


def test_unknown_option(ringbouncer_bin):
    r = run(ringbouncer_bin, "--no-such-option")
    assert r.returncode != 0
    assert r.stderr.strip(), "no message for an unknown option"


@pytest.mark.parametrize("flag", ["-c", "--config"])
def test_check_good_config(ringbouncer_bin, pg, tmp_path, flag):
    cfg = tmp_path / "good.yaml"
    cfg.write_text(yaml_dump(base_config(pg, free_port())))
    r = run(ringbouncer_bin, flag, cfg, "--check")
    assert r.returncode == 0, f"--check rejected a good config:\n{r.stdout}{r.stderr}\n{cfg.read_text()}"


BAD_CONFIG = """\
listen: ["127.0.0.1:6432"]
workers: lots
auth: {method: kerberos}
databases:
  appdb: {host: 127.0.0.1, port: 99999, dbname: appdb}
"""


def test_check_bad_config(ringbouncer_bin, tmp_path):
    cfg = tmp_path / "bad.yaml"
    cfg.write_text(BAD_CONFIG)
    r = run(ringbouncer_bin, "--check", "-c", cfg)
    out = r.stdout + r.stderr
    assert r.returncode == 1, f"exit {r.returncode}:\n{out}"
    # Every problem, each as FILE:LINE:COL: message (lines 2, 3 and 5 above).
    where = {int(m.group(1)) for m in re.finditer(re.escape(str(cfg)) + r":(\d+):(\d+): \S", out)}
    assert {2, 3, 5} <= where, f"expected problems reported at lines 2, 3 and 5, got {sorted(where)}:\n{out}"


def test_check_yaml_syntax_error(ringbouncer_bin, tmp_path):
    cfg = tmp_path / "syntax.yaml"
    cfg.write_text("listen: [\"127.0.0.1:6432\"\nworkers: 2\n  databases: {\n")
    r = run(ringbouncer_bin, "--check", "-c", cfg)
    out = r.stdout + r.stderr
    assert r.returncode == 1, f"exit {r.returncode}:\n{out}"
    assert re.search(re.escape(str(cfg)) + r":\d+:\d+: \S", out), out


def test_missing_config_file(ringbouncer_bin, tmp_path):
    r = run(ringbouncer_bin, "--check", "-c", tmp_path / "nope.yaml")
    assert r.returncode != 0
    assert "nope.yaml" in r.stdout + r.stderr


def test_bad_config_does_not_start(ringbouncer_bin, tmp_path):
    cfg = tmp_path / "bad.yaml"
    cfg.write_text(BAD_CONFIG)
    r = run(ringbouncer_bin, "-c", cfg, timeout=15)
    assert r.returncode != 0
    assert str(cfg) in r.stdout + r.stderr
