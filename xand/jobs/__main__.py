"""``python -m xand.jobs supervise JOB_DIR`` (started by ``JobManager.start``)."""

import sys

from xand.jobs.supervisor import main

sys.exit(main())
