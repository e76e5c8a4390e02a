"""Declaration read by plugzoo's discovery (entry point ``plugzoo.plugins: recbole``)."""

from plugins.catalogue import Extension

EXTENSION = Extension(
    name="recbole_ext",
    host="recbole",
    host_module="recbole",
    plugins=(),
    baseline_stage="recbole_ext.demo:sasrec_baseline",
)
