"""A process's role in a distributed search: standalone, the chief, or a named worker.

KerasTuner's distributed mode runs one chief, which holds the oracle and hands out trials over
gRPC, and any number of workers, which train them. KerasTuner reads the role from environment
variables; here it is a value passed to the library (`fashion.tuning.tune.build_tuner`), which the
CLI builds from `--chief`/`--worker` or from those variables. How the chief copes with dead workers
lives with the other KerasTuner internals in `fashion.tuning.upstream`.
"""

from __future__ import annotations

import os
import re
import threading
from dataclasses import dataclass

from fashion.errors import ConfigError

TUNER_ID = "KERASTUNER_TUNER_ID"
ORACLE_IP = "KERASTUNER_ORACLE_IP"
ORACLE_PORT = "KERASTUNER_ORACLE_PORT"
ROLE_VARIABLES = (TUNER_ID, ORACLE_IP, ORACLE_PORT)
WORKER_TIMEOUT = "FASHION_WORKER_TIMEOUT"
DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8000
DEFAULT_WORKER_TIMEOUT = 60.0
# How often a training worker tells the chief it is alive.
HEARTBEAT_SECONDS = 2.0


@dataclass(frozen=True)
class Role:
    """Who this process is in a search. `tuner_id` "tuner0" (KerasTuner's own default) is a
    standalone search; "chief" serves trials on `host:port`; "worker-ID" asks the chief there."""

    tuner_id: str = "tuner0"
    host: str = DEFAULT_HOST
    port: int = DEFAULT_PORT
    # Chief: drop a worker silent this many seconds and retry its trial.
    worker_timeout: float = DEFAULT_WORKER_TIMEOUT

    def __post_init__(self):
        if not 0 < self.port < 65536:
            raise ConfigError(f"--oracle-port must be between 1 and 65535, got {self.port}")
        if not self.worker_timeout >= 3 * HEARTBEAT_SECONDS:
            raise ConfigError(f"--worker-timeout must be at least {3 * HEARTBEAT_SECONDS:g} "
                              f"seconds, got {self.worker_timeout}")

    @property
    def is_distributed(self) -> bool:
        return self.tuner_id != "tuner0"

    @property
    def is_chief(self) -> bool:
        return "chief" in self.tuner_id  # KerasTuner's own test

    @property
    def is_worker(self) -> bool:
        return self.is_distributed and not self.is_chief

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"

    def environment(self) -> dict[str, str]:
        """The KERASTUNER_* variables KerasTuner reads this role from (none when standalone)."""
        if not self.is_distributed:
            return {}
        return {TUNER_ID: self.tuner_id, ORACLE_IP: self.host, ORACLE_PORT: str(self.port)}


STANDALONE = Role()


def chief(host: str | None = None, port: int | None = None,
          worker_timeout: float | None = None) -> Role:
    return Role("chief", host or DEFAULT_HOST, DEFAULT_PORT if port is None else port,
                DEFAULT_WORKER_TIMEOUT if worker_timeout is None else worker_timeout)


def worker(worker_id: str, host: str | None = None, port: int | None = None) -> Role:
    if not re.fullmatch(r"[A-Za-z0-9_.-]+", worker_id):
        raise ConfigError(f"--worker {worker_id!r} must be letters, digits, '.', '_' or '-'; "
                          "give each worker a different short id such as 1, 2, 3")
    if "chief" in worker_id:
        raise ConfigError(f"--worker {worker_id!r} must not contain 'chief', which KerasTuner "
                          "reserves for the chief; use --chief for that")
    return Role(f"worker-{worker_id}", host or DEFAULT_HOST, DEFAULT_PORT if port is None else port)


def worker_timeout_from_environment(environ=os.environ) -> float | None:
    """The chief's worker timeout from FASHION_WORKER_TIMEOUT, if set."""
    value = environ.get(WORKER_TIMEOUT)
    if value is None:
        return None
    try:
        return float(value)
    except ValueError as e:
        raise ConfigError(f"{WORKER_TIMEOUT}={value!r} is not a number of seconds") from e


def role_from_environment(environ=os.environ) -> Role:
    """The role KerasTuner's own variables describe, for users who set them instead of flags.

    Raises:
        ConfigError: some of the three variables are set but not all.
    """
    present = [name for name in ROLE_VARIABLES if name in environ]
    if not present:
        return STANDALONE
    if len(present) < len(ROLE_VARIABLES):
        missing = ", ".join(n for n in ROLE_VARIABLES if n not in environ)
        raise ConfigError(f"{', '.join(present)} set but not {missing}; set all three, or use "
                          "--chief / --worker ID")
    port = environ[ORACLE_PORT]
    if not port.isdigit():
        raise ConfigError(f"{ORACLE_PORT}={port!r} is not a port number")
    timeout = worker_timeout_from_environment(environ)
    return Role(environ[TUNER_ID], environ[ORACLE_IP], int(port),
                DEFAULT_WORKER_TIMEOUT if timeout is None else timeout)


class Heartbeat:
    """While a worker trains, ask the chief for its trial every few seconds to show it is alive.

    Call `start()`, then `stop()` when the trial ends.
    """

    def __init__(self, oracle_client, trial_id: str):
        self.oracle_client, self.trial_id = oracle_client, trial_id
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._beat, daemon=True,
                                        name=f"heartbeat-{trial_id}")

    def start(self) -> Heartbeat:
        self._thread.start()
        return self

    def _beat(self):
        while not self._stop.wait(HEARTBEAT_SECONDS):
            try:
                self.oracle_client.get_trial(self.trial_id)
            except Exception:  # noqa: BLE001 - a missed beat is harmless; the chief may be busy
                continue

    def stop(self) -> None:
        self._stop.set()
