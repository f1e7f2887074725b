"""Run directories under concurrency and damage: an exclusive lock, stale locks, corrupt checkpoints,
validation before anything is written."""

import subprocess
import sys
import textwrap

import numpy as np
import pytest

torch = pytest.importorskip("torch")

import statphys_diffusion as sd  # noqa: E402
from statphys_diffusion import cli, nets  # noqa: E402
from statphys_diffusion._io import DirectoryLock  # noqa: E402
from statphys_diffusion.nets.train import load_checkpoint  # noqa: E402

TRAINER = textwrap.dedent(
    """
    import os, sys, time, numpy as np, torch
    import statphys_diffusion as sd
    from statphys_diffusion import nets
    # a barrier: both trainers start training together, whatever their import times (under load one
    # used to finish all its steps before the other had imported torch, and then both succeeded)
    ready = os.path.join(os.path.dirname(sys.argv[1]), f"ready-{os.getpid()}")
    open(ready, "w").close()
    deadline = time.time() + 120
    while sum(f.startswith("ready-") for f in os.listdir(os.path.dirname(sys.argv[1]))) < 2:
        if time.time() > deadline:
            sys.exit(4)
        time.sleep(0.01)
    torch.set_num_threads(1)
    torch.manual_seed(0)
    net = nets.MLPDenoiser(2, hidden=32, depth=2)
    cfg = nets.TrainConfig(steps=int(sys.argv[2]), batch_size=64, checkpoint_every=50)
    data = np.random.default_rng(0).standard_normal((256, 2))
    try:
        nets.train(net, data, sd.OrnsteinUhlenbeck(), cfg, checkpoint=sys.argv[1], progress=False)
    except ValueError as err:
        print("REFUSED", err)
        sys.exit(3)
    print("DONE")
    """
)


def test_two_trainers_on_one_checkpoint_one_is_refused_and_no_work_is_lost(tmp_path):
    ck = tmp_path / "run" / "checkpoint.pt"
    ck.parent.mkdir()
    procs = [
        subprocess.Popen([sys.executable, "-c", TRAINER, str(ck), "1500"], stdout=subprocess.PIPE, text=True)
        for _ in range(2)
    ]
    outs = [p.communicate(timeout=300)[0] for p in procs]
    codes = sorted(p.returncode for p in procs)
    assert codes == [0, 3], outs
    assert any("locked by process" in o for o in outs)
    assert load_checkpoint(ck)["step"] == 1500
    assert not (tmp_path / "run" / "checkpoint.pt.lock").exists()  # released at the end


def test_a_stale_lock_is_taken_over_and_a_live_one_refused(tmp_path):
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    (tmp_path / "checkpoint.pt.lock").write_text(str(dead.pid))
    torch.manual_seed(0)
    net, cfg = nets.MLPDenoiser(2, hidden=8, depth=1), nets.TrainConfig(steps=3, batch_size=4)
    res = nets.train(
        net, np.zeros((8, 2)), sd.OrnsteinUhlenbeck(), cfg, checkpoint=tmp_path / "checkpoint.pt", progress=False
    )
    assert res.step == 3
    live = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        (tmp_path / "checkpoint.pt.lock").write_text(str(live.pid))
        with pytest.raises(ValueError, match=f"locked by process {live.pid}"):
            with DirectoryLock(tmp_path, "checkpoint.pt.lock"):
                pass
    finally:
        live.kill()
        live.wait()


@pytest.mark.parametrize("content", [b"", b"\x00\x01 not a checkpoint" * 10, "truncate"])
def test_corrupt_checkpoints_are_reported_as_corrupt(tmp_path, content):
    ck = tmp_path / "checkpoint.pt"
    torch.manual_seed(0)
    nets.train(nets.MLPDenoiser(2, hidden=8, depth=1), np.zeros((8, 2)), sd.OrnsteinUhlenbeck(),
               nets.TrainConfig(steps=2, batch_size=4), checkpoint=ck, progress=False)  # fmt: skip
    raw = ck.read_bytes()
    ck.write_bytes(raw[: len(raw) // 2] if content == "truncate" else content)
    with pytest.raises(ValueError, match="corrupt file"):
        load_checkpoint(ck)
    with pytest.raises(ValueError, match="corrupt file"):
        nets.train(nets.MLPDenoiser(2, hidden=8, depth=1), np.zeros((8, 2)), sd.OrnsteinUhlenbeck(),
                   nets.TrainConfig(steps=4, batch_size=4), checkpoint=ck, progress=False)  # fmt: skip


def test_cli_train_validates_before_writing(tmp_path, capsys):
    out = tmp_path / "run"
    assert cli.main(["train", "--steps", "-1", "--out", str(out), "--no-progress"]) == 2
    assert "steps" in capsys.readouterr().err and not out.exists()
    blocker = tmp_path / "file"
    blocker.write_text("x")
    assert cli.main(["train", "--steps", "2", "--out", str(blocker / "sub"), "--no-progress"]) == 2
    assert "run directory" in capsys.readouterr().err
    assert cli.main(["train", "--steps", "2", "--config", "huge", "--out", str(out), "--no-progress"]) == 2
    assert "config" in capsys.readouterr().err and not out.exists()
