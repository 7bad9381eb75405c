"""The resumable runner every analysis, the command line and the demo go through."""

from .resumable import (Plan, Progress, RemoteBatchError, ResumeConflict, Retry, compute_batch, finish, no_progress, plan,
                        run, run_folder)

__all__ = ["Plan", "Progress", "RemoteBatchError", "ResumeConflict", "Retry", "compute_batch", "finish", "no_progress", "plan",
           "run", "run_folder"]
