"""trainer.amp=auto on CUDA: bf16 where the GPU runs it natively (compute capability 8.0 and later), fp16 with
loss scaling on older GPUs (a mock: no GPU here)."""

import pytest
import torch

from padlib.engine import amp


@pytest.mark.parametrize("capability, dtype", [((7, 0), torch.float16), ((7, 5), torch.float16),
                                               ((8, 0), torch.bfloat16), ((9, 0), torch.bfloat16)])
def test_auto_picks_what_the_gpu_runs_natively(monkeypatch, capability, dtype):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "get_device_capability", lambda device=None: capability)
    monkeypatch.setattr(torch.cuda, "get_device_name", lambda device=None: "a GPU")
    cuda = torch.device("cuda", 0)
    assert amp.amp_dtype("auto", cuda) == dtype
    assert amp.amp_dtype("bf16", cuda) == torch.bfloat16  # asked for explicitly: as asked


def test_auto_is_full_precision_on_cpu():
    assert amp.amp_dtype("auto", torch.device("cpu")) is None
