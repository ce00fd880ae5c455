"""``LAMPO_PARTNER_SECRETS``: each marketplace partner's own signing secret, read from the
environment or the secrets file, every entry checked and no secret ever shown."""

from __future__ import annotations

from pathlib import Path

import pytest

from lampo.domain.errors import InvalidRequest
from lampo.web.config import MAX_PARTNERS, WebConfig, parse_partner_secrets

BASE = {
    "LAMPO_SECRET": "s" * 32,
    "LAMPO_ADMIN_KEY": "admin-key-0123456789",
    "LAMPO_WEBHOOK_SECRET": "webhook-secret-0123456789",
}


def test_partners_and_their_secrets_are_read_in_order() -> None:
    found = parse_partner_secrets(" jd:jd-secret-0123456789, tmall:tm:secret-0123456789 ,")
    assert found == {"jd": b"jd-secret-0123456789", "tmall": b"tm:secret-0123456789"}
    assert parse_partner_secrets("") == {}


@pytest.mark.parametrize(
    ("text", "named"),
    [
        ("jd:short", "jd"),
        ("jd", "jd"),
        ("j d:secret-0123456789abc", "entry 1"),
        ("jd:secret-0123456789abc,jd:other-0123456789abc", "twice"),
        ("jd:" + "x" * 257, "jd"),
    ],
)
def test_a_bad_entry_is_refused_naming_it_but_never_its_secret(text: str, named: str) -> None:
    with pytest.raises(InvalidRequest) as caught:
        parse_partner_secrets(text)
    assert caught.value.field == "LAMPO_PARTNER_SECRETS"
    assert named in caught.value.problem
    assert "secret-0123456789abc" not in str(caught.value)
    assert "x" * 20 not in str(caught.value)


def test_more_than_the_most_partners_is_refused() -> None:
    text = ",".join(f"p{i}:secret-of-partner-{i:04}" for i in range(MAX_PARTNERS + 1))
    with pytest.raises(InvalidRequest, match=f"at most {MAX_PARTNERS}"):
        parse_partner_secrets(text)


def test_the_environment_comes_before_the_secrets_file(tmp_path: Path) -> None:
    secrets = tmp_path / "secrets.env"
    secrets.write_text("LAMPO_PARTNER_SECRETS=jd:from-the-file-0123456789\n")
    env = {**BASE, "LAMPO_SECRETS_FILE": str(secrets)}
    assert WebConfig.from_env(env).partner_secrets == {"jd": b"from-the-file-0123456789"}
    env["LAMPO_PARTNER_SECRETS"] = "tmall:from-the-environment-01"
    config = WebConfig.from_env(env)
    assert config.partner_secrets == {"tmall": b"from-the-environment-01"}
    assert "from-the" not in repr(config)
    assert (
        WebConfig.from_env({**BASE, "LAMPO_SECRETS_FILE": str(tmp_path / "none")}).partner_secrets
        == {}
    )
