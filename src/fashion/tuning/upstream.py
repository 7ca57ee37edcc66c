"""Every place `fashion` reaches into KerasTuner's, Keras's or TensorFlow's internals.

KerasTuner is extended through its own seams (Oracle and Tuner subclasses), but several of the
methods worth overriding are private (`_save_trial`, `_retry_queue`, Hyperband's `_get_size`),
and its distributed mode is driven by environment variables and a gRPC servicer it does not
export. Each such use lives here, says why, and names the upstream issue where there is one. The
versions below are the ones the test suite ran against; importing this module with others fails
with one line naming them, not with a traceback deep inside a trial.
"""

from __future__ import annotations

import contextlib
import json
import os
import time
from importlib import metadata

from fashion.errors import DependencyError, DistributeError

# [lowest tested, first untested): KerasTuner's private names change between minor versions.
TESTED_VERSIONS = {"keras-tuner": ((1, 4, 7), (1, 5)), "keras": ((3, 13, 2), (4,))}


def _release(text: str) -> tuple[int, ...]:
    numbers = []
    for part in text.split("."):
        digits = "".join(c for c in part if c.isdigit()) if part[:1].isdigit() else ""
        if not digits:
            break
        numbers.append(int(digits))
    return tuple(numbers)


def check_versions(installed=metadata.version) -> None:
    """Refuse library versions outside the tested range, naming both."""
    for name, (lowest, first_untested) in TESTED_VERSIONS.items():
        version = installed(name)
        if not lowest <= _release(version) < first_untested:
            wanted = f">={'.'.join(map(str, lowest))},<{'.'.join(map(str, first_untested))}"
            raise DependencyError(f"fashion is tested with {name}{wanted}, found {version}; "
                                  f"pip install '{name}{wanted}'")


check_versions()

import keras  # noqa: E402
import keras_tuner  # noqa: E402
from keras_tuner.src import utils as keras_tuner_utils  # noqa: E402
from keras_tuner.src.backend import io as keras_tuner_io  # noqa: E402
from keras_tuner.src.distribute import oracle_client  # noqa: E402
from keras_tuner.src.engine.trial import TrialStatus  # noqa: E402

from fashion.storage import files  # noqa: E402
from fashion.tuning.distribute import ROLE_VARIABLES, STANDALONE, Heartbeat, Role  # noqa: E402

__all__ = ["TrialStatus"]

# The files KerasTuner writes in its project folder that fashion reads.
ORACLE_FILE = "oracle.json"
TRIAL_FILE = "trial.json"


def keras_home() -> str:
    """Keras's cache folder ($KERAS_HOME, else ~/.keras, else a temporary one), as Keras chose it
    at import; Keras 3 exports no function for it."""
    from keras.src.backend.config import keras_home as home

    return home()


@contextlib.contextmanager
def releasing_traced_graphs():
    """Let the graphs traced inside the block be freed once the models trained in it are dropped.

    Keras's TensorFlow optimizer sums gradients through `all_reduce` even without a distribution
    strategy, which goes through `tf.custom_gradient`; in a traced train step that registers a
    gradient function in TensorFlow's global gradient registry and never removes it, and its
    closure holds the step's tensors, so every trained model's graphs (20 to 30 MiB for the
    default CNN) outlived `clear_session` (tensorflow/tensorflow#97697). An entry is read only
    while a gradient of its graph is traced, inside `fit`: after the block nothing reads it.
    """
    if keras.backend.backend() != "tensorflow":
        yield
        return
    from tensorflow.python.framework import ops

    registry = ops.gradient_registry._registry
    before = set(registry)
    try:
        yield
    finally:
        # Only the per-trace entries: a module imported meanwhile may have registered op gradients.
        for name in set(registry) - before:
            if name.startswith("CustomGradient-"):
                del registry[name]


def save_json(path: str, obj) -> str:
    """Write a KerasTuner JSON file whole or not at all.

    KerasTuner rewrites its files in place, so a kill mid-write leaves one the rerun cannot read.
    A local path goes through a temporary file and a rename; a remote one (`gs://`, `ram://`)
    through KerasTuner's own writer, since object stores write an object whole when it closes.
    """
    if "://" in str(path):
        return keras_tuner_utils.save_json(path, obj)
    text = json.dumps(obj)
    files.write_atomic(path, text)
    return text


