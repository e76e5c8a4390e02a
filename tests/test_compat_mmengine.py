"""Defects 3 and 4 (stack.md): mmengine checkpoints under torch>=2.6; CPU launcher."""

import subprocess
import sys

import pytest
import torch
from conftest import run_python

SAVE_THEN_LOAD = """
    {fix}
    import torch
    from mmengine.logging import MessageHub
    from mmengine.runner.checkpoint import _load_checkpoint
    hub = MessageHub.get_instance('plugzoo-test')
    hub.update_scalar('train/loss', 0.5)
    torch.save(dict(meta=dict(message_hub=hub.state_dict()),
                    state_dict=dict(w=torch.ones(2))), 'ckpt.pth')
    checkpoint = _load_checkpoint('ckpt.pth', map_location='cpu')
    print('loss history', checkpoint['meta']['message_hub']['log_scalars']['train/loss'].data)
"""


def test_mmengine_cannot_load_its_message_hub_without_the_fix(tmp_path):
    result = run_python(SAVE_THEN_LOAD.format(fix=""), cwd=tmp_path)
    assert result.returncode != 0
    assert "HistoryBuffer" in result.stderr


def test_mmengine_loads_its_message_hub_with_the_fix(tmp_path):
    result = run_python(SAVE_THEN_LOAD.format(fix="import mmaction_ext"), cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "loss history" in result.stdout


INIT_DIST = """
import sys
import torch.distributed as dist
if sys.argv[1] == 'fixed':
    from plugins.compat import mmengine_cpu_launcher
    mmengine_cpu_launcher()
from mmengine.dist import init_dist
init_dist('pytorch')  # mmengine's default backend: nccl
with open(f'rank{dist.get_rank()}.txt', 'w') as f:  # ranks' stdout interleaves
    f.write(f'rank {dist.get_rank()} of {dist.get_world_size()} backend {dist.get_backend()}')
dist.destroy_process_group()
"""


def _torchrun(tmp_path, mode):
    script = tmp_path / "init_dist.py"
    script.write_text(INIT_DIST)
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "torch.distributed.run",
            "--nproc_per_node",
            "2",
            "--standalone",  # a free port, so parallel runs do not collide
            str(script),
            mode,
        ],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=tmp_path,
    )


CPU_ONLY = pytest.mark.skipif(torch.cuda.is_available(), reason="checks the CPU-only path")


@CPU_ONLY
def test_pytorch_launcher_fails_on_cpu_without_the_fix(tmp_path):
    result = _torchrun(tmp_path, "unfixed")
    assert result.returncode != 0
    assert "cuda" in (result.stdout + result.stderr).lower()


@CPU_ONLY
def test_pytorch_launcher_initialises_gloo_on_cpu_with_the_fix(tmp_path):
    result = _torchrun(tmp_path, "fixed")
    assert result.returncode == 0, result.stderr
    for rank in (0, 1):
        assert (tmp_path / f"rank{rank}.txt").read_text() == f"rank {rank} of 2 backend gloo"
