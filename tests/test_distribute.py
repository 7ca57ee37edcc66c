"""`fashion.tuning.distribute`: a process's role from flags or KerasTuner's variables, the
values refused, and the worker's heartbeat."""

import threading

import pytest

from fashion.errors import ConfigError
from fashion.tuning import distribute
from fashion.tuning.distribute import (
    STANDALONE,
    Heartbeat,
    Role,
    chief,
    role_from_environment,
    worker,
    worker_timeout_from_environment,
)


def test_standalone_is_kerastuners_default_and_sets_no_variables():
    assert STANDALONE == Role() and STANDALONE.tuner_id == "tuner0"
    assert not STANDALONE.is_distributed and not STANDALONE.is_chief
    assert not STANDALONE.is_worker and STANDALONE.environment() == {}


def test_the_chief_and_a_worker_from_flags():
    boss = chief(port=9000, worker_timeout=30)
    assert boss.is_distributed and boss.is_chief and not boss.is_worker
    assert (boss.address, boss.worker_timeout) == ("127.0.0.1:9000", 30)
    assert boss.environment() == {"KERASTUNER_TUNER_ID": "chief",
                                  "KERASTUNER_ORACLE_IP": "127.0.0.1",
                                  "KERASTUNER_ORACLE_PORT": "9000"}
    helper = worker("gpu-1.a", host="10.0.0.2")
    assert helper.tuner_id == "worker-gpu-1.a" and helper.is_worker and not helper.is_chief
    assert helper.address == f"10.0.0.2:{distribute.DEFAULT_PORT}"
    assert chief() == Role("chief")  # every default


@pytest.mark.parametrize("make, message", [
    (lambda: worker("a b"), "must be letters, digits, '.', '_' or '-'"),
    (lambda: worker(""), "must be letters, digits"),
    (lambda: worker("chief-2"), "must not contain 'chief'"),
    (lambda: chief(port=70000), "--oracle-port must be between 1 and 65535, got 70000"),
    (lambda: chief(port=0), "--oracle-port must be between 1 and 65535, got 0"),
    (lambda: worker("1", port=65536), "--oracle-port must be between"),
    (lambda: chief(worker_timeout=5), "--worker-timeout must be at least 6 seconds, got 5"),
])
def test_bad_roles_are_refused(make, message):
    with pytest.raises(ConfigError, match=message):
        make()


def _environment(tuner_id="worker-3", host="10.0.0.1", port="8123", **more):
    return {"KERASTUNER_TUNER_ID": tuner_id, "KERASTUNER_ORACLE_IP": host,
            "KERASTUNER_ORACLE_PORT": port, **more}


def test_the_role_from_kerastuners_variables():
    assert role_from_environment({}) is STANDALONE
    assert role_from_environment(_environment()) == Role("worker-3", "10.0.0.1", 8123)
    boss = role_from_environment(_environment("chief", FASHION_WORKER_TIMEOUT="90"))
    assert boss.is_chief and boss.worker_timeout == 90.0
    assert worker_timeout_from_environment({}) is None


@pytest.mark.parametrize("environ, message", [
    ({"KERASTUNER_TUNER_ID": "chief"},
     "KERASTUNER_TUNER_ID set but not KERASTUNER_ORACLE_IP, KERASTUNER_ORACLE_PORT"),
    (_environment(port="http"), "KERASTUNER_ORACLE_PORT='http' is not a port number"),
    (_environment(port="99999"), "--oracle-port must be between 1 and 65535"),
    (_environment(FASHION_WORKER_TIMEOUT="soon"),
     "FASHION_WORKER_TIMEOUT='soon' is not a number of seconds"),
    (_environment("chief", FASHION_WORKER_TIMEOUT="1"), "--worker-timeout must be at least"),
])
def test_bad_variables_are_refused_naming_them(environ, message):
    with pytest.raises(ConfigError, match=message):
        role_from_environment(environ)


class _Chief:
    """An oracle client that fails its first answer and counts the rest."""

    def __init__(self, beats: int):
        self.asked, self.beats, self.enough = [], beats, threading.Event()

    def get_trial(self, trial_id):
        self.asked.append(trial_id)
        if len(self.asked) == 1:
            raise ConnectionError("the chief is busy")
        if len(self.asked) >= self.beats:
            self.enough.set()


def test_a_heartbeat_asks_for_its_trial_until_stopped_and_outlives_a_missed_beat(monkeypatch):
    monkeypatch.setattr(distribute, "HEARTBEAT_SECONDS", 0.01)
    client = _Chief(beats=3)
    heartbeat = Heartbeat(client, "0007").start()
    assert client.enough.wait(30), "no third beat"
    heartbeat.stop()
    [thread] = [t for t in threading.enumerate() if t.name == "heartbeat-0007"] or [None]
    if thread is not None:
        thread.join(30)
        assert not thread.is_alive()
    assert set(client.asked) == {"0007"} and len(client.asked) >= 3
