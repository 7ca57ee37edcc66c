"""KerasTuner's chief/worker mode over gRPC, with a chief that survives dead workers.

KerasTuner's chief (`keras_tuner.src.distribute.oracle_chief.start_server`) ends only when no
trial is running and every worker has been told to stop. A worker killed mid-trial leaves its
trial "running" and its id registered for ever, so the chief never exits and the trial is never
finished. Here the chief serves KerasTuner's own OracleServicer, but also notes when it last heard
from each worker (workers send a heartbeat while they train); a worker silent for longer than the
timeout is dropped and its trial queued for retry, exactly as KerasTuner's own `Oracle.reload`
does for the trials a crashed chief was running.
"""

from __future__ import annotations

import os
import re
import threading
import time
from concurrent import futures

import keras_tuner
from keras_tuner.src.distribute import utils as dist_utils
from keras_tuner.src.engine.trial import TrialStatus

from fashion.errors import ConfigError, DistributeError

TUNER_ID = "KERASTUNER_TUNER_ID"
ORACLE_IP = "KERASTUNER_ORACLE_IP"
ORACLE_PORT = "KERASTUNER_ORACLE_PORT"
WORKER_TIMEOUT = "FASHION_WORKER_TIMEOUT"
DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8000
DEFAULT_WORKER_TIMEOUT = 60.0
# How often a training worker tells the chief it is alive, and how long an idle worker waits
# before asking again for a trial (KerasTuner's own loop would ask without pause).
HEARTBEAT_SECONDS = 2.0
# How often the chief checks for dead workers and for the end of the search.
CHIEF_POLL_SECONDS = 0.5


def role_environment(chief: bool, worker: str | None, host: str | None, port: int | None,
                     worker_timeout: float | None = None) -> dict[str, str]:
    """Return the KerasTuner variables that make this process the chief or a named worker."""
    if worker is not None and not re.fullmatch(r"[A-Za-z0-9_.-]+", worker):
        raise ConfigError(f"--worker {worker!r} must be letters, digits, '.', '_' or '-'; "
                          "give each worker a different short id such as 1, 2, 3")
    if worker is not None and "chief" in worker:
        raise ConfigError(f"--worker {worker!r} must not contain 'chief', which KerasTuner "
                          "reserves for the chief; use --chief for that")
    port = DEFAULT_PORT if port is None else port
    if not 0 < port < 65536:
        raise ConfigError(f"--oracle-port must be between 1 and 65535, got {port}")
    if worker_timeout is not None and not worker_timeout >= 3 * HEARTBEAT_SECONDS:
        raise ConfigError(f"--worker-timeout must be at least {3 * HEARTBEAT_SECONDS:g} seconds, "
                          f"got {worker_timeout}")
    env = {TUNER_ID: "chief" if chief else f"worker-{worker}",
           ORACLE_IP: host or DEFAULT_HOST, ORACLE_PORT: str(port)}
    if worker_timeout is not None:
        env[WORKER_TIMEOUT] = str(worker_timeout)
    return env


def _distributed() -> bool:
    try:
        return dist_utils.has_chief_oracle()
    except RuntimeError as e:  # KerasTuner's message names the missing variable
        raise DistributeError(f"{e} (or use --chief / --worker ID)") from e


def is_chief() -> bool:
    return _distributed() and dist_utils.is_chief_oracle()


def is_worker() -> bool:
    return _distributed() and not dist_utils.is_chief_oracle()


def tuner_id() -> str:
    return os.environ.get(TUNER_ID, "tuner0")  # KerasTuner's own default


