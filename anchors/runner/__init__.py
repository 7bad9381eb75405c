"""The resumable runner every analysis, the command line and the demo go through, and its dry run."""

from .dry_run import DryRun, dry_run
from .batches import RemoteBatchError, Retry, compute_batch
from .resumable import Plan, Progress, ResumeConflict, finish, no_progress, plan, run, run_folder

__all__ = ["DryRun", "Plan", "Progress", "RemoteBatchError", "ResumeConflict", "Retry", "compute_batch", "dry_run", "finish", "no_progress", "plan",
           "run", "run_folder"]
