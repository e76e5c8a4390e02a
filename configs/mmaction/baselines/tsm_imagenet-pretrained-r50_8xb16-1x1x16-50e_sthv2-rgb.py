# MMAction2's TSM-R50 16f sthv2 recipe with a test loader that runs: the model of the recipe in
# ../_base_/sthv2-rgb_1x1x16.py, unchanged. For side-by-side runs with
# ../sth/sth_imagenet-pretrained-r50_8xb16-1x1x16-50e_sthv2-rgb.py (same base).
_base_ = ["../_base_/sthv2-rgb_1x1x16.py"]
