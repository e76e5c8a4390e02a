"""Evaluate a LAVIS model from a project config, as LAVIS's own evaluate.py does.

    python tools/lavis_evaluate.py --cfg-path configs/lavis/clip4clip/embedded_meanP.yaml \
        --options model.load_finetuned=true model.finetuned=<run dir>/checkpoint_best.pth

Runs the config's test splits (run.test_splits) without training.

Prints the test metrics as JSON on the last line (main process).
"""

from retrieval_ext.launch import main

if __name__ == "__main__":
    main(evaluate=True, description=__doc__.splitlines()[0])
