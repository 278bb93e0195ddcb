"""The shipped accelerate configs load with accelerate's own parser and say what docs/scale.md
says they do."""

from __future__ import annotations

from pathlib import Path

import pytest

CONFIGS = Path(__file__).resolve().parents[2] / "configs" / "accelerate"
EXPECTED = {
    "single_gpu.yaml": ("NO", 1),
    "multi_gpu.yaml": ("MULTI_GPU", 8),
    "cpu_ddp_2proc.yaml": ("MULTI_GPU", 2),
    "deepspeed_zero2.yaml": ("DEEPSPEED", 8),
    "deepspeed_zero3.yaml": ("DEEPSPEED", 8),
    "fsdp.yaml": ("FSDP", 8),
}


def load(name: str):
    from accelerate.commands.config.config_args import load_config_from_file

    return load_config_from_file(str(CONFIGS / name))


def test_every_shipped_config_is_listed():
    assert sorted(p.name for p in CONFIGS.glob("*.yaml")) == sorted(EXPECTED)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_config_loads_with_expected_type(name):
    cfg = load(name)
    kind, n = EXPECTED[name]
    assert str(cfg.distributed_type).split(".")[-1] == kind
    assert cfg.num_processes == n and cfg.num_machines == 1


def test_cpu_config_starts_processes_through_torchrun():
    """use_cpu would route accelerate to its single-process launcher (mpirun only)."""
    assert load("cpu_ddp_2proc.yaml").use_cpu is False


@pytest.mark.parametrize("name,stage", [("deepspeed_zero2.yaml", 2), ("deepspeed_zero3.yaml", 3)])
def test_deepspeed_configs(name, stage):
    ds = load(name).deepspeed_config
    assert ds["zero_stage"] == stage
    assert ds["gradient_accumulation_steps"] == 1  # the engine accumulates; see the config
    assert ds["gradient_clipping"] == 1.0


def test_fsdp_config_keeps_original_params_for_lora():
    fsdp = load("fsdp.yaml").fsdp_config
    assert fsdp["fsdp_use_orig_params"] is True
    assert fsdp["fsdp_sharding_strategy"] == "FULL_SHARD"
