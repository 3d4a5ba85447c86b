"""`steward inbox` from the command line: links only for approvers, and a lazy web stack."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

from steward.cli import app
from steward.inbox.auth import Signer, SignInError, load_secret, used_links_path

REPO = Path(__file__).resolve().parent.parent
CONFIG = str(REPO / "examples" / "steward.yaml")


def test_a_link_is_printed_for_an_approver_only(tmp_path: Path) -> None:
    secret = tmp_path / "inbox-secret"
    runner = CliRunner()
    args = ["inbox", "link", "--config", CONFIG, "--secret-file", str(secret)]
    refused = runner.invoke(app, [*args, "mallory"])
    assert refused.exit_code == 2 and "in no approvers group" in refused.output
    assert not secret.exists()

    printed = runner.invoke(app, [*args, "alice", "--url", "https://inbox.example/"])
    assert printed.exit_code == 0, printed.output
    link = printed.output.strip()
    assert link.startswith("https://inbox.example/signin?token=")
    assert secret.stat().st_mode & 0o077 == 0  # the secret is its owner's only
    token = link.split("token=", 1)[1]
    assert Signer(load_secret(secret)).redeem(token) == "alice"


def test_the_cli_imports_no_template_engine_until_the_inbox_runs() -> None:
    probe = "import sys, steward.cli; print('jinja2' in sys.modules)"
    done = subprocess.run(
        [sys.executable, "-c", probe], cwd=REPO, capture_output=True, text=True, check=True
    )
    assert done.stdout.strip() == "False"


def test_a_used_link_stays_used_after_a_restart(tmp_path: Path) -> None:
    secret_file = tmp_path / "inbox-secret"
    used_file = used_links_path(secret_file)
    first = Signer(load_secret(secret_file), used_file=used_file)
    token = first.link_token("alice")
    other = first.link_token("bob")
    assert first.redeem(token) == "alice"
    assert used_file.stat().st_mode & 0o077 == 0  # its owner's only, like the secret

    # a restarted inbox (or a second one with the same secret) reads what was used
    restarted = Signer(load_secret(secret_file), used_file=used_file)
    with pytest.raises(SignInError, match="used already"):
        restarted.redeem(token)
    assert restarted.redeem(other) == "bob"

    # expired links are forgotten, so the file stays small
    expired = restarted.link_token("alice", seconds=-1)
    with pytest.raises(SignInError):
        restarted.redeem(expired)
    used_file.write_text(json.dumps({"old": time.time() - 10}))
    assert restarted.redeem(restarted.link_token("alice")) == "alice"
    assert "old" not in json.loads(used_file.read_text())
