"""`[core] hostname_callable` of the Celery e2e test's workers: the name of the host each worker stands for.

In docker-compose every worker is its own container with its own hostname; the test runs its two workers
on one machine, so each reports the name it was given (E2E_WORKER_HOSTNAME), and a task instance's
`hostname` says which worker ran it. Kept free of imports: every task process calls it.
"""

import os


def worker_hostname() -> str:
    return os.environ["E2E_WORKER_HOSTNAME"]
