"""Media storage: one contract, two backends (a folder and a real S3 server, SeaweedFS).

The contract tests go through `app.storage`'s module functions where the app does, so they also
prove that `set_backend` installs the backend the rest of the app uses.
"""

from __future__ import annotations

import socket
from dataclasses import replace
from pathlib import Path

import pytest
import requests

from app import images, storage
from app.errors import MissingObject
from app.settings import load_settings
from app.storage import LocalStorage, S3Config, S3Storage
from tests import factories
from tests.s3_support import free_ports

BAD_KEYS = ["", "/etc/passwd", "../secret", "reports/../../x", "a//b", "a\\b", "a\x00b", ".", "a/."]


def test_put_then_get_returns_the_same_bytes(store):
    data = factories.jpeg_bytes(seed=7)
    storage.put("reports/ab/photo.jpg", data)
    assert storage.get("reports/ab/photo.jpg") == data
    assert store.size("reports/ab/photo.jpg") == len(data)


def test_put_replaces_an_existing_object(store):
    storage.put("reports/ab/photo.jpg", b"first")
    storage.put("reports/ab/photo.jpg", b"second")
    assert storage.get("reports/ab/photo.jpg") == b"second"


def test_stream_yields_the_object_in_chunks(store):
    data = bytes(range(256)) * 4000  # ~1 MB: several chunks
    storage.put("reports/ab/big.jpg", data)
    chunks = list(storage.stream("reports/ab/big.jpg"))
    assert len(chunks) > 1
    assert all(len(chunk) <= storage.CHUNK for chunk in chunks)
    assert b"".join(chunks) == data


def test_missing_key_is_missing_object(store):
    with pytest.raises(MissingObject):
        storage.get("reports/ab/none.jpg")
    with pytest.raises(MissingObject):
        store.size("reports/ab/none.jpg")


def test_stream_of_a_missing_key_fails_before_the_first_chunk(store):
    # The media route turns this into a 404 before it starts a 200 response.
    with pytest.raises(MissingObject):
        storage.stream("reports/ab/none.jpg")


def test_delete_removes_and_is_idempotent(store):
    storage.put("reports/ab/photo.jpg", b"x")
    storage.put("reports/ab/photo_t.jpg", b"y")
    storage.delete("reports/ab/photo.jpg", "reports/ab/photo_t.jpg")
    assert not storage.exists("reports/ab/photo.jpg")
    assert not storage.exists("reports/ab/photo_t.jpg")
    storage.delete("reports/ab/photo.jpg", None, "", "never/was.jpg")
    store.delete("reports/ab/photo.jpg")


def test_exists(store):
    assert not storage.exists("reports/ab/photo.jpg")
    storage.put("reports/ab/photo.jpg", b"x")
    assert storage.exists("reports/ab/photo.jpg")
    assert not storage.exists("reports/ab")  # a "folder" is not an object


def test_keys_lists_objects_under_a_prefix(store):
    for key in ("reports/aa/1.jpg", "reports/bb/2.jpg", "tasks/cc/3.jpg"):
        storage.put(key, b"x")
    assert sorted(store.keys("reports/")) == ["reports/aa/1.jpg", "reports/bb/2.jpg"]
    assert sorted(store.keys()) == ["reports/aa/1.jpg", "reports/bb/2.jpg", "tasks/cc/3.jpg"]
    assert list(store.keys("nothing/")) == []


@pytest.mark.parametrize("key", BAD_KEYS)
def test_bad_keys_are_refused(store, key):
    with pytest.raises(ValueError):
        storage.put(key, b"x")
    with pytest.raises(ValueError):
        storage.get(key)
    with pytest.raises(ValueError):
        storage.stream(key)
    assert not storage.exists(key)
    storage.delete(key)  # ignored, like a missing key


def test_health_and_probe_are_ok(store):
    backend = "s3" if isinstance(store, S3Storage) else "local"
    assert storage.health() == {"ok": True, "backend": backend}
    assert storage.probe() == {"ok": True, "backend": backend}
    assert list(store.keys()) == []  # the probe leaves nothing behind


# --- S3 only ------------------------------------------------------------------------------------


