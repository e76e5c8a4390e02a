"""Train (and test) a LAVIS model from a project config, as LAVIS's own train.py does.

    python tools/lavis_train.py --cfg-path configs/lavis/clip4clip/embedded_meanP.yaml \
        [--options run.max_epoch=3 run.device=cpu ...]
    torchrun --standalone --nproc_per_node 2 tools/lavis_train.py --cfg-path ...   # DDP

Prints the test metrics as JSON on the last line (main process).
"""

from retrieval_ext.launch import main

if __name__ == "__main__":
    main(evaluate=False, description=__doc__.splitlines()[0])
