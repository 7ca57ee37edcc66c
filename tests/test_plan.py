
import pytest

from fashion.errors import RunDirError
from fashion.runs import plan as planning
from fashion.runs import rundir
from fashion.spaces.networks import NETWORKS
from fashion.training.config import config_from_preset
from fashion.training.device import Device

CPU = Device(backend="tensorflow", kind="cpu", name="Test CPU", memory_gib=None, cpu_cores=2,
             bfloat16=True)
GPU = Device(backend="jax", kind="gpu", name="Test GPU", memory_gib=80.0, cpu_cores=16,
             bfloat16=True)


class FakeDevice:
    """Training images/s for each network, as if `vgg` ran at `vgg_rate` and the others at the
    rate their multiply-adds predict; bfloat16 `bf16_speedup` times float32."""

    def __init__(self, vgg_rate: float, bf16_speedup: float = 1.5):
        self.vgg_rate, self.bf16_speedup, self.measured = vgg_rate, bf16_speedup, []

    def __call__(self, network: str, precision: str, augment_in_graph: bool) -> float:
        self.measured.append((network, precision))
        self.augmented_in_graph = augment_in_graph
        cost = NETWORKS[network].multiply_adds() / NETWORKS["vgg"].multiply_adds()
        speedup = self.bf16_speedup if precision == "mixed_bfloat16" else 1.0
        return self.vgg_rate * speedup / cost


def test_a_slow_cpu_trains_the_small_network_for_what_the_budget_buys():
    config = config_from_preset("default")  # 15 minutes on the seed split
    device = FakeDevice(vgg_rate=1200)
    plan = planning.make_plan(config, CPU, device)
    assert plan.network == "vgg" and plan.precision == "mixed_bfloat16"
    assert plan.search_minutes == 0 and plan.training_minutes == 12.5
    # 12.5 minutes at 1,800 images/s, epochs of 60,000 training and 6,000 validation images.
    assert plan.epochs == int(12.5 * 60 * 1800 / (60_000 + 6_000 / 3))
    assert not plan.augment_in_graph  # NumPy on a CPU's host
    # vgg-wide could not get 30 epochs even at twice its predicted rate: never measured.
    assert device.measured == [("vgg", "float32"), ("vgg", "mixed_bfloat16")]


def test_a_longer_budget_buys_a_bigger_network_that_still_gets_its_epochs():
    config = config_from_preset("best")  # 60 minutes, standard split, with a search
    plan = planning.make_plan(config, CPU, FakeDevice(vgg_rate=1200))
    assert plan.network in ("vgg-wide", "vgg-2x")
    assert plan.epochs >= planning.MIN_EPOCHS
    assert plan.search_minutes == pytest.approx(0.1 * (60 - plan.reserve_minutes), abs=0.01)
    assert plan.search_minutes + plan.training_minutes + plan.reserve_minutes == \
        pytest.approx(60, abs=0.02)


def test_folding_validation_in_plans_epochs_of_all_the_images_and_no_validation_pass():
    config = config_from_preset("default", fold_validation=True)
    assert planning.training_images(config) == 66_000  # the seed split's 6,000 folded in
    plan = planning.make_plan(config, CPU, FakeDevice(vgg_rate=1200))
    assert plan.epochs == int(12.5 * 60 * 1800 / 66_000)
    assert planning.training_images(config_from_preset("best")) == 60_000


def test_a_fast_accelerator_gets_a_residual_network_bfloat16_and_in_graph_augmentation():
    device = FakeDevice(vgg_rate=200_000)
    plan = planning.make_plan(config_from_preset("best", budget=10.0), GPU, device)
    assert NETWORKS[plan.network].residual and plan.epochs >= planning.MIN_EPOCHS
    assert plan.precision == "mixed_bfloat16" and plan.augment_in_graph
    assert ("vgg", "float32") not in device.measured  # bfloat16 on a GPU is not measured
    assert device.augmented_in_graph  # measured as it will train


def test_a_gpu_without_bfloat16_units_trains_in_float32():
    old_gpu = Device(**{**GPU.to_dict(), "bfloat16": False})
    device = FakeDevice(vgg_rate=50_000)
    assert planning.make_plan(config_from_preset("best", budget=10.0), old_gpu,
                              device).precision == "float32"
    assert {precision for _, precision in device.measured} == {"float32"}


def test_epochs_are_capped_where_a_device_is_faster_than_any_network_needs():
    plan = planning.make_plan(config_from_preset("best"), GPU, FakeDevice(vgg_rate=1e9))
    assert plan.network == "wrn-16-8" and plan.epochs == planning.MAX_EPOCHS