@contextlib.contextmanager
def keras_tuner_role(role: Role):
    """Give KerasTuner a process role for the block: it reads it only from `os.environ`.

    The KERASTUNER_* variables are set from `role` (none for a standalone search), and whatever
    the process had before is restored afterwards.
    """
    saved = {name: os.environ.get(name) for name in ROLE_VARIABLES}
    for name in saved:
        os.environ.pop(name, None)
    os.environ.update(role.environment())
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


class SearchOracle:
    """What `fashion` adds to each of KerasTuner's oracles.

    A deadline after which no new trial starts (running ones finish; the search then ends as
    when the space is exhausted, so there always is a best); listeners told of each finished
    trial (on the oracle, so a chief reports its workers' trials too); the last time each worker
    was heard from, so a chief can hand a dead worker's trial on; atomic files; and a reload that
    does not rerun finished trials.
    """

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.deadline: float | None = None  # a time.monotonic() value
        self.trial_listeners: list = []  # called as listener(oracle, trial) after end_trial
        self.last_seen: dict[str, float] = {}

    def populate_space(self, trial_id):
        if self.deadline is not None and self.trials and time.monotonic() >= self.deadline:
            return {"status": TrialStatus.STOPPED, "values": None}
        return super().populate_space(trial_id)

    @keras_tuner.synchronized
    def create_trial(self, tuner_id):
        self.last_seen[tuner_id] = time.monotonic()
        trial = super().create_trial(tuner_id)
        if trial.status == TrialStatus.STOPPED and self.ongoing_trials:
            # KerasTuner tells a worker to leave once no new trial is left, while others still
            # run theirs; if one of those workers dies, its trial is queued for retry with no
            # worker left to take it, and the search ends without it. Keep the worker, waiting.
            self.tuner_ids.add(tuner_id)
            trial.status = TrialStatus.IDLE
        return trial

    def get_trial(self, trial_id):
        self._seen_running(trial_id)  # a training worker's heartbeat asks for its trial
        return super().get_trial(trial_id)

    @keras_tuner.synchronized
    def end_trial(self, trial):
        self._seen_running(trial.trial_id)
        # A worker thought dead may come back and finish its trial: take the result, and do not
        # run the trial again.
        if trial.trial_id in self._retry_queue:
            self._retry_queue.remove(trial.trial_id)
        super().end_trial(trial)
        for listener in self.trial_listeners:
            listener(self, self.trials[trial.trial_id])

    def _seen_running(self, trial_id: str) -> None:
        for worker, trial in list(self.ongoing_trials.items()):
            if trial.trial_id == trial_id:
                self.last_seen[worker] = time.monotonic()

    @keras_tuner.synchronized
    def drop_silent_workers(self, timeout: float) -> list[tuple[str, str | None]]:
        """Forget workers silent for `timeout` seconds and queue their trials for retry.

        KerasTuner's chief waits for ever on a worker killed mid-trial; this is what its own
        `Oracle.reload` does for the trials a crashed chief was running. Returns (worker, trial
        id or None) for each dropped worker.
        """
        now = time.monotonic()
        dropped = []
        for worker in list(self.tuner_ids):
            if now - self.last_seen.setdefault(worker, now) <= timeout:
                continue
            self.tuner_ids.discard(worker)
            trial = self.ongoing_trials.pop(worker, None)
            if trial is not None:
                self._retry_queue.append(trial.trial_id)
            dropped.append((worker, trial.trial_id if trial else None))
        if dropped:
            self.save()
        return dropped

    def reload(self):
        super().reload()
        # KerasTuner saves oracle.json inside `end_trial` before it takes the trial off the
        # running list, and a chief saves nothing after that: a kill in between, or any chief's
        # last save, leaves a finished trial marked running, which the reload would run again.
        finished = (TrialStatus.COMPLETED, TrialStatus.FAILED)
        self._retry_queue = [trial_id for trial_id in self._retry_queue
                             if self.trials[trial_id].status not in finished]

    def save(self):
        save_json(self._get_oracle_fname(), self.get_state())

    def _save_trial(self, trial):
        path = os.path.join(self._get_trial_dir(trial.trial_id), "trial.json")
        save_json(path, trial.get_state())


