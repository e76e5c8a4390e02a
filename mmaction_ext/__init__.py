"""plugzoo's MMAction2 extension.

Importing this package (directly, or through ``custom_imports=dict(imports=['mmaction_ext'])``
in an MMAction2 config) makes MMAction2 1.2.0 import on its wheel, lets mmengine resume
checkpoints under torch >= 2.6, and lets ``launcher='pytorch'`` train on CPU with gloo.
"""

from plugins.compat import apply_host_fixes

apply_host_fixes("mmaction2")

from mmaction_ext import models  # noqa: E402,F401  (registers STH in MMAction2's MODELS)