class WorkerWatch:
    """Record when the chief last heard from each worker; drop those silent for too long."""

    def __init__(self, oracle: keras_tuner.Oracle, timeout: float, clock=time.monotonic):
        self.oracle, self.timeout, self.clock = oracle, timeout, clock
        self.last_seen: dict[str, float] = {}
        create_trial, get_trial, end_trial = oracle.create_trial, oracle.get_trial, \
            oracle.end_trial

        def create_trial_seen(tuner_id):
            self.last_seen[tuner_id] = self.clock()
            return create_trial(tuner_id)

        def get_trial_seen(trial_id):  # the heartbeat of a training worker
            self._seen_running(trial_id)
            return get_trial(trial_id)

        def end_trial_seen(trial):
            self._seen_running(trial.trial_id)
            # A worker thought dead may come back and finish its trial: take the result and
            # do not run the trial again.
            if trial.trial_id in oracle._retry_queue:
                oracle._retry_queue.remove(trial.trial_id)
            return end_trial(trial)

        oracle.create_trial, oracle.get_trial, oracle.end_trial = \
            create_trial_seen, get_trial_seen, end_trial_seen

    def _seen_running(self, trial_id: str) -> None:
        for worker, trial in list(self.oracle.ongoing_trials.items()):
            if trial.trial_id == trial_id:
                self.last_seen[worker] = self.clock()

    def drop_dead_workers(self) -> list[tuple[str, str | None]]:
        """Forget silent workers and queue their trials for retry; return (worker, trial id)."""
        now = self.clock()
        dead = [w for w in list(self.oracle.tuner_ids)
                if now - self.last_seen.setdefault(w, now) > self.timeout]
        return _drop(self.oracle, dead) if dead else []


@keras_tuner.synchronized
def _drop(oracle, workers):
    # Under the oracle's own lock, like every other change KerasTuner makes to it.
    dropped = []
    for worker in workers:
        oracle.tuner_ids.discard(worker)
        trial = oracle.ongoing_trials.pop(worker, None)
        if trial is not None:
            oracle._retry_queue.append(trial.trial_id)
        dropped.append((worker, trial.trial_id if trial else None))
    oracle.save()
    return dropped


def serve_oracle(oracle: keras_tuner.Oracle, report=None) -> None:
    """Serve the oracle to the workers until the search is over, as KerasTuner's chief does."""
    import grpc
    from keras_tuner.src import protos
    from keras_tuner.src.distribute import oracle_chief

    timeout = float(os.environ.get(WORKER_TIMEOUT, DEFAULT_WORKER_TIMEOUT))
    watch = WorkerWatch(oracle, timeout)
    address = f"{os.environ[ORACLE_IP]}:{os.environ[ORACLE_PORT]}"
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=1))
    servicer = oracle_chief.OracleServicer(oracle)
    protos.get_service_grpc().add_OracleServicer_to_server(servicer, server)
    try:
        bound = server.add_insecure_port(address)
    except RuntimeError:  # newer gRPC raises where older returned 0
        bound = 0
    if not bound:
        raise DistributeError(f"the chief cannot listen on {address} (port in use or address not "
                              "of this machine); choose another --oracle-port or --oracle-host")
    server.start()
    try:
        while not (servicer.stop_triggered and oracle_chief.exit_chief(oracle)):
            time.sleep(CHIEF_POLL_SECONDS)
            for worker, trial_id in watch.drop_dead_workers():
                if report:
                    report(f"worker {worker} silent for {timeout:g} s: dropped"
                           + (f", its trial {trial_id} queued for retry" if trial_id else ""))
    finally:
        server.stop(grace=1)
        oracle.save()  # KerasTuner's last save predates the end of the last trial


def pause_when_idle(oracle_client) -> None:
    """Make a worker wait a moment when the chief has no trial for it yet (Hyperband rounds)."""
    create_trial = oracle_client.create_trial

    def create_trial_patiently(tuner_id):
        trial = create_trial(tuner_id)
        if trial.status == TrialStatus.IDLE:
            time.sleep(HEARTBEAT_SECONDS)
        return trial

    oracle_client.create_trial = create_trial_patiently


class Heartbeat:
    """While a worker trains, ask the chief for its trial every few seconds to show it is alive."""

    def __init__(self, oracle_client, trial_id: str):
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._beat, args=(oracle_client, trial_id),
                                        daemon=True, name=f"heartbeat-{trial_id}")
        self._thread.start()

    def _beat(self, oracle_client, trial_id):
        while not self._stop.wait(HEARTBEAT_SECONDS):
            try:
                oracle_client.get_trial(trial_id)
            except Exception:  # noqa: BLE001 - a missed beat is harmless; the chief may be busy
                continue

    def stop(self) -> None:
        self._stop.set()
