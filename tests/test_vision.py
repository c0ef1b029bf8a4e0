"""The digits ViT, its position methods and the comrope-vision experiment.

The chapter *ComRoPE on images* derives them.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import matplotlib.pyplot as plt
import pytest
import torch

from ropelib.comrope import ComRoPEAP
from ropelib.experiments.records import load_results
from ropelib.experiments.runner import run_lock
from ropelib.experiments.vision import (
    plot_vision_results,
    run_vision_experiment,
    torch_threads,
    train_vision_model,
    vision_config,
    vision_results_table,
    vision_runs,
)
from ropelib.train.optim import parameter_groups
from ropelib.vision import (
    METHODS,
    ROTARY_METHODS,
    AbsolutePositionEmbedding,
    VisionConfig,
    VisionTransformer,
    evaluate_accuracy,
    load_digits_split,
    patch_positions,
    position_method,
    resize_images,
)

ROOT = Path(__file__).resolve().parent.parent
SIZES = (4, 6, 8, 12, 16)
# the one record schema of every experiment (ropelib.experiments.records)
FIELDS = {
    "experiment",
    "run",
    "label",
    "seed",
    "quick",
    "config",
    "git",
    "hardware",
    "wall_time_s",
    "final",
    "history",
    "finished",
}


@pytest.fixture(autouse=True)
def one_thread():
    with torch_threads(1):  # tiny models: on a shared CPU, more threads only wait
        yield


def small_config(method: str, **overrides) -> VisionConfig:
    settings = dict(method=method, dim=16, depth=1, heads=2, block_dim=4) | overrides
    return VisionConfig(**settings)


def rotary(method: str) -> torch.nn.Module:
    return position_method(method, 8, n_heads=2, block_dim=4)


def rotate(module, q, k, positions):
    return module.rotate_queries_and_keys(q, k, positions)


@pytest.mark.parametrize("method", METHODS)
def test_model_output_shape_at_every_resolution(method):
    torch.manual_seed(0)
    model = VisionTransformer(small_config(method))
    for size in SIZES:
        logits = model(torch.rand(3, 1, size, size))
        assert logits.shape == (3, 10)
        assert torch.isfinite(logits).all()


@pytest.mark.parametrize("method", ROTARY_METHODS)
def test_rotary_methods_rotate_at_every_grid(method):
    torch.manual_seed(0)
    module = rotary(method)
    for grid in (2, 3, 4, 6, 8):
        q, k = torch.randn(2, 2, grid * grid, 8), torch.randn(2, 2, grid * grid, 8)
        q_rot, k_rot = rotate(module, q, k, patch_positions(grid) * 4)
        assert q_rot.shape == k_rot.shape == q.shape
        assert torch.allclose(q_rot.norm(dim=-1), q.norm(dim=-1), atol=1e-4)
        assert not torch.allclose(q_rot, q, atol=1e-3)  # it does rotate


@pytest.mark.parametrize("method", ROTARY_METHODS)
def test_translation_changes_no_logit_exactly_when_generators_commute(method):
    torch.manual_seed(0)
    module = rotary(method)
    with torch.no_grad():
        for p in module.parameters():
            p.add_(0.3 * torch.randn_like(p))
    q, k = torch.randn(1, 2, 16, 8), torch.randn(1, 2, 16, 8)
    positions = patch_positions(4) * 4

    def logits(shift):
        q_rot, k_rot = rotate(module, q, k, positions + torch.tensor(shift))
        return q_rot @ k_rot.transpose(-1, -2)

    scale = logits([0.0, 0.0]).abs().max()
    change = (logits([2.3, -1.1]) - logits([0.0, 0.0])).abs().max()
    if method == "liere":
        assert change > 1e-2 * scale
    else:
        assert change < 1e-4 * scale


def test_axial_rope_is_comrope_ap_with_pair_blocks_at_initialization():
    torch.manual_seed(0)
    axial = position_method("rope-axial", 32, n_heads=2)
    ap = ComRoPEAP(32, n_heads=2, n_axes=2, block_dim=2, base=100.0)
    q, k = torch.randn(2, 2, 36, 32), torch.randn(2, 2, 36, 32)
    positions = patch_positions(6) * 4
    for a, b in zip(rotate(axial, q, k, positions), rotate(ap, q, k, positions), strict=True):
        assert torch.allclose(a, b, atol=1e-6)


def test_axial_rope_is_fixed_and_the_others_train():
    for method in ROTARY_METHODS:
        trainable = sum(p.numel() for p in rotary(method).parameters() if p.requires_grad)
        assert (trainable == 0) == (method == "rope-axial"), method


def test_no_weight_decay_on_position_parameters():
    for method in METHODS:
        model = VisionTransformer(small_config(method))
        groups = parameter_groups(model, 0.05)
        decayed = {id(p) for g in groups if g["weight_decay"] > 0 for p in g["params"]}
        names = {id(p): n for n, p in model.named_parameters()}
        grouped = {id(p) for g in groups for p in g["params"]}
        trainable = {id(p) for p in model.parameters() if p.requires_grad}
        assert trainable <= grouped, method  # every trained parameter is optimised
        for pid in decayed:
            name = names[pid]
            assert ".rotary." not in name and not name.startswith("absolute."), name
        assert id(model.blocks[0].attn.qkv.weight) in decayed
        assert id(model.patch_embed.weight) in decayed


def test_ape_is_the_table_on_the_training_grid_and_interpolates_elsewhere():
    ape = AbsolutePositionEmbedding(dim=8, grid=4)
    assert torch.allclose(ape(patch_positions(4)), ape.table[0].flatten(1).T, atol=1e-6)
    for grid in (2, 6, 8):
        resized = torch.nn.functional.interpolate(
            ape.table, size=(grid, grid), mode="bilinear", align_corners=False
        )
        assert torch.allclose(ape(patch_positions(grid)), resized[0].flatten(1).T, atol=1e-6)


def test_resize_to_the_same_size_returns_the_originals():
    images = torch.rand(5, 1, 8, 8)
    assert torch.equal(resize_images(images, 8), images)
    assert resize_images(images, 12).shape == (5, 1, 12, 12)


def test_patch_positions_cover_the_unit_square_at_any_density():
    for grid in (1, 3, 4, 8):
        p = patch_positions(grid)
        assert p.shape == (grid * grid, 2)
        assert torch.allclose(p.mean(0), torch.tensor([0.5, 0.5]))
        assert float(p.min()) == pytest.approx(0.5 / grid)


def test_digits_split_is_stratified_and_fixed():
    train_x, train_y, test_x, test_y = load_digits_split()
    assert train_x.shape == (1438, 1, 8, 8) and test_x.shape == (359, 1, 8, 8)
    assert torch.bincount(test_y, minlength=10).min() >= 35
    assert torch.equal(load_digits_split()[3], test_y)


def test_missing_scikit_learn_is_one_line_naming_the_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "sklearn", None)  # `import sklearn` now fails
    monkeypatch.setitem(sys.modules, "sklearn.datasets", None)
    with pytest.raises(ImportError, match="pip install scikit-learn") as error:
        load_digits_split()
    assert "\n" not in str(error.value)


@pytest.mark.parametrize(
    "call, parameter",
    [
        (lambda: VisionConfig(method="alibi"), "method"),
        (lambda: VisionConfig(perturbation="rotate"), "perturbation"),
        (lambda: VisionConfig(patch_size=3), "patch_size"),
        (lambda: VisionConfig(heads=3), "heads"),
        (lambda: VisionConfig(eval_sizes=(6, 7)), "eval_sizes"),
        (lambda: VisionConfig(epochs=0), "epochs"),
        (lambda: VisionConfig(lr=-1.0), "lr"),
        (lambda: VisionConfig(method="comrope-ap", block_dim=6), "block_dim"),
        (lambda: VisionConfig(method="comrope-ap", dim=32, block_dim=16), "block_dim"),
        (lambda: position_method("ape", 8, n_heads=2), "method"),
        (lambda: load_digits_split(test_fraction=1.5), "test_fraction"),
        (lambda: patch_positions(0), "grid"),
        (lambda: resize_images(torch.rand(8, 8), 4), "images"),
        (lambda: resize_images(torch.rand(1, 1, 8, 8), 0), "size"),
        (lambda: AbsolutePositionEmbedding(8, 0), "grid"),
        (lambda: VisionTransformer(small_config("ape"))(torch.rand(2, 1, 7, 7)), "images"),
        (lambda: VisionTransformer(small_config("ape"))(torch.rand(2, 3, 8, 8)), "images"),
        (
            lambda: VisionTransformer(small_config("rope-axial"))(
                torch.rand(2, 1, 8, 8), torch.rand(9, 2)
            ),
            "positions",
        ),
        (lambda: evaluate_accuracy(VisionTransformer(small_config("ape")), None, None, 5), "size"),
        (lambda: train_vision_model("comrope-ap"), "config"),
        (lambda: run_vision_experiment(quick=True, seeds=0), "seeds"),
        (lambda: vision_results_table("/nonexistent/comrope-vision"), "results_dir"),
        (lambda: torch_threads(0).__enter__(), "threads"),
    ],
)
def test_bad_input_raises_value_error_naming_the_parameter(call, parameter):
    with pytest.raises(ValueError, match=parameter):
        call()


def test_evaluate_accuracy_is_a_fraction():
    torch.manual_seed(0)
    model = VisionTransformer(small_config("comrope-ld"))
    images, labels = torch.rand(20, 1, 8, 8), torch.randint(0, 10, (20,))
    for size in (6, 16):
        assert 0.0 <= evaluate_accuracy(model, images, labels, size) <= 1.0


def test_threads_are_restored():
    before = torch.get_num_threads()
    with torch_threads(1):
        assert torch.get_num_threads() == 1
    assert torch.get_num_threads() == before


def check_record(record: dict, quick: bool) -> None:
    """A record in the one schema, as the vision experiment writes it."""
    assert FIELDS <= set(record)
    assert record["experiment"] == "comrope-vision" and record["quick"] is quick
    config = VisionConfig(**record["config"])  # the stored config is a valid config
    assert record["label"] == f"{config.method} {config.perturbation}"
    assert (
        record["run"] == f"{record['label']}-seed{record['seed']}" and config.seed == record["seed"]
    )
    assert set(record["git"]) == {"commit", "dirty"}
    assert {"cpu", "cpu_count", "torch_threads", "torch"} <= set(record["hardware"])
    accuracy = record["final"]["accuracy"]
    assert set(accuracy) == {str(s) for s in config.eval_sizes}
    assert all(0.0 <= a <= 1.0 for a in accuracy.values())
    assert [h["epoch"] for h in record["history"]] == list(range(1, config.epochs + 1))
    assert record["final"]["train_loss"] == record["history"][-1]["loss"]


def test_quick_experiment_writes_one_record_per_run_and_resumes(tmp_path):
    results, runs = tmp_path / "comrope-vision", tmp_path / "runs"
    records = run_vision_experiment(quick=True, results_dir=results, seeds=1, runs_dir=runs)
    files = sorted(results.glob("*.json"))
    assert len(records) == len(files) == len(METHODS) * 2
    assert not [p for p in results.iterdir() if p.suffix != ".json"]  # no temporary left
    fresh = {}
    for path in files:
        record = json.loads(path.read_text())
        check_record(record, quick=True)
        expected = vision_config(record["config"]["method"], "none", 0, quick=True)
        assert record["config"]["epochs"] == expected.epochs and path.stem == record["run"]
        fresh[record["run"]] = record
    stamps = {path: path.stat().st_mtime_ns for path in files}
    again = run_vision_experiment(quick=True, results_dir=results, seeds=1, runs_dir=runs)
    assert again == records
    assert {path: path.stat().st_mtime_ns for path in files} == stamps  # skipped, not rewritten
    table = vision_results_table(results)
    assert len(table.splitlines()) == 2 + len(METHODS) * 2 and table.count(" ± ") == 12 * 4
    figure = plot_vision_results(results)
    assert figure._suptitle is not None and figure._suptitle.get_text()
    assert all(ax.get_xlabel() for ax in figure.axes) and figure.axes[0].get_ylabel()
    assert len(figure.axes) == 2  # one panel per perturbation
    plt.close(figure)


def test_a_run_whose_lock_is_held_is_left_to_its_owner(tmp_path):
    results, runs = tmp_path / "comrope-vision", tmp_path / "runs"
    run, *_ = vision_runs(1)[0]
    (runs / "comrope-vision").mkdir(parents=True)
    with run_lock(runs / "comrope-vision" / f"{run}.lock") as mine:
        assert mine
        records = run_vision_experiment(quick=True, results_dir=results, seeds=1, runs_dir=runs)
    assert len(records) == len(METHODS) * 2 - 1
    assert run not in {r["run"] for r in records} and not (results / f"{run}.json").exists()


def test_the_stored_results_are_in_the_one_schema():
    stored = load_results("comrope-vision", ROOT / "results")
    assert len(stored) == len(vision_runs(3)) == 36
    assert {r["run"] for r in stored} == {run for run, *_ in vision_runs(3)}
    for record in stored:
        check_record(record, quick=False)
        method, perturbation = record["config"]["method"], record["config"]["perturbation"]
        expected = vision_config(method, perturbation, record["seed"])
        assert VisionConfig(**record["config"]) == expected  # the full-size settings


def test_the_command_line_runs_the_vision_experiment(tmp_path, monkeypatch, capsys):
    from ropelib.cli import main

    monkeypatch.chdir(tmp_path)  # quick results go to ./runs/quick/results
    assert main(["experiment", "comrope-vision", "--quick", "--seeds", "1"]) == 0
    written = sorted((tmp_path / "runs" / "quick" / "results" / "comrope-vision").glob("*.json"))
    assert len(written) == 12  # 6 methods x 2 perturbations x 1 seed
    assert "comrope-ap" in capsys.readouterr().out  # the results table was printed
