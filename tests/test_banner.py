"""The start banner: where the API listens, where the admin key is, and a first command."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from steadyvoice.banner import api_url, banner, local_url
from steadyvoice.settings import ApiSettings, Settings

Make = Callable[..., Settings]


def test_banner_names_the_url_the_key_file_and_a_request_that_uses_it(
    settings_factory: Make,
) -> None:
    settings = settings_factory(api=ApiSettings(port=7999))
    key_file = settings.resolved_admin_key_file
    key_file.parent.mkdir(parents=True)
    key_file.write_text("sv_secret\n")
    text = banner(settings)
    assert "listening on http://127.0.0.1:7999\n" in text
    assert f"admin key  {key_file} (mode 0600" in text
    assert (
        f'curl -s -XPOST http://127.0.0.1:7999/v1/jobs -H "Authorization: Bearer $(cat {key_file})"'
        in text
    )
    assert "sv_secret" not in text  # the key itself is never printed
    assert "\x1b" not in text


def test_banner_without_a_key_file_says_how_to_make_a_key(settings_factory: Make) -> None:
    settings = settings_factory()
    text = banner(settings)
    assert f"none in {settings.resolved_admin_key_file}" in text
    assert "steadyvoice keys create --role admin --tenant default" in text
    assert "Bearer <your key>" in text


def test_wildcard_binds_are_reached_through_loopback(settings_factory: Make) -> None:
    v4 = settings_factory(api=ApiSettings(host="0.0.0.0", port=80))
    assert api_url(v4) == "http://0.0.0.0:80" and local_url(v4) == "http://127.0.0.1:80"
    assert "http://0.0.0.0:80 (all interfaces; http://127.0.0.1:80 from here)" in banner(v4)
    v6 = settings_factory(api=ApiSettings(host="::", port=80))
    assert api_url(v6) == "http://[::]:80" and local_url(v6) == "http://[::1]:80"


def test_a_key_file_path_with_spaces_is_quoted_for_the_shell(
    settings_factory: Make, tmp_path: Path
) -> None:
    key_file = tmp_path / "my keys" / "admin.key"
    key_file.parent.mkdir()
    key_file.write_text("sv_secret\n")
    settings = settings_factory(security={"admin_key_file": key_file})
    assert f"$(cat '{key_file}')" in banner(settings)