def test_s3_objects_are_private_jpegs_under_the_prefix(s3_storage, s3_server):
    storage.put("reports/ab/photo.jpg", b"\xff\xd8 not really a jpeg")
    object_key = s3_storage.prefix + "reports/ab/photo.jpg"
    head = s3_storage.client.head_object(Bucket=s3_server.bucket, Key=object_key)
    assert head["ContentType"] == "image/jpeg"
    anonymous = requests.get(f"{s3_server.endpoint_url}/{s3_server.bucket}/{object_key}", timeout=5)
    assert anonymous.status_code == 403


def test_s3_prefixes_keep_stores_apart(s3_storage, s3_server):
    other = S3Storage(replace(s3_server, prefix="someone-else/"))
    other.put("reports/ab/photo.jpg", b"theirs")
    try:
        assert not storage.exists("reports/ab/photo.jpg")
        assert list(s3_storage.keys()) == []
        assert list(other.keys()) == ["reports/ab/photo.jpg"]
    finally:
        other.delete("reports/ab/photo.jpg")


def test_s3_keys_follow_every_page(s3_storage):
    s3_storage.page_size = 2
    keys = [f"reports/{n:02d}/photo.jpg" for n in range(5)]
    for key in keys:
        storage.put(key, b"x")
    assert list(s3_storage.keys("reports/")) == keys


def _closed_port() -> int:
    port = free_ports(1)[0]
    with socket.socket() as sock:  # nothing listens there once free_ports closed it
        assert sock.connect_ex(("127.0.0.1", port)) != 0
    return port


def _assert_down(state: dict, config: S3Config, error: str) -> None:
    assert state["ok"] is False
    assert state["backend"] == "s3"
    assert state["error"] == error
    assert config.secret_access_key not in repr(state)
    assert config.access_key_id not in repr(state)


def test_s3_health_is_false_when_the_server_is_unreachable():
    config = S3Config(
        endpoint_url=f"http://127.0.0.1:{_closed_port()}",
        bucket="media",
        region="us-east-1",
        access_key_id="AKIDEXAMPLE",
        secret_access_key="wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY",
    )
    store = S3Storage(config)
    _assert_down(store.health(), config, "EndpointConnectionError")
    _assert_down(store.probe(), config, "EndpointConnectionError")


def test_s3_health_is_false_when_the_bucket_does_not_exist(s3_server):
    config = replace(s3_server, bucket="no-such-bucket")
    store = S3Storage(config)
    _assert_down(store.health(), config, "ClientError")  # HEAD has no body: a bare 404
    _assert_down(store.probe(), config, "NoSuchBucket")


def test_s3_health_is_false_with_wrong_credentials(s3_server):
    for config in (
        replace(s3_server, secret_access_key="not-the-secret-0123456789"),
        replace(s3_server, access_key_id="NOBODY0123456789"),
    ):
        store = S3Storage(config)
        _assert_down(store.health(), config, "ClientError")
        _assert_down(store.probe(), config, "ClientError")
        assert s3_server.secret_access_key not in repr(store.probe())


def test_s3_config_repr_hides_the_secret(s3_server):
    assert s3_server.secret_access_key not in repr(s3_server)
    assert s3_server.secret_access_key not in repr(S3Storage(s3_server).config)


# --- the app on S3 ------------------------------------------------------------------------------


def test_photos_are_served_from_s3_only_to_logged_in_staff(s3_storage, client, admin):
    from tests.conftest import login

    stored = images.store_image(factories.jpeg_bytes(seed=1))
    assert s3_storage.exists(stored.key) and s3_storage.exists(stored.thumb_key)
    anonymous = client.get(f"/media/{stored.key}", follow_redirects=False)
    assert anonymous.status_code == 303
    assert "/login" in anonymous.headers["location"]

    login(client, admin)
    response = client.get(f"/media/{stored.key}")
    assert response.status_code == 200
    assert response.content == storage.get(stored.key)
    assert response.headers["content-type"] == "image/jpeg"
    assert response.headers["cache-control"] == "private, no-store"
    assert client.get("/media/reports/ab/none.jpg").status_code == 404


def test_health_endpoint_checks_the_s3_bucket(s3_storage, client):
    body = client.get("/health").json()
    assert body["storage"] == {
        "ok": True,
        "backend": "s3",
        "pending_deletions": 0,
        "failing_deletions": 0,
    }


def test_health_endpoint_is_503_when_the_s3_credentials_are_wrong(s3_server, client):
    store = S3Storage(replace(s3_server, secret_access_key="not-the-secret-0123456789"))
    previous = storage.set_backend(store)
    try:
        response = client.get("/health")
    finally:
        storage.set_backend(previous)
    assert response.status_code == 503
    assert response.json()["storage"]["ok"] is False
    assert s3_server.secret_access_key not in response.text