class HyperbandOracle(SearchOracle, keras_tuner.oracles.HyperbandOracle):
    pass


class RandomSearchOracle(SearchOracle, keras_tuner.oracles.RandomSearchOracle):
    pass


class BayesianOptimizationOracle(SearchOracle, keras_tuner.oracles.BayesianOptimizationOracle):
    pass


def planned_trials(oracle) -> int | None:
    """Return how many trials the search will run at most, or None when it cannot be known."""
    if getattr(oracle, "max_trials", None):
        return oracle.max_trials
    if isinstance(oracle, keras_tuner.oracles.HyperbandOracle):
        # Hyperband sizes itself: every round of every bracket, per iteration.
        per_iteration = sum(oracle._get_size(bracket, round_num)
                            for bracket in range(oracle._get_num_brackets())
                            for round_num in range(bracket + 1))
        iterations = oracle.hyperband_iterations
        return per_iteration * iterations if iterations != float("inf") else None
    return None


class SearchTuner(keras_tuner.Tuner):
    """What `fashion` adds to KerasTuner's tuner, whatever its oracle.

    A seed per trial, so a trial trains the same whether it runs first, after a resume or on
    another worker; each trial's traced graphs released after it, so memory stays flat; atomic
    tuner files; and a distributed role given as an argument rather than read from the
    environment. KerasTuner's `Hyperband`, `RandomSearch` and `BayesianOptimization` tuners only
    build their oracle from their arguments: here the oracle, one of the subclasses above, is
    built by the caller and passed in.
    """

    def __init__(self, oracle, hypermodel, trial_seed, role: Role = STANDALONE, on_message=None,
                 **kwargs):
        self.trial_seed = trial_seed  # trial id -> seed
        self.role = role
        self.on_message = on_message  # told of dropped workers, on a chief
        self._heartbeat = None
        if not role.is_worker:
            _adopt_project(os.path.join(str(kwargs.get("directory", ".")),
                                        kwargs["project_name"]), role.tuner_id)
        with keras_tuner_role(role):
            # keras_tuner.Tuner's own __init__, skipping the oracle-building subclass's.
            keras_tuner.Tuner.__init__(self, oracle=oracle, hypermodel=hypermodel, **kwargs)
            if role.is_worker:
                self.oracle = PatientOracleClient(oracle)

    def _is_worker(self):
        return self.role.is_worker

    def run_trial(self, trial, *args, **kwargs):
        files.check_free_space(self.project_dir)  # h5py crashes the process on a full disk
        keras.utils.set_random_seed(self.trial_seed(trial.trial_id))
        with releasing_traced_graphs():
            return keras_tuner.Tuner.run_trial(self, trial, *args, **kwargs)

    def search(self, *fit_args, **fit_kwargs):
        with keras_tuner_role(self.role):
            if not self.role.is_chief:
                return super().search(*fit_args, **fit_kwargs)
            self.oracle.verbose = fit_kwargs.get("verbose", 1)
            self.save()
            serve_oracle(self.oracle, self.role.address, self.role.worker_timeout,
                         self.on_message)

    def on_trial_begin(self, trial):
        super().on_trial_begin(trial)
        if self.role.is_worker:
            self._heartbeat = Heartbeat(self.oracle, trial.trial_id).start()

    def on_trial_end(self, trial):
        if self._heartbeat is not None:
            self._heartbeat.stop()
            self._heartbeat = None
        super().on_trial_end(trial)

    def save(self):
        if not self.role.is_worker:
            self.oracle.save()
        save_json(self._get_tuner_fname(), self.get_state())


