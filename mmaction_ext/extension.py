"""Declaration read by plugzoo's discovery (entry point ``plugzoo.plugins: mmaction2``)."""

from plugins.catalogue import Extension

EXTENSION = Extension(
    name="mmaction_ext",
    host="mmaction2",
    host_module="mmaction",
    plugins=(),
)
