"""plugzoo's LAVIS extension for retrieval.

``import lavis`` registers models, tasks, builders and processors but not runners or LR
schedulers; importing this package registers those too, so every LAVIS registry lookup our
configs make resolves, and then registers our own names: the ``clip4clip_retrieval`` model,
the ``text_video_retrieval`` task, local text-video dataset builders, video processors, the
``runner_portable`` runner and the ``linear_warmup_cosine_group_lr`` schedule.
"""

import lavis  # noqa: F401  (registers models, tasks, builders, processors)
import lavis.common.optims  # noqa: F401  (registers LR schedulers)
import lavis.runners  # noqa: F401  (registers runners)

from plugins.compat import apply_host_fixes

apply_host_fixes("salesforce-lavis")  # after `import lavis`: it repairs what that import did

# our registrations (after the fixes: they import LAVIS modules the fixes patch)
from retrieval_ext import datasets, models, processors, runners, tasks  # noqa: E402, F401