class HyperbandTuner(SearchTuner, keras_tuner.Hyperband):
    """Hyperband's trial running (epochs per round, weights carried between rounds)."""

    def run_trial(self, trial, *fit_args, **fit_kwargs):
        # keras_tuner.Hyperband.run_trial, with Keras's KERAS_MAX_EPOCHS debugging cap in mind:
        # it caps `epochs` but not `initial_epoch`, so a continued trial would train nothing,
        # report no objective and fail the search. Capped, a round trains from its parent's
        # weights for at most the cap's epochs.
        values = trial.hyperparameters.values
        if "tuner/epochs" in values:
            initial_epoch = values["tuner/initial_epoch"]
            cap = keras.config.max_epochs()
            fit_kwargs.update(epochs=values["tuner/epochs"],
                              initial_epoch=0 if cap and initial_epoch >= cap else initial_epoch)
        return super().run_trial(trial, *fit_args, **fit_kwargs)


def _adopt_project(project_dir: str, tuner_id: str) -> None:
    """Let a tuner of another id resume a project: a standalone search resumed as a chief, or back.

    KerasTuner reloads a project only when it finds the file of its own tuner id (`tuner0.json`,
    `chief.json`); otherwise it starts afresh and overwrites the finished trials. That file holds
    `{}` for every built-in tuner, so writing it is what KerasTuner itself would have done.
    """
    tuner_file = os.path.join(project_dir, f"{tuner_id}.json")
    if (keras_tuner_io.exists(os.path.join(project_dir, ORACLE_FILE))
            and not keras_tuner_io.exists(tuner_file)):
        save_json(tuner_file, {})


class PatientOracleClient(oracle_client.OracleClient):
    """KerasTuner's worker-side oracle proxy, pausing when the chief has no trial yet.

    KerasTuner's own search loop asks again at once, thousands of times a second, while a
    Hyperband round waits for its last trials.
    """

    pause_seconds = 2.0

    def create_trial(self, tuner_id):
        trial = super().create_trial(tuner_id)
        if trial.status == TrialStatus.IDLE:
            time.sleep(self.pause_seconds)
        return trial


def serve_oracle(oracle: SearchOracle, address: str, worker_timeout: float,
                 on_message=None, poll_seconds: float = 0.5) -> None:
    """Serve the oracle to the workers until the search is over, as KerasTuner's chief does.

    KerasTuner's own chief (`oracle_chief.start_server`) ends only when no trial is running and
    every worker has been told to stop, so a worker killed mid-trial stalls it for ever; this
    one serves KerasTuner's own `OracleServicer` but drops workers silent for `worker_timeout`
    seconds and hands their trials on.

    Raises:
        DistributeError: the address cannot be listened on.
    """
    from concurrent import futures

    import grpc
    from keras_tuner.src import protos
    from keras_tuner.src.distribute import oracle_chief

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
            time.sleep(poll_seconds)
            for worker, trial_id in oracle.drop_silent_workers(worker_timeout):
                if on_message:
                    on_message(f"worker {worker} silent for {worker_timeout:g} s: dropped"
                               + (f", its trial {trial_id} queued for retry" if trial_id else ""))
    finally:
        server.stop(grace=1)
        oracle.save()  # KerasTuner's last save predates the end of the last trial


def search_space(hypermodel: keras_tuner.HyperModel) -> list[dict]:
    """Return the space a fresh search would start from, as KerasTuner saves it in oracle.json.

    Runs KerasTuner's own discovery (`Tuner._populate_initial_space`, which builds the model
    until every conditional scope has been seen) on a throwaway tuner with no project on disk.
    """
    probe = keras_tuner.Tuner.__new__(keras_tuner.Tuner)
    probe.hypermodel, probe.oracle = hypermodel, keras_tuner.Oracle()
    probe._populate_initial_space()
    keras.backend.clear_session()  # the probe built real models; free them
    return json.loads(json.dumps(probe.oracle.hyperparameters.get_config()["space"]))


def fit_data_adapter(batches):
    """The data adapter `Model.fit` builds around a PyDataset, unshuffled, for measuring how
    fast Keras delivers its batches (benchmarks.profile_epoch): Keras 3 has no public way to
    iterate a PyDataset as `fit` does."""
    from keras.src.trainers.data_adapters import get_data_adapter

    return get_data_adapter(batches, shuffle=False)
