"""Entry of the child process: ``python -I -B grader_child.py JOB.json OUT_DIR``, run from a check's workspace,
where this file is copied as ``grader_child.py`` and the package :mod:`grader.child` as ``grader_harness/`` beside it
(grader/workspace.py). The workspace goes first on sys.path: its framework copy and the packages ``submission/`` (the
student's files), ``grader_ref/`` (the references of the other TODOs) and ``grader_harness/``."""
import os
import sys

WS = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, WS)

from grader_harness import main  # noqa: E402

main()
