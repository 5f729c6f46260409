"""Model config files: build, write (text + stream twin), load."""

import pytest

from pdserving.modelconf import (
    CLIENT_CONF, SERVER_CONF, GeneralModelConfig, Var, build_config, feed_vars, fetch_vars,
    load_config, write_config)

FEEDS = [Var("x", "image", 1, [3, -1, -1]), Var("ids", "ids", 0, [-1], is_lod=True)]
FETCHES = [Var("out", "out", 3, [2])]


def test_round_trip_text_and_stream(tmp_path):
    conf = build_config(FEEDS, FETCHES)
    path = write_config(conf, tmp_path / "new", SERVER_CONF)
    assert path == tmp_path / "new" / SERVER_CONF
    assert 'alias_name: "image"' in path.read_text() and "is_lod_tensor: true" in path.read_text()
    stream = GeneralModelConfig()
    stream.ParseFromString((tmp_path / "new" / "serving_server_conf.stream.prototxt").read_bytes())
    assert load_config(path) == stream == conf
    assert feed_vars(conf) == FEEDS and fetch_vars(conf) == FETCHES


def test_load_config_from_folder(tmp_path):
    write_config(build_config(FEEDS, []), tmp_path, CLIENT_CONF)
    assert feed_vars(load_config(tmp_path)) == FEEDS
    write_config(build_config([], FETCHES), tmp_path, SERVER_CONF)
    assert load_config(tmp_path).feed_var == []  # the server config wins


def test_folder_without_config(tmp_path):
    with pytest.raises(FileNotFoundError, match="no serving_server_conf.prototxt"):
        load_config(tmp_path)