# --- the configured backend: settings, start-up check, health -----------------------------------


def test_the_backend_is_built_from_the_settings(settings, s3_server):
    from app.settings import set_settings

    assert isinstance(storage.backend(), LocalStorage)
    assert storage.backend().root == settings.media_dir
    env = {"SECRET_KEY": "s" * 32, "DATA_DIR": str(settings.data_dir), **s3_server.environ()}
    s3_settings = set_settings(load_settings({**env, "S3_PREFIX": "p1"}, env_file=None))
    store = storage.backend()
    assert isinstance(store, S3Storage) and store.prefix == "p1/"
    assert storage.backend() is store  # built once per settings
    assert storage.start() == {"ok": True, "backend": "s3"}
    set_settings(s3_settings.with_overrides(media_backend="local"))
    assert isinstance(storage.backend(), LocalStorage)


@pytest.mark.parametrize(
    ("change", "variable"),
    [
        ({"secret_access_key": "not-the-secret-0123456789"}, "S3_SECRET_ACCESS_KEY"),
        ({"access_key_id": "NOBODY0123456789"}, "S3_ACCESS_KEY_ID"),
        ({"bucket": "no-such-bucket"}, "S3_BUCKET"),
    ],
)
def test_start_stops_on_a_rejected_s3_setting_naming_it(s3_server, change, variable):
    from app.settings import SettingsError

    previous = storage.set_backend(S3Storage(replace(s3_server, **change)))
    try:
        with pytest.raises(SettingsError) as error:
            storage.start()
    finally:
        storage.set_backend(previous)
    assert str(error.value).startswith(variable + ":")
    assert s3_server.secret_access_key not in str(error.value)


def test_start_stops_when_the_media_folder_cannot_be_written(tmp_path):
    from app.settings import SettingsError

    (tmp_path / "data").write_text("a file where the folder should be")
    previous = storage.set_backend(LocalStorage(tmp_path / "data" / "media"))
    try:
        with pytest.raises(SettingsError, match=r"^DATA_DIR: "):
            storage.start()
    finally:
        storage.set_backend(previous)


def test_an_unreachable_store_at_start_is_reported_by_health_until_it_answers(s3_server, caplog):
    down = S3Storage(replace(s3_server, endpoint_url=f"http://127.0.0.1:{_closed_port()}"))
    up = S3Storage(s3_server)
    previous = storage.set_backend(down)
    try:
        state = storage.start()  # logged, not fatal: the store may come back
        assert state["ok"] is False and state["error"] == "EndpointConnectionError"
        assert "S3_ENDPOINT_URL" in caplog.text
        probes: list[str] = []
        original = up.probe
        up.probe = lambda: probes.append("probe") or original()  # type: ignore[method-assign]
        storage._installed = up  # the same process, the store answering again
        assert storage.health() == {"ok": True, "backend": "s3"}
        assert probes == ["probe"]  # a real write while the start-up failure stood
        assert storage.health() == {"ok": True, "backend": "s3"}
        assert probes == ["probe"]  # then the cheap check again
    finally:
        storage.set_backend(previous)


def _cli(args: list[str], env: dict[str, str], cwd: Path):
    import os
    import subprocess
    import sys

    return subprocess.run(
        [sys.executable, "-m", *args],
        capture_output=True,
        text=True,
        env={**os.environ, "SECRET_KEY": "s" * 32, "DATA_DIR": str(cwd), **env},
        cwd=cwd,
        timeout=120,
    )


def test_processes_stop_with_one_line_on_a_wrong_s3_secret(s3_server, tmp_path, database_url):
    env = {
        **s3_server.environ(),
        "S3_SECRET_ACCESS_KEY": "not-the-secret-0123456789",
        "DATABASE_URL": database_url,
        "PYTHONPATH": str(Path(__file__).resolve().parent.parent),
    }
    for args in (["app.cli", "worker"], ["app.asgi"]):
        result = _cli(args, env, tmp_path)
        assert result.returncode == 1, result.stderr
        assert result.stderr.strip().splitlines()[-1] == (
            "Ошибка настройки: S3_SECRET_ACCESS_KEY: секретный ключ не подходит к S3_ACCESS_KEY_ID"
        ), result.stderr
        assert "not-the-secret" not in result.stderr
