"""The digits ViT and its position methods (notebooks/07_comrope_vision.md)."""

from __future__ import annotations

import json

import matplotlib.pyplot as plt
import pytest
import torch

from ropelib.vision import (
    METHODS,
    ROTARY_METHODS,
    AbsolutePositionEmbedding,
    VisionConfig,
    VisionTransformer,
    evaluate_accuracy,
    patch_positions,
    plot_vision_results,
    resize_images,
    rotary_method,
    run_vision_experiment,
    torch_threads,
    vision_config,
    vision_results_table,
)

SIZES = (4, 6, 8, 12, 16)


@pytest.fixture(autouse=True)
def one_thread():
    with torch_threads(1):  # tiny models: on a shared CPU, more threads only wait for each other
        yield


FIELDS = {
    "method",
    "perturbation",
    "seed",
    "config",
    "accuracy",
    "train_loss",
    "wall_time_s",
    "hardware",
    "git_commit",
}


def small_config(method: str, **overrides) -> VisionConfig:
    settings = dict(method=method, dim=16, depth=1, heads=2, block_size=4) | overrides
    return VisionConfig(**settings)


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
    module = rotary_method(method, head_dim=16, n_heads=2, block_size=4)
    for grid in (2, 3, 4, 6, 8):
        q, k = torch.randn(2, 2, grid * grid, 16), torch.randn(2, 2, grid * grid, 16)
        q_rot, k_rot = module.rotate_pair(q, k, patch_positions(grid) * 4)
        assert q_rot.shape == k_rot.shape == q.shape
        assert torch.allclose(q_rot.norm(dim=-1), q.norm(dim=-1), atol=1e-4)


@pytest.mark.parametrize("method", ROTARY_METHODS)
def test_translation_changes_no_logit_exactly_when_generators_commute(method):
    torch.manual_seed(0)
    module = rotary_method(method, head_dim=16, n_heads=2, block_size=4)
    with torch.no_grad():
        for p in module.parameters():
            p.add_(0.3 * torch.randn_like(p))
    q, k = torch.randn(1, 2, 16, 16), torch.randn(1, 2, 16, 16)
    positions = patch_positions(4) * 4

    def logits(shift):
        q_rot, k_rot = module.rotate_pair(q, k, positions + torch.tensor(shift))
        return q_rot @ k_rot.transpose(-1, -2)

    scale = logits([0.0, 0.0]).abs().max()
    change = (logits([2.3, -1.1]) - logits([0.0, 0.0])).abs().max()
    if method == "liere":
        assert change > 1e-2 * scale
    else:
        assert change < 1e-4 * scale


def test_axial_rope_is_frozen_and_the_others_train():
    for method in ROTARY_METHODS:
        module = rotary_method(method, head_dim=16, n_heads=2, block_size=4)
        trainable = sum(p.numel() for p in module.parameters() if p.requires_grad)
        assert (trainable == 0) == (method == "rope-axial"), method


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
        (lambda: VisionConfig(method="comrope-ap", dim=64, heads=2, block_size=6), "block_size"),
        (lambda: rotary_method("ape", 16, 2), "method"),
        (lambda: rotary_method("comrope-ld", 16, 2, block_size=16), "block_size"),
        (lambda: rotary_method("liere", 0, 2), "head_dim"),
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


def test_quick_experiment_writes_one_json_per_run_and_resumes(tmp_path):
    records = run_vision_experiment(quick=True, results_dir=tmp_path, seeds=1)
    files = sorted(tmp_path.glob("*.json"))
    assert len(records) == len(files) == len(METHODS) * 2
    assert not list(tmp_path.glob("*.tmp")) and not list(tmp_path.glob(".*"))
    for path in files:
        record = json.loads(path.read_text())
        assert FIELDS <= set(record)
        assert set(record["accuracy"]) == {"6", "8", "12", "16"}
        assert all(0.0 <= a <= 1.0 for a in record["accuracy"].values())
        assert len(record["train_loss"]) == record["config"]["epochs"]
        assert {"cpu", "torch", "threads"} <= set(record["hardware"])
        expected = vision_config(record["method"], record["perturbation"], 0, quick=True)
        assert record["config"]["epochs"] == expected.epochs
        assert (record["config"]["method"], record["seed"]) == (record["method"], 0)
    stamps = {path: path.stat().st_mtime_ns for path in files}
    again = run_vision_experiment(quick=True, results_dir=tmp_path, seeds=1)
    assert again == records
    assert {path: path.stat().st_mtime_ns for path in files} == stamps  # skipped, not rewritten
    table = vision_results_table(tmp_path)
    assert len(table.splitlines()) == 2 + len(METHODS) * 2 and table.count(" ± ") == 12 * 4
    figure = plot_vision_results(tmp_path)
    assert figure._suptitle is not None and figure._suptitle.get_text()
    assert all(ax.get_xlabel() for ax in figure.axes) and figure.axes[0].get_ylabel()
    assert len(figure.axes) == 2  # one panel per perturbation
    plt.close(figure)


def test_the_command_line_runs_the_vision_experiment(tmp_path, monkeypatch, capsys):
    from ropelib.cli import main

    monkeypatch.chdir(tmp_path)  # quick results go to ./runs/quick/results
    assert main(["experiment", "comrope-vision", "--quick", "--seeds", "1"]) == 0
    written = sorted((tmp_path / "runs" / "quick" / "results" / "comrope-vision").glob("*.json"))
    assert len(written) == 12  # 6 methods x 2 perturbations x 1 seed
    assert "comrope-ap" in capsys.readouterr().out  # the results table was printed