@pytest.mark.parametrize("speedup, has_bf16, expected", [
    (1.3, True, "mixed_bfloat16"),
    (0.7, True, "float32"),  # measured slower: float32
    (1.3, False, "float32"),  # no bfloat16 instructions: not even measured
])
def test_bfloat16_on_a_cpu_only_where_it_has_the_instructions_and_is_not_slower(
        speedup, has_bf16, expected):
    device = FakeDevice(vgg_rate=1200, bf16_speedup=speedup)
    cpu = Device(**{**CPU.to_dict(), "bfloat16": has_bf16})
    assert planning.make_plan(config_from_preset("default"), cpu, device).precision == expected
    assert (("vgg", "mixed_bfloat16") in device.measured) == has_bf16


def test_settings_the_config_names_are_kept():
    config = config_from_preset("default", network="vgg-2x", precision="float32",
                                augment_in_graph=True)
    device = FakeDevice(vgg_rate=1200)
    plan = planning.make_plan(config, CPU, device)
    assert (plan.network, plan.precision, plan.augment_in_graph) == ("vgg-2x", "float32", True)
    assert device.measured == [("vgg-2x", "float32")]


def test_applying_a_plan_fills_in_the_run_settings():
    config = config_from_preset("best")
    plan = planning.make_plan(config, CPU, FakeDevice(vgg_rate=1200))
    run = planning.apply_plan(config, plan)
    assert (run.network, run.precision) == (plan.network, plan.precision)
    # Room past the estimate: the deadline, not a low estimate, ends the training.
    assert run.final_epochs == planning.epoch_cap(plan.epochs) > plan.epochs
    assert planning.epoch_cap(planning.MAX_EPOCHS) == planning.MAX_EPOCHS
    assert run.final_time_budget == plan.training_minutes
    assert run.time_budget == plan.search_minutes
    assert planning.apply_plan(config_from_preset("default"),
                               planning.make_plan(config_from_preset("default"), CPU,
                                                  FakeDevice(1200))).time_budget is None


def test_plan_lines_name_the_device_the_choice_and_the_minutes():
    plan = planning.make_plan(config_from_preset("default"), CPU, FakeDevice(vgg_rate=1200))
    text = "\n".join(plan.lines())
    assert "Test CPU (cpu; 2 CPU cores; Keras on tensorflow)" in text
    assert "network vgg in mixed_bfloat16 at 1,800 images/s" in text
    assert "final training 12.5 min" in text


def _save(run_dir, config, plan):
    run_dir.mkdir()
    rundir.RunDir(run_dir).write_record(planning.apply_plan(config, plan), {}, "fashion run",
                                        plan.device, plan)


def test_a_resumed_run_reuses_its_saved_plan_without_measuring(tmp_path, monkeypatch):
    config = config_from_preset("default")
    plan = planning.make_plan(config, CPU, FakeDevice(vgg_rate=1200))
    _save(tmp_path / "run", config, plan)

    def measuring(*args, **kwargs):
        raise AssertionError("a resumed run measured again")

    monkeypatch.setattr(planning, "measure_training_speed", measuring)
    resumed, again = planning.plan_run(config, tmp_path / "run")
    assert again == plan and resumed == planning.apply_plan(config, plan)


def test_a_resume_naming_another_network_than_its_plan_is_refused(tmp_path):
    config = config_from_preset("default")
    _save(tmp_path / "run", config, planning.make_plan(config, CPU, FakeDevice(1200)))
    with pytest.raises(RunDirError, match="planned with other settings .network: 'vgg' -> "
                       "'vgg-2x'.; rerun with the same options"):
        planning.plan_run(config.replace(network="vgg-2x"), tmp_path / "run")


def test_no_budget_no_plan(tmp_path):
    config = config_from_preset("cnn")
    assert planning.plan_run(config, tmp_path / "run") == (config, None)


@pytest.mark.integration
@pytest.mark.parametrize("augment_in_graph", [False, True])
def test_measuring_trains_the_network_on_this_device(augment_in_graph):
    config = config_from_preset("default")
    rate = planning.measure_training_speed(config, "vgg", "float32", augment_in_graph,
                                           seconds=0.5)
    assert 10 < rate < 1e7


def test_a_measurement_cut_short_by_debug_caps_still_plans():
    # KERAS_MAX_STEPS_PER_EPOCH can end a measurement before it times a step: rate 0.
    plan = planning.make_plan(config_from_preset("default", limit=300), CPU,
                              lambda network, precision, in_graph: 0.0)
    assert (plan.network, plan.precision, plan.epochs) == ("vgg", "float32", 1)
    assert "vgg float32 not measured" in plan.lines()[1]
    assert "a speed not measured" in plan.lines()[2]


def test_throughput_times_the_steps_that_ran_when_training_ends_early():
    clock = planning.Throughput(seconds=3600, batch_size=128)
    clock.on_epoch_begin(0)
    for batch in range(3):  # the first call compiles: it starts the clock
        clock.on_train_batch_end(batch)
    clock.on_train_end()
    assert clock.rate > 0
    untimed = planning.Throughput(seconds=3600, batch_size=128)
    untimed.on_epoch_begin(0)
    untimed.on_train_batch_end(0)
    untimed.on_train_end()
    assert untimed.rate == 0.0
