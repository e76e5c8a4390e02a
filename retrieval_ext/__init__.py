"""plugzoo's LAVIS extension for retrieval.

``import lavis`` registers models, tasks, builders and processors but not runners or LR
schedulers; importing this package registers those too, so every LAVIS registry lookup our
configs make resolves.
"""

import lavis  # noqa: F401  (registers models, tasks, builders, processors)
import lavis.common.optims  # noqa: F401  (registers LR schedulers)
import lavis.runners  # noqa: F401  (registers runners)

from plugins.compat import apply_host_fixes

apply_host_fixes("salesforce-lavis")  # after `import lavis`: it repairs what that import did
