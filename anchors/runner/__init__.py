"""The resumable runner every analysis, the command line and the demo go through."""

from .resumable import Progress, ResumeConflict, no_progress, run, run_folder

__all__ = ["Progress", "ResumeConflict", "no_progress", "run", "run_folder"]
