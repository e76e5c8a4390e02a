"""Declaration read by plugzoo's discovery (entry point ``plugzoo.plugins: lavis``)."""

from plugins.catalogue import Extension

EXTENSION = Extension(
    name="retrieval_ext",
    host="salesforce-lavis",
    host_module="lavis",
    plugins=(),
)
