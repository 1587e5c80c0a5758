"""``scaleguard serve`` and ``scaleguard token`` refusals, and the token file format."""

from __future__ import annotations

import hashlib
import re

import pytest

from scaleguard.cli import main
from scaleguard.errors import ConfigError
from scaleguard.service import check_token, hash_token, load_tokens

GOOD = "a-long-enough-token-0123"


def test_token_file_holds_hashes_and_plain_tokens(tmp_path):
    path = tmp_path / "tokens"
    path.write_text(f"# writers\n\n{hash_token(GOOD)}\n  other-token-abcdefghij  \n")
    digests = load_tokens(path)
    assert len(digests) == 2
    assert check_token(GOOD, digests) and check_token("other-token-abcdefghij", digests)
    assert not check_token("a-long-enough-token-0124", digests)
    assert not check_token("", digests) and not check_token(None, digests)
    assert digests[0] == hashlib.sha256(GOOD.encode()).digest()


@pytest.mark.parametrize("text, message", [
    ("", "no token in the file"),
    ("# only a comment\n", "no token in the file"),
    (f"{GOOD}\nabc123\n", "line 2: token too short"),
    ("sha256:abc\n", "line 1: expected sha256: and 64 hex digits"),
])
def test_bad_token_files_are_refused_naming_the_line(tmp_path, text, message):
    path = tmp_path / "tokens"
    path.write_text(text)
    with pytest.raises(ConfigError, match=message) as caught:
        load_tokens(path)
    assert "abc123" not in str(caught.value)  # a message never shows a token


def test_a_missing_token_file(tmp_path):
    with pytest.raises(ConfigError, match="cannot read the token file"):
        load_tokens(tmp_path / "absent")


@pytest.mark.parametrize("args, message", [
    (["--token-file", "{tmp}/absent"], "cannot read the token file"),
    (["--token-file", "{tmp}/short"], "line 1: token too short"),
    (["--max-body", "0"], "--max-body"),
    (["--max-body", "1.5"], "--max-body"),
    (["--max-body", "4 parsecs"], "--max-body"),
    (["--port", "70000"], "port"),
    (["--store", " "], "--store"),
    (["--db", " "], "--store"),
    (["--store", "a.duckdb", "--db", "b.duckdb"], "--db: is the old name of --store"),
])
def test_serve_refuses_bad_options_with_status_2(tmp_path, capsys, args, message):
    (tmp_path / "short").write_text("abc\n")
    status = main(["serve", *[a.format(tmp=tmp_path) for a in args]])
    err = capsys.readouterr().err
    assert status == 2
    assert err.startswith("scaleguard: error: ") and message in err
    assert err.count("\n") == 1


def test_token_command_appends_a_hash_and_prints_the_token_once(tmp_path, capsys):
    path = tmp_path / "tokens"
    assert main(["token", str(path)]) == 0
    assert main(["token", str(path)]) == 0
    printed = [line for line in capsys.readouterr().out.splitlines() if line.strip()]
    tokens = [line for line in printed if re.fullmatch(r"[A-Za-z0-9_-]{43}", line)]
    assert len(tokens) == 2 and tokens[0] != tokens[1]
    stored = path.read_text()
    assert tokens[0] not in stored  # only the hash is kept
    assert all(check_token(t, load_tokens(path)) for t in tokens)
    assert oct(path.stat().st_mode & 0o777) == "0o600"


def test_token_command_reports_an_unwritable_file(tmp_path, capsys):
    assert main(["token", str(tmp_path / "no-such-dir" / "tokens")]) == 2
    assert "cannot write the token file" in capsys.readouterr().err


def test_serve_without_a_token_file_makes_one_for_the_process(monkeypatch, capsys):
    import uvicorn
    from fastapi.testclient import TestClient

    started = {}
    monkeypatch.setattr(uvicorn, "run", lambda app, **kw: started.update(app=app, **kw))
    assert main(["serve", "--db", ":memory:", "--port", "9999", "--host", "0.0.0.0"]) == 0
    captured = capsys.readouterr()
    lines = captured.out.splitlines()
    token = lines[[i for i, line in enumerate(lines) if "not stored anywhere" in line][0] + 1]
    assert "reachable from other machines" in captured.err  # not loopback: warned
    assert (started["host"], started["port"]) == ("0.0.0.0", 9999)
    with TestClient(started["app"]) as client:
        made = client.post("/api/v1/runs", json={"name": "x"},
                           headers={"Authorization": f"Bearer {token}"})
        assert made.status_code == 201
        assert client.post("/api/v1/runs", json={"name": "x"}).status_code == 401


def test_the_client_side_needs_no_web_framework():
    import subprocess
    import sys

    code = ("import sys, scaleguard.service.client, scaleguard.monitor;"
            "print(sorted({'fastapi', 'uvicorn', 'starlette'} & set(sys.modules)))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True)
    assert out.stdout.strip() == "[]"


def test_public_names_are_what_all_says():
    import scaleguard.service as service

    assert sorted(service.__all__) == list(service.__all__)
    for name in service.__all__:
        assert getattr(service, name) is not None
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        _ = service.nope
