"""Train a model: ``python train.py [hydra overrides]``; configs/train.yaml lists the choices.

No arguments: a small Mamba on the embedded corpus, CPU-friendly. Multi-GPU and FSDP runs go
through accelerate's launcher, e.g. ``accelerate launch --config_file configs/accelerate/ddp.yaml
train.py experiment=paper/mamba_130m hydra.run.dir=outputs/mamba_130m``. An installed package has
the same command as ``mamba-lm-train``; the code is ``mamba_lm.trainer.app``. Exit status 0: finished;
143: stopped by SIGTERM after saving a checkpoint (``resume=auto`` continues it); 1: refused or failed,
with one line ``error: <cause>`` on stderr (``MAMBA_LM_DEBUG=1`` prints the traceback instead). A run
holds its folder's lock (``run.lock``): a second run on the same folder is refused at once.
"""

from mamba_lm.trainer.app import main

if __name__ == "__main__":
    main()
